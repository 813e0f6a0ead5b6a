"""`ykien zalo auth --code ""` as an admin might type it by mistake: refused before anything
is sent to Zalo (issue 15, item 13). A separate process against the fake Zalo."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels.fake_zalo import APP_ID, APP_SECRET, OA_SECRET, FakeZalo
from tests.cli.test_webhook_cli import finished, start
from tests.cli.test_zalo_cli import environment


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    server = FakeZalo()
    await server.start()
    yield server
    await server.close()


@pytest.mark.parametrize("code", ["", "   ", "https://ykien.example/zalo/oauth/callback?code="])
async def test_an_empty_code_is_refused_and_nothing_sent(fake, database_url, tmp_path, code):
    env = environment(database_url, ZALO_APP_ID=APP_ID, ZALO_APP_SECRET=APP_SECRET,
                      ZALO_OA_SECRET=OA_SECRET, ZALO_OAUTH_URL=fake.url, ZALO_API_URL=fake.url,
                      PUBLIC_URL="https://ykien.example")
    started = await start(env, tmp_path, "zalo", "auth")  # an authorisation under way
    assert (await finished(started))[0] == 0
    status, stderr = await finished(await start(env, tmp_path, "zalo", "auth", "--code", code))
    assert status == 2, stderr
    assert "code" in stderr and "Traceback" not in stderr
    assert fake.calls == []
