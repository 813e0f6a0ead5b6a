"""End to end over Telegram: the real application polls a fake Bot API server.

Residents subscribe, receive a broadcast draft, comment (by button and by replying to the
draft), vote and change their vote; the export holds exactly what they said.
"""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from bot.app import run_channels
from bot.config import Settings
from storage.db import open_database
from storage.export import export_csv
from tests.conftest import add_draft
from tests.fake_telegram import FakeTelegram

ALICE, BOB = 1001, 1002


class Chat:
    """One resident's private chat with the bot, seen from the fake server."""

    def __init__(self, fake: FakeTelegram, chat_id: int) -> None:
        self.fake = fake
        self.chat_id = chat_id

    async def _expect(self, since: int, contains: str) -> dict:
        call = await self.fake.wait_for(
            lambda c: c.method in ("sendMessage", "editMessageText")
            and c.chat_id == self.chat_id
            # Buttons count too: commune choices are offered as buttons.
            and contains in str(c.params.get("text", "")) + str(c.params.get("reply_markup", "")),
            since=since,
        )
        return call.params

    async def say(self, text: str, expect: str, reply_to: int | None = None) -> dict:
        since = len(self.fake.calls)
        self.fake.push_text(self.chat_id, text, reply_to=reply_to)
        return await self._expect(since, expect)

    def find_button(self, data_prefix: str) -> tuple[int, str]:
        """The latest message with a button whose data starts with the prefix."""
        for message in reversed(self.fake.messages_to(self.chat_id)):
            for row in FakeTelegram.buttons(message):
                for _, data in row:
                    if data.startswith(data_prefix):
                        return message["message_id"], data
        raise AssertionError(f"no button {data_prefix!r} in chat {self.chat_id}")

    async def press(self, data_prefix: str, expect: str) -> dict:
        message_id, data = self.find_button(data_prefix)
        since = len(self.fake.calls)
        self.fake.push_callback(self.chat_id, data, message_id)
        return await self._expect(since, expect)

    def message_with(self, text: str) -> dict:
        return next(m for m in reversed(self.fake.messages_to(self.chat_id))
                    if text in m.get("text", ""))


@pytest.fixture
async def running_bot(database_url):
    async with FakeTelegram() as fake:
        settings = Settings(
            database_url=database_url, telegram_token=fake.token, telegram_api_url=fake.url
        )
        stop = asyncio.Event()
        app = asyncio.create_task(run_channels(settings, stop))
        await fake.wait_for("getUpdates")
        try:
            yield fake
        finally:
            stop.set()
            await asyncio.wait_for(app, timeout=30)


async def test_residents_take_part_over_telegram(running_bot, database_url):
    fake = running_bot
    alice, bob = Chat(fake, ALICE), Chat(fake, BOB)

    await alice.say("/start", "/delete")  # the greeting explains /delete
    await alice.press("agree:", "Cam Tu")
    await alice.say("cẩm tú", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    await alice.press("commune:15148", "Xã Cẩm Tú — Tỉnh Thanh Hóa")

    await bob.say("/start", "English")
    await bob.press("lang:en", "Privacy notice")
    # The greeting was rewritten in English in place, not sent again.
    assert fake.calls_to("editMessageText", BOB) and len(fake.messages_to(BOB)) == 1
    await bob.press("agree:en", "Which commune")
    await bob.say("cam luong", "includes former Xã Cẩm Lương")
    await bob.press("commune:15148", "Subscribed")

    async with open_database(database_url) as sessionmaker:
        draft = await add_draft(sessionmaker)
    # The running bot's delivery worker sends the draft to both, with its buttons.
    for chat in (alice, bob):
        await chat._expect(0, draft.title)
        labels = [label for row in FakeTelegram.buttons(chat.message_with(draft.title))
                  for label, _ in row]
        assert any("Đồng ý" in label for label in labels)
        assert all(len(data.encode()) <= 64 for row in FakeTelegram.buttons(
            chat.message_with(draft.title)) for _, data in row)

    await alice.press(f"comment:{draft.id}", "1.000")
    await alice.say("Nên thu gom rác lúc 18 giờ.", draft.title)
    draft_message = bob.message_with(draft.title)["message_id"]
    await bob.say("=SUM(A1) fees are too high", "Received", reply_to=draft_message)

    yes, no = (option.id for option in draft.options[:2])
    await alice.press(f"vote:{no}", "Không đồng ý")
    await alice.press(f"vote:{yes}", "Đồng ý")
    await bob.press(f"vote:{no}", "Recorded your vote")

    # Bad input over Telegram gets an answer and changes nothing stored.
    since = len(fake.calls)
    fake.push_photo(ALICE)
    await alice._expect(since, "tin nhắn chữ")  # Alice reads Vietnamese
    since = len(fake.calls)
    fake.push_callback(ALICE, "vote:999999", draft_message)
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == ALICE, since=since)
    await alice.say("/nonsense", "/nonsense")

    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        out = io.StringIO()
        await export_csv(session, out, draft.id, key=b"test-key")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    said = sorted((row["Kind"], row["Comment"], row["Vote"]) for row in rows)
    assert said == [
        ("comment", "'=SUM(A1) fees are too high", ""),
        ("comment", "Nên thu gom rác lúc 18 giờ.", ""),
        ("vote", "", "Không đồng ý"),
        ("vote", "", "Đồng ý"),
    ]
    assert {row["Commune"] for row in rows} == {"Xã Cẩm Tú"}
    assert all(str(ALICE) not in row["Resident"] and str(BOB) not in row["Resident"]
               for row in rows)
    assert len({row["Resident"] for row in rows}) == 2

