"""`ykien serve` end to end: updates POSTed to the real webhook server, answered by the real
Telegram adapter through the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path
from bot.config import Settings
from storage import inbound
from storage.db import open_database
from storage.models import Comment, InboundUpdate, utcnow
from tests.channels.fake_telegram import Call, FakeTelegram
from tests.channels.test_telegram_e2e import Chat
from tests.conftest import add_draft
from tests.web.serving import running_server

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

ALICE, BOB, CAROL = 2001, 2002, 2003
SECRET = "s3cret_Token-for-tests"
PUBLIC_URL = "https://ykien.example"
GREETING, HELP = "Xin chào", "Cách tham gia"  # in the answers to /start and /help


@dataclass
class Server:
    """A running `serve()`: its address, and how to POST to its Telegram webhook."""

    fake: FakeTelegram
    url: str
    http: aiohttp.ClientSession

    async def post(
        self, body: bytes | str | dict, secret: str | None = SECRET
    ) -> aiohttp.ClientResponse:
        data = json.dumps(body) if isinstance(body, dict) else body
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with self.http.post(
            self.url + telegram_path(SECRET), data=data, headers=headers
        ) as response:
            await response.read()
            return response

    async def deliver(self) -> None:
        """POST the update the fake built last (instead of letting it wait for polling)."""
        response = await self.post(self.fake.take_update())
        assert response.status == 200


@contextlib.asynccontextmanager
async def serving(
    fake: FakeTelegram, database_url: str, backlog: int | None = None, *,
    lease_seconds: int = 10, **options: Any,
) -> AsyncIterator[Server]:
    """`serve()` answering through `fake`; `options` go to serve() (spill...)."""
    settings = Settings(
        database_url=database_url, telegram_token=fake.token, telegram_api_url=fake.url,
        telegram_webhook_secret=SECRET, public_url=PUBLIC_URL,
        # Pacing is tested in test_pacing; here a held reply must hold its update.
        telegram_messages_per_second=0, webhook_lease_seconds=lease_seconds,
    )
    async with (running_server(settings, backlog, **options) as address,
                aiohttp.ClientSession() as http):
        yield Server(fake, address, http)


class WebhookChat(Chat):
    """A resident's chat whose updates reach the bot by webhook."""

    def __init__(self, server: Server, chat_id: int) -> None:
        super().__init__(server.fake, chat_id)
        self.server = server

    async def say(self, text: str, expect: str, reply_to: int | None = None) -> dict:
        since = len(self.fake.calls)
        self.fake.push_text(self.chat_id, text, reply_to=reply_to)
        await self.server.deliver()
        return await self._expect(since, expect)

    async def press(self, data_prefix: str, expect: str) -> dict:
        message_id, data = self.find_button(data_prefix)
        since = len(self.fake.calls)
        self.fake.push_callback(self.chat_id, data, message_id)
        await self.server.deliver()
        return await self._expect(since, expect)


def reply_to(chat_id: int, contains: str = ""):
    return lambda call: (
        call.method == "sendMessage" and call.chat_id == chat_id
        and contains in str(call.params.get("text", ""))
    )


async def stored_rows(database_url: str) -> list[InboundUpdate]:
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        return list(await session.scalars(select(InboundUpdate).order_by(InboundUpdate.id)))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def test_an_update_reaches_the_conversation_and_is_answered(fake, database_url):
    async with serving(fake, database_url) as server:
        await WebhookChat(server, ALICE).say("/start", GREETING)
    [row] = await stored_rows(database_url)
    assert row.handled_at is not None and row.attempts == 1
    assert (row.chat_key, row.payload) == ("", "")  # handled: neither who nor what is kept


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_without_the_right_secret_nothing_is_stored_or_answered(
    fake, database_url, secret
):
    async with serving(fake, database_url) as server:
        fake.push_text(ALICE, "/start")
        response = await server.post(fake.take_update(), secret=secret)
        assert response.status == 403
        # The same update with the secret is handled: nothing of the first one was kept.
        fake.push_text(ALICE, "/help")
        await server.deliver()
        await fake.wait_for(reply_to(ALICE, HELP))
    assert len(await stored_rows(database_url)) == 1
    assert len(fake.calls_to("sendMessage", ALICE)) == 1


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"', b"{}", b'{"update_id": "7"}',
])
async def test_what_is_not_an_update_is_refused_with_400(fake, database_url, body):
    async with serving(fake, database_url) as server:
        response = await server.post(body)
        assert response.status == 400
    assert await stored_rows(database_url) == []


