"""`ykien serve`, `ykien run` and `ykien webhook delete` as an admin runs them: a separate
process against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable

import pytest

from bot.channels.telegram.receiving import telegram_path
from tests import ykien_process
from tests.channels.fake_telegram import Call, FakeTelegram
from tests.conftest import ROOT
from tests.ykien_process import Process

SECRET = "cli_Secret-123"
PUBLIC_URL = "https://consult.example.vn"


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


def environment(fake: FakeTelegram, database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "YKIEN_DATABASE_URL": database_url,
        "YKIEN_TELEGRAM_TOKEN": fake.token,
        "YKIEN_TELEGRAM_API_URL": fake.url,
        "YKIEN_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "YKIEN_PUBLIC_URL": PUBLIC_URL,
        "YKIEN_LANGUAGE": "en",
        "PYTHONPATH": str(ROOT),
        **{f"YKIEN_{name}": value for name, value in extra.items()},
    }


async def start(env: dict[str, str], tmp_path, *args: str) -> Process:
    return await ykien_process.start(
        args, env=env, cwd=tmp_path, stdout=ykien_process.PIPE, stderr=ykien_process.PIPE
    )


async def finished(process: Process) -> tuple[int, str]:
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def while_running(process: Process, waiting: Awaitable[Call]) -> Call:
    """What `waiting` gives, unless the process ends first: then fail at once (a process that
    could not start would otherwise leave the test waiting for the whole timeout)."""
    wanted = asyncio.ensure_future(waiting)
    ended = asyncio.ensure_future(process.wait())
    await asyncio.wait([wanted, ended], return_when=asyncio.FIRST_COMPLETED)
    if wanted.done():
        ended.cancel()
        return wanted.result()
    wanted.cancel()
    assert process.stderr is not None
    stderr = (await process.stderr.read()).decode()
    raise AssertionError(f"ykien ended with {process.returncode} before that: {stderr}")


async def test_serve_registers_the_webhook_and_stops_on_sigterm(fake, database_url, tmp_path):
    process = await start(environment(fake, database_url), tmp_path,
                          "serve", "--host", "127.0.0.1", "--port", "0")
    try:
        call = await while_running(process, fake.wait_for("setWebhook", timeout=120))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code, stderr = await finished(process)
    assert code == 0, stderr
    assert call.params["url"] == PUBLIC_URL + telegram_path(SECRET)
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == [
        "message", "edited_message", "callback_query", "my_chat_member"
    ]
    assert fake.webhook["url"] == call.params["url"]  # stopping leaves it for the others
    assert SECRET not in stderr and fake.token not in stderr


async def test_run_refuses_to_poll_while_a_webhook_is_registered(fake, database_url, tmp_path):
    fake.webhook = {"url": PUBLIC_URL + "/telegram/abc"}
    code, stderr = await finished(await start(environment(fake, database_url), tmp_path, "run"))
    assert code == 1
    assert "ykien serve" in stderr and "ykien webhook delete" in stderr
    assert "Traceback" not in stderr
    # Nothing that would remove the webhook: no polling, no deleteWebhook.
    assert fake.calls_to("getUpdates") == [] and fake.calls_to("deleteWebhook") == []
    assert fake.webhook["url"] == PUBLIC_URL + "/telegram/abc"


async def test_webhook_delete_lets_run_poll_again(fake, database_url, tmp_path):
    fake.webhook = {"url": PUBLIC_URL + "/telegram/abc"}
    env = environment(fake, database_url)
    code, _ = await finished(await start(env, tmp_path, "webhook", "delete"))
    assert code == 0 and fake.webhook["url"] == ""
    process = await start(env, tmp_path, "run")
    try:
        await while_running(process, fake.wait_for("getUpdates", arrived=True, timeout=120))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code, stderr = await finished(process)
    assert code == 0, stderr


@pytest.mark.parametrize(("settings", "named"), [
    ({"PUBLIC_URL": ""}, ["YKIEN_PUBLIC_URL"]),
    ({"TELEGRAM_WEBHOOK_SECRET": ""}, ["YKIEN_TELEGRAM_WEBHOOK_SECRET"]),
    ({"PUBLIC_URL": "", "TELEGRAM_WEBHOOK_SECRET": ""},
     ["YKIEN_PUBLIC_URL", "YKIEN_TELEGRAM_WEBHOOK_SECRET"]),
    ({"TELEGRAM_WEBHOOK_SECRET": "has spaces in it"}, ["YKIEN_TELEGRAM_WEBHOOK_SECRET"]),
    ({"TELEGRAM_WEBHOOK_SECRET": "x" * 257}, ["YKIEN_TELEGRAM_WEBHOOK_SECRET"]),
    ({"TELEGRAM_WEBHOOK_SECRET": "bí_mật"}, ["YKIEN_TELEGRAM_WEBHOOK_SECRET"]),
])
async def test_serve_without_a_usable_webhook_setting_says_what_to_set(
    fake, database_url, tmp_path, settings, named
):
    env = environment(fake, database_url, **settings)
    code, stderr = await finished(await start(env, tmp_path, "serve", "--port", "0"))
    assert code == 2
    assert all(name in stderr for name in named)
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    secret = settings.get("TELEGRAM_WEBHOOK_SECRET")
    assert not secret or secret not in stderr
    assert fake.calls == []  # nothing was asked of Telegram
