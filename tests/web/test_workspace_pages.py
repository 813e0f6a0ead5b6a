"""The workspace's pages over HTTP (aiohttp's test server, the app from the factory): what each
page shows within the official's scope, every request refused (no session, no CSRF token,
another commune's draft by a guessed id, a staff member broadcasting), the audit row of every
action, and the headers and cookies; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.web.auth import SECURITY_HEADERS
from bot.web.draft_form import FORM_MESSAGES
from handlers.i18n import VIETNAM, translator
from storage import outbox
from storage.export import export_csv
from storage.flood import CommentLimits
from storage.keys import pseudonym_key
from storage.models import AuditEntry, Comment, Delivery, DeliveryStatus, Draft, utcnow
from storage.roles import Role
from tests.chat import BA_DINH, CAM_TU, make_draft, subscribe
from tests.officials import press, say
from tests.officials import subscribe as subscribe_here
from tests.results_data import known_consultation
from tests.web.workspace import Workspace, workspace

GUESSES = ("{other}", "999999", str(2**31), "99999999999")  # another commune's, none, huge
FUTURE = (utcnow() + timedelta(days=30)).astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened


def form(**fields: str | list[str]) -> list[tuple[str, str]]:
    """A draft form as a browser posts it (lists for repeated fields)."""
    base: dict[str, str | list[str]] = {
        "title": "Quy định giờ thu gom rác", "issuer": "UBND xã Cẩm Tú",
        "summary": "Thu gom rác từ 17:00 đến 19:00.", "link": "", "opens_at": "",
        "deadline": FUTURE, "question": "", "option": [], "commune": [str(CAM_TU)],
        "action": "save", **fields}
    return [(name, item) for name, value in base.items()
            for item in (value if isinstance(value, list) else [value])]


async def audit_actions(place: Workspace) -> list[tuple[str, str, int | None]]:
    """(action, role, draft) of the rows written on the web, draft actions only."""
    async with place.sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(row.action, row.role, row.draft_id) for row in rows
            if row.via == "web" and row.action not in ("session_started", "session_ended")]


async def stored(place: Workspace, draft_id: int) -> Draft:
    async with place.sessionmaker() as session:
        draft = await session.get(Draft, draft_id)
        assert draft is not None
        return draft


async def deliveries(place: Workspace, draft_id: int) -> list[Delivery]:
    async with place.sessionmaker() as session:
        return list((await session.scalars(
            select(Delivery).where(Delivery.draft_id == draft_id))).all())


# ---- headers, cookies, language -------------------------------------------------------------


async def test_every_page_sends_the_security_headers_and_no_inline_script_or_style(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,))
    admin = await place.sign_in("admin", Role.ADMIN, "all")
    paths = ["/", f"/drafts/{draft.id}", "/drafts/new", f"/drafts/{draft.id}/edit",
             f"/drafts/{draft.id}/results", f"/drafts/{draft.id}/comments", "/downloads",
             "/audit", f"/drafts/{draft.id}/progress", f"/drafts/{draft.id}/results.png",
             "/static/workspace.css", "/static/progress.js", "/drafts/424242", "/report"]
    for path in paths:
        page = await admin.get(path)
        assert page.status == (404 if path == "/drafts/424242" else 200), path
        for name, value in SECURITY_HEADERS.items():
            assert page.headers.get(name) == value, (path, name)
        if page.headers["Content-Type"].startswith("text/html"):
            assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path
            assert not re.search(r"\sstyle=|\son[a-z]+=", page.text), path
            assert "https://" not in re.sub(r'placeholder="https://"', "", page.text), path


async def test_vietnamese_by_default_english_on_request(place):
    official = await place.sign_in("cb")
    assert "Dự thảo mới" in (await official.get("/drafts/new")).text
    switched = await official.get("/language/en", next="/admin/drafts/new")
    assert switched.status == 303 and switched.location == "/admin/drafts/new"
    cookie = switched.headers["Set-Cookie"]
    assert "ykien_lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/admin" in cookie
    page = await official.get("/drafts/new")
    assert "New draft" in page.text and 'lang="en"' in page.text
    # The switch on any page comes back to that page, a search in Vietnamese included.
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,))
    searched = await official.get(f"/drafts/{draft.id}/comments", q="giờ giấc")
    switch = re.search(r'class="language" lang="vi"\s+href="([^"]+)"', searched.text)
    assert switch
    back = await official.http.get(official.url + switch.group(1).replace("&amp;", "&"),
                                   allow_redirects=False)
    assert back.headers["Location"] == (
        f"/admin/drafts/{draft.id}/comments?q=gi%E1%BB%9D+gi%E1%BA%A5c")
    for elsewhere in ("https://evil.example/", "//evil.example/admin/", "/other"):
        away = await official.get("/language/vi", next=elsewhere)
        assert away.status == 303 and away.location == "/admin/"  # never off our pages


# ---- refused requests -----------------------------------------------------------------------


def routes(draft: str) -> tuple[list[str], list[str]]:
    """Every page and every action of a draft (GET paths, POST paths)."""
    pages = [f"/drafts/{draft}", f"/drafts/{draft}/edit", f"/drafts/{draft}/progress",
             f"/drafts/{draft}/results", f"/drafts/{draft}/results.png",
             f"/drafts/{draft}/comments"]
    actions = [f"/drafts/{draft}/{action}" for action in (
        "edit", "broadcast", "pause", "resume", "cancel", "close", "download")]
    return pages, actions


async def test_without_a_session_every_page_and_action_is_refused(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,))
    await subscribe_here(place.service, "resident")  # a resident: consent, no role
    assert "/admin/login/" not in str(await place.service.handle(say("resident", "/login")))
    stranger = place.visitor()
    pages, actions = routes(str(draft.id))
    for path in [*pages, "/", "/drafts/new", "/downloads", "/audit"]:
        assert (await stranger.get(path)).status == 401, path
    for path in [*actions, "/drafts/new", "/downloads"]:
        assert (await stranger.post(path, {"when": "now", "format": "csv"})).status == 401
    assert (await stored(place, draft.id)).paused is False
    assert await audit_actions(place) == []


async def test_a_post_without_this_sessions_csrf_token_changes_nothing(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    other = await place.sign_in("cb2")
    for token in ("", "forged", other.csrf):
        official.csrf = token
        refused = await official.post(f"/drafts/{draft.id}/broadcast",
                                      {"when": "now", "no_secrets": "yes"})
        assert refused.status == 403, token
        refused = await official.post("/drafts/new", form())
        assert refused.status == 403
    assert (await stored(place, draft.id)).status == "draft"
    async with place.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Draft)) == 1
    assert await audit_actions(place) == []


async def test_a_commune_official_guessing_ids_learns_nothing_of_other_communes(
        place, service, sessionmaker):
    known = await known_consultation(sessionmaker, service)  # Cẩm Tú, Ba Đình, Ngọc Hà
    theirs = await make_draft(sessionmaker, "Chợ đêm phường Ba Đình", (BA_DINH,))
    mine = await make_draft(sessionmaker, "Lịch họp thôn Cẩm Tú", (CAM_TU,))
    official = await place.sign_in("cb")  # official of Xã Cẩm Tú
    listing = (await official.get("/")).text
    assert mine.title in listing and known.draft.title in listing
    assert theirs.title not in listing
    for guess in GUESSES:
        pages, actions = routes(guess.format(other=theirs.id))
        for path in pages:
            page = await official.get(path)
            assert page.status == 404, path
            assert theirs.title not in page.text and "Ba Đình" not in page.text
        for path in actions:
            page = await official.post(path, {"when": "now", "no_secrets": "yes",
                                              "format": "csv", "deadline": FUTURE})
            assert page.status == 404, path
    assert (await stored(place, theirs.id)).paused is False
    assert await audit_actions(place) == []
    # All drafts at once: their comments stay out as well.
    everything = await official.post("/downloads", {"format": "csv"})
    assert everything.status == 200
    assert "Không đồng ý." not in everything.text  # Ba Đình's comment on the shared draft
    assert "Mức phí hợp lý." in everything.text  # Cẩm Tú's


async def test_on_a_shared_draft_a_commune_official_sees_only_their_communes_rows(
        place, service, sessionmaker):
    known = await known_consultation(sessionmaker, service)
    official = await place.sign_in("cb")
    page = await official.get(f"/drafts/{known.draft.id}")
    assert page.status == 200
    assert "Xã Cẩm Tú" in page.text and "Phường Ba Đình" not in page.text
    assert f'action="/admin/drafts/{known.draft.id}/pause"' not in page.text  # not theirs
    # Progress: Cẩm Tú's residents only (a, c, d sent, b having erased their data since;
    # "silent" held).
    progress = (await official.get(f"/drafts/{known.draft.id}/progress")).body
    counts = json.loads(progress)
    async with sessionmaker() as session:
        cam_tu = await outbox.draft_queue(session, known.draft.id, utcnow(), {CAM_TU})
        everyone = await outbox.draft_queue(session, known.draft.id, utcnow())
    assert (counts["sent"], counts["held"], counts["unreachable"]) == (3, 1, 0)
    assert counts["sent"] == cam_tu[DeliveryStatus.SENT] < everyone[DeliveryStatus.SENT]
    # Results: Cẩm Tú's figures (tests/test_results.py works them out by hand).
    results = (await official.get(f"/drafts/{known.draft.id}/results")).text
    assert "Phường Ba Đình" not in results
    assert re.search(r"<dt>Số người đã nhận</dt><dd>5</dd>", results)
    assert re.search(r"<dt>Tham gia</dt><dd>80%</dd>", results)
    # Comments: Cẩm Tú's four, not Ba Đình's.
    comments = (await official.get(f"/drafts/{known.draft.id}/comments")).text
    assert "4 góp ý" in comments and "Không đồng ý." not in comments
    # It goes to other communes too: neither changed nor broadcast by them.
    for path, data in ((f"/drafts/{known.draft.id}/edit", {"deadline": FUTURE}),
                       (f"/drafts/{known.draft.id}/pause", {}),
                       (f"/drafts/{known.draft.id}/close", {})):
        assert (await official.post(path, data)).status == 403, path
    assert (await official.get(f"/drafts/{known.draft.id}/edit")).status == 403
    assert (await stored(place, known.draft.id)).status == "open"


async def test_staff_read_and_download_but_never_broadcast_or_change(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    staff = await place.sign_in("staff", Role.STAFF, "commune:15148")
    page = await staff.get(f"/drafts/{draft.id}")
    assert page.status == 200 and "/broadcast" not in page.text and "/edit" not in page.text
    for path, data in ((f"/drafts/{draft.id}/broadcast", {"when": "now", "no_secrets": "yes"}),
                       (f"/drafts/{draft.id}/pause", {}), (f"/drafts/{draft.id}/close", {}),
                       (f"/drafts/{draft.id}/edit", {"deadline": FUTURE}),
                       ("/drafts/new", dict(form()))):
        refused = await staff.post(path, data)
        assert refused.status == 403, path
        assert "Bạn được xem" in refused.text or "không được" in refused.text
    assert (await staff.get("/drafts/new")).status == 403
    assert (await staff.get("/audit")).status == 403
    assert (await stored(place, draft.id)).status == "draft"
    download = await staff.post(f"/drafts/{draft.id}/download", {"format": "csv"})
    assert download.status == 200
    assert await audit_actions(place) == [("exported", "staff", draft.id)]


# ---- the draft form -------------------------------------------------------------------------


async def test_every_problem_is_shown_beside_its_field_and_nothing_is_saved(place):
    official = await place.sign_in("cb")
    past = (utcnow() - timedelta(days=1)).astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M")
    page = await official.post("/drafts/new", form(
        title="", link="ftp://x", deadline=past, question="Đồng ý?",
        option=["Có", "", "có"], commune=[str(CAM_TU), str(BA_DINH)]))
    assert page.status == 422
    t = translator("vi")
    problems = dict(re.findall(
        r'<p class="problem" id="problem-([^"]*)">([^<]*)</p>', page.text))
    assert problems == {
        "title": t(FORM_MESSAGES["string_too_short"]),
        "link": t(FORM_MESSAGES["link_scheme"]),
        "deadline": t(FORM_MESSAGES["deadline_past"]),
        "options": t(FORM_MESSAGES["option_duplicate"], option="có"),
        "targets": "ngoài các xã/phường bạn được phép đăng: 00004",
    }
    # What was typed is all there, to fix.
    assert 'value="ftp://x"' in page.text and 'value="Đồng ý?"' in page.text
    long = await official.post("/drafts/new", form(summary="Rất dài. " * 300))
    assert "Shorten" not in long.text
    assert re.search(r'id="problem-summary">Tin nhắn dự thảo sẽ dài', long.text), long.text
    async with place.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Draft)) == 0
    assert await audit_actions(place) == []


async def test_the_form_and_the_draft_file_share_one_check(place, tmp_path):
    """The same mistakes in a file and in the form give the same messages."""
    from bot.draftfile import DraftFileError, load_draft_file

    (tmp_path / "draft.toml").write_text(
        'title = ""\nissuer = "UBND"\nsummary = "x"\nlink = "ftp://x"\n'
        'deadline = 2099-01-01T10:00:00\n[targets]\ncommunes = [15148]\n'
        '[poll]\nquestion = "?"\noptions = ["Có", "có"]\n', encoding="utf-8")
    with pytest.raises(DraftFileError) as raised:
        load_draft_file(tmp_path / "draft.toml", translator("vi"))
    official = await place.sign_in("cb")
    page = await official.post("/drafts/new", form(
        title="", issuer="UBND", summary="x", link="ftp://x", deadline="2099-01-01T10:00",
        question="?", option=["Có", "có"]))
    shown = sorted(page.problems())
    assert shown == sorted(problem.message for problem in raised.value.details)


async def test_a_draft_is_previewed_saved_changed_and_audited(place):
    official = await place.sign_in("cb")
    preview = await official.post("/drafts/new", form(
        action="preview", question="Đồng ý?", option=["Có", "Không"]))
    assert preview.status == 200 and 'id="preview"' in preview.text
    assert "🗳 Có" in preview.text and "1. 💬 Góp ý" in preview.text  # buttons; numbered
    async with place.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Draft)) == 0
    saved = await official.post("/drafts/new", form(question="Đồng ý?", option=["Có", "Không"]))
    assert saved.status == 303
    draft_id = int(re.search(r"/drafts/(\d+)\?done=created", saved.location).group(1))
    draft = await stored(place, draft_id)
    assert draft.title == "Quy định giờ thu gom rác" and draft.poll_question == "Đồng ý?"
    changed = await official.post(f"/drafts/{draft_id}/edit", form(
        title="Quy định mới", question="", option=[]))
    assert changed.status == 303 and changed.location.endswith("done=edited")
    draft = await stored(place, draft_id)
    assert draft.title == "Quy định mới" and draft.poll_question == "" and draft.options == []
    assert await audit_actions(place) == [("draft_created", "official", draft_id),
                                          ("draft_edited", "official", draft_id)]
    assert "Đã lưu các thay đổi." in (await official.get(f"/drafts/{draft_id}?done=edited")).text


async def test_communes_are_found_by_name_and_old_name_within_the_scope(place):
    official = await place.sign_in("th", Role.OFFICIAL, "province:38")  # Thanh Hóa
    page = await official.post("/drafts/new", form(action="search", search="ba dinh",
                                                  commune=[]))
    found = re.findall(r'name="commune" value="(\d+)">', page.text)
    assert found == ["16171", "14797", "14812"]  # Thanh Hóa's, two through an old name
    assert "gồm cả Phường Ba Đình trước đây" in page.text
    assert "00004" not in found  # Hà Nội's Phường Ba Đình: outside the scope


# ---- broadcasting ---------------------------------------------------------------------------


async def test_the_first_broadcast_needs_the_confirmation_of_no_state_secret(place):
    for user in ("r1", "r2"):
        await subscribe(place.service, user)
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    refused = await official.post(f"/drafts/{draft.id}/broadcast", {"when": "now"})
    assert refused.status == 422
    assert "bí mật nhà nước" in " ".join(refused.problems())
    assert await deliveries(place, draft.id) == [] and await audit_actions(place) == []
    done = await official.post(f"/drafts/{draft.id}/broadcast",
                               {"when": "now", "no_secrets": "yes"})
    assert done.status == 303 and done.location.endswith("done=broadcast&count=2")
    assert len(await deliveries(place, draft.id)) == 2
    await subscribe(place.service, "r3")
    again = await official.post(f"/drafts/{draft.id}/broadcast", {"when": "now"})
    assert again.location.endswith("count=1")  # no confirmation asked the second time
    assert await audit_actions(place) == [
        ("no_secrets_confirmed", "official", draft.id), ("broadcast", "official", draft.id),
        ("broadcast", "official", draft.id)]


async def test_a_scheduled_broadcast_waits_for_its_time(place):
    await subscribe(place.service, "r1")
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    past = (utcnow() - timedelta(hours=1)).astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M")
    late = (draft.deadline + timedelta(days=1)).astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M")
    for when, problem in ((past, "tương lai"), (late, "sau thời điểm mở")):
        refused = await official.post(f"/drafts/{draft.id}/broadcast", {
            "when": "schedule", "opens_at": when, "no_secrets": "yes"})
        assert refused.status == 422 and problem in " ".join(refused.problems()), when
    at = (utcnow() + timedelta(days=2)).astimezone(VIETNAM).replace(second=0, microsecond=0)
    done = await official.post(f"/drafts/{draft.id}/broadcast", {
        "when": "schedule", "opens_at": at.strftime("%Y-%m-%dT%H:%M"), "no_secrets": "yes"})
    assert done.location.endswith("done=scheduled&count=1")
    [queued] = await deliveries(place, draft.id)
    assert queued.not_before == at
    assert (await stored(place, draft.id)).opens_at == at
    page = await official.get(f"/drafts/{draft.id}")
    assert "đã hẹn giờ gửi" in page.text
    assert [action for action, _, _ in await audit_actions(place)] == [
        "no_secrets_confirmed", "scheduled"]


async def test_after_the_first_broadcast_only_the_deadline_changes_and_the_queue_follows(place):
    await subscribe(place.service, "r1")
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    await official.post(f"/drafts/{draft.id}/broadcast", {"when": "now", "no_secrets": "yes"})
    page = await official.get(f"/drafts/{draft.id}/edit")
    assert re.search(r'<input id="title" name="title" value="Dự thảo"\s+disabled>', page.text)
    later = (draft.deadline + timedelta(days=10)).astimezone(VIETNAM).replace(second=0,
                                                                               microsecond=0)
    done = await official.post(f"/drafts/{draft.id}/edit", form(
        title="Another title", deadline=later.strftime("%Y-%m-%dT%H:%M")))
    assert done.status == 303 and done.location.endswith("done=deadline")
    changed = await stored(place, draft.id)
    assert changed.title == "Dự thảo" and changed.deadline == later
    [queued] = await deliveries(place, draft.id)
    assert queued.expires_at == later  # the message waits as long as the draft
    refused = await official.post(f"/drafts/{draft.id}/edit", form(deadline="2020-01-01T00:00"))
    assert refused.status == 422 and refused.problems() == ["phải là một thời điểm trong tương lai"]
    assert [action for action, _, _ in await audit_actions(place)] == [
        "no_secrets_confirmed", "broadcast", "deadline_changed"]


async def test_pause_resume_cancel_and_close_steer_the_broadcast_and_are_audited(place):
    for user in ("r1", "r2"):
        await subscribe(place.service, user)
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    await official.post(f"/drafts/{draft.id}/broadcast", {"when": "now", "no_secrets": "yes"})
    assert (await official.post(f"/drafts/{draft.id}/pause")).location.endswith("done=paused")
    assert (await stored(place, draft.id)).paused is True
    assert "Gửi tiếp" in (await official.get(f"/drafts/{draft.id}")).text
    await official.post(f"/drafts/{draft.id}/resume")
    assert (await stored(place, draft.id)).paused is False
    cancelled = await official.post(f"/drafts/{draft.id}/cancel")
    assert cancelled.location.endswith("done=cancelled&count=2")
    assert {row.status for row in await deliveries(place, draft.id)} == {"cancelled"}
    assert "Đã hủy: 2 tin nhắn" in (await official.get(cancelled.location[len("/admin"):])).text
    await official.post(f"/drafts/{draft.id}/close")
    assert (await stored(place, draft.id)).status == "closed"
    refused = await official.post(f"/drafts/{draft.id}/pause")
    assert refused.status == 409
    assert (await official.get(f"/drafts/{draft.id}/edit")).status == 409
    assert [action for action, _, _ in await audit_actions(place)] == [
        "no_secrets_confirmed", "broadcast", "paused", "resumed", "cancelled", "closed"]


async def test_progress_has_the_numbers_of_ykien_draft_status(
        place, service, sessionmaker, database_url, monkeypatch, tmp_path):
    from tests.officials import command_line, ykien

    known = await known_consultation(sessionmaker, service)
    admin = await place.sign_in("admin", Role.ADMIN, "all")
    counts = json.loads((await admin.get(f"/drafts/{known.draft.id}/progress")).body)
    command_line(monkeypatch, database_url, tmp_path)
    capture = io.StringIO()
    monkeypatch.setattr("sys.stdout", capture)
    assert await ykien("draft", "status", str(known.draft.id)) == 0
    line = capture.getvalue()
    for name in ("sent", "failed", "unreachable", "skipped", "expired", "cancelled",
                 "remaining"):
        assert f"{counts[name]} {name}" in line, (name, line)
    assert counts["held"] == 1 and "1 resident has not written" in line


# ---- results, comments, downloads, audit ----------------------------------------------------


async def test_results_and_their_chart(place, service, sessionmaker):
    known = await known_consultation(sessionmaker, service)
    admin = await place.sign_in("admin", Role.ADMIN, "all")
    page = (await admin.get(f"/drafts/{known.draft.id}/results")).text
    assert re.search(r"<dt>Số người đã nhận</dt><dd>7</dd>", page)
    assert re.search(r"<dt>Tham gia</dt><dd>85,7%</dd>", page)  # 6 of 7
    assert re.search(r"<td>Đồng ý</td><td class=\"number\">3</td>"
                     r"<td class=\"number\">75%</td>", page)
    chart = await admin.get(f"/drafts/{known.draft.id}/results.png")
    assert chart.headers["Content-Type"] == "image/png"
    assert chart.body.startswith(b"\x89PNG") and len(chart.body) > 10_000


async def test_comments_are_paged_newest_first_searchable_and_never_name_the_chat(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,))
    await subscribe_here(place.service, "resident-7731")
    # 25 comments of one person in a moment: past the flood limit, tested in test_flood.py.
    place.service.comment_limits = CommentLimits(per_minute=100, per_hour=100)
    for number in range(1, 26):
        await place.service.handle(press("resident-7731", f"comment:{draft.id}"))
        await place.service.handle(say("resident-7731", f"Ý kiến thứ {number}"
                                       + (" về Giờ giấc" if number % 10 == 0 else "")))
    official = await place.sign_in("cb")
    first = await official.get(f"/drafts/{draft.id}/comments")
    receipts = re.findall(r"<strong>Số (\d+-\d+)</strong>", first.text)
    assert receipts == [f"{draft.id}-{n}" for n in range(25, 5, -1)]  # 20, newest first
    second = await official.get(f"/drafts/{draft.id}/comments", page="2")
    assert re.findall(r"<strong>Số (\d+-\d+)</strong>", second.text) == [
        f"{draft.id}-{n}" for n in range(5, 0, -1)]
    for search in ("GIỜ GIẤC", "gio giac"):  # any case, with or without diacritics
        found = await official.get(f"/drafts/{draft.id}/comments", q=search)
        assert re.findall(r"<strong>Số (\d+-\d+)</strong>", found.text) == [
            f"{draft.id}-20", f"{draft.id}-10"], search
        assert "2 góp ý" in found.text
    by_receipt = await official.get(f"/drafts/{draft.id}/comments", q=f"{draft.id}-3")
    assert re.findall(r"<strong>Số (\d+-\d+)</strong>", by_receipt.text) == [f"{draft.id}-3"]
    for page in (first, second, found, by_receipt):
        assert "resident-7731" not in page.text and "Xã Cẩm Tú" in page.text
    async with place.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Comment)) == 25


async def test_downloads_are_scoped_pseudonymised_as_the_cli_and_audited(
        place, service, sessionmaker):
    known = await known_consultation(sessionmaker, service)
    official = await place.sign_in("cb")
    got = await official.post(f"/drafts/{known.draft.id}/download", {"format": "csv"})
    assert got.status == 200
    assert got.headers["Content-Disposition"].startswith(
        f'attachment; filename="ykien-{known.draft.id}-')
    async with sessionmaker() as session:
        key = await pseudonym_key(session)
        expected = io.StringIO()
        await export_csv(session, expected, known.draft.id, key, translator("vi"),
                         communes={CAM_TU})
    assert got.body.decode("utf-8-sig") == expected.getvalue()
    rows = list(csv.reader(io.StringIO(got.body.decode("utf-8-sig"))))
    assert {row[5] for row in rows[1:]} == {"Xã Cẩm Tú"}
    assert all(re.fullmatch(r"R-[0-9a-f]{12}|ẩn danh", row[7]) for row in rows[1:])
    book = await official.post(f"/drafts/{known.draft.id}/download", {"format": "xlsx"})
    assert book.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheets = openpyxl.load_workbook(io.BytesIO(book.body))
    summary = [[cell.value for cell in row] for row in sheets.worksheets[0].iter_rows()]
    assert [row[3] for row in summary[1:]] == ["Tất cả các xã", "Xã Cẩm Tú"]
    assert (await official.post(f"/drafts/{known.draft.id}/download",
                                {"format": "pdf"})).status == 400
    assert await audit_actions(place) == [("exported", "official", known.draft.id)] * 2


async def test_the_audit_log_is_for_administrators(place):
    draft = await make_draft(place.sessionmaker, "Dự thảo", (CAM_TU,), open_now=False)
    official = await place.sign_in("cb")
    await official.post(f"/drafts/{draft.id}/close")
    assert (await official.get("/audit")).status == 403
    admin = await place.sign_in("admin", Role.ADMIN, "all")
    page = await admin.get("/audit")
    assert page.status == 200
    assert "đóng dự thảo" in page.text and "cán bộ" in page.text
    assert "P-" in page.text and "cb" not in re.sub(r"<[^>]+>", " ", page.text).split()

