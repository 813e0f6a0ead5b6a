"""The outbox and the delivery worker, against a scripted channel, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.channel import PermanentFailure, TemporaryFailure, Throttled, Unreachable
from bot.delivery import DeliveryWorker
from handlers.events import Incoming, Kind, Outgoing, Reply
from storage.drafts import broadcast
from storage.models import Delivery, DeliveryStatus, DraftMessage, Resident, utcnow
from tests.conftest import add_draft


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


async def statuses(sessionmaker) -> dict[str, str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Resident.platform_id, Delivery.status).join(
                Resident, Resident.id == Delivery.resident_id
            )
        )
        return dict(rows.all())


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
    assert await statuses(sessionmaker) == {
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
    assert set((await statuses(sessionmaker)).values()) == {DeliveryStatus.PENDING}
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
