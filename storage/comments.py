"""A draft's comments as officials read them: newest first, a page at a time, searchable,
within the communes they may see. Residents appear only by their comment's receipt number
and commune: never by a platform id, a pseudonym or anything that points at the person.

A search matches whatever the case and the diacritics ("gio giac" finds "Giờ giấc", as people
often type without accents), which neither database does alike: the draft's comments are
streamed newest first and folded here (storage.text.fold), keeping only the page asked for,
so memory stays flat however many there are. A receipt number ("3-17") finds its comment.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.export import receipt_number
from storage.models import Comment, CommentSource
from storage.text import fold

STREAMED = 1000  # comments fetched at a time while searching


@dataclass(frozen=True)
class CommentRow:
    receipt: str  # "3-17": draft 3, its 17th comment, as the resident was told
    commune_code: int | None
    text: str
    created_at: datetime
    id: int = 0
    hidden_reason: str = ""  # why an official hid it ("" while shown: storage.moderation)
    hidden_note: str = ""
    source: str = CommentSource.CHAT  # a CommentSource: chat, or gathered offline


@dataclass(frozen=True)
class CommentsPage:
    rows: list[CommentRow]
    total: int  # comments matching, on every page


async def comments_page(
    session: AsyncSession, draft_id: int, communes: Collection[int] | None, search: str = "",
    offset: int = 0, limit: int = 20,
) -> CommentsPage:
    """The draft's comments from `communes` (None: all), newest first: those whose text
    holds `search` (folded) or whose receipt number it is."""
    where = [Comment.draft_id == draft_id]
    if communes is not None:
        where.append(Comment.commune_code.in_(sorted(communes)))
    query = (select(Comment.number, Comment.commune_code, Comment.text, Comment.created_at,
                    Comment.id, Comment.hidden_reason, Comment.hidden_note, Comment.source)
             .where(*where).order_by(Comment.created_at.desc(), Comment.id.desc()))
    wanted = fold(search)
    if not wanted:
        total = await session.scalar(select(func.count()).select_from(Comment).where(*where))
        found = await session.execute(query.offset(offset).limit(limit))
        return CommentsPage([_row(draft_id, *row) for row in found.all()], total or 0)
    number = _searched_number(search, draft_id)
    rows: list[CommentRow] = []
    total = 0
    stream = await session.stream(query.execution_options(yield_per=STREAMED))
    async for row in stream:
        if row.number != number and wanted not in fold(row.text):
            continue
        if offset <= total < offset + limit:
            rows.append(_row(draft_id, *row))
        total += 1
    return CommentsPage(rows, total)


def _row(draft_id: int, number: int, code: int | None, text: str, at: datetime,
         comment_id: int, reason: str, note: str, source: str) -> CommentRow:
    return CommentRow(receipt_number(draft_id, number), code, text, at, comment_id, reason,
                      note, source)


def _searched_number(search: str, draft_id: int) -> int | None:
    """The comment number in a search such as "3-17" (draft 3's receipts only)."""
    draft, dash, number = search.strip().rpartition("-")
    if not dash or draft.strip() != str(draft_id):
        return None
    number = number.strip()
    return int(number) if number.isascii() and number.isdigit() and len(number) < 10 else None
