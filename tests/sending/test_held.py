"""Messages held for a channel's messaging window (Zalo OA: 7 days since the resident last
wrote), through the conversation and the real worker, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.sending.worker import DeliveryWorker
from handlers.events import Incoming, Kind, Reply
from storage import outbox
from storage.drafts import broadcast
from storage.models import Delivery, DeliveryStatus, Draft, Resident, utcnow
from tests.chat import make_draft
from tests.sending.test_delivery import WindowedChannel, subscribe


async def queue(sessionmaker, title: str) -> Draft:
    draft = await make_draft(sessionmaker, title)
    async with sessionmaker() as session, session.begin():
        await broadcast(session, await session.get(Draft, draft.id), utcnow())
    return draft


async def test_writing_releases_the_held_messages_and_nothing_already_done(
    sessionmaker, service
):
    """Without the "held" filter, writing would queue again every message of the resident:
    the draft they already received, the one an official cancelled."""
    await subscribe(service, ["a"])
    channel = WindowedChannel()
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    received = await queue(sessionmaker, "Received before")
    assert (await worker.run_once()).sent == 1
    cancelled = await queue(sessionmaker, "Cancelled")
    async with sessionmaker() as session, session.begin():
        await outbox.cancel(session, cancelled.id, utcnow())
        await session.execute(update(Resident).values(last_seen_at=utcnow() - timedelta(days=8)))
    held = await queue(sessionmaker, "Held for the window")
    assert (await worker.run_once()).held == 1

    await service.handle(Incoming("test", "a", Kind.TEXT, text="/help"))  # the window opens
    assert (await worker.run_once()).sent == 1
    titles = [message.text.splitlines()[0] for _, message in channel.sent
              if isinstance(message, Reply)]
    assert titles == ["📢 Received before", "📢 Held for the window"]
    async with sessionmaker() as session:
        statuses = dict((await session.execute(select(Delivery.draft_id, Delivery.status))).all())
    assert statuses == {received.id: DeliveryStatus.SENT, cancelled.id: DeliveryStatus.CANCELLED,
                        held.id: DeliveryStatus.SENT}
