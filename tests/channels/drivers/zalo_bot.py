"""The Zalo Bot platform through `ykien run`: updates long-polled from a fake platform
(tests/channels/fake_zalo_bot.py); every choice is a numbered line, chosen by typing its number."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import run_channels
from bot.config import Settings
from tests.channels.drivers.base import WAIT, numbered_choice
from tests.channels.fake_zalo_bot import FakeZaloBot


class ZaloBotDriver:
    channel = "zalobot"
    can_reply = False

    def __init__(self, fake: FakeZaloBot, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.fake = fake
        self.sessionmaker = sessionmaker
        self.marks: dict[str, int] = {}
        self.last: dict[str, dict] = {}

    def _push(self, user: str, update: dict) -> None:
        self.marks[user] = len(self.fake.calls)
        self.last[user] = update
        self.fake.push(update)

    async def first_contact(self, user: str) -> None:
        await self.text(user, "/start")

    async def text(self, user: str, text: str) -> None:
        self._push(user, self.fake.text_update(user, text))

    async def press(self, user: str, label: str) -> None:
        await self.text(user, numbered_choice("\n\n".join(self.fake.texts_to(user)), label))

    async def reply(self, user: str, text: str, to: str) -> None:
        raise NotImplementedError("the Bot platform has no reply-to")

    async def photo(self, user: str) -> None:
        self._push(user, self.fake.update(
            "message.image.received", user, photo_url="https://example.invalid/a.jpg"
        ))

    async def send_again(self, user: str) -> None:
        self.marks[user] = len(self.fake.calls)
        self.fake.push(self.last[user])

    async def deliver(self, user: str) -> None:
        """The running delivery worker sends by itself."""

    async def expect(self, user: str, contains: str) -> str:
        call = await self.fake.wait_for(
            lambda c: c.method == "sendMessage" and c.chat_id == user and contains in c.text,
            timeout=WAIT, since=self.marks.get(user, 0),
        )
        return call.text


@contextlib.asynccontextmanager
async def zalo_bot_driver(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[ZaloBotDriver]:
    async with FakeZaloBot() as fake:
        settings = Settings(
            database_url=database_url, zalo_bot_token=fake.token, zalo_bot_api_url=fake.url
        )
        stop = asyncio.Event()
        since = len(fake.requests)
        task = asyncio.create_task(run_channels(settings, stop))
        try:
            await fake.wait_for("getUpdates", since=since, arrived=True, timeout=WAIT)
            yield ZaloBotDriver(fake, sessionmaker)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=WAIT)
