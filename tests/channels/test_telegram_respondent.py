"""Whom a resident comments for, over Telegram: the question after a first comment, its
buttons, /category and its buttons, against the fake Bot API server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.db import open_database
from storage.models import Person
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.test_telegram_e2e import Chat, running_bot, subscribe  # noqa: F401
from tests.conftest import add_draft

pytestmark = pytest.mark.usefixtures("brisk_chats")

ALICE = 1001


async def category_said(database_url: str) -> tuple[str, bool]:
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        person = await session.scalar(select(Person))
    assert person is not None
    return person.respondent_category, person.category_asked_at is not None


async def test_the_question_and_the_menu_work_over_telegram(running_bot, database_url):  # noqa: F811
    fake = running_bot
    alice = Chat(fake, ALICE)
    await subscribe(alice)  # in Vietnamese
    async with open_database(database_url) as sessionmaker:
        draft = await add_draft(sessionmaker)
    await alice._expect(0, draft.title)

    await alice.press(f"comment:{draft.id}", "1.000")
    await alice.say("Nên thu gom rác lúc 18 giờ.", "Bạn góp ý với tư cách: Cá nhân / Tổ chức")
    question = alice.message_with("Bạn góp ý với tư cách")
    assert [label for row in FakeTelegram.buttons(question) for label, _ in row] == [
        "Cá nhân", "Tổ chức", "Doanh nghiệp", "Bỏ qua"]
    await alice.press("category:business", "Đã ghi nhận: bạn góp ý với tư cách: Doanh nghiệp")
    assert await category_said(database_url) == ("business", True)

    await alice.say("/category", "Bạn góp ý với tư cách: Doanh nghiệp. Chọn để thay đổi")
    await alice.press("category:none", "Đã xóa")
    assert await category_said(database_url) == ("", True)
    # the question's old Skip button, pressed now: answered, and nothing is asked again
    await alice.press("category:skip", "Đã bỏ qua")
    await alice.press(f"comment:{draft.id}", "1.000")
    await alice.say("Thêm một ý nữa.", "Đã nhận")
    await alice.say("/help", "/delete")  # replies arrive in order: all before it were sent
    asked = [message for message in fake.messages_to(ALICE)
             if "Cá nhân / Tổ chức / Doanh nghiệp" in message.get("text", "")]
    assert len(asked) == 1
