"""`ykien web serve`: the officials' workspace alone, beside a bot that polls. It registers no
webhook and sends nothing, so `ykien run` keeps its updates; run as an admin runs it, a
separate process against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import signal

import aiohttp

from tests.cli.test_webhook_cli import environment, fake, finished, start  # noqa: F401

LISTENING = re.compile(rb"workspace listening on [^:]+:(\d+)")


async def test_the_workspace_alone_touches_no_chat_platform(
    fake, database_url, tmp_path  # noqa: F811
):
    process = await start(environment(fake, database_url, LOG_LEVEL="INFO"), tmp_path,
                          "web", "serve", "--host", "127.0.0.1", "--port", "0")
    try:
        assert process.stderr is not None
        port = None
        while port is None:
            line = await asyncio.wait_for(process.stderr.readline(), timeout=120)
            assert line, "ykien web serve ended before listening"
            found = LISTENING.search(line)
            port = int(found[1]) if found else None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200
            async with http.get(f"http://127.0.0.1:{port}/admin/",
                                allow_redirects=False) as page:
                assert page.status in (302, 303, 401), page.status  # sign in first
    finally:
        process.send_signal(signal.SIGTERM)
        code, stderr = await finished(process)
    assert code == 0, stderr
    assert fake.calls == [], [call.method for call in fake.calls]  # not one Bot API call


async def test_the_workspace_needs_its_public_address(fake, database_url, tmp_path):  # noqa: F811
    env = environment(fake, database_url, PUBLIC_URL="")
    code, stderr = await finished(await start(env, tmp_path, "web", "serve", "--port", "0"))
    assert code == 2 and "YKIEN_PUBLIC_URL" in stderr and "Traceback" not in stderr
