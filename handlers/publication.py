"""Publishing a draft's response: every participant (who commented or voted) gets, through the
outbox, one message in their language with the overall response, the answers to their own
comments (quoting each receipt number) and their commune's figures.

One message per person (whichever of their linked chats they last used), queued once
(`response:<draft>:<person>`): publishing again queues only who was missed (a crash half-way,
a person who subscribed again), so it resumes. A person who stopped or erased their data
gets nothing. Messages wait for Zalo's messaging window as drafts do, for RESPONSE_LIFETIME.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.events import Reply
from handlers.i18n import Translator, translator
from handlers.payload import queue_reply
from storage import outbox
from storage.answers import HANDLING_WORDS, answer_counts, publication_of
from storage.charts import commune_name
from storage.drafts import DraftState, draft_state
from storage.export import receipt_number
from storage.models import (
    Comment,
    CommentAnswer,
    DeliveryStatus,
    Draft,
    Handling,
    Publication,
    Reach,
    Resident,
)
from storage.moderation import SHOWN
from storage.results import Figures, draft_results
from storage.text import clean_text

RESPONSE_LIFETIME = timedelta(days=30)
SUMMARY_LIMIT = 1500  # characters of the overall response (a chat message, with the answers)
LINK_LIMIT = 500  # Publication.link
ANSWERS_LISTED = 10  # a person's answers in the message; more are counted


RESPONSE_PREFIX = "response:"


def response_key(draft_id: int, person_id: int) -> str:
    return f"{RESPONSE_PREFIX}{draft_id}:{person_id}"


class PublishRefusal(StrEnum):
    NOT_CLOSED = "not_closed"  # comments may still come
    UNANSWERED = "unanswered"  # some comment has no answer yet
    NO_SUMMARY = "no_summary"
    TOO_LONG = "too_long"
    BAD_LINK = "bad_link"


class PublishRefused(ValueError):
    def __init__(self, refusal: PublishRefusal, count: int = 0) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.count = count


@dataclass(frozen=True)
class Recipient:
    person_id: int
    resident: Resident
    comments: list[tuple[int, Handling | None, str]]  # (number, handling, explanation)


async def recipients(session: AsyncSession, draft_id: int) -> list[Recipient]:
    """Every person still here who commented on or voted on the draft, each once, through
    their most recently used subscribed chat; persons who stopped (no subscribed chat) and
    erased ones (no person any more) are not among them."""
    persons = sorted({person for person in (await session.scalars(select(Reach.person_id).where(
        Reach.draft_id == draft_id, Reach.took_part_at.is_not(None)))).all()
        if person is not None})
    chats: dict[int, Resident] = {}
    for start in range(0, len(persons), 500):
        for resident in (await session.scalars(select(Resident).where(
                Resident.person_id.in_(persons[start:start + 500]),
                Resident.subscribed.is_(True)))).all():
            best = chats.get(resident.person_id)
            if best is None or _last_used(resident) > _last_used(best):
                chats[resident.person_id] = resident
    comments: dict[int, list[tuple[int, Handling | None, str]]] = defaultdict(list)
    rows = await session.execute(
        select(Resident.person_id, Comment.number, CommentAnswer.handling,
               CommentAnswer.explanation)
        .join(Resident, Resident.id == Comment.resident_id)
        .outerjoin(CommentAnswer, CommentAnswer.comment_id == Comment.id)
        .where(Comment.draft_id == draft_id, SHOWN).order_by(Comment.number))
    for person_id, number, handling, explanation in rows.all():
        comments[person_id].append((number, Handling(handling) if handling else None,
                                    explanation or ""))
    return [Recipient(person_id, chats[person_id], comments.get(person_id, []))
            for person_id in persons if person_id in chats]


NEVER = datetime.min.replace(tzinfo=UTC)


def _last_used(resident: Resident) -> tuple[datetime, int]:
    return resident.last_seen_at or NEVER, resident.id


def response_message(draft: Draft, publication: Publication, recipient: Recipient,
                     commune: Figures | None, t: Translator) -> Reply:
    """The message one participant gets."""
    lines = [t("📣 The response to the consultation on “{title}” ({issuer}):",
               title=draft.title, issuer=draft.issuer), "", publication.summary]
    if publication.link:
        lines.append(t("Full response: {link}", link=publication.link))
    shown = recipient.comments[:ANSWERS_LISTED]
    if shown:
        lines += ["", t("The answers to your comments:")]
    for number, handling, explanation in shown:
        words = t(HANDLING_WORDS[handling]) if handling else t("not answered")
        line = t("No. {number}: {handling}", number=receipt_number(draft.id, number),
                 handling=words)
        lines.append("• " + (f"{line}. {explanation}" if explanation else line))
    if len(recipient.comments) > len(shown):
        lines.append(t.plural("…and {count} more comment of yours.",
                              "…and {count} more comments of yours.",
                              len(recipient.comments) - len(shown)))
    if commune is not None and recipient.resident.commune_code is not None:
        lines += ["", t("In {commune}: {comments}, {votes}; {participants} took part.",
                        commune=commune_name(recipient.resident.commune_code, t),
                        comments=t.plural("{count} comment", "{count} comments",
                                          commune.comments),
                        votes=t.plural("{count} vote", "{count} votes", commune.voters),
                        participants=t.number(commune.participants))]
    lines += ["", t("Thank you for taking part.")]
    return Reply("\n".join(lines))


def checked_response(summary: str, link: str) -> tuple[str, str]:
    """The overall response's text and link as stored; PublishRefused for bad ones."""
    summary, link = clean_text(summary), clean_text(link)
    if not summary:
        raise PublishRefused(PublishRefusal.NO_SUMMARY)
    if len(summary) > SUMMARY_LIMIT or len(link) > LINK_LIMIT:
        raise PublishRefused(PublishRefusal.TOO_LONG)
    if link and (not link.startswith(("https://", "http://")) or any(
            char.isspace() for char in link)):
        raise PublishRefused(PublishRefusal.BAD_LINK)
    return summary, link


