"""The outbox under trouble: crashes, lost leases, outages, stopping, and officials' controls.

Through the worker's public API (run_once / run) and storage.outbox, on SQLite and PostgreSQL,
with a scripted channel and the worker's clock moved by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.app import housekeeping
from bot.channels.channel import PermanentFailure, TemporaryFailure, Unreachable
from bot.cli.draft import follow
from bot.config import DeliveryConfig
from bot.sending.worker import OUTAGE_ROWS, DeliveryWorker, Progress
from handlers.events import Button, Reply
from handlers.i18n import translator
from handlers.payload import PayloadError, decode_reply, encode_reply, queue_reply
from storage import outbox
from storage.drafts import broadcast
from storage.models import Delivery, DeliveryStatus, Draft, DraftMessage, Resident, utcnow
from tests.conftest import add_draft
from tests.sending.test_delivery import (
    Clock,
    ScriptedChannel,
    add_residents,
    opening_in_2098,
    outcomes,
    rows_by_user,
    subscribe,
    until,
)


async def status_counts(sessionmaker) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        return {status: count for status, count in rows.all()}


async def test_a_worker_killed_mid_broadcast_loses_nobody_and_duplicates_little(sessionmaker):
    users = await add_residents(sessionmaker, 60)
    await add_draft(sessionmaker)
    config = DeliveryConfig(concurrency=4)
    clock = Clock()
    doomed = ScriptedChannel()
    doomed.gate, doomed.free = asyncio.Event(), 20  # 20 go out, then sends hang
    dying = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": doomed}, config, now=clock).run(asyncio.Event())
    )
    await until(lambda: doomed.in_flight == config.concurrency)
    dying.cancel()  # kill -9: whatever it had not written is never written
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert len(doomed.sent) == 20
    assert (await status_counts(sessionmaker)).get(DeliveryStatus.SENDING, 0) > 0

    clock.advance(seconds=config.lease_seconds + 1)  # its lease runs out
    heir = ScriptedChannel()
    await DeliveryWorker(sessionmaker, {"test": heir}, config, now=clock).run_once()

    received = doomed.received()
    for user, count in heir.received().items():
        received[user] = received.get(user, 0) + count
    assert set(received) == set(users)  # nobody lost
    duplicates = sum(received.values()) - len(users)
    # At most the in-flight window: sends under way plus outcomes not yet written.
    assert duplicates <= 2 * config.concurrency
    assert await status_counts(sessionmaker) == {DeliveryStatus.SENT: len(users)}


async def test_a_worker_whose_lease_ran_out_records_nothing_over_the_new_owner(
    sessionmaker, service, caplog
):
    await subscribe(service, ["a"])
    await add_draft(sessionmaker)
    config = DeliveryConfig()
    clock = Clock()
    slow = ScriptedChannel()
    slow.gate = asyncio.Event()
    first = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": slow}, config, now=clock).run_once()
    )
    await until(lambda: slow.in_flight == 1)  # A's send is under way, and hangs
    clock.advance(seconds=config.lease_seconds + 1)

    fast = ScriptedChannel()
    taken = await DeliveryWorker(sessionmaker, {"test": fast}, config, now=clock).run_once()
    assert taken.sent == 1
    recorded = (await rows_by_user(sessionmaker))["a"]

    slow.gate.set()  # A's send completes after all
    late = await first
    assert (late.sent, late.lost) == (0, 1)
    assert len(slow.sent) + len(fast.sent) == 2  # two sends, one recorded: B's
    row = (await rows_by_user(sessionmaker))["a"]
    assert (row.status, row.sent_at, row.lease_token, row.attempts) == (
        DeliveryStatus.SENT, recorded.sent_at, recorded.lease_token, 2
    )
    async with sessionmaker() as session:
        shown = (await session.scalars(select(DraftMessage.message_id))).all()
    assert shown == ["msg-1"]  # B's message (each channel numbers its own)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("another worker took the row over" in r.getMessage() for r in warnings)


class FailingAfterTheGate(ScriptedChannel):
    """Every send waits for the gate, then fails with `failure`."""

    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.failure = failure

    async def send(self, user_id, message):
        self.tried.append(user_id)
        self.in_flight += 1
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        raise self.failure


@pytest.mark.parametrize("failure", [
    PermanentFailure("Bad Request: chat not found"), TemporaryFailure("connection reset"),
    Unreachable("Forbidden: bot was blocked by the user"),
], ids=["permanent", "temporary", "blocked"])
async def test_a_worker_whose_lease_ran_out_records_no_failure_over_the_new_owner(
    sessionmaker, service, failure
):
    """Like a late "sent", a late failure of the first worker must not touch the row that a
    second worker has claimed since, and is sending now."""
    await subscribe(service, ["a"])
    await add_draft(sessionmaker)
    config = DeliveryConfig()
    clock = Clock()
    doomed = FailingAfterTheGate(failure)
    first = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": doomed}, config, now=clock).run_once())
    await until(lambda: doomed.in_flight == 1)
    clock.advance(seconds=config.lease_seconds + 1)  # its lease runs out

    owner = ScriptedChannel()
    owner.gate = asyncio.Event()
    second = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": owner}, config, now=clock).run_once())
    await until(lambda: owner.in_flight == 1)
    claimed = (await rows_by_user(sessionmaker))["a"]

    doomed.gate.set()  # the first worker's send fails now, while the second one's is under way
    late = await first
    assert (late.failed, late.retried, late.unreachable, late.lost) == (0, 0, 0, 1)
    row = (await rows_by_user(sessionmaker))["a"]
    assert (row.status, row.lease_token, row.error, row.attempts) == (
        DeliveryStatus.SENDING, claimed.lease_token, "", 2)
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident.reachable))) is True

    owner.gate.set()
    assert (await second).sent == 1
    assert (await rows_by_user(sessionmaker))["a"].status == DeliveryStatus.SENT


async def test_a_30_second_outage_loses_nobody_and_fails_nobody(sessionmaker):
    users = await add_residents(sessionmaker, 40)
    await add_draft(sessionmaker)
    clock = Clock()
    config = DeliveryConfig(concurrency=8)
    channel = ScriptedChannel(clock)
    channel.down_until = clock.now + timedelta(seconds=30)
    worker = DeliveryWorker(sessionmaker, {"test": channel}, config, now=clock)
    for _ in range(900):  # fifteen minutes of the worker's clock, a pass a second
        await worker.run_once()
        if len(channel.sent) == len(users):
            break
        clock.advance(seconds=1)
    assert channel.received() == dict.fromkeys(users, 1)
    rows = await rows_by_user(sessionmaker)
    assert {row.status for row in rows.values()} == {DeliveryStatus.SENT}
    # The channel was held instead of every row being tried: a few failed sends, not 40,
    # and no row came near its last attempt.
    failed_sends = len(channel.tried) - len(channel.sent)
    assert OUTAGE_ROWS <= failed_sends <= OUTAGE_ROWS + 3
    assert max(row.attempts for row in rows.values()) <= 3 < config.max_attempts
    assert sum(row.attempts == 1 for row in rows.values()) >= len(users) - failed_sends


async def test_stop_returns_after_the_sends_in_flight_and_gives_the_rest_back(sessionmaker):
    await add_residents(sessionmaker, 1000)
    await add_draft(sessionmaker)
    config = DeliveryConfig(concurrency=8)
    channel = ScriptedChannel()
    channel.gate, channel.free = asyncio.Event(), 3
    stop = asyncio.Event()
    running = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": channel}, config).run(stop)
    )
    await until(lambda: channel.in_flight == config.concurrency)
    stop.set()
    # At once, while the sends in flight are still under way, the claimed rows that had not
    # started are back in the queue, their attempt not counted.
    expected = {DeliveryStatus.SENT: 3, DeliveryStatus.SENDING: 8, DeliveryStatus.PENDING: 989}
    async with asyncio.timeout(5):
        while await status_counts(sessionmaker) != expected:
            await asyncio.sleep(0.02)
    assert not running.done()
    channel.gate.set()
    async with asyncio.timeout(5):
        await running
    assert len(channel.tried) == 11  # nothing started after stop
    rows = (await rows_by_user(sessionmaker)).values()
    assert sum(row.status == DeliveryStatus.SENT for row in rows) == 11
    waiting = [row for row in rows if row.status != DeliveryStatus.SENT]
    assert len(waiting) == 989
    assert all(row.status == DeliveryStatus.PENDING and row.attempts == 0 for row in waiting)


async def test_nothing_more_is_sent_once_the_deadline_passes(sessionmaker, service):
    await subscribe(service, ["early", "late"])
    draft = await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"late": [PermanentFailure("x")]}
    clock = Clock()
    worker = DeliveryWorker(sessionmaker, {"test": channel}, now=clock)
    await worker.run_once()
    async with sessionmaker() as session:  # an official retries the failed one…
        assert await outbox.retry_failed(session, draft.id, clock.now) == 1
        await session.commit()
    clock.now = draft.deadline  # …too late
    assert await worker.run_once() == Progress(expired=1)
    assert [user for user, _ in channel.sent] == ["early"]
    assert (await outcomes(sessionmaker))["late"] == (DeliveryStatus.EXPIRED, "deadline passed")


async def set_paused(sessionmaker, draft_id: int, paused: bool) -> bool:
    async with sessionmaker() as session:
        draft = await session.get(Draft, draft_id)
        assert draft is not None
        changed = await outbox.set_paused(session, draft, paused)
        await session.commit()
        return changed


async def test_a_paused_draft_sends_nothing_until_resumed(sessionmaker, service):
    await subscribe(service, ["a", "b"])
    draft = await add_draft(sessionmaker)
    assert await set_paused(sessionmaker, draft.id, True)
    assert not await set_paused(sessionmaker, draft.id, True)
    channel = ScriptedChannel()
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    assert await worker.run_once() == Progress() and channel.sent == []
    assert set(await status_counts(sessionmaker)) == {DeliveryStatus.PENDING}
    assert await set_paused(sessionmaker, draft.id, False)
    assert (await worker.run_once()).sent == 2


class BatchUnderWay:
    """A broadcast to `count` residents whose batch is claimed and whose first send hangs."""

    config = DeliveryConfig(concurrency=4)

    def __init__(self, draft: Draft, channel: ScriptedChannel, sending: asyncio.Task) -> None:
        self.draft, self.channel, self.sending = draft, channel, sending

    @classmethod
    async def start(cls, sessionmaker, count: int) -> BatchUnderWay:
        await add_residents(sessionmaker, count)
        draft = await add_draft(sessionmaker)
        channel = ScriptedChannel()
        channel.gate = asyncio.Event()
        sending = asyncio.create_task(
            DeliveryWorker(sessionmaker, {"test": channel}, cls.config).run_once()
        )
        await until(lambda: channel.in_flight == 1)
        return cls(draft, channel, sending)


async def test_a_pause_during_a_batch_stops_it_within_one_flush(sessionmaker):
    batch = await BatchUnderWay.start(sessionmaker, 200)
    draft, channel, sending, config = batch.draft, batch.channel, batch.sending, batch.config
    await set_paused(sessionmaker, draft.id, True)
    channel.gate.set()
    progress = await sending
    assert len(channel.sent) <= 1 + 2 * config.concurrency
    assert progress.deferred == 200 - len(channel.sent)
    counts = await status_counts(sessionmaker)
    assert counts == {DeliveryStatus.SENT: len(channel.sent),
                      DeliveryStatus.PENDING: 200 - len(channel.sent)}


async def test_cancel_sends_nothing_more_and_a_rebroadcast_leaves_it_cancelled(
    sessionmaker, service
):
    await subscribe(service, ["a", "b", "c"])
    draft = await add_draft(sessionmaker)
    async with sessionmaker() as session:
        assert await outbox.cancel(session, draft.id, utcnow()) == outbox.Cancellation(3, [])
        await session.commit()
    channel = ScriptedChannel()
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    assert await worker.run_once() == Progress() and channel.sent == []
    async with sessionmaker() as session:
        loaded = await session.get(Draft, draft.id)
        assert loaded is not None
        assert await broadcast(session, loaded, utcnow()) == 0
        await session.commit()
    assert await status_counts(sessionmaker) == {DeliveryStatus.CANCELLED: 3}
    # Sent after all only when asked for.
    async with sessionmaker() as session:
        assert await outbox.requeue_cancelled(session, draft.id, utcnow()) == 3
        await session.commit()
    assert (await worker.run_once()).sent == 3


async def test_a_cancel_during_a_batch_stops_it_and_records_what_did_go(sessionmaker):
    batch = await BatchUnderWay.start(sessionmaker, 100)
    draft, channel, sending, config = batch.draft, batch.channel, batch.sending, batch.config
    async with sessionmaker() as session:
        cancelled = await outbox.cancel(session, draft.id, utcnow())
        assert len(cancelled.in_flight) == 100  # claimed: the one under way included
        await session.commit()
    channel.gate.set()
    await sending
    sent = len(channel.sent)
    assert 1 <= sent <= 1 + 2 * config.concurrency
    # What went is recorded as sent (it did go); the rest stays cancelled.
    assert await status_counts(sessionmaker) == {
        DeliveryStatus.SENT: sent, DeliveryStatus.CANCELLED: 100 - sent
    }
    assert await DeliveryWorker(sessionmaker, {"test": channel}, config).run_once() == Progress()


async def test_retry_queues_the_failed_messages_again_with_attempts_reset(sessionmaker, service):
    await subscribe(service, ["ok", "bad1", "bad2"])
    draft = await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {user: [PermanentFailure("Bad Request")] for user in ("bad1", "bad2")}
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    assert (await worker.run_once()).failed == 2
    async with sessionmaker() as session:
        assert await outbox.retry_failed(session, draft.id, utcnow()) == 2
        await session.commit()
    rows = await rows_by_user(sessionmaker)
    assert (rows["bad1"].status, rows["bad1"].attempts, rows["bad1"].error) == (
        DeliveryStatus.PENDING, 0, ""
    )
    assert (await worker.run_once()).sent == 2
    assert await status_counts(sessionmaker) == {DeliveryStatus.SENT: 3}


async def test_purge_removes_old_finished_rows_only(sessionmaker, service):
    await subscribe(service, ["old-sent", "old-waiting", "new-sent", "old-failed"])
    await add_draft(sessionmaker)
    now = utcnow()
    long_ago = now - timedelta(days=100)
    async with sessionmaker() as session:
        residents = {r.platform_id: r.id for r in (await session.scalars(select(Resident)))}
        for user, status, created in (
            ("old-sent", DeliveryStatus.SENT, long_ago),
            ("old-waiting", DeliveryStatus.PENDING, long_ago),
            ("new-sent", DeliveryStatus.SENT, now),
            ("old-failed", DeliveryStatus.FAILED, long_ago),
        ):
            await session.execute(
                update(Delivery).where(Delivery.resident_id == residents[user])
                .values(status=status, created_at=created)
            )
        assert await outbox.purge(session, now - timedelta(days=90)) == 2
        await session.commit()
    assert set(await rows_by_user(sessionmaker)) == {"old-waiting", "new-sent"}


async def test_ready_messages_are_queued_once_per_key_and_sent_as_given(sessionmaker, service):
    await subscribe(service, ["a"])
    draft = await add_draft(sessionmaker, send=False)
    reply = Reply("Cảm ơn bạn đã góp ý.", [[Button("x:1", "Một"), Button("x:2", "Hai")]],
                  draft_id=draft.id)
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
        assert resident is not None
        later = utcnow() + timedelta(days=1)
        assert await queue_reply(session, resident, "answer:1", reply, later)
        assert not await queue_reply(session, resident, "answer:1", reply, later)
        await session.commit()
    channel = ScriptedChannel()
    assert (await DeliveryWorker(sessionmaker, {"test": channel}).run_once()).sent == 1
    assert channel.sent == [("a", reply)]
    async with sessionmaker() as session:  # a reply to it is a comment on the draft
        shown = (await session.execute(select(DraftMessage.message_id, DraftMessage.draft_id)))
        assert shown.all() == [("msg-1", draft.id)]


async def test_a_ready_message_past_its_expiry_or_unreadable_is_not_sent(sessionmaker, service):
    await subscribe(service, ["late", "garbled"])
    async with sessionmaker() as session:
        residents = {r.platform_id: r for r in (await session.scalars(select(Resident)))}
        now = utcnow()
        await queue_reply(session, residents["late"], "k1", Reply("hi"),
                                  now + timedelta(minutes=5))
        await queue_reply(session, residents["garbled"], "k2", Reply("hi"), None)
        await session.execute(
            update(Delivery).where(Delivery.dedup_key == "k2").values(payload='{"text": 3}')
        )
        await session.commit()
    clock = Clock()
    clock.advance(minutes=10)
    channel = ScriptedChannel()
    progress = await DeliveryWorker(sessionmaker, {"test": channel}, now=clock).run_once()
    assert (progress.expired, progress.failed, channel.tried) == (1, 1, [])
    result = await outcomes(sessionmaker)
    assert result["late"] == (DeliveryStatus.EXPIRED, "expired")
    assert result["garbled"][0] == DeliveryStatus.FAILED
    assert "unreadable message payload" in result["garbled"][1]


def test_a_reply_survives_its_payload_encoding():
    reply = Reply("“Đ” \n x", [[Button("a", "🗳 Có")], []], draft_id=7)
    assert decode_reply(encode_reply(reply)) == reply
    for garbage in ("", "[]", '{"text": "x"}', '{"text": "x", "buttons": [["a"]]}',
                    '{"text": "x", "buttons": [], "draft_id": "7"}'):
        with contextlib.suppress(PayloadError):
            decode_reply(garbage)
            raise AssertionError(f"accepted {garbage!r}")


async def test_two_workers_at_once_share_the_queue_without_sending_twice(sessionmaker):
    users = await add_residents(sessionmaker, 300)
    await add_draft(sessionmaker)
    config = DeliveryConfig(concurrency=4)
    channels = [ScriptedChannel(), ScriptedChannel()]
    progress = await asyncio.gather(*(
        DeliveryWorker(sessionmaker, {"test": channel}, config).run_once()
        for channel in channels
    ))
    assert sum(p.sent for p in progress) == len(users) and not any(p.lost for p in progress)
    received = channels[0].received()
    assert not set(received) & set(channels[1].received())  # each row claimed once
    received.update(channels[1].received())
    assert received == dict.fromkeys(users, 1)


async def test_housekeeping_purges_finished_rows_past_the_retention(sessionmaker, service):
    await subscribe(service, ["old", "recent"])
    await add_draft(sessionmaker)
    await DeliveryWorker(sessionmaker, {"test": ScriptedChannel()}).run_once()
    async with sessionmaker() as session:
        old = await session.scalar(select(Resident.id).where(Resident.platform_id == "old"))
        await session.execute(update(Delivery).where(Delivery.resident_id == old)
                              .values(created_at=utcnow() - timedelta(days=31)))
        await session.commit()
    stop = asyncio.Event()
    upkeep = asyncio.create_task(
        housekeeping(sessionmaker, stop, DeliveryConfig(retention_days=30))
    )
    try:
        async with asyncio.timeout(10):
            while set(await rows_by_user(sessionmaker)) != {"recent"}:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await upkeep


async def test_the_queue_of_a_scheduled_draft_says_when_it_is_due(sessionmaker, service, tmp_path):
    await subscribe(service, ["a"])
    draft = await add_draft(sessionmaker, opening_in_2098(tmp_path))
    async with sessionmaker() as session:
        state = await outbox.draft_queue(session, draft.id, utcnow())
    assert (state.remaining, state.due, state.leased) == (1, 0, 0)
    assert state.next_due == draft.opens_at
    shown = io.StringIO()  # `ykien draft broadcast` does not wait for it
    assert await follow(sessionmaker, draft.id, translator("en"), shown) == 0
    last = shown.getvalue().splitlines()[-1]
    assert last.startswith("The remaining messages are due from ") and "2098" in last


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_broadcast_progress_is_one_live_line_on_a_terminal(sessionmaker, service):
    await subscribe(service, ["a", "b"])
    draft = await add_draft(sessionmaker)
    stop = asyncio.Event()
    running = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": ScriptedChannel()}).run(stop, idle_seconds=0.1)
    )
    screen = Terminal()
    try:
        assert await follow(sessionmaker, draft.id, translator("en"), screen) == 0
    finally:
        stop.set()
        await running
    shown = screen.getvalue()
    assert shown.startswith("\r") and shown.count("\n") == 2
    assert shown.endswith(", 0 remaining\nNothing left to send.\n")
    assert "Draft no. 1: 2 sent" in shown.split("\r")[-1]
