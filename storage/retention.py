"""The retention period (YKIEN_RETENTION_MONTHS): what the bot keeps is not kept forever.

Once a draft has been closed for the period, its comments and votes lose every link to a
person (irreversibly: the link is set to nothing; the receipt numbers, texts and communes
stay, and exports show them as anonymous), and so do the records of whom it reached. A person
silent and unsubscribed for the period is erased as if they had typed /delete (an official
holding a role is not: roles end with `ykien role revoke`).

`purge` does not commit: `ykien purge --dry-run` rolls its transaction back, so it reports
exactly what a real run would do. `due` lets the daily run happen once a day, whichever
process gets there first.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import consent
from storage.models import (
    AppSetting,
    Comment,
    DataLink,
    DataRequest,
    Delivery,
    Draft,
    DraftMessage,
    DraftStatus,
    Person,
    Reach,
    Resident,
    RoleGrant,
    Vote,
)
from storage.personal_data import REQUEST_WINDOW
from storage.queries import affected, insert_unless_present, lock_person

DEFAULT_MONTHS = 24
EVERY = timedelta(days=1)
LAST_RUN = "retention_purged_at"  # app_settings: when the daily purge last ran (UTC, ISO)


@dataclass(frozen=True)
class Purged:
    """What one purge did (or, in a dry run, would do)."""

    drafts: int  # drafts whose comments or votes lost their link to persons
    comments: int
    votes: int
    persons: int  # persons erased
    chats: int  # their chats

    @property
    def anything(self) -> bool:
        return any((self.drafts, self.comments, self.votes, self.persons))


def months_before(now: datetime, months: int) -> datetime:
    """The same moment `months` calendar months earlier (the 31st becomes the month's last
    day)."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def closed_before(cutoff: datetime) -> Select[Any]:
    """The drafts closed (by an official, or by their deadline) at or before `cutoff`."""
    return select(Draft.id).where(or_(
        Draft.deadline <= cutoff,
        and_(Draft.status == DraftStatus.CLOSED, Draft.closed_at <= cutoff),
    ))


def _silent_persons(cutoff: datetime) -> Select[Any]:
    """Persons whose every chat is unsubscribed and silent since `cutoff`, holding no role."""
    active = exists().where(
        Resident.person_id == Person.id,
        or_(Resident.subscribed, func.coalesce(Resident.last_seen_at, Resident.created_at)
            > cutoff),
    )
    return select(Person.id).where(
        exists().where(Resident.person_id == Person.id), ~active,
        ~exists().where(RoleGrant.person_id == Person.id),
    ).order_by(Person.id)


async def purge(session: AsyncSession, now: datetime, months: int) -> Purged:
    """Apply the retention period of `months` as of `now`; the caller commits (or rolls
    back, for a dry run)."""
    cutoff = months_before(now, months)
    expired = closed_before(cutoff)
    linked_comments = and_(Comment.draft_id.in_(expired), Comment.resident_id.is_not(None))
    linked_votes = and_(Vote.draft_id.in_(expired), Vote.resident_id.is_not(None))
    drafts = await session.scalar(select(func.count()).select_from(
        select(Comment.draft_id).where(linked_comments)
        .union(select(Vote.draft_id).where(linked_votes)).subquery())) or 0
    comments = affected(await session.execute(
        update(Comment).where(linked_comments).values(resident_id=None)
        .execution_options(synchronize_session=False)))
    votes = affected(await session.execute(
        update(Vote).where(linked_votes).values(resident_id=None)
        .execution_options(synchronize_session=False)))
    await session.execute(
        update(Reach).where(Reach.draft_id.in_(expired), Reach.person_id.is_not(None))
        .values(person_id=None).execution_options(synchronize_session=False))
    # Which chat was shown, or sent, which draft: links too.
    await session.execute(delete(DraftMessage).where(DraftMessage.draft_id.in_(expired)))
    await session.execute(delete(Delivery).where(Delivery.draft_id.in_(expired)))
    # Data requests count for a day and download links live minutes: older ones are no use.
    await session.execute(delete(DataRequest).where(
        DataRequest.created_at <= now - REQUEST_WINDOW))
    await session.execute(delete(DataLink).where(DataLink.expires_at <= now))
    persons = chats = 0
    for person_id in (await session.scalars(_silent_persons(cutoff))).all():
        identities = (await session.scalars(
            select(Resident).where(Resident.person_id == person_id))).all()
        if not identities:
            continue
        # Held, then asked again: a person who wrote meanwhile is not erased.
        await lock_person(session, identities[0])
        if await session.scalar(_silent_persons(cutoff).where(Person.id == person_id)) is None:
            continue
        if await consent.erase_person(session, identities[0], now, len(identities),
                                      detail=consent.BY_RETENTION):
            persons += 1
            chats += len(identities)
    return Purged(drafts, comments, votes, persons, chats)


def _stamp(moment: datetime) -> str:
    """A time as text that sorts as the time does (UTC, to the second)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


async def due(session: AsyncSession, now: datetime) -> bool:
    """Whether the daily purge is due; if so, it is marked as run now (one process of many
    gets True). The caller commits with the purge."""
    await insert_unless_present(session, AppSetting, key=LAST_RUN, value="")
    claimed = await session.execute(
        update(AppSetting)
        .where(AppSetting.key == LAST_RUN, AppSetting.value <= _stamp(now - EVERY))
        .values(value=_stamp(now)).execution_options(synchronize_session=False))
    return affected(claimed) == 1
