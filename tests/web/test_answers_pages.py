"""The answering pages of the workspace over HTTP, on the known consultation (Cẩm Tú, Ba Đình,
Ngọc Hà): answering one or several comments within the official's communes, the refusals
(another commune's comment, a forged id, no explanation, staff, no CSRF token), the synthesis
table with identical comments on one row, and publishing with a preview and a confirmation."""

from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import func, select

from storage.models import AuditEntry, Comment, CommentAnswer, Delivery
from storage.roles import Role
from tests.results_data import comment, known_consultation
from tests.web.workspace import workspace


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened


async def in_english(signing_in):
    """The visitor signing in, with the pages in English."""
    visitor = await signing_in
    assert (await visitor.get("/language/en", next="/admin/")).status == 303
    return visitor


async def comment_ids(sessionmaker, draft_id: int) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(select(Comment.text, Comment.id)
                                     .where(Comment.draft_id == draft_id))
        return dict(rows.all())


async def answers(sessionmaker) -> dict[int, tuple[str, str]]:
    async with sessionmaker() as session:
        rows = await session.execute(select(CommentAnswer.comment_id, CommentAnswer.handling,
                                            CommentAnswer.explanation))
        return {row[0]: (row[1], row[2]) for row in rows.all()}


async def actions(sessionmaker) -> list[tuple[str, str]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.via == "web")
                                      .order_by(AuditEntry.id))).all()
    return [(row.action, row.detail) for row in rows
            if row.action not in ("session_started", "session_ended")]


async def test_answering_within_the_officials_communes(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    ids = await comment_ids(sessionmaker, known.draft.id)
    path = f"/drafts/{known.draft.id}/answers"
    official = await in_english(place.sign_in("cb"))  # Xã Cẩm Tú
    page = await official.get(path)
    assert page.status == 200
    assert "Mức phí hợp lý." in page.text and "Phí cao quá." in page.text
    assert "Không đồng ý." not in page.text  # Ba Đình's comment
    assert "0 of 4 comments answered" in page.text

    mine = [ids["Mức phí hợp lý."], ids["=SUM(A1) nên thu theo quý"]]
    done = await official.post(path, [("comment", str(i)) for i in mine] + [
        ("handling", "accepted"), ("explanation", "Giữ mức phí."), ("back", "show=unanswered")])
    assert done.status == 303 and done.location.endswith(
        f"{path}?show=unanswered&done=answered&count=2")
    assert await answers(sessionmaker) == {i: ("accepted", "Giữ mức phí.") for i in mine}
    assert await actions(sessionmaker) == [("answered", "comments: 2; changed: 2; accepted")]
    again = await official.post(path, [("comment", str(i)) for i in mine] + [
        ("handling", "accepted"), ("explanation", "Giữ mức phí.")])
    assert again.status == 303 and len(await actions(sessionmaker)) == 1  # nothing changed

    unanswered = await official.get(path, show="unanswered")
    assert "Mức phí hợp lý." not in unanswered.text and "Phí cao quá." in unanswered.text
    assert "Your answer is saved for 2 comments." in (
        await official.get(path, done="answered", count="2")).text

    # Refusals, each storing nothing
    theirs = await official.post(path, [("comment", str(ids["Không đồng ý."])),
                                        ("handling", "accepted")])
    assert theirs.status == 404
    mixed = await official.post(path, [("comment", str(ids["Phí cao quá."])),
                                       ("comment", str(ids["Không đồng ý."])),
                                       ("handling", "noted")])
    assert mixed.status == 404  # one comment outside the scope: none is answered
    forged = await official.post(path, [("comment", "1; DROP"), ("handling", "accepted")])
    assert forged.status == 400
    why = await official.post(path, [("comment", str(ids["Phí cao quá."])),
                                     ("handling", "not_accepted"), ("explanation", " \u200b ")])
    assert why.status == 422 and "needs an explanation" in why.text
    none = await official.post(path, [("handling", "accepted")])
    assert none.status == 422 and "Tick the comments to answer." in none.text
    unknown = await official.post(path, [("comment", str(ids["Phí cao quá."])),
                                         ("handling", "maybe")])
    assert unknown.status == 422 and "Choose how the comments were received." in unknown.text
    too_long = await official.post(path, [("comment", str(ids["Phí cao quá."])),
                                          ("handling", "noted"), ("explanation", "x" * 2001)])
    assert too_long.status == 422
    no_token = await official.post(path, [("comment", str(ids["Phí cao quá."])),
                                          ("handling", "noted")], csrf=False)
    assert no_token.status == 403
    assert set(await answers(sessionmaker)) == set(mine)

    staff = await in_english(place.sign_in("st", Role.STAFF, "commune:15148"))
    reading = await staff.get(path)
    assert reading.status == 200 and 'name="handling"' not in reading.text
    refused = await staff.post(path, [("comment", str(ids["Phí cao quá."])),
                                      ("handling", "noted")])
    assert refused.status == 403
    assert set(await answers(sessionmaker)) == set(mine)


async def test_synthesis_table_and_publishing(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    await comment(service, "d", known.draft.id, "phí cao quá!")  # the same words as b's
    draft = known.draft.id
    admin = await in_english(place.sign_in("ad", Role.ADMIN, "all"))
    ids = await comment_ids(sessionmaker, draft)
    assert (await admin.post(f"/drafts/{draft}/answers",
                             [("comment", str(i)) for i in ids.values()]
                             + [("handling", "partly_accepted"),
                                ("explanation", "Thu theo quý.")])).status == 303

    table = await admin.get(f"/drafts/{draft}/synthesis")
    assert table.status == 200
    assert "(2 identical comments)" in table.text and table.text.count("Thu theo quý.") == 5
    assert "@media print" in (await admin.get("/static/workspace.css")).text
    sheet = await admin.post(f"/drafts/{draft}/synthesis.xlsx")
    assert sheet.status == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.body)).worksheets[0]
                .iter_rows(values_only=True))
    assert len(rows) == 1 + 5 and rows[3][2] == "Phí cao quá." and rows[3][3] == 2

    publish = f"/drafts/{draft}/publish"
    assert "still open for comments" in (await admin.get(publish)).text
    cb = await place.sign_in("cb")  # Cẩm Tú only: may not publish a draft of three communes
    assert (await cb.get(publish)).status == 403
    assert (await admin.post(f"/drafts/{draft}/close")).status == 303
    empty = await admin.post(publish, {"step": "preview", "summary": ""})
    assert empty.status == 422 and "Write the overall response." in empty.text
    preview = await admin.post(publish, {"step": "preview", "summary": "Giữ nguyên mức phí.",
                                         "link": "https://camtu.gov.vn/phi"})
    assert preview.status == 200 and "Giữ nguyên mức phí." in preview.text
    assert 'value="confirm"' in preview.text and "The answers to your comments:" in preview.text
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.dedup_key.like("response:%"))) == 0  # a preview queues nothing
    sent = await admin.post(publish, {"step": "confirm", "summary": "Giữ nguyên mức phí.",
                                      "link": "https://camtu.gov.vn/phi"})
    assert sent.status == 303 and sent.location.endswith("done=published&count=6")
    # a, c, d, e, f, g took part (b erased their data)
    again = await admin.post(publish, {"step": "confirm"})
    assert again.status == 303 and again.location.endswith("count=0")
    shown = await admin.get(publish)
    assert "Published on" in shown.text and "Giữ nguyên mức phí." in shown.text
    assert [action for action, _ in await actions(sessionmaker)] == [
        "answered", "exported", "closed", "published", "published"]
