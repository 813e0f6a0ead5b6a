"""Creating drafts, listing them, closing them and queueing their broadcast in the outbox.

None of these commits: the caller (a command, a test) owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import CursorResult, String, delete, func, literal, select, update
from sqlalchemy import cast as sa_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import outbox

# Kept importable from here, where drafts name their communes.
from storage.communes import CODE_DIGITS as CODE_DIGITS
from storage.communes import commune_code_text as commune_code_text
from storage.models import (
    Comment,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Draft,
    DraftCommune,
    DraftStatus,
    IssuerLevel,
    PollOption,
    Reach,
    Resident,
    Vote,
)
from storage.queries import affected, dialect_insert
from storage.text import N_

NOT_STATED = ""  # an issuer level (or a respondent category) not given
# The level of a draft's issuing body, as the form, the draft's page and the report say it.
LEVEL_WORDS = {
    IssuerLevel.NATIONAL: N_("national"),
    IssuerLevel.PROVINCIAL: N_("provincial"),
    IssuerLevel.COMMUNE: N_("commune"),
    NOT_STATED: N_("level not stated"),
}

REMINDER_PREFIX = "reminder:"  # the outbox keys of reminders (handlers.reminders)

@dataclass
class DraftSpec:
    """Everything needed to create a draft; communes already resolved to codes."""

    title: str
    issuer: str
    summary: str
    link: str
    scope: str
    commune_codes: list[int]
    opens_at: datetime
    deadline: datetime
    poll_question: str = ""
    poll_options: list[str] = field(default_factory=list)
    issuer_level: str = ""  # an IssuerLevel, "" not stated

    def to_draft(self) -> Draft:
        return Draft(
            title=self.title,
            issuer=self.issuer,
            issuer_level=self.issuer_level,
            summary=self.summary,
            link=self.link,
            scope=self.scope,
            opens_at=self.opens_at,
            deadline=self.deadline,
            status=DraftStatus.DRAFT,
            poll_question=self.poll_question,
            options=[
                PollOption(position=i, label=label) for i, label in enumerate(self.poll_options)
            ],
        )


async def create_draft(session: AsyncSession, spec: DraftSpec) -> Draft:
    draft = spec.to_draft()
    session.add(draft)
    await session.flush()
    codes = sorted(set(spec.commune_codes))
    session.add_all(DraftCommune(draft_id=draft.id, commune_code=code) for code in codes)
    await session.flush()
    return draft


async def rewrite_draft(session: AsyncSession, draft: Draft, spec: DraftSpec) -> None:
    """Replace every field of a draft not broadcast yet (nobody has seen it, voted on its
    options or been queued for it) with `spec`'s."""
    if draft.status != DraftStatus.DRAFT:
        raise ValueError(f"draft {draft.id} was broadcast: only its deadline may change")
    fresh = spec.to_draft()
    for name in ("title", "issuer", "issuer_level", "summary", "link", "scope", "opens_at",
                 "deadline", "poll_question"):
        setattr(draft, name, getattr(fresh, name))
    draft.options = fresh.options  # the old options go (delete-orphan)
    await session.execute(delete(DraftCommune).where(DraftCommune.draft_id == draft.id))
    session.add_all(DraftCommune(draft_id=draft.id, commune_code=code)
                    for code in sorted(set(spec.commune_codes)))
    await session.flush()


