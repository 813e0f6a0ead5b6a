"""A known year for the annual report (storage.report), with its figures worked out by hand.

Written straight into the tables: drafts with their broadcast times and levels, comments and
votes with the channel, respondent category and source recorded when written, reaches,
answers and a publication. (Comments gathered offline and the categories asked in the chat
have public paths of their own in other branches; here the rows are what those paths write.)

Cẩm Tú (Thanh Hóa) and Ba Đình (Hà Nội); the period is 2026 in Vietnam time.

| draft | level       | targets          | broadcast (UTC)        | in 2026 | state             |
|-------|-------------|------------------|------------------------|---------|-------------------|
| D1    | national    | Cẩm Tú, Ba Đình  | 2026-03-01 02:00       | yes     | closed, published |
| D2    | provincial  | Cẩm Tú           | 2026-06-01 02:00       | yes     | closed, no answer |
| D3    | commune     | Ba Đình          | 2026-12-31 16:59 (23:59 VN) | yes | open            |
| D4    | commune     | Ba Đình          | 2026-12-31 17:00 (00:00 VN 2027) | no | open        |
| D5    | not stated  | Cẩm Tú           | 2025-12-31 16:00 (23:00 VN 2025) | no | closed      |
| D6    | commune     | Cẩm Tú           | never broadcast        | no      | draft             |

Comments (channel / category / source; "" not said):
- D1 Cẩm Tú: telegram individual ×2, telegram organisation, zalo business, a hidden
  telegram individual (answered before it was hidden), meeting "" ×2, paper "".
- D1 Ba Đình: zalo individual, zalo "", phone "".
- D2 Cẩm Tú: telegram individual.  D3 Ba Đình: zalobot organisation.
- D4 Ba Đình ×5 and D5 Cẩm Tú ×2: outside the period.
Answered: two of D1 Cẩm Tú (a telegram one and a meeting one), one of D1 Ba Đình, and the
hidden one (which does not count).
Votes: D1 Cẩm Tú telegram individual, telegram "", zalo individual, meeting ""; D1 Ba Đình
zalo business; D2 Cẩm Tú telegram individual; D4 Ba Đình ×2 (outside).
Reaches: D1 Cẩm Tú 4, Ba Đình 3, one without a commune; D2 Cẩm Tú 2; D3 Ba Đình 1; D4 Ba
Đình 5 (outside).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.drafts import DraftSpec, create_draft
from storage.models import (
    Comment,
    CommentAnswer,
    Publication,
    Reach,
    Vote,
)
from tests.chat import BA_DINH, CAM_TU

THANH_HOA = 38  # Cẩm Tú's province
HA_NOI = 1

# Expected figures: (total, Cẩm Tú, Ba Đình).
EXPECTED = {
    "Drafts communicated": (3, 2, 2),
    "Drafts communicated: national": (1, 1, 1),
    "Drafts communicated: provincial": (1, 1, 0),
    "Drafts communicated: commune": (1, 0, 1),
    "Drafts communicated: level not stated": (0, 0, 0),
    "Residents reached (per draft)": (11, 6, 4),
    "Comments received": (13, 9, 4),
    "Comments received: of which hidden": (1, 1, 0),
    "Comments received: Telegram": (5, 5, 0),
    "Comments received: Zalo OA": (3, 1, 2),
    "Comments received: Zalo Bot": (1, 0, 1),
    "Comments received: of which gathered offline": (4, 3, 1),
    "Comments received: village meetings": (2, 2, 0),
    "Comments received: by phone": (1, 0, 1),
    "Comments received: on paper": (1, 1, 0),
    "Comments received: other offline": (0, 0, 0),
    "Comments received: individuals": (5, 4, 1),
    "Comments received: organisations": (2, 1, 1),
    "Comments received: businesses": (1, 1, 0),
    "Comments received: category not said": (5, 3, 2),
    "Votes received": (6, 5, 1),
    "Votes received: Telegram": (3, 3, 0),
    "Votes received: Zalo OA": (2, 1, 1),
    "Votes received: Zalo Bot": (0, 0, 0),
    "Votes received: of which gathered offline": (1, 1, 0),
    "Votes received: village meetings": (1, 1, 0),
    "Votes received: by phone": (0, 0, 0),
    "Votes received: on paper": (0, 0, 0),
    "Votes received: other offline": (0, 0, 0),
    "Votes received: individuals": (3, 3, 0),
    "Votes received: organisations": (0, 0, 0),
    "Votes received: businesses": (1, 0, 1),
    "Votes received: category not said": (2, 2, 0),
    "Comments answered": (3, 2, 1),
    "Responses published": (1, 1, 1),
    "Drafts closed": (2, 2, 1),
    "Closed drafts with a published response": ("50%", "50%", "100%"),
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def _draft(session, title: str, level: str, communes: tuple[int, ...],
                 broadcast: str | None, status: str):
    broadcast_at = at(broadcast) if broadcast else None
    spec = DraftSpec(
        title=title, issuer="UBND", summary="Tóm tắt.", link="", scope="test",
        commune_codes=list(communes), opens_at=broadcast_at or at("2026-01-01T00:00:00"),
        deadline=(broadcast_at or at("2026-01-01T00:00:00")) + timedelta(days=20),
        poll_question="Đồng ý?", poll_options=["Đồng ý", "Không"], issuer_level=level)
    draft = await create_draft(session, spec)
    draft.status = status
    draft.broadcast_at = broadcast_at
    if status == "closed":
        draft.closed_at = draft.deadline
    await session.flush()
    return draft


class _Writer:
    def __init__(self, session) -> None:
        self.session = session
        self.numbers: dict[int, int] = {}

    async def comment(self, draft, commune: int | None, channel: str = "telegram",
                      category: str = "", source: str = "chat", *, hidden: bool = False,
                      answered: bool = False) -> Comment:
        number = self.numbers[draft.id] = self.numbers.get(draft.id, 0) + 1
        when = (draft.broadcast_at or at("2026-01-01T00:00:00")) + timedelta(hours=number)
        row = Comment(draft_id=draft.id, number=number, resident_id=None, commune_code=commune,
                      text=f"Ý kiến {draft.id}-{number}", created_at=when,
                      channel="" if source != "chat" else channel,
                      respondent_category=category, source=source)
        if hidden:
            row.hidden_reason, row.hidden_at = "spam", when
        self.session.add(row)
        await self.session.flush()
        if answered:
            self.session.add(CommentAnswer(comment_id=row.id, handling="accepted",
                                           explanation="", answered_at=when))
        draft.comment_count = number
        return row

    async def vote(self, draft, commune: int, channel: str = "telegram", category: str = "",
                   source: str = "chat") -> None:
        when = draft.broadcast_at + timedelta(hours=2)
        self.session.add(Vote(draft_id=draft.id, resident_id=None, option_id=draft.options[0].id,
                              commune_code=commune, created_at=when, updated_at=when,
                              channel="" if source != "chat" else channel,
                              respondent_category=category, source=source))

    def reaches(self, draft, commune: int | None, count: int) -> None:
        self.session.add_all(
            Reach(draft_id=draft.id, person_id=None, way="broadcast", channel="telegram",
                  commune_code=commune, reached_at=draft.broadcast_at) for _ in range(count))


async def known_year(sessionmaker) -> dict[str, int]:
    """The data set above; the drafts' ids by name (D1…D6)."""
    async with sessionmaker() as session:
        d1 = await _draft(session, "Quy định phí vệ sinh", "national", (CAM_TU, BA_DINH),
                          "2026-03-01T02:00:00", "closed")
        d2 = await _draft(session, "Giờ họp chợ", "provincial", (CAM_TU,),
                          "2026-06-01T02:00:00", "closed")
        d3 = await _draft(session, "Đèn đường", "commune", (BA_DINH,),
                          "2026-12-31T16:59:00", "open")
        d4 = await _draft(session, "Năm sau", "commune", (BA_DINH,),
                          "2026-12-31T17:00:00", "open")
        d5 = await _draft(session, "Năm trước", "", (CAM_TU,), "2025-12-31T16:00:00", "closed")
        d6 = await _draft(session, "Chưa gửi", "commune", (CAM_TU,), None, "draft")
        write = _Writer(session)
        await write.comment(d1, CAM_TU, "telegram", "individual", answered=True)
        await write.comment(d1, CAM_TU, "telegram", "individual")
        await write.comment(d1, CAM_TU, "telegram", "organisation")
        await write.comment(d1, CAM_TU, "zalo", "business")
        await write.comment(d1, CAM_TU, "telegram", "individual", hidden=True, answered=True)
        await write.comment(d1, CAM_TU, source="meeting", answered=True)
        await write.comment(d1, CAM_TU, source="meeting")
        await write.comment(d1, CAM_TU, source="paper")
        await write.comment(d1, BA_DINH, "zalo", "individual", answered=True)
        await write.comment(d1, BA_DINH, "zalo", "")
        await write.comment(d1, BA_DINH, source="phone")
        await write.comment(d2, CAM_TU, "telegram", "individual")
        await write.comment(d3, BA_DINH, "zalobot", "organisation")
        for _ in range(5):
            await write.comment(d4, BA_DINH, "telegram", "individual")
        for _ in range(2):
            await write.comment(d5, CAM_TU, "telegram", "individual")
        await write.vote(d1, CAM_TU, "telegram", "individual")
        await write.vote(d1, CAM_TU, "telegram", "")
        await write.vote(d1, CAM_TU, "zalo", "individual")
        await write.vote(d1, CAM_TU, source="meeting")
        await write.vote(d1, BA_DINH, "zalo", "business")
        await write.vote(d2, CAM_TU, "telegram", "individual")
        await write.vote(d4, BA_DINH, "telegram", "individual")
        await write.vote(d4, BA_DINH, "zalo", "individual")
        write.reaches(d1, CAM_TU, 4)
        write.reaches(d1, BA_DINH, 3)
        write.reaches(d1, None, 1)
        write.reaches(d2, CAM_TU, 2)
        write.reaches(d3, BA_DINH, 1)
        write.reaches(d4, BA_DINH, 5)
        session.add(Publication(draft_id=d1.id, summary="Đã tiếp thu.", link="",
                                published_at=at("2026-04-01T00:00:00")))
        await session.commit()
        return {"D1": d1.id, "D2": d2.id, "D3": d3.id, "D4": d4.id, "D5": d5.id, "D6": d6.id}
