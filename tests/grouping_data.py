"""A small labelled set of comments on one draft (each text with the point it makes), and a
helper storing comments as the chat stores them (numbered within the draft)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Comment, Draft, utcnow
from tests.chat import BA_DINH, CAM_TU

# (point, text): texts of one point are duplicates up to diacritics, case, punctuation,
# spacing, word order, fillers and typos; different points must never share a group.
LABELLED: list[tuple[str, str]] = [
    ("morning", "Nên thu gom rác vào buổi sáng!"),
    ("morning", "nen thu gom rac buoi sang"),
    ("morning", "Buổi sáng nên thu gom rác"),
    ("morning", "NÊN   THU GOM RÁC VÀO BUỔI SÁNG nhé"),
    ("morning", "Nen thu gom rac vao buoi sangg"),
    ("not morning", "Không nên thu gom rác vào buổi sáng"),
    ("evening", "Nên thu gom rác vào buổi tối"),
    ("fee 10", "Phí vệ sinh 10 nghìn là hợp lý"),
    ("fee 10", "phi ve sinh 10 nghin la hop ly."),
    ("fee 20", "Phí vệ sinh 20 nghìn là hợp lý"),
    ("road", "Đường làng cần được sửa gấp"),
    ("road", "duong lang can sua gap"),
    ("road", "Đường  làng cần sửa gấp!!!"),
    ("lights", "Cần lắp thêm đèn đường ở thôn 3"),
    ("market", "Chợ xã nên mở cửa sớm hơn"),
]


def points_of(groups: Sequence[int]) -> dict[int, set[str]]:
    """group -> the points its members make (one each when the grouping is right)."""
    found: dict[int, set[str]] = {}
    for (point, _text), group in zip(LABELLED, groups, strict=True):
        found.setdefault(group, set()).add(point)
    return found


async def add_comments(sessionmaker: async_sessionmaker[AsyncSession], draft: Draft,
                       texts: Sequence[str], communes: Sequence[int] = (CAM_TU, BA_DINH)
                       ) -> list[int]:
    """Store the comments (numbered after the draft's last one); their ids, in order."""
    async with sessionmaker() as session, session.begin():
        stored = await session.get(Draft, draft.id)
        assert stored is not None
        rows = []
        for index, text in enumerate(texts):
            stored.comment_count += 1
            rows.append(Comment(draft_id=draft.id, number=stored.comment_count,
                                commune_code=communes[index % len(communes)], text=text,
                                created_at=utcnow()))
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def numbers_of(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    found = dict((await session.execute(
        select(Comment.id, Comment.number).where(Comment.id.in_(list(ids))))).all())
    return [found[comment_id] for comment_id in ids]
