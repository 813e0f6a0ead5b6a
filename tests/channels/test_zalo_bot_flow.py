"""The Zalo Bot channel end to end, against the fake platform (tests/channels/fake_zalo_bot.py).

By polling: the real `ykien run` (bot.app.run_channels) polls the fake; a resident starts,
agrees, picks a commune, gets a broadcast draft from the delivery worker, comments and votes,
each choice made by typing the number the bot showed. By webhook: the real webhook server
(bot.web.webhook) with the real channel; the platform's secret header is required, and an update
delivered twice (wrapped or bare) is handled once. On SQLite and PostgreSQL.
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
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.app import run_channels
from bot.channels.zalo_bot import SECRET_HEADER, ZaloBotChannel
from bot.config import Settings
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from bot.web.webhook import WebhookReceiver, make_app
from handlers.i18n import translator
from storage.db import open_database
from storage.models import Comment, InboundUpdate, Resident, Vote
from tests.channels.fake_zalo_bot import FakeZaloBot
from tests.chat import scalar_count
from tests.conftest import add_draft
from tests.web.serving import running_server

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

ALICE, BOB = "7001aa", "7002bb"
SECRET = "a-long-random-secret_1"
DRAFT_TITLE = "Dự thảo Quy định giữ gìn vệ sinh môi trường khu dân cư"


def number_for(text: str, label_part: str) -> str:
    """The number shown next to the (last) choice whose label contains `label_part`."""
    found = [number for number, label in re.findall(r"(\d+)\. (.+?)(?=   |\n|$)", text)
             if label_part in label]
    assert found, f"no numbered choice {label_part!r} in {text!r}"
    return found[-1]


def vietnamese_start(msgid: str) -> str:
    """The Vietnamese text of a message up to its first placeholder."""
    values = {name: "\0" for name in re.findall(r"\{(\w+)\}", msgid)}
    return translator("vi")(msgid, **values).split("\0")[0]


class Resident_:
    """One resident's chat, driven through whatever delivers updates to the bot."""

    def __init__(self, fake: FakeZaloBot, chat_id: str, deliver: Any) -> None:
        self.fake, self.chat_id, self.deliver = fake, chat_id, deliver

    async def say(self, text: str, expect: str) -> str:
        """Send a text; the first message to this chat from now on that contains `expect`."""
        since = len(self.fake.calls)
        await self.deliver(self.fake.text_update(self.chat_id, text))
        return await self.expect(since, expect)

    async def expect(self, since: int, contains: str) -> str:
        call = await self.fake.wait_for(
            lambda c: c.method == "sendMessage" and c.ok and c.chat_id == self.chat_id
            and contains in c.text, since=since, timeout=20)
        return call.text

    def last_with(self, contains: str) -> str:
        return next(text for text in reversed(self.fake.texts_to(self.chat_id))
                    if contains in text)


async def take_part(resident: Resident_, deliver_draft: Any) -> None:
    """Start, agree, pick a commune, receive the draft, comment and vote, by typed numbers."""
    greeting = await resident.say("/start", "/delete")
    await resident.say(number_for(greeting, "đồng ý"), "xã/phường nào")
    choices = await resident.say("cam tu", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    await resident.say(number_for(choices, "Xã Cẩm Tú"), "Đã đăng ký")
    draft = await deliver_draft()
    assert DRAFT_TITLE in draft and len(draft) <= 2000
    # Voted first: the question after the comment numbers its choices anew, so the draft's
    # numbers would no longer stand for its options then.
    recorded = await resident.say(number_for(draft, "Không đồng ý"), vietnamese_start(
        "Recorded your vote on “{title}”: “{option}”. You can change it until {deadline}."))
    assert "Không đồng ý" in recorded
    await resident.say(number_for(draft, "Góp ý"), "Hãy gõ góp ý")
    since = len(resident.fake.calls)
    await resident.say("Nên thu gom rác muộn hơn, sau 19:00.", vietnamese_start(
        "Received: your comment no. {number} on “{title}”. Thank you! "
        "To add more, tap Comment again."))
    question = await resident.expect(since, "Bạn góp ý với tư cách")
    await resident.say(number_for(question, "Doanh nghiệp"),
                       "Đã ghi nhận: bạn góp ý với tư cách: Doanh nghiệp")


async def assert_took_part(sessionmaker, chat_id: str) -> None:
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident).where(
            Resident.channel == "zalobot", Resident.platform_id == chat_id))
        assert resident is not None and resident.commune_code == 15148
        comments = (await session.scalars(
            select(Comment.text).where(Comment.resident_id == resident.id))).all()
        votes = (await session.scalars(select(Vote).where(Vote.resident_id == resident.id))).all()
    assert comments == ["Nên thu gom rác muộn hơn, sau 19:00."]
    assert len(votes) == 1


# ---- polling (`ykien run`) ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bot_polling(fake: FakeZaloBot, database_url: str) -> AsyncIterator[None]:
    settings = Settings(database_url=database_url, zalo_bot_token=fake.token,
                        zalo_bot_api_url=fake.url)
    stop = asyncio.Event()
    since = len(fake.requests)
    app = asyncio.create_task(run_channels(settings, stop))
    await fake.wait_for("getUpdates", since=since, arrived=True, timeout=20)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(app, timeout=30)


async def test_a_resident_takes_part_by_polling(database_url):
    async with FakeZaloBot() as fake, bot_polling(fake, database_url), \
            open_database(database_url) as sessionmaker:

        async def deliver(update: dict) -> None:
            fake.push(update)

        alice = Resident_(fake, ALICE, deliver)

        async def draft_arrives() -> str:
            since = len(fake.calls)
            await add_draft(sessionmaker)  # the running delivery worker sends it
            return await alice.expect(since, DRAFT_TITLE)

        await take_part(alice, draft_arrives)
        await assert_took_part(sessionmaker, ALICE)
        # Nothing was sent over the limit, and nothing failed.
        assert all(call.ok for call in fake.calls_to("sendMessage"))


