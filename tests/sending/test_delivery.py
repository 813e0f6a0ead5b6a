"""The outbox and the delivery worker, against a scripted channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.channels.channel import PermanentFailure, TemporaryFailure, Throttled, Unreachable
from bot.channels.pacing import ChannelLimiter
from bot.config import DeliveryConfig
from bot.sending.worker import DeliveryWorker, Progress
from handlers.capabilities import CONSOLE
from handlers.events import Incoming, Kind, Outgoing, Reply
from handlers.logref import chat_ref
from storage.drafts import broadcast
from storage.models import (
    Delivery,
    DeliveryStatus,
    Draft,
    DraftMessage,
    DraftStatus,
    Resident,
    utcnow,
)
from storage.queries import add_residents_in_bulk
from tests.chat import delivery_statuses
from tests.conftest import EXAMPLE_DRAFT, add_draft


class ScriptedChannel:
    """Records what it sends; raises the errors queued for a user.

    `gate`, when given, holds sends after the first `free` ones until it is set (a send in
    flight); `down_until` makes every send fail temporarily until the clock reaches it.
    """

    name = "test"
    capabilities = CONSOLE

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.limiter = ChannelLimiter(0, per_chat=False)
        self.clock = clock
        self.sent: list[tuple[str, Outgoing]] = []  # delivered
        self.tried: list[str] = []  # every send begun, delivered or not
        self.errors: dict[str, list[Exception]] = {}
        self.gate: asyncio.Event | None = None
        self.free = 0
        self.in_flight = 0
        self.down_until: datetime | None = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, user_id: str, message: Outgoing) -> str:
        self.tried.append(user_id)
        if self.down_until is not None and self.clock() < self.down_until:
            raise TemporaryFailure("503 Service Unavailable")
        queued = self.errors.get(user_id)
        if queued:
            raise queued.pop(0)
        if self.gate is not None and len(self.tried) > self.free:
            self.in_flight += 1
            try:
                await self.gate.wait()
            finally:
                self.in_flight -= 1
        self.sent.append((user_id, message))
        return f"msg-{len(self.sent)}"

    def received(self) -> dict[str, int]:
        """How many messages each user got."""
        counts: dict[str, int] = {}
        for user, _ in self.sent:
            counts[user] = counts.get(user, 0) + 1
        return counts


class WindowedChannel(ScriptedChannel):
    """A channel that may write only to residents who wrote in the last 7 days (Zalo OA)."""

    capabilities = replace(CONSOLE, messaging_window=timedelta(days=7))


async def subscribe(service, users) -> None:
    for user in users:
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="agree:vi"))
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="commune:15148"))


async def add_residents(sessionmaker, count: int, channel: str = "test") -> list[str]:
    """Many subscribed residents of Xã Cẩm Tú at once (as if each had agreed and chosen it)."""
    users = [f"r{i:05d}" for i in range(count)]
    now = utcnow()
    async with sessionmaker() as session:
        await add_residents_in_bulk(session, [
            {"channel": channel, "platform_id": user, "language": "vi", "commune_code": 15148,
             "consent_at": now, "consent_version": "test", "subscribed": True,
             "reachable": True, "awaiting": "", "held_text": "", "notice_version": "test",
             "created_at": now}
            for user in users
        ])
        await session.commit()
    return users


class Clock:
    """The worker's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def rows_by_user(sessionmaker) -> dict[str, Delivery]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Resident.platform_id, Delivery).join(
                Resident, Resident.id == Delivery.resident_id
            )
        )
        return {user: row for user, row in rows.all()}


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (in real time) until the condition holds."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def outcomes(sessionmaker) -> dict[str, tuple[str, str]]:
    """Each recipient's delivery status and recorded reason."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Resident.platform_id, Delivery.status, Delivery.error).join(
                Resident, Resident.id == Delivery.resident_id
            )
        )
        return {user: (status, error) for user, status, error in rows.all()}


async def test_broadcast_sends_once_and_records_the_message(sessionmaker, service):
    await subscribe(service, ["a", "b", "c"])
    draft = await add_draft(sessionmaker)
    channel = ScriptedChannel()
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    progress = await worker.run_once()
    assert progress.sent == 3
    assert sorted(user for user, _ in channel.sent) == ["a", "b", "c"]
    message = channel.sent[0][1]
    assert isinstance(message, Reply) and message.draft_id == draft.id
    assert draft.title in message.text
    # Broadcasting again and running again sends nothing more.
    async with sessionmaker() as session, session.begin():
        assert await broadcast(session, draft, utcnow()) == 0
    assert (await worker.run_once()).sent == 0
    assert len(channel.sent) == 3
    async with sessionmaker() as session:
        assert len((await session.scalars(select(DraftMessage))).all()) == 3


async def test_new_subscribers_are_added_by_a_second_broadcast(sessionmaker, service):
    await subscribe(service, ["a"])
    draft = await add_draft(sessionmaker)
    await subscribe(service, ["late"])
    async with sessionmaker() as session, session.begin():
        assert await broadcast(session, draft, utcnow()) == 1


async def test_platform_errors_map_to_outcomes(sessionmaker, service):
    await subscribe(service, ["ok", "blocked", "flaky", "bad"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {
        "blocked": [Unreachable("Forbidden: bot was blocked by the user")],
        "flaky": [TemporaryFailure("connection reset")],
        "bad": [PermanentFailure("Bad Request: message is too long")],
    }
    progress = await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert (progress.sent, progress.unreachable, progress.retried, progress.failed) == (1, 1, 1, 1)
    assert await delivery_statuses(sessionmaker) == {
        "ok": DeliveryStatus.SENT,
        "blocked": DeliveryStatus.UNREACHABLE,
        "flaky": DeliveryStatus.PENDING,
        "bad": DeliveryStatus.FAILED,
    }
    async with sessionmaker() as session:
        blocked = await session.scalar(select(Resident).where(Resident.platform_id == "blocked"))
    assert blocked.reachable is False


async def test_a_429_pauses_the_whole_channel(sessionmaker, service):
    await subscribe(service, ["slow", "next", "last"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"slow": [Throttled(30)]}
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    progress = await worker.run_once()
    assert progress.sent == 0 and channel.sent == []
    assert set((await delivery_statuses(sessionmaker)).values()) == {DeliveryStatus.PENDING}
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Delivery))).all()
    # Nobody is retried before the platform's 30 s, and waiting is not a failed attempt.
    assert all(row.not_before > utcnow() + timedelta(seconds=20) for row in rows)
    assert all(row.attempts == 0 for row in rows)
    assert (await worker.run_once()).sent == 0  # still paused: nothing claimed


async def test_unreachable_residents_are_left_out_of_later_broadcasts(sessionmaker, service):
    await subscribe(service, ["blocked", "ok"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"blocked": [Unreachable("blocked")]}
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    second = await add_draft(sessionmaker)
    async with sessionmaker() as session:
        targets = (await session.scalars(
            select(Resident.platform_id).join(Delivery).where(Delivery.draft_id == second.id)
        )).all()
    assert targets == ["ok"]


async def test_a_crashed_workers_rows_are_resumed_after_the_lease(sessionmaker, service):
    await subscribe(service, ["a", "b"])
    await add_draft(sessionmaker)
    # A worker claimed the rows and died before sending: they are leased, not lost.
    async with sessionmaker() as session:
        await session.execute(update(Delivery).values(
            status=DeliveryStatus.SENDING, not_before=utcnow() + timedelta(minutes=1)
        ))
        await session.commit()
    channel = ScriptedChannel()
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    assert (await worker.run_once()).sent == 0
    async with sessionmaker() as session:
        await session.execute(update(Delivery).values(not_before=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await worker.run_once()).sent == 2
    assert sorted(user for user, _ in channel.sent) == ["a", "b"]


async def test_a_stopped_resident_is_skipped(sessionmaker, service):
    await subscribe(service, ["a"])
    await add_draft(sessionmaker)
    await service.handle(Incoming("test", "a", Kind.TEXT, text="STOP"))
    channel = ScriptedChannel()
    progress = await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert progress.skipped == 1 and channel.sent == []
    assert await outcomes(sessionmaker) == {"a": (DeliveryStatus.SKIPPED, "resident stopped")}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"deadline": datetime(2020, 1, 1, tzinfo=UTC)}, "deadline passed"),
        ({"status": DraftStatus.CLOSED}, "draft closed"),
    ],
    ids=["deadline-passed", "closed"],
)
async def test_nothing_is_delivered_after_the_deadline_or_once_closed(
    sessionmaker, service, change, reason
):
    await subscribe(service, ["a", "b"])
    draft = await add_draft(sessionmaker)
    async with sessionmaker() as session:
        await session.execute(update(Draft).where(Draft.id == draft.id).values(**change))
        await session.commit()
    channel = ScriptedChannel()
    progress = await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert (progress.sent, progress.expired) == (0, 2) and channel.sent == []
    expired = (DeliveryStatus.EXPIRED, reason)
    assert await outcomes(sessionmaker) == {"a": expired, "b": expired}


def opening_in_2098(folder: Path) -> Path:
    """The example draft file, opening in 2098."""
    later = folder / "later.toml"
    later.write_text(
        EXAMPLE_DRAFT.read_text(encoding="utf-8").replace(
            "opens_at = 2026-01-01T08:00:00", "opens_at = 2098-06-01T08:00:00"
        ),
        encoding="utf-8",
    )
    return later


async def test_a_draft_is_not_delivered_before_it_opens(sessionmaker, service, tmp_path: Path):
    await subscribe(service, ["a"])
    draft = await add_draft(sessionmaker, opening_in_2098(tmp_path))
    assert draft.opens_at.year == 2098
    channel = ScriptedChannel()
    clock = Clock()
    worker = DeliveryWorker(sessionmaker, {"test": channel}, now=clock)
    assert (await worker.run_once()).sent == 0
    clock.now = draft.opens_at - timedelta(seconds=1)
    assert (await worker.run_once()).sent == 0
    assert await outcomes(sessionmaker) == {"a": (DeliveryStatus.PENDING, "")}
    clock.now = draft.opens_at
    assert (await worker.run_once()).sent == 1
    assert [user for user, _ in channel.sent] == ["a"]


async def test_retries_back_off_and_give_up_after_max_attempts(sessionmaker, service):
    await subscribe(service, ["flaky"])
    await add_draft(sessionmaker)
    config = DeliveryConfig(max_attempts=5, retry_base_seconds=30, retry_cap_seconds=100)
    channel = ScriptedChannel()
    channel.errors = {"flaky": [TemporaryFailure("500 Internal Server Error")] * 8}
    clock = Clock()
    worker = DeliveryWorker(sessionmaker, {"test": channel}, config, now=clock)
    for attempt in range(1, config.max_attempts + 1):
        progress = await worker.run_once()
        assert (progress.retried, progress.failed) == (
            (1, 0) if attempt < config.max_attempts else (0, 1)
        )
        row = (await rows_by_user(sessionmaker))["flaky"]
        assert row.attempts == attempt
        if attempt < config.max_attempts:
            # Exponential from the base, capped, with jitter: half to all of the step.
            step = min(config.retry_cap_seconds, config.retry_base_seconds * 2 ** (attempt - 1))
            wait = (row.not_before - clock.now).total_seconds()
            assert step / 2 <= wait <= step
        # The next try waits for the backoff: nothing is tried again at the same moment.
        assert await worker.run_once() == Progress()
        clock.advance(hours=1)
    assert await outcomes(sessionmaker) == {
        "flaky": (DeliveryStatus.FAILED, "500 Internal Server Error")
    }
    assert len(channel.tried) == config.max_attempts
    assert await worker.run_once() == Progress()  # and no more after giving up


async def test_a_retry_that_would_come_after_the_deadline_expires_the_row(sessionmaker, service):
    await subscribe(service, ["flaky"])
    draft = await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"flaky": [TemporaryFailure("connection reset")]}
    clock = Clock()
    clock.now = draft.deadline - timedelta(seconds=5)  # sooner than any backoff
    await DeliveryWorker(sessionmaker, {"test": channel}, now=clock).run_once()
    assert await outcomes(sessionmaker) == {
        "flaky": (DeliveryStatus.EXPIRED, "expires before a retry: connection reset")
    }


async def test_a_429_is_waited_out_then_everyone_is_sent_in_one_attempt(sessionmaker, service):
    await subscribe(service, ["slow", "next", "last"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"slow": [Throttled(0.3)]}
    clock = Clock()
    worker = DeliveryWorker(sessionmaker, {"test": channel}, now=clock)
    progress = await worker.run_once()
    # The first send of a pass goes alone, so the 429 stops the others before they start.
    assert channel.tried == ["slow"] and progress.deferred == 3
    assert channel.limiter.paused_for() > 0  # the limiter, shared with replies, waits too
    assert await worker.run_once() == Progress()  # held: nothing claimed
    await asyncio.sleep(0.35)
    clock.advance(seconds=1)
    assert (await worker.run_once()).sent == 3
    rows = await rows_by_user(sessionmaker)
    assert {user: (row.status, row.attempts) for user, row in rows.items()} == {
        user: (DeliveryStatus.SENT, 1) for user in ("slow", "next", "last")
    }


async def test_the_worker_logs_residents_by_pseudonym_only(sessionmaker, service, caplog):
    users = ["5550101", "5550102", "5550103"]
    await subscribe(service, users)
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {
        "5550101": [Unreachable("Forbidden: bot was blocked by the user")],
        "5550102": [PermanentFailure("Bad Request: chat not found")],
    }
    caplog.clear()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert chat_ref("test", "5550101") in logged and chat_ref("test", "5550102") in logged
    assert "555010" not in logged


@pytest.mark.allow_errors
async def test_an_adapter_bug_fails_one_send_not_the_batch(sessionmaker, service, caplog):
    await subscribe(service, ["ok", "buggy", "next"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"buggy": [KeyError("message_id")]}
    progress = await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert (progress.sent, progress.retried) == (2, 1)
    rows = await rows_by_user(sessionmaker)
    assert (rows["buggy"].status, rows["buggy"].attempts) == (DeliveryStatus.PENDING, 1)
    assert rows["buggy"].error == "KeyError: 'message_id'"
    assert "the test channel failed unexpectedly" in caplog.text
