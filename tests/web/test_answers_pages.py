"""The answering pages of the workspace over HTTP, on the known consultation (Cẩm Tú, Ba Đình,
Ngọc Hà): answering one or several comments within the official's communes, the refusals
(another commune's comment, a forged id, no explanation, staff, no CSRF token), the synthesis
table with identical comments on one row, and publishing with a preview and a confirmation;
the comment groups (issue 19): the filter by group, answering a group at once within the
official's communes, a row per group in the synthesis, the answer reaching each member once."""

from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.sending.worker import DeliveryWorker
from bot.web.groups import job_of
from storage.models import AuditEntry, Comment, CommentAnswer, Delivery, GroupMembership
from storage.roles import Role
from tests.results_data import Listening, comment, known_consultation
from tests.web.workspace import in_english, workspace


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened



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


async def _group_the_draft(place, visitor, draft_id: int) -> None:
    started = await visitor.post(f"/drafts/{draft_id}/groups/compute")
    assert started.status == 303
    job = job_of(place.sessionmaker, draft_id)
    assert job is not None and job.task is not None
    await job.task  # the background job, awaited rather than waited for


def said(text: str) -> str:
    """A comment as the answering page lists it (group names show in the filter too)."""
    return f'<p class="said">{text}</p>'


async def groups_of(sessionmaker, ids: dict[str, int]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = dict((await session.execute(
            select(GroupMembership.comment_id, GroupMembership.group_id))).all())
    return {text: rows[i] for text, i in ids.items() if i in rows}


async def test_a_group_answered_at_once_reaches_each_member_once(sessionmaker, service, place):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    path = f"/drafts/{draft}/answers"
    await comment(service, "c", draft, "muc phi hop ly")  # a's point, Cẩm Tú
    await comment(service, "f", draft, "Mức phí hợp lý!!")  # the same point, Ba Đình
    admin = await in_english(place.sign_in("ad", Role.ADMIN, "all"))
    await _group_the_draft(place, admin, draft)
    await comment(service, "d", draft, "Cần thêm thùng rác.")  # after the grouping
    ids = await comment_ids(sessionmaker, draft)
    grouped = await groups_of(sessionmaker, ids)
    fee, refusal_group = grouped["Mức phí hợp lý."], grouped["Không đồng ý."]  # e's: Ba Đình
    assert grouped["muc phi hop ly"] == grouped["Mức phí hợp lý!!"] == fee
    assert len(set(grouped.values())) == 5 and "Cần thêm thùng rác." not in grouped

    # the synthesis: one row per group (the fee point counted 3), then the late comment
    sheet = await admin.post(f"/drafts/{draft}/synthesis.xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.body)).worksheets[0]
                .iter_rows(values_only=True))[1:]
    assert len(rows) == 5 + 1 and rows[0][2] == "Mức phí hợp lý." and rows[0][3] == 3
    assert rows[-1][2] == "Cần thêm thùng rác." and sum(row[3] for row in rows) == 8
    table = await admin.get(f"/drafts/{draft}/synthesis")
    assert "(3 identical comments)" in table.text

    # a Cẩm Tú official: the groups with comments of theirs, each counted there
    cb = await in_english(place.sign_in("cb"))
    page = await cb.get(path, group=str(fee))
    assert page.status == 200 and f'<option value="{fee}" selected' in page.text
    assert f'<option value="{refusal_group}"' not in page.text  # Ba Đình's only
    assert said("muc phi hop ly") in page.text and said("Mức phí hợp lý.") in page.text
    assert "Mức phí hợp lý!!" not in page.text and said("Phí cao quá.") not in page.text
    assert 'id="answer-group"' in page.text
    everything = await cb.get(path, group="٣")  # not a group number: every comment
    assert said("Phí cao quá.") in everything.text
    assert 'id="answer-group"' not in everything.text

    # answering the whole group answers theirs only, and says the rest is left to others
    done = await cb.post(path, {"group": str(fee), "handling": "accepted",
                                "explanation": "Giữ mức phí.", "back": f"group={fee}"})
    assert done.status == 303 and done.location.endswith(
        f"{path}?group={fee}&done=group&count=2")
    assert await answers(sessionmaker) == {
        ids[text]: ("accepted", "Giữ mức phí.") for text in ("Mức phí hợp lý.", "muc phi hop ly")}
    assert "other comments are left to their communes" in (
        await cb.get(path, group=str(fee), done="group", count="2")).text
    for forged, status in ((str(refusal_group), 403), ("999999", 404), ("1٣", 404),
                           ("", 422)):
        refused = await cb.post(path, [("handling", "accepted")] + (
            [("group", forged)] if forged else []))
        assert refused.status == status, forged
    no_explanation = await cb.post(path, {"group": str(fee), "handling": "not_accepted"})
    assert no_explanation.status == 422 and "needs an explanation" in no_explanation.text
    assert len(await answers(sessionmaker)) == 2  # the refusals changed nothing

    # the admin answers the group again, whole: f's too, and the others one by one
    whole = await admin.post(path, {"group": str(fee), "handling": "partly_accepted",
                                    "explanation": "Giữ mức phí, thu theo quý."})
    assert whole.status == 303 and whole.location.endswith("done=answered&count=3")
    rest = [i for text, i in ids.items() if grouped.get(text) != fee]
    assert (await admin.post(path, [("comment", str(i)) for i in rest] + [
        ("handling", "noted")])).status == 303
    assert (await admin.post(f"/drafts/{draft}/close")).status == 303
    sent = await admin.post(f"/drafts/{draft}/publish", {
        "step": "confirm", "summary": "Giữ nguyên mức phí."})
    assert sent.status == 303
    channel = Listening()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    async with sessionmaker() as session:
        numbers = dict((await session.execute(
            select(Comment.text, Comment.number).where(Comment.draft_id == draft))).all())
    for user, text in (("a", "Mức phí hợp lý."), ("c", "muc phi hop ly"),
                       ("f", "Mức phí hợp lý!!")):
        [message] = channel.texts[user]  # one message each
        assert message.count("Giữ mức phí, thu theo quý.") == 1, message
        assert f"{draft}-{numbers[text]}:" in message
    assert "Giữ mức phí, thu theo quý." not in channel.texts["e"][0]  # not in the group
