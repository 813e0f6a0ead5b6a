"""`ykien zalo auth` and `ykien zalo status` through `bot.cli.main.main`, against the fake Zalo;
the OAuth callback page of `ykien serve`."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import update

from bot.channels.zalo_oa.channel import CALLBACK_PATH
from bot.cli.main import main
from bot.service import ChatService
from handlers.i18n import translator
from storage import tokens
from storage.models import ChannelToken, Delivery, DeliveryStatus, utcnow
from tests.channels.fake_zalo import APP_ID, APP_SECRET, OA_SECRET, FakeZalo
from tests.channels.test_zalo_oa import make_channel, queue_draft
from tests.chat import subscribe


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    server = FakeZalo()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def zalo_env(monkeypatch, database_url, fake):
    for name, value in {
        "YKIEN_DATABASE_URL": database_url, "YKIEN_LANGUAGE": "en", "YKIEN_TELEGRAM_TOKEN": "",
        "YKIEN_ZALO_APP_ID": APP_ID, "YKIEN_ZALO_APP_SECRET": APP_SECRET,
        "YKIEN_ZALO_OA_SECRET": OA_SECRET, "YKIEN_ZALO_API_URL": fake.url,
        "YKIEN_ZALO_OAUTH_URL": fake.url, "YKIEN_PUBLIC_URL": "https://ykien.example",
        "YKIEN_ZALO_ACCESS_TOKEN": "", "YKIEN_ZALO_REFRESH_TOKEN": "",
    }.items():
        monkeypatch.setenv(name, value)


async def ykien(*argv: str, stdin: str = "") -> int:
    """`ykien …` in a thread (it runs its own event loop; the fake serves on ours)."""
    sys.stdin = io.StringIO(stdin)
    try:
        return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 60)
    finally:
        sys.stdin = sys.__stdin__


def consent_query(output: str) -> dict[str, str]:
    url = next(line for line in output.splitlines() if "/v4/oa/permission?" in line)
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def test_auth_with_a_pasted_code_stores_tokens(zalo_env, fake, sessionmaker, capsys):
    assert await ykien("zalo", "auth") == 0  # nothing typed: finish later with --code
    out = capsys.readouterr().out
    query = consent_query(out)
    assert query["app_id"] == APP_ID
    assert query["redirect_uri"] == "https://ykien.example" + CALLBACK_PATH
    assert "ykien zalo auth --code" in out
    code = fake.consent(query["code_challenge"])
    assert await ykien("zalo", "auth", "--code", code) == 0
    assert "connected" in capsys.readouterr().out
    async with sessionmaker() as session:
        row = await tokens.get(session, "zalo")
    assert row.access_token in fake.access_tokens and row.refresh_token in fake.refresh_tokens
    assert row.pkce_verifier == "" and row.access_expires_at > utcnow() + timedelta(hours=24)


async def test_auth_accepts_the_whole_callback_address(zalo_env, fake, capsys):
    started = await ykien("zalo", "auth")
    query = consent_query(capsys.readouterr().out)
    assert started == 0
    code = fake.consent(query["code_challenge"])
    address = f"https://ykien.example{CALLBACK_PATH}?code={code}&state={query['state']}"
    assert await ykien("zalo", "auth", "--code", address) == 0


async def test_a_refused_code_says_why(zalo_env, fake, capsys):
    await ykien("zalo", "auth")
    capsys.readouterr()
    assert await ykien("zalo", "auth", "--code", "not-a-code") == 1
    assert "Zalo refused the code" in capsys.readouterr().err


async def test_the_callback_page_stores_tokens(zalo_env, fake, sessionmaker, capsys):
    await ykien("zalo", "auth")
    query = consent_query(capsys.readouterr().out)
    channel = make_channel(fake, ChatService(sessionmaker))
    runner = web.AppRunner(web.Application())
    runner.app.router.add_routes(channel.extra_routes())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    try:
        async with aiohttp.ClientSession() as http:
            code = fake.consent(query["code_challenge"])
            async with http.get(base, params={"code": code, "state": "forged"}) as response:
                assert response.status == 400
            async with http.get(base, params={"code": code, "state": query["state"]}) as response:
                assert response.status == 200
                # The page speaks the command line's language (Vietnamese by default).
                assert translator("vi")("The Zalo OA is connected. You can close this page.") \
                    == await response.text()
    finally:
        await runner.cleanup()
        await channel.stop()
    async with sessionmaker() as session:
        row = await tokens.get(session, "zalo")
    assert row.refresh_token in fake.refresh_tokens


async def test_status_shows_tokens_problem_and_held_messages(zalo_env, fake, sessionmaker,
                                                              capsys):
    assert await ykien("zalo", "status") == 1
    assert "ykien zalo auth" in capsys.readouterr().out
    access, refresh = fake.issue_pair()
    async with sessionmaker() as session, session.begin():
        await tokens.save_pair(session, "zalo", access, refresh,
                               utcnow() + timedelta(hours=25), utcnow() + timedelta(days=90),
                               utcnow())
    service = ChatService(sessionmaker)
    await subscribe(service, "u1")
    await queue_draft(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Delivery).values(status=DeliveryStatus.HELD,
                                                        channel="zalo"))
    assert await ykien("zalo", "status") == 0
    out = capsys.readouterr().out
    assert "Access token valid until" in out and "Refresh token valid until" in out
    assert "1 message waits" in out
    async with sessionmaker() as session, session.begin():
        await session.execute(update(ChannelToken).values(
            problem="Zalo refused the tokens (Invalid refresh token); run: ykien zalo auth"))
    assert await ykien("zalo", "status") == 1
    assert "Not sending: Zalo refused the tokens" in capsys.readouterr().out


async def test_status_without_an_app_says_what_to_set(zalo_env, monkeypatch, capsys):
    monkeypatch.setenv("YKIEN_ZALO_APP_ID", "")
    assert await ykien("zalo", "status") == 2
    assert "YKIEN_ZALO_APP_ID" in capsys.readouterr().err
