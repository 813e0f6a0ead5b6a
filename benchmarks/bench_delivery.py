"""Delivery worker overhead: how many queued messages per second it gets through a channel
that costs nothing, on SQLite (and PostgreSQL when YKIEN_BENCH_POSTGRES_URL is set).

Run by hand:  python benchmarks/bench_delivery.py [N]
Prints messages/s and the ratio to Telegram's limits (30/s free, 1,000/s paid broadcasts);
writes benchmarks/results/delivery.txt.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, write_results  # noqa: E402
from null_channel import NullChannel  # noqa: E402

from bot.draftfile import load_draft_file  # noqa: E402
from bot.sending.worker import DeliveryWorker  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import broadcast, create_draft  # noqa: E402
from storage.models import utcnow  # noqa: E402
from storage.queries import add_residents_in_bulk  # noqa: E402

TELEGRAM_FREE, TELEGRAM_PAID = 30, 1000


async def measure(url: str, count: int) -> float:
    async with open_database(url) as sessionmaker:
        async with sessionmaker() as session:
            now = utcnow()
            await add_residents_in_bulk(session, [
                {"channel": "bench", "platform_id": str(i), "language": "vi",
                 "commune_code": 15148, "consent_at": now, "consent_version": "bench",
                 "subscribed": True, "reachable": True, "awaiting": "", "held_text": "",
                 "created_at": now}
                for i in range(count)
            ])
            await session.commit()
            spec = load_draft_file(ROOT / "examples" / "draft.toml", translator("en"))
            draft = await create_draft(session, spec)
            await broadcast(session, draft, utcnow())
            await session.commit()
        worker = DeliveryWorker(sessionmaker, {"bench": NullChannel()})
        started = time.perf_counter()
        progress = await worker.run_once()
        elapsed = time.perf_counter() - started
        assert progress.sent == count, progress
        return count / elapsed


async def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    lines = [f"delivery worker, null channel, {count} messages",
             environment("SQLAlchemy", "aiosqlite", "asyncpg")]
    with tempfile.TemporaryDirectory() as folder:
        targets = {"sqlite": f"sqlite+aiosqlite:///{folder}/bench.db"}
        if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
            targets["postgres"] = os.environ["YKIEN_BENCH_POSTGRES_URL"]
        for name, url in targets.items():
            rate = await measure(url, count)
            lines.append(
                f"{name}: {rate:,.0f} messages/s = {rate / TELEGRAM_FREE:,.1f}x Telegram's "
                f"30/s, {rate / TELEGRAM_PAID:.2f}x the 1,000/s paid ceiling"
            )
    print("\n".join(lines))
    print(f"written to {write_results('delivery.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