# ---- webhook (`ykien serve`) -------------------------------------------------------------------


@dataclass
class Server:
    fake: FakeZaloBot
    channel: ZaloBotChannel
    receiver: WebhookReceiver
    url: str
    http: aiohttp.ClientSession

    async def post(self, payload: Any = None, *, body: bytes | None = None,
                   secret: str | None = SECRET) -> int:
        if body is None:
            body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with self.http.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def deliver(self, update: dict) -> None:
        # The platform posts updates wrapped in {"ok", "result"}; bare ones are accepted too.
        assert await self.post({"ok": True, "result": update}) == 200


@pytest.fixture
async def server(sessionmaker) -> AsyncIterator[Server]:
    async with FakeZaloBot() as fake, aiohttp.ClientSession() as http:
        channel = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker),
                                 webhook_secret=SECRET)
        receiver = WebhookReceiver(sessionmaker, channel)
        runner = web.AppRunner(make_app([receiver]), access_log=None)
        await channel.start_webhook()
        await receiver.start()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        await channel.register_webhook("https://ykien.example.gov.vn" + channel.webhook_path)
        try:
            yield Server(fake, channel, receiver, base + channel.webhook_path, http)
        finally:
            await runner.cleanup()
            await receiver.close()
            await channel.stop()


async def test_register_webhook_gives_the_platform_our_secret(server):
    assert server.fake.webhook == {
        "url": "https://ykien.example.gov.vn" + server.channel.webhook_path,
        "secret_token": SECRET,
    }
    assert SECRET not in server.channel.webhook_path


async def test_a_resident_takes_part_by_webhook(server, sessionmaker):
    fake = server.fake
    alice = Resident_(fake, ALICE, server.deliver)

    async def draft_arrives() -> str:
        since = len(fake.calls)
        await add_draft(sessionmaker)
        await DeliveryWorker(sessionmaker, {"zalobot": server.channel}).run_once()
        return await alice.expect(since, DRAFT_TITLE)

    await take_part(alice, draft_arrives)
    await assert_took_part(sessionmaker, ALICE)


@pytest.mark.parametrize("secret", [None, "", "wrong-secret-123", SECRET + "x"])
async def test_a_request_without_the_secret_is_refused_and_nothing_stored(
    server, sessionmaker, secret
):
    update = server.fake.text_update(ALICE, "/start")
    assert await server.post({"ok": True, "result": update}, secret=secret) == 403
    # A genuine update afterwards is answered: only it was stored.
    await Resident_(server.fake, BOB, server.deliver).say("/start", "/delete")
    assert await scalar_count(sessionmaker, InboundUpdate) == 1
    assert server.fake.texts_to(ALICE) == []


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[]", b'{"ok": true, "result": {}}', b'{"hello": 1}',
    b'{"event_name": "message.text.received", "message": {"text": "no chat"}}',
])
async def test_what_is_not_an_update_is_refused(server, sessionmaker, body):
    assert await server.post(body=body) == 400
    assert await scalar_count(sessionmaker, InboundUpdate) == 0


async def test_the_same_update_posted_twice_is_handled_once(server, sessionmaker):
    fake = server.fake
    update = fake.text_update(ALICE, "/start")
    assert await server.post({"ok": True, "result": update}) == 200
    assert await server.post(update) == 200  # the same update, bare this time
    # A later update of the chat is handled after the earlier ones (in order).
    await Resident_(fake, ALICE, server.deliver).say("/help", "/delete")
    greetings = [text for text in fake.texts_to(ALICE) if "Xin chào" in text]
    assert len(greetings) == 1
    assert await scalar_count(sessionmaker, InboundUpdate) == 2


async def test_bare_and_listed_updates_are_accepted(server):
    fake = server.fake
    assert await server.post(fake.text_update(ALICE, "/start")) == 200
    assert await server.post({"ok": True, "result": [fake.text_update(BOB, "/start")]}) == 200
    for chat in (ALICE, BOB):
        await fake.wait_for(lambda c, chat=chat: c.method == "sendMessage" and c.chat_id == chat
                            and "Xin chào" in c.text)


async def test_group_messages_are_acknowledged_and_not_stored(server, sessionmaker):
    fake = server.fake
    group = fake.text_update("group-1", "/start", chat_type="GROUP")
    assert await server.post({"ok": True, "result": group}) == 200
    await Resident_(fake, ALICE, server.deliver).say("/start", "/delete")
    assert await scalar_count(sessionmaker, InboundUpdate) == 1
    assert fake.texts_to("group-1") == []


async def test_ykien_serve_registers_and_answers_the_zalo_bot(database_url):
    """The real `ykien serve` mounts the channel, registers its webhook and answers."""
    async with FakeZaloBot() as fake, aiohttp.ClientSession() as http:
        settings = Settings(database_url=database_url, zalo_bot_token=fake.token,
                            zalo_bot_api_url=fake.url, zalo_bot_webhook_secret=SECRET,
                            public_url="https://ykien.example.gov.vn")
        async with running_server(settings) as base:
            path = fake.webhook["url"].removeprefix(settings.public_url)
            assert path.startswith("/zalobot/") and fake.webhook["secret_token"] == SECRET
            body = json.dumps({"ok": True, "result": fake.text_update(ALICE, "/start")})
            async with http.post(base + path, data=body,
                                 headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200
            await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == ALICE
                                and "/delete" in c.text, timeout=20)
