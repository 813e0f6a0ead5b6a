"""One `ykien serve` with every webhook channel at once (Telegram, Zalo OA, Zalo Bot), each
against its fake platform, and a resident driver per channel that POSTs to its webhook.

    async with all_platforms(database_url) as platforms:
        driver = platforms.driver("zalobot", sessionmaker)
        await driver.first_contact("7001")
        status = await platforms.post("telegram", b"{}")  # any body, correctly signed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.receiving import SECRET_HEADER as TELEGRAM_HEADER
from bot.channels.telegram.receiving import telegram_path
from bot.channels.zalo_bot import SECRET_HEADER as ZALOBOT_HEADER
from bot.channels.zalo_bot import zalo_bot_path
from bot.channels.zalo_oa.channel import SIGNATURE_HEADER, WEBHOOK_PATH, signature
from bot.config import Settings
from storage.models import Base
from tests.channels.drivers.base import WAIT, numbered_choice
from tests.channels.drivers.telegram import TelegramDriver
from tests.channels.drivers.zalo_oa import ZaloOADriver
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.fake_zalo import APP_ID, APP_SECRET, OA_SECRET, FakeZalo, now_ms
from tests.channels.fake_zalo_bot import FakeZaloBot
from tests.web.serving import running_server
from tests.web.test_webhook import SECRET as TELEGRAM_SECRET
from tests.web.test_webhook import Server

ZALOBOT_SECRET = "a-long-random-secret_1"
PUBLIC_URL = "https://ykien.example"
CHANNELS = ["telegram", "zalo", "zalobot"]
PATHS = {
    "telegram": telegram_path(TELEGRAM_SECRET),
    "zalo": WEBHOOK_PATH,
    "zalobot": zalo_bot_path(ZALOBOT_SECRET),
}


def signed_headers(channel: str, body: bytes) -> dict[str, str]:
    """The headers the platform would send with `body` (Zalo OA: signed over its app id and
    timestamp when it is a JSON object holding them, else over empty ones)."""
    if channel == "telegram":
        return {TELEGRAM_HEADER: TELEGRAM_SECRET}
    if channel == "zalobot":
        return {ZALOBOT_HEADER: ZALOBOT_SECRET}
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        event = None
    event = event if isinstance(event, dict) else {}
    mac = signature(str(event.get("app_id", "")), body, str(event.get("timestamp", "")),
                    OA_SECRET)
    return {SIGNATURE_HEADER: f"mac={mac}"}


class ZaloBotWebhookDriver:
    """Zalo Bot residents whose updates reach `ykien serve` by webhook."""

    channel = "zalobot"
    can_reply = False

    def __init__(self, platforms: Platforms, sessionmaker: async_sessionmaker[AsyncSession]
                 ) -> None:
        self.platforms = platforms
        self.fake = platforms.zalobot
        self.sessionmaker = sessionmaker
        self.marks: dict[str, int] = {}
        self.last: dict[str, dict] = {}

    async def post_update(self, user: str, update: dict) -> None:
        self.marks[user] = len(self.fake.calls)
        self.last[user] = update
        assert await self.platforms.post("zalobot", update) == 200

    async def first_contact(self, user: str) -> None:
        await self.text(user, "/start")

    async def text(self, user: str, text: str) -> None:
        await self.post_update(user, self.fake.text_update(user, text))

    async def press(self, user: str, label: str) -> None:
        await self.text(user, numbered_choice("\n\n".join(self.fake.texts_to(user)), label))

    async def photo(self, user: str) -> None:
        await self.post_update(user, self.fake.update(
            "message.image.received", user, photo_url="https://example.invalid/a.jpg"))

    async def send_again(self, user: str) -> None:
        await self.post_update(user, self.last[user])

    async def deliver(self, user: str) -> None:
        """The server's delivery worker sends by itself."""

    async def expect(self, user: str, contains: str) -> str:
        call = await self.fake.wait_for(
            lambda c: c.method == "sendMessage" and c.chat_id == user and contains in c.text,
            timeout=WAIT, since=self.marks.get(user, 0),
        )
        return call.text


