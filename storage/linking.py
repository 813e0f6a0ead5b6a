"""One person, several chat identities: link codes, wrong guesses, and joining two persons.

None of these commits: the caller owns the transaction (one per update).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from storage import reach
from storage.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    LinkCode,
    LinkGuess,
    Person,
    Resident,
    Vote,
)
from storage.queries import insert_unless_present, lock_person, still_open

# No 0/O, 1/I/L: read aloud or copied by eye from one phone to another without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LETTERS = frozenset(c for c in CODE_ALPHABET if c.isalpha())
CODE_DIGITS = frozenset(c for c in CODE_ALPHABET if c.isdigit())
CODE_LENGTH = 6
CODE_LIFETIME = timedelta(minutes=15)
GUESS_LIMIT = 5
GUESS_WINDOW = timedelta(hours=1)
# What the identities of one person share: set on one, set on every one.
SHARED = ("commune_code", "subscribed", "language")


def identities(person_id: int) -> Any:
    """The resident ids of one person (a subquery)."""
    return select(Resident.id).where(Resident.person_id == person_id)


def is_code_shaped(compact: str) -> bool:
    """Six characters of the alphabet with a letter and a digit: never a word, never a number."""
    return (
        len(compact) == CODE_LENGTH
        and all(c in CODE_ALPHABET for c in compact)
        and any(c in CODE_LETTERS for c in compact)
        and any(c in CODE_DIGITS for c in compact)
    )


def _random_code() -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if is_code_shaped(code):
            return code


async def new_code(session: AsyncSession, person_id: int, now: datetime) -> LinkCode:
    """A fresh code for the person; their earlier codes (and anyone's expired ones) go.

    Stored plain: it lives 15 minutes, works once, and guessing is limited; a hash of a
    6-character code would not resist anyone holding the table (30⁶ tries are seconds), and
    whoever reads the database sees more than a code could give them.
    """
    await session.execute(delete(LinkCode).where(
        (LinkCode.expires_at <= now) | (LinkCode.person_id == person_id)
    ))
    while True:  # a collision with a live code is rare: draw again
        code = _random_code()
        if await insert_unless_present(session, LinkCode, code=code, person_id=person_id,
                                       created_at=now, expires_at=now + CODE_LIFETIME):
            break
    found = await session.get(LinkCode, code)
    assert found is not None
    return found


async def find_code(session: AsyncSession, code: str) -> LinkCode | None:
    if not is_code_shaped(code):
        return None
    return await session.get(LinkCode, code)


async def use_code(session: AsyncSession, code: LinkCode) -> None:
    """A code works once (or is dropped once expired)."""
    await session.delete(code)
    await session.flush()


async def redeem(session: AsyncSession, joining: Resident, code: LinkCode, now: datetime
                 ) -> bool:
    """Use a live code: `joining`'s person becomes the code's person (see join).

    Both persons are held first, as a vote or an erasure holds its person, so none of them
    works on half a link. False, with nothing changed, when the code went since it was read
    (typed in another chat, or its person erased or linked elsewhere).
    """
    held = await lock_person(session, joining, code.person_id)
    with session.no_autoflush:
        still = await session.scalar(select(LinkCode.code).where(LinkCode.code == code.code))
    if still is None or code.person_id not in held:
        return False
    await use_code(session, code)
    if joining.person_id != code.person_id:  # not linked meanwhile
        await join(session, joining, code.person_id, now)
    return True


async def wrong_guesses(session: AsyncSession, person_id: int, now: datetime) -> list[datetime]:
    """When this person typed the wrong codes that still count, oldest first."""
    return list((await session.scalars(
        select(LinkGuess.created_at)
        .where(LinkGuess.person_id == person_id, LinkGuess.created_at > now - GUESS_WINDOW)
        .order_by(LinkGuess.created_at)
    )).all())


async def record_wrong_guess(session: AsyncSession, person_id: int, now: datetime) -> None:
    """Count a wrong code; the person's guesses that no longer count go."""
    await session.execute(delete(LinkGuess).where(
        LinkGuess.person_id == person_id, LinkGuess.created_at <= now - GUESS_WINDOW))
    session.add(LinkGuess(person_id=person_id, created_at=now))
    await session.flush()


async def identities_of(session: AsyncSession, person_id: int) -> Sequence[Resident]:
    """Every identity of a person, the most recently seen first."""
    return (await session.scalars(
        select(Resident).where(Resident.person_id == person_id)
        .order_by(Resident.last_seen_at.desc().nulls_last(), Resident.id.desc())
    )).all()


@dataclass(frozen=True)
class Settings:
    commune_code: int | None
    subscribed: bool
    language: str


def settings_of(resident: Resident) -> Settings:
    return Settings(resident.commune_code, resident.subscribed, resident.language)


async def share_settings(session: AsyncSession, resident: Resident) -> None:
    """Give the person's other identities this identity's commune, subscription and language."""
    await session.execute(
        update(Resident)
        .where(Resident.person_id == resident.person_id, Resident.id != resident.id)
        .values({name: getattr(resident, name) for name in SHARED})
        .execution_options(synchronize_session="fetch")
    )


async def join(session: AsyncSession, joining: Resident, person_id: int, now: datetime) -> None:
    """Make `joining`'s person (all its identities) part of `person_id`; the caller holds
    both persons (lock_person).

    They take that person's commune, subscription and language. On polls still open, when
    both had voted, the most recent vote stays. Each draft comes once: see _one_copy_each.
    """
    old_person = joining.person_id
    keeping = (await identities_of(session, person_id))[0]
    person = await _keep_category(session, old_person, person_id)
    await _keep_latest_votes(session, old_person, person_id, now)
    await reach.merge_reaches(session, old_person, person_id)  # each draft reached them once
    await _one_copy_each(session, old_person, person_id)
    for identity in await identities_of(session, old_person):
        identity.person_id = person_id
        if "person" not in inspect(identity).unloaded:  # the turn's chat, read with its person
            set_committed_value(identity, "person", person)
        for name in SHARED:
            setattr(identity, name, getattr(keeping, name))
    await session.flush()
    # Its codes and counted guesses go with it (ON DELETE CASCADE).
    await session.execute(delete(Person).where(Person.id == old_person))


async def _keep_category(session: AsyncSession, joining: int, kept: int) -> Person:
    """Whom the person answers for, as either of them said it (the kept person's first),
    and asked already if either was: the question is asked once per human being."""
    old, new = await session.get(Person, joining), await session.get(Person, kept)
    assert old is not None and new is not None  # both are held by the caller
    new.respondent_category = new.respondent_category or old.respondent_category
    new.category_asked_at = new.category_asked_at or old.category_asked_at
    return new


async def _one_copy_each(session: AsyncSession, joining: int, kept: int) -> None:
    """Each draft comes once: of the draft messages still waiting for either person (pending,
    or held for a messaging window), skip first the joining person's that the kept person
    is waiting for too, then any whose draft reached them already or is being sent to them
    (sent or sending, on either person's chats).

    In this order because a worker may claim a waiting copy meanwhile (PostgreSQL): a claim
    the first statement had to wait for is seen by the second, which then skips the other
    copy; the other way round both copies could go.
    """
    waiting = (DeliveryStatus.PENDING, DeliveryStatus.HELD)
    either = Delivery.resident_id.in_(identities(joining)) | Delivery.resident_id.in_(
        identities(kept))
    for whose, drafts, reason in (
        (Delivery.resident_id.in_(identities(joining)),
         select(Delivery.draft_id).where(Delivery.resident_id.in_(identities(kept)),
                                         Delivery.status.in_(waiting)),
         "linked: queued on another chat"),
        (either,
         select(Delivery.draft_id).where(
             either, Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.SENDING))),
         "linked: sent on another chat"),
    ):
        await session.execute(
            update(Delivery)
            .where(whose, Delivery.kind == DeliveryKind.DRAFT, Delivery.status.in_(waiting),
                   Delivery.draft_id.in_(drafts))
            .values(status=DeliveryStatus.SKIPPED, error=reason)
            .execution_options(synchronize_session=False)
        )


async def _keep_latest_votes(session: AsyncSession, one: int, other: int, now: datetime) -> None:
    votes = (await session.execute(
        select(Vote.id, Vote.draft_id)
        .where(Vote.resident_id.in_(identities(one)) | Vote.resident_id.in_(identities(other)),
               Vote.draft_id.in_(still_open(now)))
        .order_by(Vote.draft_id, Vote.updated_at.desc(), Vote.id.desc())
    )).all()
    seen: set[int] = set()
    older = []
    for vote_id, draft_id in votes:
        if draft_id in seen:
            older.append(vote_id)
        seen.add(draft_id)
    if older:
        await session.execute(delete(Vote).where(Vote.id.in_(older)))


async def person_count(session: AsyncSession, person_id: int) -> int:
    """How many identities the person has."""
    return await session.scalar(
        select(func.count()).select_from(Resident).where(Resident.person_id == person_id)
    ) or 0
