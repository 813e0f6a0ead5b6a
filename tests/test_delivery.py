"""The outbox and the delivery worker, against a scripted channel, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.channel import PermanentFailure, TemporaryFailure, Throttled, Unreachable
from bot.delivery import MAX_ATTEMPTS, DeliveryWorker, Progress
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
from tests.chat import delivery_statuses
from tests.conftest import EXAMPLE_DRAFT, add_draft


class ScriptedChannel:
    """Records what it sends; raises the errors queued for a user."""

    name = "test"
    messages_per_second = None

    def __init__(self) -> None:
        self.sent: list[tuple[str, Outgoing]] = []
        self.errors: dict[str, list[Exception]] = {}

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, user_id: str, message: Outgoing) -> str:
        queued = self.errors.get(user_id)
        if queued:
            raise queued.pop(0)
        self.sent.append((user_id, message))
        return f"msg-{len(self.sent)}"


async def subscribe(service, users) -> None:
    for user in users:
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="agree:vi"))
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="commune:15148"))


class Clock:
    """The worker's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


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
    async with sessionmaker() as session:
        assert await broadcast(session, draft, utcnow()) == 0
    assert (await worker.run_once()).sent == 0
    assert len(channel.sent) == 3
    async with sessionmaker() as session:
        assert len((await session.scalars(select(DraftMessage))).all()) == 3


async def test_new_subscribers_are_added_by_a_second_broadcast(sessionmaker, service):
    await subscribe(service, ["a"])
    draft = await add_draft(sessionmaker)
    await subscribe(service, ["late"])
    async with sessionmaker() as session:
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


async def test_a_draft_is_not_delivered_before_it_opens(sessionmaker, service, tmp_path: Path):
    await subscribe(service, ["a"])
    later = tmp_path / "later.toml"
    later.write_text(
        EXAMPLE_DRAFT.read_text(encoding="utf-8").replace(
            "opens_at = 2026-01-01T08:00:00", "opens_at = 2098-06-01T08:00:00"
        ),
        encoding="utf-8",
    )
    draft = await add_draft(sessionmaker, later)
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


async def test_retries_give_up_after_max_attempts(sessionmaker, service):
    await subscribe(service, ["flaky"])
    await add_draft(sessionmaker)
    channel = ScriptedChannel()
    channel.errors = {"flaky": [TemporaryFailure("connection reset")] * (MAX_ATTEMPTS + 3)}
    clock = Clock()
    worker = DeliveryWorker(sessionmaker, {"test": channel}, now=clock)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        progress = await worker.run_once()
        assert (progress.retried, progress.failed) == (
            (1, 0) if attempt < MAX_ATTEMPTS else (0, 1)
        )
        # The next try waits for the backoff: nothing is tried again at the same moment.
        assert await worker.run_once() == Progress()
        clock.now += timedelta(hours=1)
    assert await outcomes(sessionmaker) == {"flaky": (DeliveryStatus.FAILED, "connection reset")}
    assert len(channel.errors["flaky"]) == 3  # exactly MAX_ATTEMPTS sends were tried
    assert await worker.run_once() == Progress()  # and no more after giving up


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
