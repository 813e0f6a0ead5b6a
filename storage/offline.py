"""Comments gathered offline (a village meeting, a phone call, a letter) and entered by staff.

Such a comment is a Comment row with no resident (and no chat to answer it in): channel "",
source one of OFFLINE_SOURCES, the commune it came from, and whom the person answered for
when staff know it. It takes the draft's next receipt number like a chat comment, and counts
in the comments of the results (storage.results), the answers and the synthesis; as it is no
person's, it adds no reach and no participant, and publication sends it nothing.

It may be entered after the deadline (a meeting's comments are typed in later), but it must
have been received while the draft was open: from the day it opened to the day it closed.

None of these functions commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import VIETNAM
from storage.audit import AuditAction
from storage.communes import commune_code_text
from storage.export import receipt_number
from storage.models import (
    OFFLINE_SOURCES,
    AuditEntry,
    CommentSource,
    Draft,
    DraftStatus,
    RespondentCategory,
)
from storage.queries import COMMENT_LIMIT, add_numbered_comment
from storage.roles import draft_communes
from storage.text import N_, clean_text

# A comment received on an earlier day is dated at noon of that day (within the draft's
# period): the day is what staff know, not the hour.
RECEIVED_HOUR = time(12)
# A one-time form key (the web form's): URL-safe characters, as secrets.token_urlsafe makes.
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
FORM_MARK = "; form:"  # how the audit row of a comment names the form that recorded it

SOURCE_WORDS = {
    CommentSource.CHAT: N_("chat"),
    CommentSource.MEETING: N_("meeting"),
    CommentSource.PHONE: N_("phone"),
    CommentSource.PAPER: N_("paper"),
    CommentSource.OTHER: N_("other offline"),
}
CATEGORY_WORDS = {
    RespondentCategory.INDIVIDUAL: N_("individual"),
    RespondentCategory.ORGANISATION: N_("organisation"),
    RespondentCategory.BUSINESS: N_("business"),
}


class OfflineProblem(StrEnum):
    NOT_BROADCAST = "not_broadcast"  # the draft was never broadcast: nobody could comment
    COMMUNE = "commune"  # not one of the draft's communes
    SOURCE = "source"  # not an offline source
    CATEGORY = "category"  # not a respondent category
    EMPTY = "empty"  # nothing left once cleaned
    TOO_LONG = "too_long"  # longer than a chat comment may be
    BEFORE_OPENING = "before_opening"  # received before the draft opened
    AFTER_CLOSING = "after_closing"  # received after its deadline (or its early closing)
    FUTURE = "future"  # a day that has not come yet


class OfflineRefused(ValueError):
    """Every problem of the comment at once (a form shows them all)."""

    def __init__(self, problems: list[OfflineProblem]) -> None:
        super().__init__(", ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class OfflineComment:
    """A checked offline comment, ready to store."""

    draft_id: int
    commune_code: int
    source: CommentSource
    text: str
    category: RespondentCategory | None
    received_at: datetime


def closing_time(draft: Draft) -> datetime:
    """When comments stopped: the deadline, or an earlier closing by hand."""
    if draft.status == DraftStatus.CLOSED and draft.closed_at is not None:
        return min(draft.closed_at, draft.deadline)
    return draft.deadline


def _local_day(moment: datetime) -> date:
    return moment.astimezone(VIETNAM).date()


async def check_offline_comment(
    session: AsyncSession, draft: Draft, commune_code: int | None, source: str, text: str,
    category: str = "", received: date | None = None, *, now: datetime,
) -> OfflineComment:
    """The comment as it is stored, or OfflineRefused with every problem.

    `source` and `category` are as typed ("" category: not known); `received` is the day it
    was received, Vietnam time (None: now); `text` is cleaned as a chat comment is.
    """
    problems: list[OfflineProblem] = []
    if draft.status == DraftStatus.DRAFT:
        problems.append(OfflineProblem.NOT_BROADCAST)
    if commune_code is None or commune_code not in (await draft_communes(session, draft.id)
                                                    or ()):
        problems.append(OfflineProblem.COMMUNE)
    chosen = next((each for each in OFFLINE_SOURCES if each.value == source), None)
    if chosen is None:
        problems.append(OfflineProblem.SOURCE)
    whom: RespondentCategory | None = None
    if category:
        try:
            whom = RespondentCategory(category)
        except ValueError:
            problems.append(OfflineProblem.CATEGORY)
    cleaned = clean_text(text)
    if not cleaned:
        problems.append(OfflineProblem.EMPTY)
    elif len(cleaned) > COMMENT_LIMIT:
        problems.append(OfflineProblem.TOO_LONG)
    closing = closing_time(draft)
    if received is None:
        at = now
        if now < draft.opens_at:
            problems.append(OfflineProblem.BEFORE_OPENING)
        elif now > closing:
            problems.append(OfflineProblem.AFTER_CLOSING)
    else:
        at = now if received == _local_day(now) else datetime.combine(
            received, RECEIVED_HOUR, VIETNAM)
        at = max(draft.opens_at, min(at, closing))
        if received > _local_day(now):
            problems.append(OfflineProblem.FUTURE)
        elif received < _local_day(draft.opens_at):
            problems.append(OfflineProblem.BEFORE_OPENING)
        elif received > _local_day(closing):
            problems.append(OfflineProblem.AFTER_CLOSING)
    if problems:
        raise OfflineRefused(problems)
    assert chosen is not None and commune_code is not None
    return OfflineComment(draft.id, commune_code, chosen, cleaned, whom, at)


async def record_offline_comment(session: AsyncSession, comment: OfflineComment) -> str:
    """Store the checked comment with the draft's next receipt number; its receipt ("3-17").

    Last step of the transaction but the audit row: the draft's counter stays locked until
    the commit."""
    _, number = await add_numbered_comment(session, comment.draft_id, {
        "resident_id": None, "commune_code": comment.commune_code, "text": comment.text,
        "forwarded": False, "created_at": comment.received_at, "hidden_reason": "",
        "hidden_note": "", "channel": "", "source": comment.source.value,
        "respondent_category": comment.category.value if comment.category else "",
    })
    return receipt_number(comment.draft_id, number)


def audit_detail(comment: OfflineComment, receipt: str, form_key: str = "") -> str:
    """What the audit row of an offline comment says: its receipt, source and commune, and
    the one-time key of the form that sent it (so the same form sent again is recognised)."""
    detail = f"{receipt}; {comment.source}; commune:{commune_code_text(comment.commune_code)}"
    return detail + (FORM_MARK + form_key if form_key else "")


async def hold_draft(session: AsyncSession, draft_id: int) -> None:
    """Hold the draft's row until the commit, so that two sendings of one form take turns:
    the second then sees the first's audit row (`recorded_by_form`). PostgreSQL: the row
    lock; SQLite: a write takes the database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(Draft.id).where(Draft.id == draft_id).with_for_update())
    else:
        await session.execute(
            update(Draft).where(Draft.id == draft_id)
            .values(comment_count=Draft.comment_count)
            .execution_options(synchronize_session=False))


async def recorded_by_form(session: AsyncSession, draft_id: int, form_key: str) -> str | None:
    """The receipt of the comment a form with this one-time key already recorded on the draft
    (its audit row says so), or None. Call after `hold_draft`."""
    detail = await session.scalar(
        select(AuditEntry.detail).where(
            AuditEntry.draft_id == draft_id, AuditEntry.action == AuditAction.COMMENT_ADDED,
            AuditEntry.detail.endswith(FORM_MARK + form_key, autoescape=True)).limit(1))
    return detail.split(";", 1)[0] if detail is not None else None