async def change_deadline(session: AsyncSession, draft: Draft, deadline: datetime) -> int:
    """Move a draft's deadline; its broadcast messages not sent yet (due, being sent or held
    for a messaging window) now expire at the new one. Returns how many messages moved."""
    draft.deadline = deadline
    result = await session.execute(
        update(Delivery)
        .where(*outbox.broadcast_rows(draft.id),
               Delivery.status.in_((*outbox.WAITING, DeliveryStatus.SENDING)))
        .values(expires_at=deadline)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return affected(result)


class DraftState(StrEnum):
    """Where a draft stands at a given moment, as officials see it."""

    NOT_SENT = "not_sent"  # created, never broadcast
    SCHEDULED = "scheduled"  # broadcast, but its opening time has not come
    OPEN = "open"
    CLOSED = "closed"  # closed early, or its deadline has passed


# What each state is called where officials read it (translated by the caller).
STATE_WORDS = {
    DraftState.NOT_SENT: N_("not sent yet"),
    DraftState.SCHEDULED: N_("scheduled"),
    DraftState.OPEN: N_("open"),
    DraftState.CLOSED: N_("closed"),
}


def draft_state(draft: Draft, now: datetime) -> DraftState:
    """The effective state: the stored status alone says "open" long after the deadline."""
    if draft.status == DraftStatus.CLOSED or draft.deadline <= now:
        return DraftState.CLOSED
    if draft.status == DraftStatus.DRAFT:
        return DraftState.NOT_SENT
    return DraftState.SCHEDULED if draft.opens_at > now else DraftState.OPEN


@dataclass
class DraftRow:
    draft: Draft
    state: DraftState
    communes: int
    queued: int
    sent: int
    comments: int
    reached: int = 0  # persons it reached however it did: broadcast, shown, or taking part
    votes: int = 0


async def list_drafts(session: AsyncSession, now: datetime) -> list[DraftRow]:
    """Every draft with its effective state and numbers, newest first."""
    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    broadcast_rows = outbox.broadcast_rows(Draft.id)

    rows = await session.execute(
        select(
            Draft,
            count(DraftCommune, DraftCommune.draft_id == Draft.id),
            count(Delivery, *broadcast_rows),
            count(Delivery, *broadcast_rows, Delivery.status == DeliveryStatus.SENT),
            count(Comment, Comment.draft_id == Draft.id, Comment.hidden_at.is_(None)),
            count(Reach, Reach.draft_id == Draft.id),
            count(Vote, Vote.draft_id == Draft.id),
        ).order_by(Draft.id.desc())
    )
    return [
        DraftRow(draft, draft_state(draft, now), communes, queued, sent, comments, reached,
                 votes)
        for draft, communes, queued, sent, comments, reached, votes in rows.all()
    ]


async def close_draft(session: AsyncSession, draft: Draft, now: datetime) -> bool:
    """Close a draft before its deadline; False when it was already closed.

    Its messages not sent yet expire at once, those held for a messaging window too, so
    nothing counts them as still to come.
    """
    if draft.status == DraftStatus.CLOSED:
        return False
    draft.status = DraftStatus.CLOSED
    draft.closed_at = now
    await outbox.expire_waiting(session, draft.id, outbox.why_expired(draft, now))
    # Reminders to comment are pointless once comments are closed (handlers.reminders).
    await outbox.expire_texts(session, draft.id, REMINDER_PREFIX, outbox.why_expired(draft, now))
    return True


async def broadcast(session: AsyncSession, draft: Draft, now: datetime) -> int:
    """Open the draft and queue one delivery per subscribed, reachable person it targets.

    A person with several linked chats gets it once, on the chat they used last (of those
    subscribed and reachable). Rows already queued are left alone, so broadcasting again
    only adds new subscribers; two broadcasts at once (two officials, two terminals) queue
    each person once. Returns how many deliveries were added.
    """
    if draft.status == DraftStatus.DRAFT:
        draft.status = DraftStatus.OPEN
        draft.broadcast_at = now
    send_from = max(draft.opens_at, now)
    # Each person's chats in the target communes, the one used last ranked first.
    ranked = (
        select(
            Resident.id.label("resident_id"),
            Resident.person_id.label("person_id"),
            Resident.channel.label("channel"),
            func.row_number().over(
                partition_by=Resident.person_id,
                order_by=(Resident.last_seen_at.desc().nulls_last(), Resident.id.desc()),
            ).label("rank"),
        )
        .join(DraftCommune, DraftCommune.commune_code == Resident.commune_code)
        .where(
            DraftCommune.draft_id == draft.id,
            Resident.subscribed.is_(True),
            Resident.reachable.is_(True),
        )
        .subquery()
    )
    # Persons already sent to on one of their chats (perhaps before two chats were linked):
    # an uncorrelated subquery, which PostgreSQL reads once into a hash. Correlated (NOT
    # EXISTS), it walked the deliveries index for every resident, rows this very statement
    # adds included (without statistics on a new table: 9 s for 20,000 residents, not 0.4).
    sibling = aliased(Resident)
    reached = (
        select(sibling.person_id)
        .join(Delivery, Delivery.resident_id == sibling.id)
        .where(Delivery.draft_id == draft.id)
    )
    already = ranked.c.person_id.in_(reached)
    # The key is per person and built in SQL, so a broadcast to 100,000 residents stays one
    # statement. Keys queued before persons existed read "draft:<draft>:<resident>"; the
    # migration that made persons (0004) gave each existing resident a person with the same
    # number, so those keys are still the keys of the same people.
    dedup_key = literal(f"draft:{draft.id}:", String).concat(sa_cast(ranked.c.person_id, String))
    recipients = (
        select(
            literal(DeliveryKind.DRAFT.value),
            dedup_key,
            literal(draft.id),
            ranked.c.resident_id,
            ranked.c.channel,
            literal(""),
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            literal(send_from, type_=Delivery.not_before.type),
            literal(""),
            literal(draft.deadline, type_=Delivery.expires_at.type),
            literal(now, type_=Delivery.created_at.type),
            literal(""),
        )
        .where(
            ranked.c.rank == 1,
            ~already,  # cheap filter; the conflict clause settles a concurrent broadcast
        )
    )
    # The NOT EXISTS above cannot see rows another transaction has not committed yet:
    # without ON CONFLICT the second of two concurrent broadcasts fails on the unique key.
    insert = dialect_insert(session)
    statement = (
        insert(Delivery)
        .from_select(
            ["kind", "dedup_key", "draft_id", "resident_id", "channel", "payload", "status",
             "attempts", "not_before", "lease_token", "expires_at", "created_at", "error"],
            recipients,
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
    )
    result = cast(CursorResult, await session.execute(statement))
    return result.rowcount or 0
