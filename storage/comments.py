"""A draft's comments as officials read them: newest first, a page at a time, searchable,
within the communes they may see. Residents appear only by their comment's receipt number
and commune: never by a platform id, a pseudonym or anything that points at the person.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Comment

RECEIPT_SEARCH = "-"  # "3-17": a receipt number, searched as such


@dataclass(frozen=True)
class CommentRow:
    receipt: str  # "3-17": draft 3, its 17th comment, as the resident was told
    commune_code: int | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class CommentsPage:
    rows: list[CommentRow]
    total: int  # comments matching, on every page


async def comments_page(
    session: AsyncSession, draft_id: int, communes: Collection[int] | None, search: str = "",
    offset: int = 0, limit: int = 20,
) -> CommentsPage:
    """The draft's comments from `communes` (None: all), newest first: those containing
    `search` (any case) or whose receipt number it is."""
    where = [Comment.draft_id == draft_id]
    if communes is not None:
        where.append(Comment.commune_code.in_(sorted(communes)))
    search = search.strip()
    if search:
        matches = [Comment.text.icontains(search, autoescape=True)]
        number = _receipt_number(search, draft_id)
        if number is not None:
            matches.append(Comment.number == number)
        where.append(or_(*matches))
    total = await session.scalar(select(func.count()).select_from(Comment).where(*where)) or 0
    found = await session.execute(
        select(Comment.number, Comment.commune_code, Comment.text, Comment.created_at)
        .where(*where).order_by(Comment.created_at.desc(), Comment.id.desc())
        .offset(offset).limit(limit))
    return CommentsPage([CommentRow(f"{draft_id}-{number}", code, text, at)
                         for number, code, text, at in found.all()], total)


def _receipt_number(search: str, draft_id: int) -> int | None:
    """The comment number in "3-17" (draft 3's receipts only), or in a bare "17"."""
    draft, dash, number = search.rpartition(RECEIPT_SEARCH)
    if dash and draft.strip() != str(draft_id):
        return None
    number = number.strip()
    return int(number) if number.isascii() and number.isdigit() and len(number) < 10 else None
