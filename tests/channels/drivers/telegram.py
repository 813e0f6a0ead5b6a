"""Telegram through `ykien serve`: updates POSTed to its webhook, answers read from a fake
Bot API (tests/channels/fake_telegram.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.channels.drivers.base import WAIT
from tests.channels.fake_telegram import FakeTelegram
from tests.web.test_webhook import Server, serving


class TelegramDriver:
    channel = "telegram"
    can_reply = True

    def __init__(
        self, server: Server, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.server = server
        self.fake: FakeTelegram = server.fake
        self.sessionmaker = sessionmaker
        self.marks: dict[str, int] = {}
        self.last: dict[str, dict] = {}

    async def _post(self, user: str) -> None:
        self.marks[user] = len(self.fake.calls)
        update = self.fake.take_update()
        self.last[user] = update
        response = await self.server.post(update)
        assert response.status == 200

    async def first_contact(self, user: str) -> None:
        await self.text(user, "/start")

    async def text(self, user: str, text: str) -> None:
        self.fake.push_text(int(user), text)
        await self._post(user)

    async def press(self, user: str, label: str) -> None:
        for message in reversed(self.fake.messages_to(int(user))):
            for row in FakeTelegram.buttons(message):
                for shown, data in row:
                    if shown == label:
                        self.fake.push_callback(int(user), data, message["message_id"])
                        await self._post(user)
                        return
        raise AssertionError(f"no button {label!r} in chat {user}")

    async def reply(self, user: str, text: str, to: str) -> None:
        message = next(m for m in reversed(self.fake.messages_to(int(user)))
                       if to in m.get("text", ""))
        self.fake.push_text(int(user), text, reply_to=message["message_id"])
        await self._post(user)

    async def photo(self, user: str) -> None:
        self.fake.push_photo(int(user))
        await self._post(user)

    async def send_again(self, user: str) -> None:
        self.marks[user] = len(self.fake.calls)
        response = await self.server.post(self.last[user])
        assert response.status == 200

    async def deliver(self, user: str) -> None:
        """The server's delivery worker sends by itself."""

    async def expect(self, user: str, contains: str) -> str:
        chat = int(user)
        call = await self.fake.wait_for(
            lambda c: c.method in ("sendMessage", "editMessageText") and c.chat_id == chat
            and contains in str(c.params.get("text", "")) + str(c.params.get("reply_markup", "")),
            timeout=WAIT, since=self.marks.get(user, 0),
        )
        return str(call.params.get("text", ""))


@contextlib.asynccontextmanager
async def telegram_driver(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[TelegramDriver]:
    async with FakeTelegram() as fake, serving(fake, database_url) as server:
        yield TelegramDriver(server, sessionmaker)
