"""Webhook updates kept in the database from receipt until handled (`InboundUpdate`).

A row is stored (and committed) before the platform gets its 200, so an acknowledged update
is never lost. Before handling, a process claims the row with a conditional UPDATE on its
`attempts` (compare and set): when several `ykien serve` share one database, exactly one of
them handles each row. `handled_at` is set once the update has been handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import InboundUpdate, utcnow
from storage.queries import affected, dialect_insert

# A row whose handling crashed this often is left alone (it would crash every process).
MAX_ATTEMPTS = 5

Sessionmaker = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class StoredUpdate:
    """A stored update, with the `attempts` value seen when it was read (what a claim expects)."""

    id: int
    channel: str
    chat_key: str
    payload: str
    attempts: int = 0


async def store(
    sessionmaker: Sessionmaker, channel: str, update_id: str, chat_key: str, payload: str
) -> StoredUpdate | None:
    """Record an update and commit; None when this update was stored before (a retry)."""
    async with sessionmaker() as session, session.begin():
        insert = dialect_insert(session)
        row_id = await session.scalar(
            insert(InboundUpdate)
            .values(
                channel=channel, update_id=update_id, chat_key=chat_key, payload=payload,
                received_at=utcnow(), attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["channel", "update_id"])
            .returning(InboundUpdate.id)
        )
    if row_id is None:
        return None
    return StoredUpdate(row_id, channel, chat_key, payload)


async def claim(sessionmaker: Sessionmaker, row: StoredUpdate) -> int | None:
    """Take the row for handling; the new attempt count, or None if another process has it."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            update(InboundUpdate)
            .where(
                InboundUpdate.id == row.id,
                InboundUpdate.handled_at.is_(None),
                InboundUpdate.attempts == row.attempts,
            )
            .values(attempts=row.attempts + 1)
        )
    return row.attempts + 1 if affected(result) == 1 else None


async def finish(sessionmaker: Sessionmaker, row_id: int, attempt: int) -> None:
    """Record that the claimed row was handled (unless another process claimed it since)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(InboundUpdate)
            .where(InboundUpdate.id == row_id, InboundUpdate.attempts == attempt)
            .values(handled_at=utcnow())
        )


async def unhandled(
    sessionmaker: Sessionmaker,
    channel: str,
    *,
    stale_after: timedelta,
    unclaimed: bool,
    limit: int,
    now: datetime | None = None,
) -> list[StoredUpdate]:
    """Rows never handled, oldest first: those received longer than `stale_after` ago (a
    process died holding them) and, with `unclaimed`, every row nobody has claimed yet."""
    cutoff = (now or utcnow()) - stale_after
    waiting = InboundUpdate.received_at < cutoff
    if unclaimed:
        waiting = or_(waiting, InboundUpdate.attempts == 0)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(
                InboundUpdate.id, InboundUpdate.chat_key, InboundUpdate.payload,
                InboundUpdate.attempts,
            )
            .where(
                InboundUpdate.handled_at.is_(None),
                InboundUpdate.channel == channel,
                InboundUpdate.attempts < MAX_ATTEMPTS,
                waiting,
            )
            .order_by(InboundUpdate.id)
            .limit(limit)
        )
        return [
            StoredUpdate(row_id, channel, chat_key, payload, attempts)
            for row_id, chat_key, payload, attempts in rows
        ]


async def database_reachable(sessionmaker: Sessionmaker) -> bool:
    """Whether a trivial query succeeds."""
    async with sessionmaker() as session:
        return await session.scalar(text("SELECT 1")) == 1
