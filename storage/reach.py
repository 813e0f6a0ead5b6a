"""Reaches: the first time a draft reached a person, however it did, and whether they took part.

Written in the transaction of what caused them: the worker recording a broadcast message as
sent, a conversation turn showing open drafts, a comment or a vote. One row per draft and
person (the first reach wins; a later one changes nothing), so counting rows counts persons.

None of these commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy import delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, DeliveryKind, Reach, ReachWay, Resident
from storage.queries import dialect_insert, table_of

# The unique key: one row per draft and person.
_KEY = ["draft_id", "person_id"]


async def record_shown(
    session: AsyncSession, draft_ids: Sequence[int], resident: Resident, way: ReachWay,
    now: datetime,
) -> None:
    """The drafts were shown to the resident in the conversation (subscribing, /drafts)."""
    if not draft_ids:
        return
    insert = dialect_insert(session)
    with session.no_autoflush:  # the resident's pending changes go in the turn's one UPDATE
        await session.execute(insert(Reach).on_conflict_do_nothing(index_elements=_KEY), [
            {"draft_id": draft_id, "person_id": resident.person_id, "way": way.value,
             "channel": resident.channel, "commune_code": resident.commune_code,
             "reached_at": now}
            for draft_id in draft_ids
        ])


async def record_sent(session: AsyncSession, delivery_ids: Sequence[int], now: datetime) -> None:
    """These outbox rows were just recorded as sent: their drafts reached their persons.

    One INSERT … SELECT for a whole batch of outcomes; rows that are not a draft's broadcast
    message (ready TEXT messages) are left out by the query.
    """
    if not delivery_ids:
        return
    sent = (
        select(Delivery.draft_id, Resident.person_id, literal(ReachWay.BROADCAST.value),
               Delivery.channel, Resident.commune_code, literal(now, Reach.reached_at.type))
        .join(Resident, Resident.id == Delivery.resident_id)
        .where(Delivery.id.in_(delivery_ids), Delivery.kind == DeliveryKind.DRAFT,
               Delivery.draft_id.is_not(None))
    )
    insert = dialect_insert(session)
    await session.execute(
        insert(Reach)
        .from_select(["draft_id", "person_id", "way", "channel", "commune_code", "reached_at"],
                     sent)
        .on_conflict_do_nothing(index_elements=_KEY)
    )


def _taking_part(dialect: ModuleType) -> Any:
    statement = dialect.insert(_REACHES)
    return statement.on_conflict_do_update(
        index_elements=_KEY,
        set_={"took_part_at": statement.excluded.took_part_at},
        where=_REACHES.c.took_part_at.is_(None),
    )


# Built once (every comment and vote runs it): see storage.queries._FIRST_TIME.
_REACHES = table_of(Reach)
_TAKING_PART = {"postgresql": _taking_part(postgresql), "sqlite": _taking_part(sqlite)}


async def record_part(session: AsyncSession, draft_id: int, resident: Resident,
                      now: datetime) -> None:
    """The resident commented on or voted on the draft: their reach is marked as taking
    part (the first time only). Without an earlier reach, this is their reach."""
    with session.no_autoflush:  # the resident's pending changes go in the turn's one UPDATE
        await session.execute(_TAKING_PART[session.get_bind().dialect.name], {
            "draft_id": draft_id, "person_id": resident.person_id,
            "way": ReachWay.TOOK_PART.value, "channel": resident.channel,
            "commune_code": resident.commune_code, "reached_at": now, "took_part_at": now,
        })


async def merge_reaches(session: AsyncSession, old_person: int, person_id: int) -> None:
    """`old_person` is joining `person_id` (linked chats): their reaches become one person's.

    Where both were reached by a draft, the earlier reach stays (with the earlier taking
    part of the two), so the draft still counts one person.
    """
    rows = (await session.scalars(
        select(Reach).where(Reach.person_id.in_((old_person, person_id)))
        .order_by(Reach.draft_id, Reach.reached_at, Reach.id)
    )).all()
    kept: dict[int, Reach] = {}
    dropped: list[int] = []
    for reach in rows:
        first = kept.setdefault(reach.draft_id, reach)
        if first is reach:
            continue
        dropped.append(reach.id)
        if reach.took_part_at is not None and (
            first.took_part_at is None or reach.took_part_at < first.took_part_at
        ):
            first.took_part_at = reach.took_part_at
    if dropped:
        await session.execute(delete(Reach).where(Reach.id.in_(dropped)))
    await session.flush()  # the kept rows' new times, before they change person
    await session.execute(
        update(Reach).where(Reach.person_id == old_person).values(person_id=person_id)
        .execution_options(synchronize_session="fetch")
    )
