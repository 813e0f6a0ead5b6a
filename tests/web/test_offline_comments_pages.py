"""Comments received offline on the workspace, over HTTP, on the known consultation (Cẩm Tú, Ba
Đình, Ngọc Hà): staff enter one for their commune (another commune is refused), a form sent
twice records once, each bad input is shown with its words; the comment counts on the results
page, is listed with its source on the answering page and answered there; publishing the
response sends nothing for it."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.sending.worker import DeliveryWorker
from storage.models import VIETNAM, AuditEntry, Comment, CommentAnswer, Delivery, utcnow
from storage.roles import Role
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.results_data import Listening, known_consultation
from tests.web.workspace import Visitor, in_english, workspace

KEY = re.compile(r'name="form_key" value="([^"]+)"')


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened



async def form_key(visitor: Visitor, draft_id: int) -> str:
    page = await visitor.get(f"/drafts/{draft_id}/comments/new")
    assert page.status == 200, page.text
    found = KEY.search(page.text)
    assert found
    return found.group(1)


async def offline_comments(sessionmaker, draft_id: int) -> list[tuple]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Comment.number, Comment.commune_code, Comment.source,
                   Comment.respondent_category, Comment.text, Comment.resident_id)
            .where(Comment.draft_id == draft_id, Comment.source != "chat")
            .order_by(Comment.number))
        return [tuple(row) for row in rows.all()]


def filled(key: str, **fields: str) -> dict[str, str]:
    return {"form_key": key, "commune": str(CAM_TU), "source": "meeting", "category": "",
            "received": "", "text": "Nên làm thêm đèn đường.", **fields}


async def test_staff_enter_a_comment_once_for_their_commune(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    path = f"/drafts/{draft}/comments/new"
    staff = await in_english(place.sign_in("vt", Role.STAFF, f"commune:{CAM_TU}"))
    page = await staff.get(f"/drafts/{draft}")  # the form is on the draft's page
    assert "Enter a comment received offline" in page.text and KEY.search(page.text)
    assert f'action="/admin{path}"' in page.text
    form = await staff.get(path)  # and on its own page
    assert f'<option value="{CAM_TU}"' in form.text
    assert f'<option value="{BA_DINH}"' not in form.text  # not theirs
    key = KEY.search(form.text).group(1)  # type: ignore[union-attr]

    sent = filled(key, source="paper", category="business")
    done = await staff.post(path, sent)
    assert done.status == 303 and done.location.endswith(f"{path}?done={draft}-6")
    again = await staff.post(path, sent)  # a double click, or the browser sending it again
    assert again.status == 303 and again.location == done.location
    assert await offline_comments(sessionmaker, draft) == [
        (6, CAM_TU, "paper", "business", "Nên làm thêm đèn đường.", None)]
    shown = await staff.get(path, done=f"{draft}-6")
    assert f"Recorded: comment no. {draft}-6." in shown.text
    assert KEY.search(shown.text).group(1) != key  # type: ignore[union-attr]  # a fresh form
    async with sessionmaker() as session:
        audit = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "comment_added"))).all()
    assert [(row.via, row.role, row.draft_id, row.detail) for row in audit] == [
        ("web", "staff", draft, f"{draft}-6; paper; commune:15148; form:{key}")]

    # another form is another comment
    second = await staff.post(path, filled(await form_key(staff, draft), text="Thêm thùng rác."))
    assert second.status == 303 and second.location.endswith(f"done={draft}-7")
    # the same form sent twice at the same moment: they take turns on the draft, one records
    twice = filled(await form_key(staff, draft), text="Sửa đường.")
    both = await asyncio.gather(staff.post(path, twice), staff.post(path, twice))
    assert {page.status for page in both} == {303}
    assert {page.location for page in both} == {f"/admin{path}?done={draft}-8"}
    assert [row[4] for row in await offline_comments(sessionmaker, draft)] == [
        "Nên làm thêm đèn đường.", "Thêm thùng rác.", "Sửa đường."]


async def test_another_commune_and_other_drafts_are_refused(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    path = f"/drafts/{draft}/comments/new"
    staff = await in_english(place.sign_in("vt", Role.STAFF, f"commune:{CAM_TU}"))
    key = await form_key(staff, draft)
    outside = await staff.post(path, filled(key, commune=str(BA_DINH)))
    assert outside.status == 403
    assert "You may not enter comments for Phường Ba Đình" in outside.text
    elsewhere = await make_draft(sessionmaker, "Ba Đình", (BA_DINH,))
    assert (await staff.get(f"/drafts/{elsewhere.id}/comments/new")).status == 404
    assert (await staff.post(f"/drafts/{elsewhere.id}/comments/new",
                             filled(key, commune=str(BA_DINH)))).status == 404
    forged = await staff.post(path, filled("short"))
    assert forged.status == 400 and "The form was not understood" in forged.text
    no_csrf = await staff.post(path, filled(key), csrf=False)
    assert no_csrf.status == 403
    assert await offline_comments(sessionmaker, draft) == []


async def test_each_bad_input_says_what_is_wrong(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    now = utcnow()
    late = await make_draft(sessionmaker, "Chợ", (CAM_TU,), opens_at=now - timedelta(days=10),
                            deadline=now - timedelta(days=2))
    unsent = await make_draft(sessionmaker, "Đường", (CAM_TU,), open_now=False)
    official = await in_english(place.sign_in("cb", Role.OFFICIAL, f"commune:{CAM_TU}"))
    assert not KEY.search((await official.get(f"/drafts/{unsent.id}")).text)  # no form yet
    key = await form_key(official, draft)
    day = late.deadline.astimezone(VIETNAM).date()
    cases = [
        (draft, {"text": " \u200b "}, "Write the comment&#39;s words."),
        (draft, {"text": "x" * 1001}, "The comment is too long: at most 1,000 characters."),
        (draft, {"source": "email"}, "Choose how the comment was received."),
        (draft, {"category": "club"}, "Choose whom the person answered for"),
        (draft, {"commune": "15151"}, "Choose one of the draft&#39;s communes."),
        (draft, {"commune": "abc"}, "Choose one of the draft&#39;s communes."),
        (draft, {"received": "27/11/2026"}, "Write the day it was received as 2026-11-27."),
        (draft, {"received": (now + timedelta(days=2)).astimezone(VIETNAM).date().isoformat()},
         "That day has not come yet."),
        (late.id, {}, "The draft took comments until"),
        (late.id, {"received": (day + timedelta(days=1)).isoformat()},
         "The draft took comments until"),
        (late.id, {"received": (late.opens_at.astimezone(VIETNAM).date()
                                - timedelta(days=1)).isoformat()}, "The draft opened on"),
        (unsent.id, {}, "This draft was never broadcast"),
    ]
    for draft_id, fields, words in cases:
        page = await official.post(f"/drafts/{draft_id}/comments/new", filled(key, **fields))
        assert page.status == 422, (fields, page.text)
        assert words in page.text, (fields, words)
        assert "Nothing was recorded" in page.text
    kept = await official.post(f"/drafts/{draft}/comments/new",
                               filled(key, text="Giữ lại chữ này.", received="bad"))
    assert "Giữ lại chữ này." in kept.text  # what was typed stays in the form
    # on time, entered late: recorded
    on_time = await official.post(f"/drafts/{late.id}/comments/new",
                                  filled(key, received=day.isoformat()))
    assert on_time.status == 303 and on_time.location.endswith(f"done={late.id}-1")
    assert await offline_comments(sessionmaker, draft) == []


async def test_counted_listed_answered_and_never_sent(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    admin = await in_english(place.sign_in("ad", Role.ADMIN, "all"))
    path = f"/drafts/{draft}/comments/new"
    assert (await admin.post(path, filled(await form_key(admin, draft), source="phone",
                                          text="Gọi điện: đồng ý."))).status == 303

    results = await admin.get(f"/drafts/{draft}/results")
    assert results.status == 200
    assert "of which received offline" in results.text
    assert "Comments by source: chat 5, phone 1." in results.text

    listed = await admin.get(f"/drafts/{draft}/comments")
    assert "Gọi điện: đồng ý." in listed.text and "received offline: phone" in listed.text
    answers = await admin.get(f"/drafts/{draft}/answers")
    assert "Gọi điện: đồng ý." in answers.text
    assert "received offline: phone" in answers.text
    assert "0 of 6 comments answered" in answers.text
    async with sessionmaker() as session:
        ids = (await session.scalars(select(Comment.id).where(Comment.draft_id == draft))).all()
        offline_id = await session.scalar(select(Comment.id).where(Comment.source == "phone"))
    answered = await admin.post(f"/drafts/{draft}/answers", [("comment", str(offline_id)),
                                                              ("handling", "accepted")])
    assert answered.status == 303
    async with sessionmaker() as session:
        assert await session.scalar(select(CommentAnswer.handling).where(
            CommentAnswer.comment_id == offline_id)) == "accepted"
    assert (await admin.post(f"/drafts/{draft}/answers", [
        *(("comment", str(i)) for i in ids), ("handling", "noted")])).status == 303

    table = await admin.get(f"/drafts/{draft}/synthesis")
    assert "Gọi điện: đồng ý." in table.text
    sheet = await admin.post(f"/drafts/{draft}/synthesis.xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.body)).worksheets[0]
                .iter_rows(values_only=True))
    assert any("Gọi điện: đồng ý." in row for row in rows)

    assert (await admin.post(f"/drafts/{draft}/close")).status == 303
    sent = await admin.post(f"/drafts/{draft}/publish", {"step": "confirm",
                                                         "summary": "Giữ nguyên mức phí."})
    # the five participants still here (a, c, e, f, g), and nobody for the phone call
    assert sent.status == 303 and sent.location.endswith("done=published&count=5")
    channel = Listening()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    texts = [text for sent_texts in channel.texts.values() for text in sent_texts]
    assert len(texts) == 5
    assert not any(f"{draft}-6" in text for text in texts)  # the offline comment's receipt
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.dedup_key.like("response:%"))) == 5
