"""The webhook server of `ykien serve` under a careless or hostile sender (issue 15, items 10-13
and the gaps its tests had): one flooding chat slows only itself; bad requests get a 4xx with
nothing stored and no traceback; an update that cannot be understood is recorded failed once;
half-sent requests are cut off; the server does not name its software; a failed store is a
503 and the platform's retry is handled. Through the real server and the fake platforms."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from bot.channels.zalo_bot import ZaloBotChannel
from bot.service import ChatService
from bot.web.webhook import WebhookReceiver, make_app, too_deep
from storage.models import InboundUpdate
from tests.channels.fake_zalo_bot import FakeZaloBot
from tests.conftest import ROOT
from tests.web.platforms import (
    CHANNELS,
    PATHS,
    all_platforms,
    signed_headers,
    until,
    zalo_event,
)
from tests.web.test_webhook import GREETING

ALICE, BOB = 4001, 4002


async def stored(sessionmaker, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(InboundUpdate).where(*where))


def telegram_start(platforms, chat: int, text: str = "/start") -> dict:
    platforms.telegram.push_text(chat, text)
    return platforms.telegram.take_update()


def greeting_to(chat: int):
    return lambda call: (call.method == "sendMessage" and call.chat_id == chat
                         and GREETING in call.text)


def not_greeting_to(chat: int):
    return lambda call: (call.method == "sendMessage" and call.chat_id == chat
                         and GREETING not in call.text)


# ---- item 10: one chat cannot fill the backlog --------------------------------------------


async def test_a_flooding_chat_only_slows_itself(database_url, sessionmaker):
    async with all_platforms(database_url, backlog=6, chat_backlog=3) as platforms:
        fake = platforms.telegram
        released = fake.hold(greeting_to(ALICE))  # Alice's answers hang: her updates queue
        for _ in range(3):
            assert await platforms.post("telegram", telegram_start(platforms, ALICE)) == 200
        await fake.wait_for(greeting_to(ALICE), arrived=True)
        for _ in range(5):  # beyond her bound: acknowledged, dropped
            assert await platforms.post("telegram", telegram_start(platforms, ALICE)) == 200
        assert await stored(sessionmaker, InboundUpdate.chat_key == str(ALICE)) == 3
        # She is told once, in her language, when she can write again.
        notice = await fake.wait_for(not_greeting_to(ALICE))
        assert "gửi lại" in notice.text and ":" in notice.text, notice.text
        # Everyone else is served as before.
        assert await platforms.post("telegram", telegram_start(platforms, BOB)) == 200
        await fake.wait_for(greeting_to(BOB))
        async with platforms.http.get(platforms.url + "/healthz") as response:
            assert response.status == 200
        released.set()
        await until(lambda: _sent(fake, greeting_to(ALICE), 3))
        await asyncio.sleep(0.3)
    assert len([call for call in fake.calls if not_greeting_to(ALICE)(call)]) == 1
    assert len([call for call in fake.calls if greeting_to(ALICE)(call)]) == 3


async def _sent(fake, predicate, count: int) -> bool:
    return len([call for call in fake.calls if predicate(call)]) >= count


async def test_healthz_says_when_the_server_cannot_take_work(database_url):
    async with all_platforms(database_url, backlog=2, spill=0) as platforms:
        fake = platforms.telegram
        released = fake.hold(greeting_to(ALICE))
        for chat in (ALICE, ALICE):
            assert await platforms.post("telegram", telegram_start(platforms, chat)) == 200
        await fake.wait_for(greeting_to(ALICE), arrived=True)
        async with platforms.http.get(platforms.url + "/healthz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "busy" and body["database"] is True
        assert await platforms.post("telegram", telegram_start(platforms, BOB)) == 503
        released.set()
        await fake.wait_for(greeting_to(ALICE))

        async def healthy() -> bool:
            async with platforms.http.get(platforms.url + "/healthz") as response:
                return response.status == 200

        await until(healthy)


# ---- item 11: what is not a request from the platform -------------------------------------


def nested(depth: int) -> list[bytes]:
    return [b"[" * depth + b"]" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
            b'{"update_id": 1, "event_name": "x", "message": ' + b"[" * depth + b"]" * depth
            + b"}"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_deeply_nested_json_is_refused_with_400(channel, database_url, sessionmaker,
                                                      caplog):
    async with all_platforms(database_url) as platforms:
        for body in nested(100_000):
            assert await platforms.post(channel, body) == 400
        # Nesting a platform never sends, yet far from the parser's limit, is refused too.
        assert await platforms.post(channel, nested(200)[0]) == 400
    assert await stored(sessionmaker) == 0
    assert "Traceback" not in caplog.text


def test_a_body_made_to_slow_the_nesting_check_is_measured_in_one_pass():
    # A string never closed, full of escaped quotes, ending in a lone backslash: a check that
    # started again at each quote would take hours over this megabyte (quadratic), holding
    # the server (and the interpreter's lock) for everyone. Checked in a process of its own,
    # so that a slow check fails the test instead of hanging it.
    script = ("from bot.web.webhook import too_deep; "
              "print(too_deep(b'[' * 40 + b'\"' + b'\\\\\"' * 500_000 + b'\\\\'))")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("the nesting check took over 30 s for one megabyte")
    assert done.stdout.strip() == "True", done.stderr  # 40 deep: the string hides nothing


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner, max_size=3),
    max_leaves=40,
)


@given(json_values, st.integers(min_value=0, max_value=12))
def test_the_nesting_check_counts_what_json_nests(value, limit):
    assert too_deep(json.dumps(value).encode(), limit) == (depth(value) > limit)


async def raw_request(url: str, request: bytes, *, wait: float = 10.0) -> bytes:
    """Send bytes as they are to the server; what it answers before closing (or `wait`)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("value", [b"mac=\xc3\xa9\xff\xfe", b"\xff" * 64, "bí mật".encode()])
