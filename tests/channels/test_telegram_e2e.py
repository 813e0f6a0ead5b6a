"""End to end over Telegram: the real application polls a fake Bot API server.

Residents subscribe, receive a broadcast draft, comment (by button and by replying to the
draft), vote and change their vote; the export holds exactly what they said. Residents who
block the bot are not sent to, and are again once they unblock it or write.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app import run_channels
from bot.config import Settings
from storage.db import open_database
from storage.export import export_csv
from storage.models import Resident
from tests.channels.fake_telegram import Call, FakeTelegram
from tests.conftest import add_draft

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

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


@contextlib.asynccontextmanager
async def bot_running(fake: FakeTelegram, database_url: str) -> AsyncIterator[None]:
    """`ykien run` against the fake. Leaving waits until every update taken was handled and
    the delivery pass under way is recorded: the database can then be read without a race."""
    settings = Settings(
        database_url=database_url, telegram_token=fake.token, telegram_api_url=fake.url
    )
    stop = asyncio.Event()
    since = len(fake.requests)
    app = asyncio.create_task(run_channels(settings, stop))
    await fake.wait_for("getUpdates", since=since, arrived=True)  # polling has begun
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(app, timeout=30)


@pytest.fixture
async def running_bot(database_url):
    async with FakeTelegram() as fake, bot_running(fake, database_url):
        yield fake


async def taken(fake: FakeTelegram, update_id: int) -> None:
    """Wait for the poll that confirms an update: the bot has taken it up for handling."""
    await fake.wait_for(
        lambda call: call.method == "getUpdates" and call.params.get("offset", 0) > update_id,
        arrived=True,
    )


async def reachable(database_url: str, chat_id: int) -> bool:
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        found = await session.scalar(
            select(Resident.reachable).where(
                Resident.channel == "telegram", Resident.platform_id == str(chat_id)
            )
        )
    assert found is not None, f"no resident for chat {chat_id}"
    return found


async def subscribe(chat: Chat) -> None:
    await chat.say("/start", "/delete")
    await chat.press("agree:", "Cam Tu")
    await chat.say("cẩm tú", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    await chat.press("commune:15148", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    # A chat's replies arrive in order: once help is shown, every reply before it was sent.
    await chat.say("/help", "/delete")


def draft_to(chat_id: int, title: str):
    return lambda call: (
        call.method == "sendMessage"
        and call.chat_id == chat_id
        and title in str(call.params.get("text", ""))
    )


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
    fake.push_callback(ALICE, "vote:999999", alice.message_with(draft.title)["message_id"])
    await alice._expect(since, "Phương án biểu quyết này không còn")
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



async def test_blocking_and_unblocking_the_bot_set_reachability(database_url):
    async with FakeTelegram() as fake:
        alice = Chat(fake, ALICE)
        async with bot_running(fake, database_url):
            await subscribe(alice)
            assert await reachable(database_url, ALICE) is True
            answered = len(fake.calls_to("sendMessage", ALICE))
            await taken(fake, fake.push_membership(ALICE, "member", "kicked"))
        assert await reachable(database_url, ALICE) is False

        async with bot_running(fake, database_url):
            await taken(fake, fake.push_membership(ALICE, "kicked", "member"))
        assert await reachable(database_url, ALICE) is True
        assert len(fake.calls_to("sendMessage", ALICE)) == answered  # neither is answered


async def test_a_resident_refused_by_a_403_is_reachable_again_after_writing(database_url):
    async with FakeTelegram() as fake:
        alice = Chat(fake, ALICE)
        async with bot_running(fake, database_url):
            await subscribe(alice)
            fake.fail_next("sendMessage", ALICE, code=403)
            async with open_database(database_url) as sessionmaker:
                first = await add_draft(sessionmaker)
            refused: Call = await fake.wait_for(draft_to(ALICE, first.title))
            assert refused.error is not None and refused.error["error_code"] == 403
        assert await reachable(database_url, ALICE) is False

        async with bot_running(fake, database_url):
            await alice.say("/help", "/delete")
            assert await reachable(database_url, ALICE) is True
            since = len(fake.calls)
            async with open_database(database_url) as sessionmaker:
                second = await add_draft(sessionmaker)
            sent = await fake.wait_for(draft_to(ALICE, second.title), since=since)
            assert sent.ok