async def test_an_update_that_cannot_be_read_is_acknowledged_not_stored(
    fake, database_url, caplog
):
    # Telegram would only send it again, and then drop it unseen (issue 15, item 17).
    async with serving(fake, database_url) as server:
        response = await server.post(b'{"update_id": 7, "message": "not a message"}')
        assert response.status == 200
    assert await stored_rows(database_url) == []
    assert "a message update could not be read" in caplog.text


async def test_a_body_over_a_megabyte_is_refused_with_413(fake, database_url):
    async with serving(fake, database_url) as server:
        fake.push_text(ALICE, "x" * 4000)
        update = fake.take_update()
        padded = json.dumps(update)[:-1] + ', "padding": "' + "x" * (1024 * 1024) + '"}'
        response = await server.post(padded)
        assert response.status == 413
        response = await server.post(update)  # the same update at its real size
        assert response.status == 200
        await fake.wait_for(reply_to(ALICE))
    assert len(await stored_rows(database_url)) == 1


async def test_an_update_delivered_twice_is_handled_once(fake, database_url):
    async with serving(fake, database_url) as server:
        alice = WebhookChat(server, ALICE)
        await alice.say("/start", "/delete")
        await alice.press("agree:", "Cam Tu")
        await alice.say("cẩm tú", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
        await alice.press("commune:15148", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
        async with open_database(database_url) as sessionmaker:
            draft = await add_draft(sessionmaker)
        await alice._expect(0, draft.title)  # the delivery worker of `serve` sent it
        await alice.press(f"comment:{draft.id}", "1.000")

        since = len(fake.calls)
        fake.push_text(ALICE, "Nên thu gom rác lúc 18 giờ.")
        update = fake.take_update()
        for _ in range(3):  # Telegram retried: the 200 was lost on the way
            response = await server.post(update)
            assert response.status == 200
        await alice._expect(since, draft.title)  # the receipt
        fake.push_text(ALICE, "/help")  # answered after the comment's receipt: all handled
        await server.deliver()
        await alice._expect(since, "/delete")
    receipts = [call for call in fake.calls[since:] if call.chat_id == ALICE
                and draft.title in str(call.params.get("text", ""))]
    assert len(receipts) == 1
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Comment)) == 1


async def test_updates_stored_but_never_handled_are_handled_at_start(fake, database_url):
    # A crash after the 200: the rows are there, nothing was answered.
    fake.push_text(ALICE, "/start")
    first = fake.take_update()
    fake.push_text(ALICE, "/help")
    second = fake.take_update()
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        for update in (first, second):
            session.add(InboundUpdate(
                channel="telegram", update_id=str(update["update_id"]), chat_key=str(ALICE),
                payload=json.dumps(update), received_at=utcnow(),
            ))
        await session.commit()
    async with serving(fake, database_url):
        await fake.wait_for(reply_to(ALICE, GREETING))
        await fake.wait_for(reply_to(ALICE, HELP))
    texts = [call.params["text"] for call in fake.calls_to("sendMessage", ALICE)]
    assert len(texts) == 2 and HELP not in texts[0]  # the greeting, then the help
    assert all(row.handled_at is not None for row in await stored_rows(database_url))


async def test_stored_updates_this_version_cannot_take_are_given_up_not_held(
    fake, database_url
):
    """Rows left from before a restart that cannot be read again (no body, a body that is no
    update, one that is no resident's) are recorded as failed and hold no chat back."""
    fake.push_text(ALICE, "/start")
    start = fake.take_update()
    number = int(start["update_id"])
    group = {"update_id": number - 1, "message": {
        "message_id": 9, "date": 0, "text": "hi", "chat": {"id": -100, "type": "group"},
        "from": {"id": ALICE, "is_bot": False, "first_name": "A"}}}
    bodies = {str(number - 3): "", str(number - 2): json.dumps({"no": "update"}),
              str(number - 1): json.dumps(group), str(number): json.dumps(start)}
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        session.add_all(InboundUpdate(
            channel="telegram", update_id=update_id, chat_key=str(ALICE), payload=body,
            received_at=utcnow(),
        ) for update_id, body in bodies.items())
        await session.commit()
    async with serving(fake, database_url):
        await fake.wait_for(reply_to(ALICE, GREETING))
    outcome = {row.update_id: (row.handled_at is not None, row.failed)
               for row in await stored_rows(database_url)}
    assert outcome == {str(number - 3): (True, True), str(number - 2): (True, True),
                       str(number - 1): (True, True), str(number): (True, False)}


