"""Zalo OA through `ykien serve`: signed events POSTed to its webhook, answers read from a
fake Zalo Open API (tests/channels/fake_zalo.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.zalo_oa.channel import WEBHOOK_PATH
from bot.config import Settings
from tests.channels.drivers.base import WAIT, numbered_choice
from tests.channels.fake_zalo import (
    APP_ID,
    APP_SECRET,
    OA_SECRET,
    Call,
    FakeZalo,
    follow_event,
    media_event,
    press_event,
    signed,
    text_event,
)
from tests.web.serving import running_server


def _shown(call: Call) -> str:
    return call.text + "".join(f"\n[{button['title']}]" for button in call.buttons)


class ZaloOADriver:
    channel = "zalo"
    can_reply = False

    def __init__(
        self, fake: FakeZalo, url: str, http: aiohttp.ClientSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.fake, self.url, self.http = fake, url, http
        self.sessionmaker = sessionmaker
        self.marks: dict[str, int] = {}
        self.last: dict[str, dict[str, Any]] = {}

    async def _post(self, user: str, event: dict[str, Any]) -> None:
        self.marks[user] = len(self.fake.messages(user))
        self.last[user] = event
        body, headers = signed(event)
        async with self.http.post(self.url + WEBHOOK_PATH, data=body, headers=headers) as answer:
            assert answer.status == 200, answer.status

    async def first_contact(self, user: str) -> None:
        await self._post(user, follow_event(user))

    async def text(self, user: str, text: str) -> None:
        await self._post(user, text_event(user, text))

    async def press(self, user: str, label: str) -> None:
        messages = self.fake.messages(user)
        for call in reversed(messages):
            for button in call.buttons:
                if button["title"] == label:
                    await self._post(user, press_event(user, button))
                    return
        transcript = "\n\n".join(call.text for call in messages)
        await self.text(user, numbered_choice(transcript, label))

    async def reply(self, user: str, text: str, to: str) -> None:
        raise NotImplementedError("the OA webhook carries no reply-to")

    async def photo(self, user: str) -> None:
        await self._post(user, media_event(user, "image"))

    async def send_again(self, user: str) -> None:
        await self._post(user, self.last[user])

    async def deliver(self, user: str) -> None:
        """The server's delivery worker sends by itself."""

    async def expect(self, user: str, contains: str) -> str:
        since = self.marks.get(user, 0)

        def said() -> str:
            return "\n\n".join(_shown(call) for call in self.fake.messages(user)[since:])

        await self.fake.wait_for(lambda: contains in said(), timeout=WAIT)
        return said()


@contextlib.asynccontextmanager
async def zalo_oa_driver(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[ZaloOADriver]:
    fake = FakeZalo()
    await fake.start()
    access, refresh = fake.issue_pair()
    settings = Settings(
        database_url=database_url, public_url="https://ykien.example",
        zalo_app_id=APP_ID, zalo_app_secret=APP_SECRET, zalo_oa_secret=OA_SECRET,
        zalo_access_token=access, zalo_refresh_token=refresh,
        zalo_api_url=fake.url, zalo_oauth_url=fake.url,
    )
    try:
        async with running_server(settings) as address, aiohttp.ClientSession() as http:
            yield ZaloOADriver(fake, address, http, sessionmaker)
    finally:
        await fake.close()