async def test_a_secret_header_that_is_not_ascii_is_refused(
    channel, value, database_url, sessionmaker, caplog
):
    async with all_platforms(database_url) as platforms:
        body = json.dumps(zalo_event("7001", "user_send_text",
                                     message={"text": "hi", "msg_id": "m1"})).encode()
        [name] = signed_headers(channel, body)
        head = (f"POST {PATHS[channel]} HTTP/1.1\r\nHost: ykien\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n").encode() + name.encode() + b": " + value + b"\r\n\r\n"
        answer = await raw_request(platforms.url, head + body)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:100]
    assert await stored(sessionmaker) == 0
    assert "Traceback" not in caplog.text


# ---- item 12: an update that cannot be understood -----------------------------------------


def chat_id_as_a_list(update_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1700000000, "text": text,
        "chat": {"id": [ALICE, BOB], "type": "private", "first_name": "A"},
        "from": {"id": ALICE, "is_bot": False, "first_name": "A"}}}


async def test_a_malformed_update_is_recorded_failed_once_and_blocks_nothing(
    database_url, sessionmaker, caplog
):
    async with all_platforms(database_url, webhook_lease_seconds=2) as platforms:
        for number in (900001, 900002):  # the second waits for nothing: the first failed
            assert await platforms.post("telegram", chat_id_as_a_list(number, "/start")) == 200

        async def both_failed() -> bool:
            return await stored(sessionmaker, InboundUpdate.handled_at.is_not(None)) == 2

        await until(both_failed)
        await asyncio.sleep(3)  # a sweep or two: nothing tries them again
        assert await platforms.post("telegram", telegram_start(platforms, ALICE)) == 200
        await platforms.telegram.wait_for(greeting_to(ALICE))
    async with sessionmaker() as session:
        rows = list(await session.scalars(select(InboundUpdate).order_by(InboundUpdate.id)))
    assert [(row.failed, row.attempts <= 1, row.payload) for row in rows[:2]] == [
        (True, True, ""), (True, True, "")]
    warnings = [record for record in caplog.records if "could not be handled" in
                record.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)
    assert "Traceback" not in caplog.text


# ---- item 13: slow requests, the Server header --------------------------------------------


async def test_a_request_that_never_finishes_its_headers_is_cut_off(database_url):
    async with all_platforms(database_url, read_timeout=0.5) as platforms:
        started = asyncio.get_running_loop().time()
        answer = await raw_request(
            platforms.url, b"POST /zalo/webhook HTTP/1.1\r\nHost: ykien\r\nX-Half: ",
            wait=10)
        waited = asyncio.get_running_loop().time() - started
    assert waited < 5, waited  # closed by the server, not by the test giving up
    assert answer in (b"",) or answer.startswith(b"HTTP/1.1 408"), answer[:100]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_body_that_never_arrives_is_cut_off(channel, database_url, sessionmaker):
    async with all_platforms(database_url, read_timeout=0.5) as platforms:
        body = b'{"update_id": 1, '
        started = asyncio.get_running_loop().time()
        headers = "".join(f"{name}: {value}\r\n"
                          for name, value in signed_headers(channel, body).items())
        answer = await raw_request(platforms.url, (
            f"POST {PATHS[channel]} HTTP/1.1\r\nHost: ykien\r\nContent-Length: 5000\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n").encode() + body, wait=10)
        waited = asyncio.get_running_loop().time() - started
    assert waited < 5, waited
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert await stored(sessionmaker) == 0


