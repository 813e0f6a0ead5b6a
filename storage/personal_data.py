"""What the bot holds about one person (the right of access: /mydata), read in one
transaction, and the one-time links that download it where a chat app takes no file.

Only the person's own rows are read, always through their person's chats: no other
person's data, no pseudonym and no database key (ids of rows, persons, chats) is part of
it. Draft numbers and receipt numbers are what the person was shown. Nothing commits.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import communes, sessions
from storage.consent import pseudonym
from storage.models import (
    VIETNAM,
    Comment,
    ConsentEvent,
    DataLink,
    DataRequest,
    Delivery,
    Draft,
    Person,
    PollOption,
    Reach,
    Resident,
    RoleGrant,
    Vote,
)

# Requests answered per person in a day; the next one is answered with when it can be.
REQUESTS_A_DAY = 3
REQUEST_WINDOW = timedelta(days=1)
LINK_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class Chat:
    channel: str
    chat_id: str  # the person's own account id on the chat app
    agreed_at: datetime
    notice_version: str  # the privacy notice version agreed to
    notice_shown: str  # the version last shown
    last_seen_at: datetime | None
    reachable: bool
    since: datetime
    # Text sent outside any draft, kept until they choose its draft or cancel ("" none).
    kept_aside: str


@dataclass(frozen=True)
class ConsentStep:
    event: str  # storage.models.ConsentEventKind
    channel: str
    notice_version: str
    at: datetime
    detail: str


@dataclass(frozen=True)
class CommentRecord:
    receipt: str  # "3-17": draft 3, its 17th comment
    draft: int
    draft_title: str
    at: datetime
    text: str
    forwarded: bool


@dataclass(frozen=True)
class VoteRecord:
    draft: int
    draft_title: str
    option: str
    cast_at: datetime
    changed_at: datetime


@dataclass(frozen=True)
class Reached:
    draft: int
    draft_title: str
    way: str  # storage.models.ReachWay
    at: datetime


@dataclass(frozen=True)
class Message:
    """A message the bot sent (or is to send) on its own initiative."""

    channel: str
    kind: str  # storage.models.DeliveryKind
    draft: int | None
    draft_title: str
    status: str  # storage.models.DeliveryStatus
    queued_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class RoleHeld:
    role: str
    scope: str  # all, province:CODE or commune:CODE
    granted_at: datetime


@dataclass(frozen=True)
class PersonalData:
    commune_code: int | None
    commune: str
    subscribed: bool
    language: str
    # Whom they comment for (a RespondentCategory, "" not said), and when they were asked.
    respondent_category: str
    category_asked_at: datetime | None
    chats: list[Chat]
    consents: list[ConsentStep]
    comments: list[CommentRecord]
    votes: list[VoteRecord]
    reached: list[Reached]
    messages: list[Message]
    roles: list[RoleHeld]


def _chats_of(person_id: int) -> Select[Any]:
    return select(Resident.id).where(Resident.person_id == person_id)


async def collect(session: AsyncSession, person_id: int) -> PersonalData | None:
    """Everything held about the person; None when they no longer exist."""
    residents = (await session.scalars(
        select(Resident).where(Resident.person_id == person_id)
        .order_by(Resident.created_at, Resident.id))).all()
    if not residents:
        return None
    first = residents[0]
    person = await session.get(Person, person_id)
    assert person is not None  # its chats were found
    chats = _chats_of(person_id)
    commune = communes.get_commune(first.commune_code) if first.commune_code else None
    consents = (await session.scalars(
        select(ConsentEvent).where(ConsentEvent.person == await pseudonym(session, person_id))
        .order_by(ConsentEvent.at, ConsentEvent.id))).all()
    comment_rows = (await session.execute(
        select(Comment, Draft.title).join(Draft, Draft.id == Comment.draft_id)
        .where(Comment.resident_id.in_(chats))
        .order_by(Comment.created_at, Comment.id))).all()
    vote_rows = (await session.execute(
        select(Vote, Draft.title, PollOption.label)
        .join(Draft, Draft.id == Vote.draft_id).join(PollOption, PollOption.id == Vote.option_id)
        .where(Vote.resident_id.in_(chats)).order_by(Vote.created_at, Vote.id))).all()
    reach_rows = (await session.execute(
        select(Reach, Draft.title).join(Draft, Draft.id == Reach.draft_id)
        .where(Reach.person_id == person_id).order_by(Reach.reached_at, Reach.id))).all()
    message_rows = (await session.execute(
        select(Delivery, Draft.title).outerjoin(Draft, Draft.id == Delivery.draft_id)
        .where(Delivery.resident_id.in_(chats)).order_by(Delivery.created_at, Delivery.id)
    )).all()
    grants = (await session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id)
        .order_by(RoleGrant.granted_at, RoleGrant.id))).all()
    return PersonalData(
        commune_code=first.commune_code,
        commune=commune.label if commune else "",
        subscribed=first.subscribed,
        language=first.language,
        respondent_category=person.respondent_category,
        category_asked_at=person.category_asked_at,
        chats=[Chat(r.channel, r.platform_id, r.consent_at, r.consent_version,
                    r.notice_version, r.last_seen_at, r.reachable, r.created_at, r.held_text)
               for r in residents],
        consents=[ConsentStep(c.event, c.channel, c.notice_version, c.at, c.detail)
                  for c in consents],
        comments=[CommentRecord(f"{c.draft_id}-{c.number}", c.draft_id, title, c.created_at,
                                c.text, c.forwarded) for c, title in comment_rows],
        votes=[VoteRecord(v.draft_id, title, label, v.created_at, v.updated_at)
               for v, title, label in vote_rows],
        reached=[Reached(r.draft_id, title, r.way, r.reached_at) for r, title in reach_rows],
        messages=[Message(d.channel, d.kind, d.draft_id, title or "", d.status, d.created_at,
                          d.sent_at) for d, title in message_rows],
        roles=[RoleHeld(g.role, g.scope_kind if g.scope_kind == "all"
                        else f"{g.scope_kind}:{g.scope_code}", g.granted_at) for g in grants],
    )


async def recent_requests(session: AsyncSession, person_id: int, now: datetime
                          ) -> list[datetime]:
    """When the person's requests that still count were made, oldest first."""
    return list((await session.scalars(
        select(DataRequest.created_at)
        .where(DataRequest.person_id == person_id,
               DataRequest.created_at > now - REQUEST_WINDOW)
        .order_by(DataRequest.created_at))).all())


