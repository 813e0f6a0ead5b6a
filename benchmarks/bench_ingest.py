"""Webhook ingest: comment updates per second through `ykien serve` (a separate process,
answering through the fake Bot API in a third one), against a bare aiohttp handler that only
parses the JSON, on SQLite (and PostgreSQL when YKIEN_BENCH_POSTGRES_URL is set).

Run by hand:  python benchmarks/bench_ingest.py [N] [CONCURRENCY]
Each of N residents is waiting to comment; a concurrent aiohttp client POSTs one comment
update each, with the secret header. Prints acknowledged/s (200 = stored), handled/s (every
comment recorded and its receipt sent) and the ratio to the bare handler; writes
benchmarks/results/ingest.txt.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, write_results  # noqa: E402
from fake_bot_api import FakeBotApi  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path  # noqa: E402
from bot.draftfile import load_draft_file  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from handlers.onboarding import CONSENT_VERSION  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import create_draft  # noqa: E402
from storage.models import Comment, DraftStatus, InboundUpdate, utcnow  # noqa: E402
from storage.queries import add_residents_in_bulk  # noqa: E402

SECRET = "bench_Secret-1"
DRAINING: set[asyncio.Task[bytes]] = set()
LISTENING = re.compile(r"listening on [\d.]+:(\d+)")
BARE = """
import json, sys
from aiohttp import web
async def hook(request):
    json.loads(await request.read())
    return web.Response(status=200)
app = web.Application(client_max_size=1024 * 1024)
app.router.add_post("/{tail:.*}", hook)
async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print("listening on 127.0.0.1:%d" % runner.addresses[0][1], file=sys.stderr, flush=True)
    await __import__("asyncio").Event().wait()
__import__("asyncio").run(main())
"""


def updates(first_chat: int, count: int) -> list[dict]:
    now = int(time.time())
    return [
        {"update_id": first_chat + i, "message": {
            "message_id": 1, "date": now, "text": f"Góp ý số {i}: nên thu gom rác lúc 18 giờ.",
            "chat": {"id": first_chat + i, "type": "private"},
            "from": {"id": first_chat + i, "is_bot": False, "first_name": "Dân",
                     "language_code": "vi"}}}
        for i in range(count)
    ]


async def prepare(url: str, first_chat: int, count: int) -> None:
    """A draft open for comments, and `count` residents each in its Comment step."""
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        spec = load_draft_file(ROOT / "examples" / "draft.toml", translator("en"))
        draft = await create_draft(session, spec)
        draft.status = DraftStatus.OPEN  # as if broadcast (to nobody: no sends to measure)
        now = utcnow()
        await add_residents_in_bulk(session, [
            {"channel": "telegram", "platform_id": str(first_chat + i), "language": "vi",
             "commune_code": 15148, "consent_at": now, "consent_version": "bench",
             "subscribed": True, "reachable": True, "awaiting": f"comment:{draft.id}",
             "awaiting_since": now, "held_text": "", "notice_version": CONSENT_VERSION,
             "created_at": now}
            for i in range(count)
        ])
        await session.commit()


async def start(args: list[str], env: dict[str, str]) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    async with asyncio.timeout(120):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise RuntimeError("the server stopped before listening")
            found = LISTENING.search(line)
            if found:
                break
    DRAINING.add(asyncio.create_task(process.stderr.read()))  # keep the pipe flowing
    return process, int(found.group(1))


async def post_all(url: str, bodies: list[dict], concurrency: int) -> float:
    """Seconds to get a 200 for every body, `concurrency` requests at a time."""
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                while True:
                    async with http.post(url, json=body,
                                         headers={SECRET_HEADER: SECRET}) as response:
                        await response.read()
                        if response.status == 200:
                            break
                        assert response.status == 503, response.status  # backlog: retry

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def start_serve(url: str, api: FakeBotApi) -> tuple[asyncio.subprocess.Process, int]:
    """`ykien serve` on a free port of 127.0.0.1, answering through the fake Bot API, on the
    database of `url` (its INFO log line says where it listens)."""
    env = {**os.environ, "YKIEN_DATABASE_URL": url, "YKIEN_TELEGRAM_TOKEN": api.token,
           "YKIEN_TELEGRAM_API_URL": api.url, "YKIEN_TELEGRAM_WEBHOOK_SECRET": SECRET,
           "YKIEN_PUBLIC_URL": "https://bench.example", "YKIEN_TELEGRAM_MESSAGES_PER_SECOND": "0",
           "YKIEN_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}
    return await start(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0"], env)


async def all_handled(sessionmaker) -> None:
    """Wait until every update stored has been handled."""
    while True:
        async with sessionmaker() as session:
            left = await session.scalar(
                select(func.count()).where(InboundUpdate.handled_at.is_(None)))
        if not left:
            return
        await asyncio.sleep(0.05)


async def measure_serve(url: str, api: FakeBotApi, count: int, concurrency: int,
                        first_chat: int) -> tuple[float, float]:
    await prepare(url, first_chat, count)
    process, port = await start_serve(url, api)
    try:
        hook = f"http://127.0.0.1:{port}{telegram_path(SECRET)}"
        started = time.perf_counter()
        acknowledged = await post_all(hook, updates(first_chat, count), concurrency)
        async with open_database(url) as sessionmaker:
            await all_handled(sessionmaker)
            handled = time.perf_counter() - started
            async with sessionmaker() as session:
                comments = await session.scalar(select(func.count()).select_from(Comment))
        assert comments is not None and comments >= count, comments
    finally:
        process.terminate()
        await process.wait()
    return count / acknowledged, count / handled


async def measure_bare(count: int, concurrency: int) -> float:
    process, port = await start([sys.executable, "-c", BARE], dict(os.environ))
    try:
        seconds = await post_all(f"http://127.0.0.1:{port}/hook", updates(1, count), concurrency)
    finally:
        process.terminate()
        await process.wait()
    return count / seconds


async def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    lines = [f"webhook ingest, {count} comment updates, client concurrency {concurrency}",
             environment("aiohttp", "SQLAlchemy", "python-telegram-bot")]
    bare = await measure_bare(count, concurrency)
    lines.append(f"bare aiohttp handler (parse JSON, answer 200): {bare:,.0f} updates/s")
    with tempfile.TemporaryDirectory() as folder, FakeBotApi() as api:
        targets = {"sqlite": f"sqlite+aiosqlite:///{folder}/bench.db"}
        if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
            targets["postgres"] = os.environ["YKIEN_BENCH_POSTGRES_URL"]
        for name, url in targets.items():
            first_chat = 10_000_000 + int(time.time()) % 1_000_000 * 1000
            acked, handled = await measure_serve(url, api, count, concurrency, first_chat)
            lines.append(
                f"{name}: ykien serve acknowledged {acked:,.0f} updates/s "
                f"({acked / bare:.2f}x bare), all handled (comment stored, receipt sent) at "
                f"{handled:,.0f} updates/s ({handled / bare:.2f}x bare)"
            )
    print("\n".join(lines))
    print(f"written to {write_results('ingest.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
