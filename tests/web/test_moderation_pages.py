"""Hiding a comment in the workspace, on the known consultation (Cẩm Tú, Ba Đình, Ngọc Hà):
left out of the results, the counts and the answering, kept in the export marked hidden with
its reason, written to the audit log, still in the resident's own /mine, and shown again; the
refusals (another commune's comment, a guessed id, no reason, staff, no CSRF token)."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from storage.models import AuditEntry, Comment
from storage.results import draft_results
from storage.roles import Role
from tests.chat import BA_DINH, CAM_TU, joined
from tests.results_data import known_consultation, say
from tests.web.test_answers_pages import in_english, place  # noqa: F401 (a fixture)


async def comment_id(sessionmaker, text: str) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(select(Comment.id).where(Comment.text == text))
    assert found is not None
    return found


async def figures(sessionmaker, draft_id: int) -> tuple[int, int, int]:
    """Comments in total, in Cẩm Tú, in Ba Đình."""
    async with sessionmaker() as session:
        results = await draft_results(session, draft_id)
    assert results is not None
    by_code = {entry.code: entry.figures.comments for entry in results.communes}
    return results.total.comments, by_code[CAM_TU], by_code[BA_DINH]


async def audit(sessionmaker) -> list[tuple[str, str]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action.in_(["comment_hidden", "comment_shown"]))
            .order_by(AuditEntry.id))).all()
    return [(row.action, row.detail) for row in rows]


async def test_a_hidden_comment_is_left_out_and_kept_marked(
        sessionmaker, service, place):  # noqa: F811 (the fixture imported above)
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    assert await figures(sessionmaker, draft) == (5, 4, 1)
    official = await in_english(place.sign_in("cb"))  # Xã Cẩm Tú
    hidden = await comment_id(sessionmaker, "Đồng ý, nhưng cần công khai.")  # g's, no. 4
    done = await official.post(f"/drafts/{draft}/comments/{hidden}/hide",
                               {"reason": "off_topic", "note": "Nói về việc khác"})
    assert done.status == 303
    assert await figures(sessionmaker, draft) == (4, 3, 1)
    assert await audit(sessionmaker) == [("comment_hidden", f"{draft}-4; off_topic")]
    again = await official.post(f"/drafts/{draft}/comments/{hidden}/hide", {"reason": "spam"})
    assert again.status == 303 and len(await audit(sessionmaker)) == 1  # hidden already

    page = await official.get(f"/drafts/{draft}/comments")
    assert "Hidden: off topic · Nói về việc khác" in page.text
    assert "Đồng ý, nhưng cần công khai." in page.text and "Show again" in page.text
    answering = await official.get(f"/drafts/{draft}/answers")
    assert "Đồng ý, nhưng cần công khai." not in answering.text
    assert "0 of 3 comments answered" in answering.text
    results = await official.get(f"/drafts/{draft}/results")
    assert results.status == 200
    listing = await official.get("/")
    assert "3 comments" in listing.text  # Cẩm Tú's, the hidden one left out
    download = await official.post(f"/drafts/{draft}/download", {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(download.body.decode("utf-8-sig"))))
    marks = {row["Comment"]: row["Hidden"] for row in rows if row["Kind"] == "comment"}
    assert marks["Đồng ý, nhưng cần công khai."] == "off topic"
    assert marks["Mức phí hợp lý."] == ""

    # the resident is not told, and still finds it among their own comments
    mine = joined(await service.handle(say("g", "/mine")))
    assert "Đồng ý, nhưng cần công khai." in mine

    # refusals: nothing changes
    theirs = await comment_id(sessionmaker, "Không đồng ý.")  # Ba Đình's
    assert (await official.post(f"/drafts/{draft}/comments/{theirs}/hide",
                                {"reason": "spam"})).status == 404
    assert (await official.post(f"/drafts/{draft}/comments/99999/hide",
                                {"reason": "spam"})).status == 404
    assert (await official.post(f"/drafts/{draft}/comments/{theirs + 10**12}/hide",
                                {"reason": "spam"})).status == 404
    mine_too = await comment_id(sessionmaker, "Mức phí hợp lý.")
    assert (await official.post(f"/drafts/{draft}/comments/{mine_too}/hide",
                                {"reason": "rude"})).status == 400
    assert (await official.post(f"/drafts/{draft}/comments/{mine_too}/hide",
                                {"reason": "spam"}, csrf=False)).status == 403
    staff = await in_english(place.sign_in("st", Role.STAFF, "commune:15148"))
    assert "Hide this comment" not in (await staff.get(f"/drafts/{draft}/comments")).text
    assert (await staff.post(f"/drafts/{draft}/comments/{mine_too}/hide",
                             {"reason": "spam"})).status == 403
    assert (await staff.post(f"/drafts/{draft}/comments/{hidden}/show")).status == 403
    assert await figures(sessionmaker, draft) == (4, 3, 1)

    shown = await official.post(f"/drafts/{draft}/comments/{hidden}/show")
    assert shown.status == 303
    assert await figures(sessionmaker, draft) == (5, 4, 1)
    assert await audit(sessionmaker) == [("comment_hidden", f"{draft}-4; off_topic"),
                                         ("comment_shown", f"{draft}-4")]