async def test_chats_are_handled_concurrently_and_each_in_order(fake, database_url):
    released = fake.hold(reply_to(ALICE))  # Alice's replies hang on the way out
    async with serving(fake, database_url) as server:
        fake.push_text(ALICE, "/start")
        await server.deliver()
        fake.push_text(ALICE, "/help")
        await server.deliver()
        await fake.wait_for(reply_to(ALICE), arrived=True)
        # Bob is answered while Alice's first reply is still held.
        await WebhookChat(server, BOB).say("/start", GREETING)
        # Alice's second update waits for her first: not even taken up yet.
        assert [row.attempts for row in await stored_rows(database_url)
                if row.chat_key == str(ALICE)] == [1, 0]
        released.set()
        await fake.wait_for(reply_to(ALICE, HELP))
    texts = [call.params["text"] for call in fake.calls_to("sendMessage", ALICE)]
    assert len(texts) == 2 and HELP not in texts[0] and HELP in texts[1]


async def test_a_full_backlog_and_spill_answer_503_so_telegram_retries(fake, database_url):
    released = fake.hold(reply_to(ALICE))
    async with serving(fake, database_url, backlog=1, spill=1) as server:
        fake.push_text(ALICE, "/start")
        await server.deliver()
        await fake.wait_for(reply_to(ALICE), arrived=True)  # in memory until released
        fake.push_text(CAROL, "/start")
        await server.deliver()  # beyond the backlog: stored, waiting its turn
        fake.push_text(BOB, "/start")
        update = fake.take_update()
        response = await server.post(update)  # beyond the spill too
        assert response.status == 503
        assert len(await stored_rows(database_url)) == 2
        released.set()
        await fake.wait_for(reply_to(ALICE))
        # Telegram's retry, once there is room (the row of Alice's update is marked handled
        # just after her reply; wait for that rather than for the clock).
        for _ in range(1000):
            if all(row.handled_at for row in await stored_rows(database_url)):
                break
            await asyncio.sleep(0)
        response = await server.post(update)
        assert response.status == 200
        await fake.wait_for(reply_to(BOB, GREETING))
        await fake.wait_for(reply_to(CAROL, GREETING))


async def test_healthz_reports_the_database(fake, database_url):
    async with (
        serving(fake, database_url) as server,
        server.http.get(server.url + "/healthz") as response,
    ):
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok" and body["database"] is True


async def test_two_servers_on_one_database_handle_a_stored_update_once(fake, database_url):
    fake.push_text(ALICE, "/start")
    update = fake.take_update()
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        session.add(InboundUpdate(
            channel="telegram", update_id=str(update["update_id"]), chat_key=str(ALICE),
            payload=json.dumps(update), received_at=utcnow(),
        ))
        await session.commit()
    released = fake.hold(reply_to(ALICE))
    async with serving(fake, database_url):
        await fake.wait_for(reply_to(ALICE), arrived=True)  # the first server is handling it
        async with serving(fake, database_url):  # finds it claimed: leaves it alone
            released.set()
            await fake.wait_for(reply_to(ALICE, GREETING))
    [row] = await stored_rows(database_url)
    assert row.handled_at is not None and row.attempts == 1
    assert len(fake.calls_to("sendMessage", ALICE)) == 1


async def test_of_two_processes_reading_the_same_row_one_claims_it(database_url):
    async with open_database(database_url) as first, open_database(database_url) as second:
        stored = await inbound.store(first, "telegram", "1", "42", "{}")
        assert stored is not None
        [seen_by_first] = await inbound.unhandled(
            first, "telegram", stale_after=timedelta(minutes=5), unclaimed=True, limit=10)
        [seen_by_second] = await inbound.unhandled(
            second, "telegram", stale_after=timedelta(minutes=5), unclaimed=True, limit=10)
        claims = await asyncio.gather(
            inbound.claim(first, seen_by_first), inbound.claim(second, seen_by_second))
        assert sorted(claims, key=str) == [1, None]
        assert await inbound.store(second, "telegram", "1", "42", "{}") is None  # a retry


async def test_serve_registers_the_webhook_with_its_secret(fake, database_url):
    async with serving(fake, database_url):
        call: Call = await fake.wait_for("setWebhook")
    assert call.params["url"] == PUBLIC_URL + telegram_path(SECRET)
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == [
        "message", "edited_message", "callback_query", "my_chat_member"
    ]
    assert SECRET not in call.params["url"]
    assert fake.calls_to("getUpdates") == [] and fake.calls_to("deleteWebhook") == []
