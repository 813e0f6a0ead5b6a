"""The delivery worker with the real Telegram adapter over HTTP, side by side with bare loops.

Against benchmarks/fake_bot_api.py in its own process on 127.0.0.1, in one run (the machine
is noisy: compare within a run): a bare python-telegram-bot loop (c=8), a bare aiohttp loop
(c=32), then the worker (`DeliveryWorker` + `TelegramChannel`, outcomes recorded in SQLite)
with no latency, with 50 ms round trips, and paced at 30 messages/s (the fake counts every
second: never above 30, and the share of 30 reached).

Run by hand:  python benchmarks/bench_worker_http.py [--messages N] [--paced-messages M]
Writes benchmarks/results/worker_http.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_send import bare_aiohttp, bare_ptb  # noqa: E402
from common import environment, write_results  # noqa: E402
from fake_bot_api import FakeBotApi  # noqa: E402

from bot.channels.telegram.channel import TelegramChannel  # noqa: E402
from bot.config import DeliveryConfig  # noqa: E402
from bot.draftfile import load_draft_file  # noqa: E402
from bot.sending.worker import DeliveryWorker  # noqa: E402
from bot.service import ChatService  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import broadcast, create_draft  # noqa: E402
from storage.models import utcnow  # noqa: E402
from storage.queries import add_residents_in_bulk  # noqa: E402

EXAMPLE = ROOT / "examples" / "draft.toml"
TIME_LIMIT = 600.0  # seconds per worker run, whatever happens


async def worker_rate(api: FakeBotApi, messages: int, rate: float) -> float:
    """Messages/s the worker sends through the real adapter, every outcome recorded."""
    with tempfile.TemporaryDirectory() as folder:
        async with open_database(f"sqlite+aiosqlite:///{folder}/bench.db") as sessionmaker:
            async with sessionmaker() as session:
                await add_residents_in_bulk(session, [
                    {"channel": "telegram", "platform_id": str(10_000 + i), "language": "vi",
                     "commune_code": 15148, "consent_at": utcnow(), "consent_version": "b",
                     "notice_version": "b"}
                    for i in range(messages)
                ])
                await session.commit()
                draft = await create_draft(session, load_draft_file(EXAMPLE, translator("en")))
                await broadcast(session, draft, utcnow())
                await session.commit()
            channel = TelegramChannel(api.token, api.url, ChatService(sessionmaker),
                                      messages_per_second=rate)
            worker = DeliveryWorker(sessionmaker, {"telegram": channel}, DeliveryConfig())
            await api.areset()
            started = time.perf_counter()
            sent = 0
            while sent < messages and time.perf_counter() - started < TIME_LIMIT:
                progress = await worker.run_once()
                sent += progress.sent
                if not progress.sent:
                    await asyncio.sleep(0.05)  # paused or paced: let time pass (a benchmark)
            elapsed = time.perf_counter() - started
            await channel.sender.close()
    return sent / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--latency-messages", type=int, default=3_000)
    parser.add_argument("--paced-messages", type=int, default=600)
    args = parser.parse_args()
    lines = ["delivery worker + real Telegram adapter vs bare loops, fake Bot API in its own "
             "process", environment("python-telegram-bot", "aiohttp", "SQLAlchemy")]

    with FakeBotApi(latency_ms=0) as api:
        ptb = await bare_ptb(api.url, api.token, args.messages)
        raw = await bare_aiohttp(api.url, api.token, args.messages)
        ours = await worker_rate(api, args.messages, rate=0)
    lines.append(f"latency 0 ms, {args.messages:,} messages: worker {ours:,.0f}/s; bare PTB "
                 f"(c=8) {ptb:,.0f}/s; bare aiohttp (c=32) {raw:,.0f}/s; worker/PTB "
                 f"{ours / ptb:.2f}x, worker/aiohttp {ours / raw:.2f}x")

    with FakeBotApi(latency_ms=50) as api:
        ours = await worker_rate(api, args.latency_messages, rate=0)
    lines.append(f"latency 50 ms, {args.latency_messages:,} messages: worker {ours:,.0f}/s")

    with FakeBotApi(latency_ms=0, rate_limit=30) as api:
        ours = await worker_rate(api, args.paced_messages, rate=30)
        stats = await api.astats()
    lines.append(
        f"paced at 30/s, {args.paced_messages:,} messages: worker {ours:.1f}/s = "
        f"{ours / 30:.1%} of 30; busiest second at the fake {stats['per_second_max']}, "
        f"429s {stats['rejected_429']}"
    )
    for line in lines:
        print(line)
    write_results("worker_http.txt", lines)


if __name__ == "__main__":
    asyncio.run(main())