async def may_publish(session: AsyncSession, draft: Draft, now: datetime) -> None:
    """PublishRefused when the draft cannot be published yet: still open, or comments left
    unanswered."""
    if draft_state(draft, now) is not DraftState.CLOSED:
        raise PublishRefused(PublishRefusal.NOT_CLOSED)
    counts = await answer_counts(session, draft.id)
    if counts.unanswered:
        raise PublishRefused(PublishRefusal.UNANSWERED, counts.unanswered)


@dataclass(frozen=True)
class Published:
    publication: Publication
    first: bool  # published now (else it was already, and this resumed it)
    queued: int  # messages queued now
    recipients: int  # participants who get one (queued now or before)


async def publish(session: AsyncSession, draft: Draft, summary: str, link: str,
                  now: datetime) -> Published:
    """Publish the draft's response (or, published already, queue whoever was missed, with
    the stored text: `summary` and `link` are then not used). PublishRefused when it may
    not be."""
    await may_publish(session, draft, now)
    publication = await publication_of(session, draft.id)
    first = publication is None
    if publication is None:
        summary, link = checked_response(summary, link)
        publication = Publication(draft_id=draft.id, summary=summary, link=link,
                                  published_at=now)
        session.add(publication)
        await session.flush()
    results = await draft_results(session, draft.id)
    by_commune = {entry.code: entry.figures for entry in results.communes} if results else {}
    queued = 0
    found = await recipients(session, draft.id)
    for recipient in found:
        message = response_message(draft, publication, recipient,
                                   by_commune.get(recipient.resident.commune_code),
                                   translator(recipient.resident.language))
        queued += await queue_reply(session, recipient.resident,
                                    response_key(draft.id, recipient.person_id), message,
                                    now + RESPONSE_LIFETIME, now=now)
    return Published(publication, first, queued, len(found))


async def response_progress(session: AsyncSession, draft_id: int) -> dict[DeliveryStatus, int]:
    """The response's messages by status (sent, held for the window, waiting…)."""
    return await outbox.keyed_counts(session, f"{RESPONSE_PREFIX}{draft_id}:")
