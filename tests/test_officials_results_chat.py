"""/results ID and /export ID in a chat: the figures as text and the chart as a picture, the
comments and votes as XLSX, within the official's communes; a draft out of scope answered as
a missing one; a chat app that takes no file gets a sign-in link to the downloads instead;
an audit row for each. Through the console channel and the real Telegram adapter."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from bot.service import ChatService
from handlers.events import Incoming, Kind
from storage import roles
from storage.models import utcnow
from storage.roles import Grant, Role, Scope
from tests.channels.fake_telegram import FakeTelegram
from tests.chat import BA_DINH, CAM_TU, joined
from tests.officials import LINK, PUBLIC_URL, audit_rows, official, say, workspace_service
from tests.results_data import known_consultation
from tests.test_officials_chat import (
    OFFICIAL_CHAT,
    agree_on_telegram,
    telegram_bot,
    with_database,
)

PNG = b"\x89PNG\r\n\x1a\n"
XLSX = b"PK\x03\x04"  # a zip file


async def console_official(sessionmaker, user: str, scope: str = f"commune:{CAM_TU}",
                           role: Role = Role.OFFICIAL) -> None:
    """The console's user agrees (in English) and is given a role."""
    await ChatService(sessionmaker).handle(Incoming("console", user, Kind.CHOICE,
                                                    choice="agree:en"))
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, ("console", user))
        assert person is not None
        await roles.grant(session, person, Grant(role, Scope.parse(scope)), utcnow())
        await session.commit()


async def test_results_on_the_console_show_the_figures_of_the_scope_and_the_chart(
        sessionmaker, service, console, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    known = await known_consultation(sessionmaker, service)
    await console_official(sessionmaker, "cb")
    shown = await console("cb").say(f"/results {known.draft.id}")
    # Cẩm Tú only: a, b, c, d reached by the broadcast and g on subscribing; "silent" held;
    # a (2), b and g commented; a and c voted Đồng ý. Ba Đình's e and f are not counted.
    assert "Reached 5 persons" in shown
    assert "waiting for Zalo's messaging window: 1; unreachable (blocked the bot): 0." in shown
    assert "Comments: 4; votes: 2; took part: 4 of 5 persons reached (80%)." in shown
    assert "Đồng ý: 2 (100%)" in shown and "Không đồng ý: 0 (0%)" in shown
    picture = re.search(r"\[(.+\.png)\]", shown)
    assert picture, shown
    data = (tmp_path / picture.group(1)).read_bytes()  # absolute paths stay absolute
    assert data.startswith(PNG) and len(data) > 10_000
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.channel, r.role, r.action, r.draft_id) for r in rows] == [
        ("chat", "console", "official", "results_read", known.draft.id)]


async def test_one_person_reached_is_said_in_the_singular(sessionmaker, service, console,
                                                          tmp_path, monkeypatch):
    from tests.chat import make_draft, subscribe

    monkeypatch.chdir(tmp_path)
    draft = await make_draft(sessionmaker)
    await subscribe(service, "resident")  # shown the open draft on subscribing: reached
    await console_official(sessionmaker, "cb")
    shown = await console("cb").say(f"/results {draft.id}")
    assert "Reached 1 person; waiting" in shown
    assert "took part: 0 of 1 person reached (0%)." in shown


async def test_ket_qua_typed_without_diacritics_is_results(sessionmaker, service, console,
                                                           tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    known = await known_consultation(sessionmaker, service)
    await console_official(sessionmaker, "cb", role=Role.STAFF)
    shown = await console("cb").say(f"ket qua {known.draft.id}", f"Kết quả {known.draft.id}")
    assert shown.count("Reached 5 persons") == 2
    assert [r.role for r in await audit_rows(sessionmaker)] == ["staff"] * 2


async def test_a_draft_out_of_scope_is_answered_as_a_missing_one(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    chat = workspace_service(sessionmaker)
    await official(chat, "bd", scope="commune:00004")  # Phường Ba Đình: not the other draft's
    answers = {}
    for number in (known.other.id, 999_999, 2**40):
        for command in ("/results", "/export"):
            answers[command, number] = joined(await chat.handle(say("bd", f"{command} {number}")))
    for (_, number), answer in answers.items():
        assert answer == (f"There is no draft no. {number}." if number < 2**31
                          else answer), answer
    assert answers["/results", known.other.id] == f"There is no draft no. {known.other.id}."
    assert "followed by the draft's number" in joined(await chat.handle(say("bd", "/results")))
    assert await audit_rows(sessionmaker) == []


async def test_export_on_the_console_writes_the_scoped_workbook(sessionmaker, service, console,
                                                                tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    known = await known_consultation(sessionmaker, service)
    await console_official(sessionmaker, "cb")
    shown = await console("cb").say(f"/export {known.draft.id}")
    written = re.search(r"\[(.+\.xlsx)\]", shown)
    assert written, shown
    book = load_workbook(tmp_path / written.group(1), read_only=True)
    comments = [row for sheet in book.worksheets[1:]
                for row in sheet.iter_rows(min_row=2, values_only=True)]
    texts = {cell for row in comments for cell in row if isinstance(cell, str)}
    assert "Mức phí hợp lý." in texts and "Không đồng ý." not in texts  # e is in Ba Đình
    assert not any(str(cell).startswith("console") for row in comments for cell in row)
    rows = await audit_rows(sessionmaker)
    assert [(r.channel, r.action, r.draft_id) for r in rows] == [
        ("console", "exported", known.draft.id)]


async def test_export_where_no_file_can_be_sent_gives_a_sign_in_link(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    chat = workspace_service(sessionmaker)  # no capabilities: a chat that takes no file
    await official(chat, "cb", scope=f"commune:{CAM_TU}")
    answer = await chat.handle(say("cb", f"/export {known.draft.id}"))
    assert len(answer) == 1 and answer[0].secret
    assert LINK.search(answer[0].text) and PUBLIC_URL + "/admin/downloads" in answer[0].text
    rows = await audit_rows(sessionmaker)
    assert [(r.action, r.draft_id) for r in rows] == [("login_link", None)]


@pytest.mark.usefixtures("brisk_chats")
async def test_on_telegram_results_send_a_photo_and_export_a_document(database_url):
    async with FakeTelegram() as fake, telegram_bot(fake, database_url):
        from storage.db import open_database
        from tests.chat import make_draft

        async with open_database(database_url) as sessionmaker:
            draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU, BA_DINH))
        await agree_on_telegram(fake)
        since = len(fake.calls)
        fake.push_text(OFFICIAL_CHAT, f"/results {draft.id}")
        photo = await fake.wait_for(lambda c: c.method == "sendPhoto", since=since)
        since = len(fake.calls)
        fake.push_text(OFFICIAL_CHAT, f"/export {draft.id}")
        document = await fake.wait_for(lambda c: c.method == "sendDocument", since=since)
    assert photo.params["photo"]["data"].startswith(PNG)
    assert document.params["document"]["filename"].endswith(".xlsx")
    assert document.params["document"]["data"].startswith(XLSX)
    load_workbook(io.BytesIO(document.params["document"]["data"]), read_only=True)
    async with with_database(database_url) as rows:
        assert [(r.channel, r.role, r.action, r.draft_id) for r in rows] == [
            ("telegram", "admin", "results_read", draft.id),
            ("telegram", "admin", "exported", draft.id)]