async def record_request(session: AsyncSession, person_id: int, now: datetime) -> None:
    """Count a request; the person's requests that no longer count go."""
    await session.execute(delete(DataRequest).where(
        DataRequest.person_id == person_id, DataRequest.created_at <= now - REQUEST_WINDOW))
    session.add(DataRequest(person_id=person_id, created_at=now))


async def new_link(session: AsyncSession, person_id: int, now: datetime) -> str:
    """A one-time download token for the person's data (only its hash is stored)."""
    return await sessions.issue_token(session, DataLink, person_id, now, LINK_LIFETIME)


async def link_person(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Whose live download link this is, without using it up."""
    return await sessions.token_person(session, DataLink, token, now)


async def spend_link(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Use a download link: its person, or None when it is wrong, expired or used."""
    return await sessions.spend_token(session, DataLink, token, now)




def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(VIETNAM).isoformat(timespec="seconds")
    raise TypeError(f"not JSON: {type(value).__name__}")


def as_json(data: PersonalData, now: datetime) -> bytes:
    """The file of it all: UTF-8 JSON, times in Vietnam time (ISO 8601)."""
    document = {"made_at": now, "about": "Ý kiến: the data held about you", **asdict(data)}
    return json.dumps(document, default=_json_value, ensure_ascii=False, indent=2).encode()
