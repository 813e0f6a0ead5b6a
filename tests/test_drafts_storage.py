"""Broadcasting a draft: each subscribed, reachable resident queued once, whoever broadcasts."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text, update

from handlers.events import Incoming, Kind, Reply
from handlers.payload import queue_reply
from storage.db import open_database
from storage.drafts import broadcast, list_drafts
from storage.models import Delivery, Draft, Resident, utcnow
from tests.conftest import add_draft


async def subscribe(service, *users: str) -> None:
    for user in users:
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="agree:en"))
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="commune:15148"))


async def queued(sessionmaker) -> dict[str, int]:
    """Deliveries per resident's platform id."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Resident.platform_id, func.count(Delivery.id))
            .join(Delivery, Delivery.resident_id == Resident.id)
            .group_by(Resident.platform_id)
        )
        return {platform_id: count for platform_id, count in rows}


async def test_two_broadcasts_at_once_queue_each_resident_once(
    sessionmaker, service, database_url
):
    draft = await add_draft(sessionmaker)  # broadcast once already: the next are re-broadcasts
    users = [f"u{i}" for i in range(5)]
    await subscribe(service, *users)
    # Two processes: each its own engine (one process holds one SQLite connection).
    async with open_database(database_url) as other_process, \
            sessionmaker() as first, other_process() as second:
        drafts = []
        for session in (first, second):
            await session.execute(text("SELECT 1"))  # both connected before either inserts
            loaded = await session.get(Draft, draft.id)
            assert loaded is not None
            drafts.append(loaded)
        now = utcnow()

        async def broadcast_and_commit(session, loaded) -> int:  # as `ykien draft broadcast`
            added = await broadcast(session, loaded, now)
            await session.commit()
            return added

        added = await asyncio.gather(
            broadcast_and_commit(first, drafts[0]), broadcast_and_commit(second, drafts[1])
        )
    assert sum(added) == len(users)
    assert await queued(sessionmaker) == dict.fromkeys(users, 1)


async def test_broadcast_skips_residents_who_stopped_or_cannot_be_reached(
    sessionmaker, service
):
    await subscribe(service, "listening", "stopped", "blocked")
    async with sessionmaker() as session:
        await session.execute(
            update(Resident).where(Resident.platform_id == "stopped").values(subscribed=False)
        )
        await session.execute(
            update(Resident).where(Resident.platform_id == "blocked").values(reachable=False)
        )
        await session.commit()
    await add_draft(sessionmaker)
    assert await queued(sessionmaker) == {"listening": 1}


async def test_draft_list_counts_the_broadcast_not_other_messages_about_the_draft(
    sessionmaker, service
):
    await subscribe(service, "a", "b")
    draft = await add_draft(sessionmaker)
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident).where(Resident.platform_id == "a"))
        assert resident is not None
        reminder = Reply("Còn 2 ngày để góp ý.", draft_id=draft.id)
        assert await queue_reply(session, resident, "reminder:a", reminder, None)
        await session.commit()
        [row] = await list_drafts(session, utcnow())
    assert (row.queued, row.sent) == (2, 0)
