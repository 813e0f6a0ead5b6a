"""`ykien draft` controls of a broadcast, run as an official would, beside a delivery worker.

Each command is a separate process on the same database; the worker runs in the test.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.channels.channel import PermanentFailure
from bot.config import DeliveryConfig
from bot.sending.worker import DeliveryWorker
from storage.db import open_database
from storage.models import Delivery, DeliveryStatus, Draft, utcnow
from tests import ykien_process
from tests.conftest import EXAMPLE_DRAFT, cli_environment
from tests.sending.test_delivery import (
    ScriptedChannel,
    add_residents,
    subscribe,
    until,
)


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def ykien(tmp_path, database_url):
    """Run `ykien …` without blocking the event loop (a worker may run in the test)."""
    env = cli_environment(database_url)

    async def run(*args: str, check: bool = True) -> Done:
        process = await ykien_process.start(
            args, stdin=ykien_process.DEVNULL, stdout=ykien_process.PIPE,
            stderr=ykien_process.PIPE, env=env, cwd=tmp_path,
        )
        # A command that waits for a bot that is not there never returns: the bound fails it.
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        done = Done(process.returncode or 0, out.decode(), err.decode())
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


async def test_pause_resume_status_retry_and_cancel(ykien, service, sessionmaker):
    await subscribe(service, ["ok1", "ok2", "bad"])
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    done = await ykien("draft", "broadcast", "1", "--no-wait")
    assert "Draft no. 1: 3 new messages queued." in done.stdout
    assert "ykien draft status 1" in done.stdout

    status = (await ykien("draft", "status", "1")).stdout
    assert "0 sent, 0 failed, 0 unreachable, 0 skipped, 0 expired, 0 cancelled, 3 remaining" \
        in status
    assert "Time left: unknown" in status  # the test channel has no pace, nothing sent yet

    assert "Paused draft no. 1" in (await ykien("draft", "pause", "1")).stdout
    assert "already paused" in (await ykien("draft", "pause", "1")).stdout
    assert "[open, paused]" in (await ykien("draft", "list")).stdout
    assert "Paused: its messages wait until: ykien draft resume 1" in (
        await ykien("draft", "status", "1")).stdout
    paused = await ykien("draft", "broadcast", "1")  # does not wait for a paused draft
    assert "is paused" in paused.stdout and "0 new messages queued" in paused.stdout
    channel = ScriptedChannel()
    channel.errors = {"bad": [PermanentFailure("Bad Request: chat not found")]}
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    assert (await worker.run_once()).sent == 0
    assert "Resumed draft no. 1" in (await ykien("draft", "resume", "1")).stdout
    assert "is not paused" in (await ykien("draft", "resume", "1")).stdout

    progress = await worker.run_once()
    assert (progress.sent, progress.failed) == (2, 1)
    assert "2 sent, 1 failed" in (await ykien("draft", "status", "1")).stdout
    retried = await ykien("draft", "retry", "1")
    assert "Draft no. 1: 1 failed message queued again." in retried.stdout

    cancelled = await ykien("draft", "cancel", "1")
    assert "Cancelled draft no. 1: 1 message not sent yet will not be sent." in cancelled.stdout
    assert "nothing was cancelled" in (await ykien("draft", "cancel", "1")).stdout
    again = await ykien("draft", "broadcast", "1", "--no-wait")
    assert "0 new messages queued" in again.stdout
    assert "1 cancelled message stays cancelled" in again.stdout
    assert (await worker.run_once()).sent == 0
    resent = await ykien("draft", "broadcast", "1", "--no-wait", "--resend-cancelled")
    assert "1 cancelled message queued again." in resent.stdout
    assert (await worker.run_once()).sent == 1
    assert [user for user, _ in channel.sent] == ["ok1", "ok2", "bad"]


async def test_controls_say_what_they_cannot_do(ykien):
    for command in ("status", "pause", "resume", "cancel", "retry", "broadcast"):
        done = await ykien("draft", command, "99", check=False)
        assert done.returncode == 1 and "There is no draft no. 99." in done.stderr
    for command in ("pause", "retry"):
        bad = await ykien("draft", command, "one", check=False)
        assert bad.returncode == 2 and "invalid int value" in bad.stderr
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "close", "1")
    for command in ("pause", "retry"):
        done = await ykien("draft", command, "1", check=False)
        assert done.returncode == 1
        assert "Draft no. 1 is closed: none of its messages are sent any more." in done.stderr


async def test_broadcast_with_no_bot_running_says_who_will_send(ykien, service):
    await subscribe(service, ["a"])
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    done = await ykien("draft", "broadcast", "1")
    assert "1 new message queued" in done.stdout
    assert "No bot is sending right now" in done.stdout
    assert "ykien run, ykien serve or ykien worker" in done.stdout
    assert "ykien console delivers" in done.stdout  # the README's next step, said so


async def test_broadcast_shows_the_progress_until_everyone_is_sent(
    ykien, service, sessionmaker
):
    await subscribe(service, ["a", "b", "c"])
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    channel = ScriptedChannel()
    stop = asyncio.Event()
    running = asyncio.create_task(
        DeliveryWorker(sessionmaker, {"test": channel}).run(stop, idle_seconds=0.2)
    )
    try:
        done = await ykien("draft", "broadcast", "1")
    finally:
        stop.set()
        await running
    lines = done.stdout.splitlines()
    assert lines[0] == "Draft no. 1: 3 new messages queued."
    assert lines[-2] == (
        "Draft no. 1: 3 sent, 0 failed, 0 unreachable, 0 skipped, 0 expired, 0 cancelled, "
        "0 remaining"
    )
    assert lines[-1] == "Nothing left to send."
    assert len(channel.sent) == 3


async def test_status_estimates_the_time_left_from_the_channel_pace(ykien, sessionmaker):
    await add_residents(sessionmaker, 90, channel="telegram")
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    status = (await ykien("draft", "status", "1")).stdout
    assert "90 remaining" in status
    assert "Time left: about 3 seconds at the channel's pace." in status  # 90 at 30/s


def announced(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    assert found, (pattern, output)
    return int(found.group(1).replace(",", ""))


async def test_cancel_on_two_servers_reports_what_it_cancelled_and_what_went(
    ykien, sessionmaker, database_url
):
    """Two servers are sending a broadcast (each a batch claimed, four sends under way) when
    an official cancels it: the cancel announces exactly the messages never sent, and those
    that went anyway, once the servers have settled the messages they held."""
    total = 1200  # more than the two batches the servers claim
    await add_residents(sessionmaker, total)
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    config = DeliveryConfig(concurrency=4)
    async with open_database(database_url) as other_server:
        channels = [ScriptedChannel(), ScriptedChannel()]
        for channel in channels:
            channel.gate, channel.free = asyncio.Event(), 2
        sending = [
            asyncio.create_task(DeliveryWorker(factory, {"test": channel}, config).run_once())
            for factory, channel in zip((sessionmaker, other_server), channels, strict=True)
        ]
        await until(lambda: all(c.in_flight == config.concurrency for c in channels))
        cancelling = asyncio.create_task(ykien("draft", "cancel", "1"))
        async with asyncio.timeout(60):
            while not await rows_with(sessionmaker, DeliveryStatus.CANCELLED):
                await asyncio.sleep(0.05)
        for channel in channels:  # the sends under way finish, after the cancel
            channel.gate.set()
        await asyncio.gather(*sending)
        done = await cancelling
    sent = await rows_with(sessionmaker, DeliveryStatus.SENT)
    cancelled = await rows_with(sessionmaker, DeliveryStatus.CANCELLED)
    assert sum(len(c.sent) for c in channels) == sent and sent + cancelled == total
    # Exactly what never went is announced cancelled (the old count took in the messages
    # being sent); what went is announced apart: all sent but the few sent before the cancel.
    assert announced(r"(\d[\d,]*) messages? not sent yet will not be sent",
                     done.stdout) == cancelled, done.stdout
    went = announced(r"(\d[\d,]*) messages? (?:was|were) already being sent by a running "
                     r"bot, and went", done.stdout)
    assert went > 0 and sent - 2 * 2 <= went <= sent, done.stdout


async def test_cancel_while_a_silent_bot_holds_messages_says_they_may_still_go(
    ykien, service, sessionmaker
):
    """A bot claimed the messages and went quiet (stopped, or stuck): cancel does not wait
    for its lease to run out, and says those may still go."""
    await subscribe(service, ["a", "b", "c"])
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    async with sessionmaker() as session, session.begin():
        first = await session.scalar(select(func.min(Delivery.id)))
        await session.execute(update(Delivery).where(Delivery.id > first).values(
            status=DeliveryStatus.SENDING, lease_token="silent",
            not_before=utcnow() + timedelta(minutes=2)))
    done = await ykien("draft", "cancel", "1")
    assert "Cancelled draft no. 1: 3 messages not sent yet will not be sent." in done.stdout
    assert "2 of them were being sent by a bot that has not finished with them: they may " \
        "still go (ykien draft status 1 then counts them as sent)." in done.stdout


async def rows_with(sessionmaker, status: DeliveryStatus) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == status))


async def test_status_during_an_outage_promises_no_time(ykien, sessionmaker):
    """Telegram is down: the worker holds the channel instead of trying everyone, and
    `draft status` says so rather than "about 20 seconds left" at the configured 30/s (one
    batch of 500 was given back for later, 100 messages are due)."""
    await add_residents(sessionmaker, 600, channel="telegram")
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    channel = ScriptedChannel()
    channel.down_until = utcnow() + timedelta(hours=1)
    await DeliveryWorker(sessionmaker, {"telegram": channel}).run_once()
    assert channel.sent == [] and channel.tried  # it tried, and holds the channel now
    status = (await ykien("draft", "status", "1")).stdout
    assert "Time left: about" not in status, status
    assert "telegram is not answering" in status and "503 Service Unavailable" in status
    assert "tries again at" in status


async def test_status_of_a_draft_past_its_deadline_promises_nothing(ykien, sessionmaker):
    """Rows due later (a retry, a pause) of a draft whose deadline passed expire unsent."""
    await add_residents(sessionmaker, 3)
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Delivery).values(
            not_before=utcnow() + timedelta(minutes=10)))
        await session.execute(update(Draft).values(deadline=utcnow() - timedelta(minutes=1)))
    status = (await ykien("draft", "status", "1")).stdout
    assert "[closed]" in status
    assert "due from" not in status and "Time left" not in status, status
    assert "3 messages not sent will not be sent: the deadline has passed." in status


async def test_status_says_when_the_deadline_comes_before_the_last_message(
    ykien, sessionmaker
):
    await add_residents(sessionmaker, 2100, channel="telegram")  # 70 s at 30/s
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    assert "Time left: about 2 minutes at the channel's pace.\n" in (
        await ykien("draft", "status", "1")).stdout
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Draft).values(deadline=utcnow() + timedelta(seconds=50)))
    status = (await ykien("draft", "status", "1")).stdout
    assert "Time left: about 2 minutes at the channel's pace, but the deadline comes first" \
        in status, status


async def test_broadcast_progress_during_an_outage_says_so(ykien, sessionmaker):
    await add_residents(sessionmaker, 600, channel="telegram")
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    channel = ScriptedChannel()
    channel.down_until = utcnow() + timedelta(hours=1)
    stop = asyncio.Event()
    running = asyncio.create_task(DeliveryWorker(sessionmaker, {"telegram": channel}).run(
        stop, idle_seconds=0.2))
    try:
        done = await ykien("draft", "broadcast", "1")
    finally:
        stop.set()
        await running
    last = done.stdout.splitlines()[-1]
    assert "telegram is not answering (503 Service Unavailable)" in last, done.stdout
