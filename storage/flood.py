"""Flood control: how many comments one person may leave a minute and an hour, counted from
the comments stored (so every process and every linked chat of the person counts alike).

Nothing is kept about the refused ones: only, on the person, until when they were told they
must wait, so that they are told once rather than at every message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Comment, Person, Resident

# A person's latest comments, newest first: built once (every comment runs it; see
# storage.queries._FIRST_TIME).
_COMMENTS, _RESIDENTS = Comment.__table__, Resident.__table__
_LATEST = (
    select(_COMMENTS.c.created_at)
    .join(_RESIDENTS, _RESIDENTS.c.id == _COMMENTS.c.resident_id)
    .where(_RESIDENTS.c.person_id == bindparam("person"),
           _COMMENTS.c.created_at > bindparam("since"))
    .order_by(_COMMENTS.c.created_at.desc())
    .limit(bindparam("most"))
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CommentLimits:
    """YKIEN_COMMENTS_PER_MINUTE and YKIEN_COMMENTS_PER_HOUR."""

    per_minute: int = 5
    per_hour: int = 30


DEFAULT_LIMITS = CommentLimits()


async def comments_allowed_from(
    session: AsyncSession, person_id: int, limits: CommentLimits, now: datetime
) -> datetime | None:
    """None when the person may comment now; else the moment they may again (when enough of
    their recent comments have left the minute's or the hour's window)."""
    # No autoflush: the resident's pending changes count for nothing here, and are written
    # once, by the caller's commit, rather than twice.
    with session.no_autoflush:
        latest = (await session.scalars(_LATEST, {
            "person": person_id, "since": now - HOUR,
            "most": max(limits.per_hour, limits.per_minute)})).all()
    waits = []
    if len(latest) >= limits.per_hour:
        waits.append(latest[limits.per_hour - 1] + HOUR)
    last_minute = [at for at in latest if at > now - MINUTE]
    if len(last_minute) >= limits.per_minute:
        waits.append(last_minute[limits.per_minute - 1] + MINUTE)
    return max(waits) if waits else None


async def first_refusal(session: AsyncSession, person_id: int, until: datetime,
                        now: datetime) -> bool:
    """Whether this is the first comment refused since the person reached the limit (then
    they are told until when, once), noting that they have been told."""
    person = await session.get(Person, person_id)
    if person is None:
        return False
    told = person.comments_refused_until
    if told is not None and told > now:
        person.comments_refused_until = max(told, until)
        return False
    person.comments_refused_until = until
    return True