async def test_no_answer_names_the_server_software(database_url):
    async with all_platforms(database_url) as platforms:
        http, url = platforms.http, platforms.url
        answers = []
        for method, path, data in (("GET", "/healthz", None), ("GET", "/nothing-here", None),
                                   ("POST", PATHS["telegram"], b"{}"),
                                   ("POST", PATHS["zalo"], b"x" * (2 * 1024 * 1024)),
                                   ("GET", "/zalo/oauth/callback", None)):
            async with http.request(method, url + path, data=data) as response:
                answers.append((response.status, response.headers.get("Server", "")))
    assert all("aiohttp" not in server.lower() and "python" not in server.lower()
               for _, server in answers), answers
    assert [status for status, _ in answers] == [200, 404, 403, 413, 400]


@pytest.mark.parametrize("request_line", [
    b"GARBAGE\r\n\r\n",
    b"POST /zalo/webhook HTTP/1.1\r\nHost: ykien\r\nNo colon here\r\n\r\n",
    b"POST /zalo/webhook HTTP/1.1\r\nHost: ykien\r\nContent-Length: -5\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: ykien\r\n\r\n",
])
async def test_a_request_that_is_not_http_is_refused_quietly(database_url, caplog,
                                                             request_line):
    async with all_platforms(database_url) as platforms:
        answer = await raw_request(platforms.url, request_line)
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith((b"http/1.0 4", b"http/1.1 4")), answer[:100]
    assert b"aiohttp" not in head and b"python" not in head, head
    assert "Traceback" not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# ---- the gaps: a store that fails, a Zalo bot without a secret ----------------------------


async def test_an_update_that_cannot_be_stored_is_answered_503_and_its_retry_handled(
    database_url, sessionmaker
):
    async with all_platforms(database_url) as platforms:
        update = telegram_start(platforms, ALICE)
        async with sessionmaker() as session, session.begin():
            await session.execute(_rename("inbound_updates", "inbound_updates_away"))
        try:
            assert await platforms.post("telegram", update) == 503
        finally:
            async with sessionmaker() as session, session.begin():
                await session.execute(_rename("inbound_updates_away", "inbound_updates"))
        assert platforms.sent_to("telegram", str(ALICE)) == []
        assert await platforms.post("telegram", update) == 200  # Telegram's retry
        await platforms.telegram.wait_for(greeting_to(ALICE))
    assert await stored(sessionmaker) == 1


def _rename(table: str, to: str):
    return text(f"ALTER TABLE {table} RENAME TO {to}")


async def test_a_zalo_bot_without_a_secret_refuses_every_request(sessionmaker):
    async with FakeZaloBot() as fake:
        channel = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker),
                                 webhook_secret="")
        runner = web.AppRunner(make_app([WebhookReceiver(sessionmaker, channel)]))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{channel.webhook_path}"
        try:
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"X-Bot-Api-Secret-Token": ""}):
                    body = json.dumps(fake.text_update("u1", "/start"))
                    async with http.post(url, data=body, headers=headers) as response:
                        assert response.status == 403
        finally:
            await runner.cleanup()
            await channel.stop()
    assert await stored(sessionmaker) == 0


async def test_the_oauth_callback_does_not_tell_whether_an_authorisation_is_under_way(
    database_url, sessionmaker
):
    from bot.channels.zalo_oa.api import CHANNEL
    from storage import tokens
    from storage.models import utcnow

    async def answer(platforms, state: str) -> tuple[int, str]:
        async with platforms.http.get(platforms.url + "/zalo/oauth/callback",
                                      params={"code": "CODE-1", "state": state}) as response:
            return response.status, await response.text()

    async with all_platforms(database_url) as platforms:
        nothing_pending = await answer(platforms, "guess")
        async with sessionmaker() as session, session.begin():
            await tokens.start_authorisation(session, CHANNEL, "v" * 86, "the-state", utcnow())
        other_state = await answer(platforms, "guess")
    assert nothing_pending == other_state
    assert nothing_pending[0] == 400 and "ykien zalo auth" in nothing_pending[1]
