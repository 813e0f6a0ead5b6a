"""The consent record: every agreement, withdrawal and erasure of a chat, kept as proof for
an inspection (`ykien consent export`).

Rows name the person by a keyed pseudonym ("C-3f9a1c02d4e5"), never by an id, so they survive
the person's erasure and then point at no one. The pseudonym is made from the person's id
and creation time: SQLite gives a deleted person's id to the next one, who must not inherit
the erased person's record. Nothing here commits: an event is written in the transaction of
what it records.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.export import neutralise
from storage.keys import AUDIT_KEY, generated_key
from storage.models import VIETNAM, ConsentEvent, ConsentEventKind, Person, Resident
from storage.queries import erase_resident, lock_person
from storage.text import N_

# How each event is called where people read the record (translated by the caller).
EVENT_WORDS = {
    ConsentEventKind.AGREED: N_("agreed"),
    ConsentEventKind.WITHDRAWN: N_("stopped receiving drafts"),
    ConsentEventKind.ERASED: N_("data erased"),
}
COLUMNS = (N_("Person"), N_("Event"), N_("Chat app"), N_("Notice version"), N_("Time"),
           N_("Detail"))
# An erasure the person did not ask for: the retention period's.
BY_RETENTION = "retention"
# Agreements recorded from the residents' table when the record began (migration 0011).
BEFORE_RECORD = "before 0011"
DETAIL_WORDS = {BY_RETENTION: N_("by the retention period"),
                BEFORE_RECORD: N_("given before the consent record began")}


async def pseudonym(session: AsyncSession, person_id: int) -> str:
    """The person as the consent record names them (the audit log's key, another text)."""
    created = await session.scalar(select(Person.created_at).where(Person.id == person_id))
    assert created is not None, "a person who does not exist has no consent"
    key = await generated_key(session, AUDIT_KEY)
    return "C-" + hmac.digest(key, person_text(person_id, created).encode(),
                              hashlib.sha256)[:6].hex()


def person_text(person_id: int, created: datetime) -> str:
    """What the pseudonym is computed from (migration 0011 computes the same)."""
    return f"consent:{person_id}:{created.astimezone(UTC).isoformat()}"


async def record(session: AsyncSession, resident: Resident, event: ConsentEventKind,
                 now: datetime, *, detail: str = "") -> None:
    """One event of the resident's chat; an agreement names the notice version agreed to.

    Written with the transaction's other changes: the resident's row is not flushed here
    (a turn writes it once).
    """
    with session.no_autoflush:
        person = await pseudonym(session, resident.person_id)
    session.add(ConsentEvent(
        person=person, channel=resident.channel, event=event,
        notice_version=resident.consent_version if event is ConsentEventKind.AGREED else "",
        at=now, detail=detail,
    ))


async def erase_person(session: AsyncSession, resident: Resident, now: datetime, chats: int,
                       *, detail: str = "") -> bool:
    """`queries.erase_resident`, with an erasure event for each chat erased; False, with
    nothing erased or recorded, when the person has another number of chats by now."""
    await lock_person(session, resident)  # the chats read here are the ones erased
    identities = (await session.scalars(
        select(Resident).where(Resident.person_id == resident.person_id)
        .order_by(Resident.id))).all()
    if len(identities) != chats:
        return False
    for identity in identities:
        await record(session, identity, ConsentEventKind.ERASED, now, detail=detail)
    erased = await erase_resident(session, resident, now, chats)
    assert erased  # the person is held: nothing was linked since they were counted
    return True


async def events(session: AsyncSession, since: datetime | None = None
                 ) -> Sequence[ConsentEvent]:
    """The events from `since` (all if None), oldest first."""
    query = select(ConsentEvent).order_by(ConsentEvent.at, ConsentEvent.id)
    if since is not None:
        query = query.where(ConsentEvent.at >= since)
    return (await session.scalars(query)).all()


async def export_csv(session: AsyncSession, out: TextIO, since: datetime | None = None,
                     translate: Callable[[str], str] = str) -> int:
    """The events as CSV (open `out` with encoding utf-8-sig), oldest first: the person's
    pseudonym, the event, the chat app, the notice version agreed to, the time (Vietnam
    time, ISO 8601) and why (an erasure by the retention period). Returns the rows."""
    writer = csv.writer(out)
    writer.writerow([translate(column) for column in COLUMNS])
    rows = await events(session, since)
    for row in rows:
        event = (translate(EVENT_WORDS[ConsentEventKind(row.event)])
                 if row.event in ConsentEventKind.__members__.values() else row.event)
        writer.writerow([neutralise(cell) for cell in (
            row.person, event, row.channel, row.notice_version,
            row.at.astimezone(VIETNAM).isoformat(timespec="seconds"),
            translate(DETAIL_WORDS[row.detail]) if row.detail in DETAIL_WORDS else row.detail)])
    return len(rows)
