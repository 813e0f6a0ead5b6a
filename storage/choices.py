"""The numbered choices last shown in a chat (handlers.numbering), kept per chat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatChoices
from storage.queries import affected, dialect_insert


async def load(
    session: AsyncSession, channel: str, platform_id: str
) -> tuple[str, datetime] | None:
    """The stored numbering as JSON and when it last changed, or None when there is none."""
    row = (await session.execute(
        select(ChatChoices.choices, ChatChoices.updated_at).where(
            ChatChoices.channel == channel, ChatChoices.platform_id == platform_id
        )
    )).one_or_none()
    return (row[0], row[1]) if row else None


async def save(
    session: AsyncSession, channel: str, platform_id: str, choices: str, now: datetime
) -> None:
    insert = dialect_insert(session)
    await session.execute(
        insert(ChatChoices)
        .values(channel=channel, platform_id=platform_id, choices=choices, updated_at=now)
        .on_conflict_do_update(
            index_elements=["channel", "platform_id"],
            set_={"choices": choices, "updated_at": now},
        )
    )


async def forget(session: AsyncSession, channel: str, platform_id: str) -> None:
    """Drop a chat's numbering (the person declined, or erased their data)."""
    await session.execute(
        delete(ChatChoices).where(
            ChatChoices.channel == channel, ChatChoices.platform_id == platform_id
        )
    )


async def forget_before(session: AsyncSession, before: datetime) -> int:
    """Drop numberings nobody has used since `before` (housekeeping)."""
    result = await session.execute(delete(ChatChoices).where(ChatChoices.updated_at < before))
    return affected(result)
