"""Hiding a comment (abuse, spam, someone else's personal data, off topic) and showing it again.

A hidden comment stays in the database and in exports, marked with its reason; it is left
out of results, counts, answering and the synthesis (`SHOWN`); the resident is not told, and
their own "My comments" still lists it. None of these functions commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Comment
from storage.queries import affected
from storage.text import N_, clean_text

NOTE_LIMIT = 300  # Comment.hidden_note


class ModerationReason(StrEnum):
    ABUSIVE = "abusive"
    SPAM = "spam"
    PERSONAL_DATA = "personal_data"  # someone else's personal data
    OFF_TOPIC = "off_topic"


REASON_WORDS = {
    ModerationReason.ABUSIVE: N_("abusive"),
    ModerationReason.SPAM: N_("spam"),
    ModerationReason.PERSONAL_DATA: N_("someone else's personal data"),
    ModerationReason.OFF_TOPIC: N_("off topic"),
}

SHOWN: ColumnElement[bool] = Comment.hidden_at.is_(None)


def _comment(draft_id: int, comment_id: int, communes: Collection[int] | None) -> list:
    where = [Comment.id == comment_id, Comment.draft_id == draft_id]
    if communes is not None:
        where.append(Comment.commune_code.in_(sorted(communes)))
    return where


async def find_comment(session: AsyncSession, draft_id: int, comment_id: int,
                       communes: Collection[int] | None = None) -> Comment | None:
    """The draft's comment, if it is from one of `communes` (None: any)."""
    return await session.scalar(select(Comment).where(*_comment(draft_id, comment_id,
                                                                communes)))


async def hide_comment(session: AsyncSession, draft_id: int, comment_id: int,
                       reason: ModerationReason, note: str, now: datetime,
                       communes: Collection[int] | None = None) -> bool:
    """Hide the comment; False when it is not the draft's, not in `communes`, or hidden
    already (then its reason and note stay as they were)."""
    result = await session.execute(
        update(Comment).where(*_comment(draft_id, comment_id, communes), SHOWN)
        .values(hidden_reason=reason.value, hidden_note=clean_text(note)[:NOTE_LIMIT],
                hidden_at=now)
        .execution_options(synchronize_session=False))
    return affected(result) == 1


async def show_comment(session: AsyncSession, draft_id: int, comment_id: int,
                       communes: Collection[int] | None = None) -> bool:
    """Show a hidden comment again; False when it is not hidden (or not found)."""
    result = await session.execute(
        update(Comment).where(*_comment(draft_id, comment_id, communes), ~SHOWN)
        .values(hidden_reason="", hidden_note="", hidden_at=None)
        .execution_options(synchronize_session=False))
    return affected(result) == 1
