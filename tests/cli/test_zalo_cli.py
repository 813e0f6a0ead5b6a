"""`ykien run`, `ykien serve` and `ykien webhook delete` with Zalo configured, as an admin
runs them: a separate process, against the fake Zalo Bot platform where one is needed."""

from __future__ import annotations

import os

import pytest

from tests.channels.fake_zalo_bot import FakeZaloBot
from tests.cli.test_webhook_cli import finished, start
from tests.conftest import ROOT, TEST_SECRET_KEY

PUBLIC_URL = "https://consult.example.vn"


def environment(database_url: str, **settings: str) -> dict[str, str]:
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("YKIEN_")},
        "YKIEN_DATABASE_URL": database_url,
        "YKIEN_LANGUAGE": "en",
        "YKIEN_SECRET_KEY": TEST_SECRET_KEY,
        "PYTHONPATH": str(ROOT),
        **{f"YKIEN_{name}": value for name, value in settings.items()},
    }


@pytest.fixture
async def fake():
    async with FakeZaloBot() as server:
        yield server


async def test_run_with_only_an_official_account_says_to_serve(database_url, tmp_path):
    env = environment(database_url, ZALO_APP_ID="123", ZALO_APP_SECRET="s", ZALO_OA_SECRET="o")
    code, stderr = await finished(await start(env, tmp_path, "run"))
    assert code == 2
    assert "ykien serve" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("settings", "named"), [
    ({"ZALO_APP_ID": "123", "ZALO_APP_SECRET": "s", "PUBLIC_URL": PUBLIC_URL},
     ["YKIEN_ZALO_OA_SECRET"]),
    ({"ZALO_BOT_TOKEN": "1:x", "PUBLIC_URL": PUBLIC_URL}, ["YKIEN_ZALO_BOT_WEBHOOK_SECRET"]),
    ({"ZALO_BOT_TOKEN": "1:x", "ZALO_BOT_WEBHOOK_SECRET": "secret-123"}, ["YKIEN_PUBLIC_URL"]),
])
async def test_serve_names_the_missing_zalo_settings(database_url, tmp_path, settings, named):
    code, stderr = await finished(
        await start(environment(database_url, **settings), tmp_path, "serve", "--port", "0")
    )
    assert code == 2 and "Traceback" not in stderr
    assert all(name in stderr for name in named), stderr


async def test_a_zalo_bot_webhook_stops_polling_until_deleted(fake, database_url, tmp_path):
    fake.webhook = {"url": PUBLIC_URL + "/zalobot/abc"}
    env = environment(database_url, ZALO_BOT_TOKEN=fake.token, ZALO_BOT_API_URL=fake.url)
    code, stderr = await finished(await start(env, tmp_path, "run"))
    assert code == 1 and "ykien serve" in stderr and "Traceback" not in stderr
    assert fake.calls_to("getUpdates") == [] and fake.webhook["url"]
    code, _ = await finished(await start(env, tmp_path, "webhook", "delete"))
    assert code == 0 and not fake.webhook["url"]