@dataclass
class Platforms:
    """The three fake platforms and the server they post to."""

    telegram: FakeTelegram
    zalo: FakeZalo
    zalobot: FakeZaloBot
    url: str
    http: aiohttp.ClientSession

    async def post(self, channel: str, body: bytes | dict | list,
                   headers: dict[str, str] | None = None) -> int:
        """POST to the channel's webhook, signed as its platform would unless `headers`."""
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        sent = {"Content-Type": "application/json",
                **(signed_headers(channel, data) if headers is None else headers)}
        async with self.http.post(self.url + PATHS[channel], data=data,
                                  headers=sent) as response:
            await response.read()
            return response.status

    def driver(self, channel: str, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        """A resident driver (tests/channels/drivers) posting to this server."""
        if channel == "telegram":
            return TelegramDriver(Server(self.telegram, self.url, self.http), sessionmaker)
        if channel == "zalo":
            return ZaloOADriver(self.zalo, self.url, self.http, sessionmaker)
        return ZaloBotWebhookDriver(self, sessionmaker)

    def sent_to(self, channel: str, user: str) -> list[str]:
        """The texts the bot sent to a resident of a channel, in order."""
        if channel == "telegram":
            return [call.text for call in self.telegram.calls_to("sendMessage", int(user))
                    if call.ok]
        if channel == "zalo":
            return [call.text for call in self.zalo.messages(user)]
        return self.zalobot.texts_to(user)


def settings(database_url: str, telegram: FakeTelegram, zalo: FakeZalo, zalobot: FakeZaloBot,
             **extra: Any) -> Settings:
    access, refresh = zalo.issue_pair()
    return Settings(
        database_url=database_url, public_url=PUBLIC_URL,
        telegram_token=telegram.token, telegram_api_url=telegram.url,
        telegram_webhook_secret=TELEGRAM_SECRET, telegram_messages_per_second=0,
        zalo_app_id=APP_ID, zalo_app_secret=APP_SECRET, zalo_oa_secret=OA_SECRET,
        zalo_access_token=access, zalo_refresh_token=refresh,
        zalo_api_url=zalo.url, zalo_oauth_url=zalo.url,
        zalo_bot_token=zalobot.token, zalo_bot_api_url=zalobot.url,
        zalo_bot_webhook_secret=ZALOBOT_SECRET,
        **extra,
    )


@contextlib.asynccontextmanager
async def all_platforms(database_url: str, **serve_options: Any) -> AsyncIterator[Platforms]:
    """`serve()` with the three webhook channels; `serve_options` go to serve() (backlog...),
    or to the settings when they are settings (webhook_lease_seconds...)."""
    known = set(Settings.model_fields)
    extra = {name: value for name, value in serve_options.items() if name in known}
    options = {name: value for name, value in serve_options.items() if name not in known}
    zalo = FakeZalo()
    await zalo.start()
    try:
        async with FakeTelegram() as telegram, FakeZaloBot() as zalobot:
            chosen = settings(database_url, telegram, zalo, zalobot, **extra)
            async with (running_server(chosen, **options) as address,
                        aiohttp.ClientSession() as http):
                yield Platforms(telegram, zalo, zalobot, address, http)
    finally:
        await zalo.close()


def zalo_event(user: str, event_name: str, **fields: Any) -> dict[str, Any]:
    """A Zalo OA webhook event as Zalo posts it, for our app and signed now."""
    return {"app_id": APP_ID, "user_id_by_app": "99" + user, "event_name": event_name,
            "timestamp": str(now_ms()), "sender": {"id": user}, "recipient": {"id": "oa-1"},
            **fields}


async def everything_stored(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """Every value of every row of every table, as text: what a search of the database finds."""
    async with sessionmaker() as session:
        names = await session.run_sync(
            lambda sync: inspect(sync.connection()).get_table_names())
        found = []
        for table in Base.metadata.sorted_tables:
            if table.name not in names:
                continue
            for row in (await session.execute(select(table))).all():
                found.append(" | ".join(str(value) for value in row))
    return "\n".join(found)


async def until(predicate: Any, timeout: float = WAIT) -> None:
    """Wait until an async predicate is true (checked every 50 ms)."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


def words_of(text: str) -> str:
    return re.sub(r"\s+", " ", text)
