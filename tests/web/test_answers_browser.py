"""Answering the comments in a real browser (the browser suite of tests/web/test_browser.py:
headless Chromium at a phone's width against `ykien serve`, Telegram behind the fake Bot API).

Two residents of Xã Cẩm Tú comment in the chat; the commune's official ticks both comments,
forgets the explanation a refusal needs (the page says so and keeps what was ticked), answers
them at once, reads the synthesis table as it prints, closes the draft, previews the response
and confirms it: each resident's chat receives the answer quoting their receipt number.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.channels.fake_telegram import FakeTelegram
from tests.chat import make_draft
from tests.officials import LINK
from tests.web.serving import running_server
from tests.web.test_browser import (  # noqa: F401 (fixtures)
    Phone,
    _official,
    _resident,
    chromium,
    downloads,
    screenshots,
    served_settings,
)
from tests.web.test_webhook import Server, WebhookChat, reply_to

pytestmark = pytest.mark.usefixtures("brisk_chats")

RESIDENTS = (3201, 3202)
TITLE = "Dự thảo Quy định về giờ họp chợ"
SAID = ("Nên họp chợ từ 5 giờ sáng.", "Chợ cần thêm chỗ để xe.")


async def _draft(database_url: str) -> int:
    from storage.db import open_database

    async with open_database(database_url) as sessionmaker:
        draft = await make_draft(sessionmaker, TITLE, options=())
    return draft.id


async def test_an_official_answers_comments_and_publishes(
        database_url, chromium, screenshots):  # noqa: F811 (the fixtures imported above)
    async with FakeTelegram() as fake:
        settings = served_settings(database_url, fake)
        async with running_server(settings) as url, aiohttp.ClientSession() as http:
            server = Server(fake, url, http)
            draft_id = await _draft(database_url)
            residents: list[WebhookChat] = []
            for number, (chat_id, text) in enumerate(zip(RESIDENTS, SAID, strict=True), 1):
                chat = await _resident(server, chat_id)  # shown the open draft on subscribing
                await fake.wait_for(reply_to(chat_id, TITLE))
                await chat.press(f"comment:{draft_id}", "1.000")
                await chat.say(text, f"{draft_id}-{number}")
                residents.append(chat)
            official = await _official(server, database_url)
            answer = await official.say("/login", "/admin/login/")
            link = LINK.search(answer["text"])
            assert link
            phone = Phone(chromium, url, screenshots, asyncio.get_running_loop())
            await asyncio.to_thread(_answering, phone, link.group(1), draft_id)
            for chat_id, number in zip(RESIDENTS, (1, 2), strict=True):
                await fake.wait_for(reply_to(chat_id, f"Số {draft_id}-{number}: không tiếp thu"))
                received = fake.calls_to("sendMessage", chat_id)[-1].params["text"]
                assert "Giữ nguyên giờ họp chợ." in received
                assert f"{draft_id}-{3 - number}" not in received  # only their own comment


def _answering(phone: Phone, token: str, draft_id: int) -> None:
    phone.open(f"/admin/login/{token}")
    phone.press("button[type=submit]")
    phone.open(f"/admin/drafts/{draft_id}")
    phone.press(f"a[href='/admin/drafts/{draft_id}/answers']")
    assert "Đã trả lời 0 trên 2 ý kiến" in phone.text()
    for box in phone.driver.find_elements("css selector", "input[name=comment]"):
        box.click()
    phone.find("input[name=handling][value=not_accepted]").click()
    phone.photograph("answers-ticked")
    phone.press("#answer-form button[type=submit]")
    assert "cần có giải trình" in phone.find("#problem").text
    assert all(box.is_selected() for box in
               phone.driver.find_elements("css selector", "input[name=comment]"))
    phone.type("#explanation", "Giờ họp chợ do tỉnh quy định.")
    phone.press("#answer-form button[type=submit]")
    assert "Đã lưu câu trả lời cho 2 ý kiến." in phone.text()
    assert "Đã trả lời 2 trên 2 ý kiến" in phone.text()
    phone.photograph("answers-saved")
    phone.find("input[name=show]").click()
    phone.press("form[role=search] button")
    assert SAID[0] not in phone.text()  # nothing left unanswered

    phone.open(f"/admin/drafts/{draft_id}/synthesis")
    assert SAID[1] in phone.text() and "Giờ họp chợ do tỉnh quy định." in phone.text()
    phone.photograph("synthesis")
    phone.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not phone.find("header.bar").is_displayed()  # printed: the table alone
    assert phone.find("table.synthesis").is_displayed()
    phone.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    phone.open(f"/admin/drafts/{draft_id}/publish")
    assert "vẫn đang lấy ý kiến" in phone.text()
    phone.open(f"/admin/drafts/{draft_id}")
    phone.press(f"form[action='/admin/drafts/{draft_id}/close'] button")
    phone.open(f"/admin/drafts/{draft_id}/publish")
    phone.type("#summary", "Giữ nguyên giờ họp chợ.")
    phone.press("button[value=preview]")
    assert "Giữ nguyên giờ họp chợ." in phone.find("#preview").text
    phone.photograph("publish-preview")
    phone.press("button[value=confirm]")
    assert "Đã công bố: 2 tin nhắn" in phone.text()
