"""Flood control under load: 5,000 chats writing a comment each at once, with and without one
more chat sending 1,000 comments as fast as it can, through `ykien serve` (a separate process,
answering through the fake Bot API in a third one), on SQLite (and PostgreSQL when
YKIEN_BENCH_POSTGRES_URL is set).

Run by hand:  python benchmarks/bench_flood.py [CHATS] [FLOOD] [CONCURRENCY]
Each run starts from a fresh database: a draft open for comments, CHATS residents each in its
Comment step, and the flooder, whose messages all reply to the draft's message (on Telegram, a
comment each). The CHATS updates are posted CONCURRENCY at a time; the flooder posts its FLOOD
updates one after the other, as fast as the server acknowledges them, at the same time. For
every chat, its answer's latency is the time from posting its update to the fake Bot API
receiving the receipt. Prints the latencies without and with the flood, what the flooder got
(comments stored, answers), and writes benchmarks/results/flood.txt.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import SECRET, all_handled, start_serve, stop  # noqa: E402
from common import environment, postgres_database, write_results  # noqa: E402
from fake_bot_api import FakeBotApi  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path  # noqa: E402
from bot.draftfile import load_draft_file  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from handlers.onboarding import CONSENT_VERSION  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import create_draft  # noqa: E402
from storage.models import (  # noqa: E402
    Comment,
    DraftMessage,
    DraftStatus,
    Resident,
    utcnow,
)
from storage.queries import add_residents_in_bulk  # noqa: E402

FLOODER = 9_000_000_000  # the flooder's chat id (the others count up from 10,000,000)
DRAFT_MESSAGE = 1  # the message id of the draft the flooder replies to


def comment_update(chat: int, update_id: int, body: str, reply_to: int = 0) -> dict:
    message: dict = {
        "message_id": update_id % 1_000_000 + 2, "date": int(time.time()), "text": body,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Dân", "language_code": "vi"}}
    if reply_to:
        message["reply_to_message"] = {
            "message_id": reply_to, "date": int(time.time()), "text": "📢",
            "chat": {"id": chat, "type": "private"},
            "from": {"id": 123456, "is_bot": True, "first_name": "Bench"}}
    return {"update_id": update_id, "message": message}


async def prepare(url: str, first_chat: int, chats: int) -> None:
    """A draft open for comments, `chats` residents each in its Comment step, and the flooder
    (who has the draft's message to reply to)."""
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        spec = load_draft_file(ROOT / "examples" / "draft.toml", translator("en"))
        draft = await create_draft(session, spec)
        draft.status = DraftStatus.OPEN  # as if broadcast (to nobody: no sends to measure)
        now = utcnow()
        ids = [*(first_chat + i for i in range(chats)), FLOODER]
        await add_residents_in_bulk(session, [
            {"channel": "telegram", "platform_id": str(chat), "language": "vi",
             "commune_code": 15148, "consent_at": now, "consent_version": "bench",
             "subscribed": True, "reachable": True, "awaiting": f"comment:{draft.id}",
             "awaiting_since": now, "held_text": "", "notice_version": CONSENT_VERSION,
             "created_at": now}
            for chat in ids
        ])
        flooder = await session.scalar(select(Resident.id).where(
            Resident.platform_id == str(FLOODER)))
        assert flooder is not None
        session.add(DraftMessage(resident_id=flooder, message_id=str(DRAFT_MESSAGE),
                                 draft_id=draft.id))
        await session.commit()


async def post(http: aiohttp.ClientSession, hook: str, body: dict) -> None:
    while True:
        async with http.post(hook, json=body, headers={SECRET_HEADER: SECRET}) as response:
            await response.read()
            if response.status == 200:
                return
            assert response.status == 503, response.status  # backlog: the platform retries


async def post_others(hook: str, bodies: list[dict], concurrency: int) -> dict[str, float]:
    """Post every update, `concurrency` at a time: when each chat's update was posted."""
    posted: dict[str, float] = {}
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                posted[str(body["message"]["chat"]["id"])] = time.monotonic()
                await post(http, hook, body)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted


async def flood(hook: str, count: int) -> float:
    """The flooder's updates one after the other, as fast as they are acknowledged: seconds."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        for i in range(count):
            await post(http, hook, comment_update(FLOODER, FLOODER + i, f"Spam {i}",
                                                  reply_to=DRAFT_MESSAGE))
    return time.monotonic() - started


async def run(url: str, api: FakeBotApi, chats: int, flood_count: int, concurrency: int,
              first_chat: int) -> list[str]:
    await prepare(url, first_chat, chats)
    server = await start_serve(url, api)
    try:
        hook = f"http://127.0.0.1:{server.port}{telegram_path(SECRET)}"
        await api.areset()
        bodies = [comment_update(first_chat + i, first_chat + i, f"Góp ý số {i}: 18 giờ.")
                  for i in range(chats)]
        started = time.monotonic()
        flooding = asyncio.create_task(flood(hook, flood_count)) if flood_count else None
        posted = await post_others(hook, bodies, concurrency)
        flood_seconds = await flooding if flooding is not None else 0.0
        async with open_database(url) as sessionmaker:
            await all_handled(sessionmaker)
            everything = time.monotonic() - started
            async with sessionmaker() as session:
                stored = await session.scalar(select(func.count()).select_from(Comment))
                flooded = await session.scalar(
                    select(func.count()).select_from(Comment).join(Resident)
                    .where(Resident.platform_id == str(FLOODER)))
        replies = await asyncio.to_thread(api.first_replies)
        stats = await api.astats()
    finally:
        await stop(server)
    latencies = sorted(replies[chat] - at for chat, at in posted.items() if chat in replies)
    assert len(latencies) == chats, f"{chats - len(latencies)} chats got no answer"
    assert stored == chats + (flooded or 0)
    quantiles = statistics.quantiles(latencies, n=100)
    lines = [
        f"  the {chats:,} chats' answers: median {statistics.median(latencies):.2f} s, "
        f"p95 {quantiles[94]:.2f} s, p99 {quantiles[98]:.2f} s, max {latencies[-1]:.2f} s; "
        f"all {chats:,} handled in {everything:.1f} s ({chats / everything:,.0f}/s)",
    ]
    if flood_count:
        lines.append(
            f"  the flooder: {flood_count:,} updates acknowledged in {flood_seconds:.1f} s, "
            f"{flooded} comments stored, {stats['sent'] - chats} messages sent to it")
    return lines


@asynccontextmanager
async def fresh_database(name: str, target: str, folder: str) -> AsyncIterator[str]:
    """An empty database for one run: an SQLite file, or a PostgreSQL database made anew on
    the server of YKIEN_BENCH_POSTGRES_URL (dropped afterwards)."""
    if name == "sqlite":
        yield f"sqlite+aiosqlite:///{folder}/bench.db"
        return
    async with postgres_database(target, "flood") as url:
        yield url


async def main() -> None:
    chats = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    flood_count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    lines = [f"flood control: {chats:,} chats with one comment each, client concurrency "
             f"{concurrency}, with and without one chat sending {flood_count:,} comments; "
             f"defaults YKIEN_COMMENTS_PER_MINUTE=5, YKIEN_COMMENTS_PER_HOUR=30",
             environment("aiohttp", "SQLAlchemy", "python-telegram-bot")]
    with FakeBotApi() as api:
        targets = {"sqlite": "sqlite"}
        if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
            targets["postgres"] = os.environ["YKIEN_BENCH_POSTGRES_URL"]
        for name, target in targets.items():
            for with_flood in (0, flood_count):
                with tempfile.TemporaryDirectory() as folder:
                    async with fresh_database(name, target, folder) as url:
                        first_chat = 10_000_000 + int(time.time()) % 1_000_000 * 10_000
                        lines.append(f"{name}, {'with' if with_flood else 'without'} "
                                     f"the flood:")
                        lines += await run(url, api, chats, with_flood, concurrency,
                                           first_chat)
                    print("\n".join(lines[-2:] if not with_flood else lines[-3:]), flush=True)
    print("\n".join(lines))
    print(f"written to {write_results('flood.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
