"""Bare sending clients against the fake Bot API: the yardsticks for the delivery worker.

Run by hand from the repository root:
    python benchmarks/bench_send.py [--messages 10000] [--messages-with-latency 3000]
                                    [--latency-ms 0 --latency-ms 50] [--rounds 2]

For each latency (default: 0 and 50 ms), starts benchmarks/fake_bot_api.py in a separate
process on 127.0.0.1 and sends N sendMessage calls with
  (a) a bare python-telegram-bot loop: `Bot.send_message`, concurrency 8;
  (b) a bare aiohttp loop: POST JSON through one ClientSession, TCPConnector(limit=32),
      concurrency 32;
alternating a/b for --rounds rounds (the machine is noisy: compare within one run). Prints
messages/s, the ratio aiohttp/PTB, and the CPU the fake server used (so one can see it is
not the bottleneck), and writes benchmarks/results/send.txt.

A later benchmark reuses the pieces side by side with the real worker:

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_send import bare_aiohttp, bare_ptb
    from fake_bot_api import FakeBotApi

    with FakeBotApi(latency_ms=0) as api:
        ptb = await bare_ptb(api.url, api.token, 10_000, 8)          # messages/s
        raw = await bare_aiohttp(api.url, api.token, 10_000, 32)     # messages/s
        api.reset(); ...run the worker against api.base_url...; api.stats()
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from telegram import Bot

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import environment, write_results
from fake_bot_api import FakeBotApi

PTB_CONCURRENCY, AIOHTTP_CONCURRENCY = 8, 32
# A typical draft announcement line (Vietnamese, ~150 characters), to every message.
TEXT = (
    "Dự thảo mới: Quy định về thu gom rác thải sinh hoạt tại xã Cẩm Tú. "
    "Mời bà con góp ý trước ngày 30/11. Gửi /gopy để xem toàn văn và trả lời."
)
CHATS = 100_000  # chat ids cycle through 1..CHATS, as in a broadcast to residents
TIME_LIMIT = 600.0  # no single loop runs longer than this (seconds)


async def _drive(n: int, concurrency: int, send: Callable[[int], Awaitable[None]]) -> float:
    """Send messages 0..n-1 with `concurrency` workers; return messages/s."""
    numbers = iter(range(n))

    async def worker() -> None:
        for number in numbers:  # shared iterator: each number is taken once
            await send(number)

    started = time.perf_counter()
    async with asyncio.timeout(TIME_LIMIT):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def bare_ptb(url: str, token: str, n: int, concurrency: int = PTB_CONCURRENCY) -> float:
    """messages/s of `telegram.Bot.send_message` (default HTTPXRequest), `concurrency` at once.

    `url` is the server root (http://127.0.0.1:PORT); the Bot is initialised (getMe)
    before timing starts.
    """
    async with Bot(token, base_url=f"{url}/bot") as bot:

        async def send(number: int) -> None:
            await bot.send_message(chat_id=number % CHATS + 1, text=TEXT)

        return await _drive(n, concurrency, send)


async def bare_aiohttp(
    url: str, token: str, n: int, concurrency: int = AIOHTTP_CONCURRENCY
) -> float:
    """messages/s of plain aiohttp POSTs (JSON in, JSON parsed and checked), `concurrency` at
    once over one ClientSession whose connector allows as many connections."""
    endpoint = f"{url}/bot{token}/sendMessage"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(number: int) -> None:
            payload = {"chat_id": number % CHATS + 1, "text": TEXT}
            async with session.post(endpoint, json=payload) as response:
                body = await response.json()
            if not body.get("ok"):
                raise RuntimeError(f"sendMessage failed: {body}")

        return await _drive(n, concurrency, send)


async def _phase(
    api: FakeBotApi, name: str, run: Callable[[], Awaitable[float]], n: int
) -> tuple[float, float, float]:
    """Run one measured loop; check the server got every message; return (rate, client CPU,
    server CPU), CPU as a fraction of one core over the loop."""
    await api.areset()
    server_before, client_before = api.cpu_seconds(), time.process_time()
    wall_before = time.perf_counter()
    rate = await run()
    wall = time.perf_counter() - wall_before
    client_cpu = (time.process_time() - client_before) / wall
    server_cpu = (api.cpu_seconds() - server_before) / wall
    stats = await api.astats()
    if stats["sent"] != n or stats["rejected_429"]:
        raise RuntimeError(f"{name}: the fake counted {stats}, expected {n} sent")
    return rate, client_cpu, server_cpu


async def measure(latency_ms: float, n: int, rounds: int) -> list[str]:
    ptb: list[tuple[float, float, float]] = []
    raw: list[tuple[float, float, float]] = []
    with FakeBotApi(latency_ms=latency_ms) as api:
        for _ in range(rounds):
            ptb.append(await _phase(api, "ptb", lambda: bare_ptb(api.url, api.token, n), n))
            raw.append(await _phase(api, "aiohttp", lambda: bare_aiohttp(api.url, api.token, n), n))
    best_ptb, best_raw = max(r[0] for r in ptb), max(r[0] for r in raw)

    def runs(results: list[tuple[float, float, float]]) -> str:
        return ", ".join(
            f"{r:,.0f} (CPU client {c:.0%}, server {s:.0%} = {s / r * 1e6:.0f} us/message)"
            for r, c, s in results
        )

    ceiling, of_ptb, of_raw = "", "", ""
    if latency_ms:  # concurrency / round trip: what no client can beat at that concurrency
        bound_ptb = PTB_CONCURRENCY * 1000 / latency_ms
        bound_raw = AIOHTTP_CONCURRENCY * 1000 / latency_ms
        ceiling = (
            f" (latency bound: {bound_ptb:,.0f}/s at c={PTB_CONCURRENCY}, "
            f"{bound_raw:,.0f}/s at c={AIOHTTP_CONCURRENCY})"
        )
        of_ptb = f" = {best_ptb / bound_ptb:.0%} of its bound"
        of_raw = f" = {best_raw / bound_raw:.0%} of its bound"
    ratios = [r[0] / p[0] for p, r in zip(ptb, raw, strict=True)]
    return [
        f"latency {latency_ms:g} ms, {n:,} messages per loop, {rounds} rounds{ceiling}",
        f"  bare PTB send_message, c={PTB_CONCURRENCY}: best {best_ptb:,.0f} messages/s{of_ptb}"
        f"  [{runs(ptb)}]",
        f"  bare aiohttp POST, c={AIOHTTP_CONCURRENCY}:    best {best_raw:,.0f} messages/s{of_raw}"
        f"  [{runs(raw)}]",
        f"  aiohttp / PTB: {best_raw / best_ptb:.1f}x (best vs best; per round "
        f"{', '.join(f'{x:.1f}x' for x in ratios)}, median {statistics.median(ratios):.1f}x)",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description="bare PTB vs bare aiohttp on the fake Bot API")
    parser.add_argument("--messages", type=int, default=10_000, help="per loop at 0 ms latency")
    parser.add_argument(
        "--messages-with-latency", type=int, default=3_000, help="per loop with latency > 0"
    )
    parser.add_argument(
        "--latency-ms", type=float, action="append", help="repeatable; default 0 and 50"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating PTB/aiohttp rounds")
    args = parser.parse_args()
    latencies = args.latency_ms or [0.0, 50.0]

    lines = [
        "bare senders vs fake Bot API (benchmarks/fake_bot_api.py, separate process, loopback)",
        environment("python-telegram-bot", "httpx", "aiohttp"),
    ]
    print("\n".join(lines), flush=True)
    for latency in latencies:
        n = args.messages if latency == 0 else args.messages_with_latency
        block = await measure(latency, n, args.rounds)
        print("\n".join(block), flush=True)
        lines += block
    lines.append(
        "(CPU = share of one core each process used during the loop; us/message = the fake's "
        "CPU per send, so 1e6/that is what it could serve on one free core. The cores are "
        "shared with whatever else runs: compare within a run.)"
    )
    print(lines[-1])
    out = write_results("send.txt", lines)
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
