"""Webhook ingest: updates per second through `ykien serve` (a separate process, answering
through the fake Bot API in a third one), against what a user would write by hand (a
minimal python-telegram-bot webhook bot, benchmarks/ptb_bot.py, on the same database) and a
bare aiohttp handler that only parses the JSON (the physical ceiling), on SQLite (and
PostgreSQL when YKIEN_BENCH_POSTGRES_URL is set: a new database on its server, dropped after).

Run by hand:  python benchmarks/bench_ingest.py [N] [CONCURRENCY] [--processes P]
Comments: each of N residents is waiting to comment; a concurrent aiohttp client POSTs one
comment update each, with the secret header (a 503 is retried after its Retry-After, as
Telegram waits before retrying). A burst of first messages: N new chats send /start at
once. Prints acknowledged/s (200 = stored), handled/s (every update handled and its reply
sent), the acknowledgement's percentiles (first POST to 200), the ratios to the PTB bot and
the bare handler, and the server's CPU time per update (Linux) with its ratio to the PTB
bot's (steadier than rates on a machine shared with other work); `--processes P` adds a run
of P `ykien serve` on PostgreSQL behind the client (round robin, as a load balancer would).
Telegram's global pace is lifted (YKIEN_TELEGRAM_MESSAGES_PER_SECOND=0). Writes
benchmarks/results/ingest.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, postgres_database, write_results  # noqa: E402
from fake_bot_api import FakeBotApi  # noqa: E402
from sqlalchemy import func, select, text, update  # noqa: E402

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path  # noqa: E402
from bot.draftfile import load_draft_file  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from handlers.onboarding import CONSENT_VERSION  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import create_draft  # noqa: E402
from storage.models import Comment, DraftStatus, InboundUpdate, Person, utcnow  # noqa: E402
from storage.queries import add_residents_in_bulk  # noqa: E402

SECRET = "bench_Secret-1"
DRAINING: set[asyncio.Task[None]] = set()
LISTENING = re.compile(r"listening on [\d.]+:(\d+)")
WRITES = re.compile(r"webhook: (\d+) \w+ updates stored in (\d+) writes, claimed in (\d+), "
                    r"recorded as handled in (\d+)")
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


def updates(first_chat: int, count: int, text_of: str = "comment") -> list[dict]:
    now = int(time.time())
    return [
        {"update_id": first_chat + i, "message": {
            "message_id": 1, "date": now,
            "text": "/start" if text_of == "start" else
            f"Góp ý số {i}: nên thu gom rác lúc 18 giờ.",
            "chat": {"id": first_chat + i, "type": "private"},
            "from": {"id": first_chat + i, "is_bot": False, "first_name": "Dân",
                     "language_code": "vi"}}}
        for i in range(count)
    ]


async def prepare(url: str, first_chat: int, count: int) -> None:
    """A draft open for comments, and `count` residents each in its Comment step (they
    pressed Comment just now: seen now), who have commented before."""
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        spec = load_draft_file(ROOT / "examples" / "draft.toml", translator("en"))
        draft = await create_draft(session, spec)
        draft.status = DraftStatus.OPEN  # as if broadcast (to nobody: no sends to measure)
        now = utcnow()
        await add_residents_in_bulk(session, [
            {"channel": "telegram", "platform_id": str(first_chat + i), "language": "vi",
             "commune_code": 15148, "consent_at": now, "consent_version": "bench",
             "subscribed": True, "reachable": True, "awaiting": f"comment:{draft.id}",
             "awaiting_since": now, "last_seen_at": now, "held_text": "",
             "notice_version": CONSENT_VERSION,
             "created_at": now}
            for i in range(count)
        ])
        # They commented before, so they were asked whom they comment for (asked once, after
        # a first comment): each update is one comment and one receipt, as for the PTB bot.
        await session.execute(update(Person).where(Person.category_asked_at.is_(None))
                              .values(category_asked_at=now))
        await session.commit()
        if session.get_bind().dialect.name == "postgresql":
            # Statistics as autovacuum keeps them within a minute of a change: right after
            # thousands of rows written at once (each run of this benchmark adds its own), the
            # planner would scan whole tables for each comment's flood-control count.
            await session.execute(text("ANALYZE"))
            await session.commit()


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int
    log: list[str]


async def start(args: list[str], env: dict[str, str]) -> Server:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    log: list[str] = []
    async with asyncio.timeout(120):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise RuntimeError("the server stopped before listening")
            found = LISTENING.search(line)
            if found:
                break

    async def drain() -> None:  # keep the pipe flowing, and keep what it says
        assert process.stderr is not None
        async for raw in process.stderr:
            log.append(raw.decode(errors="replace"))

    DRAINING.add(asyncio.create_task(drain()))
    return Server(process, int(found.group(1)), log)


async def stop(server: Server) -> None:
    server.process.terminate()
    await server.process.wait()
    await asyncio.sleep(0.1)  # the rest of its log


@dataclass
class Posted:
    seconds: float  # until every update was acknowledged
    latencies: list[float]  # per update: its first POST to its 200


async def post_all(urls: list[str], bodies: list[dict], concurrency: int) -> Posted:
    """Every body POSTed until it gets a 200, `concurrency` requests at a time, spread over
    `urls` in turn (a load balancer's round robin)."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    turn = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as http:

        async def worker() -> None:
            nonlocal turn
            while queue:
                body = queue.pop()
                began = time.perf_counter()
                while True:
                    url = urls[turn % len(urls)]
                    turn += 1
                    async with http.post(url, json=body,
                                         headers={SECRET_HEADER: SECRET}) as response:
                        await response.read()
                        if response.status == 200:
                            break
                        assert response.status == 503, response.status  # backlog: retry
                        # when it says, as Telegram waits before it retries (a burst beyond the
                        # backlog would otherwise become a storm of 503s eating the server)
                        await asyncio.sleep(float(response.headers.get("Retry-After", 0)))
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Posted(time.perf_counter() - started, latencies)


def percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return (f"ack p50 {cuts[49] * 1000:.0f} ms, p90 {cuts[89] * 1000:.0f} ms, "
            f"p99 {cuts[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")


def cpu_seconds(servers: list[Server]) -> float | None:
    """The CPU time the servers' processes have used so far (Linux's /proc; None elsewhere):
    per update, a figure that moves far less than rates with what else the machine runs."""
    try:
        total = 0.0
        for server in servers:
            fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1]
            user, system = fields.split()[11:13]
            total += (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError):
        return None


def per_update_ms(before: float | None, after: float | None, updates: int) -> float | None:
    return None if before is None or after is None else (after - before) * 1000 / updates


@dataclass
class Run:
    acknowledged: float  # updates/s
    handled: float  # updates/s, reply sent
    latencies: list[float]
    transactions: str = ""  # ykien's own writes per update, as its log says (or losses)
    cpu_ms: float | None = None  # the server's CPU time per update

    def line(self, name: str, reference: Run | None, bare: float) -> str:
        versus = (f", {self.handled / reference.handled:.2f}x the PTB bot"
                  if reference is not None else "")
        cpu = "" if self.cpu_ms is None else f", server CPU {self.cpu_ms:.2f} ms/update"
        if cpu and reference is not None and reference.cpu_ms:
            cpu += f" ({reference.cpu_ms / self.cpu_ms:.2f}x the PTB bot's)"
        return (f"  {name}: acknowledged {self.acknowledged:,.0f}/s, handled "
                f"{self.handled:,.0f}/s{versus}, {self.handled / bare:.3f}x bare{cpu}; "
                f"{percentiles(self.latencies)}{self.transactions}")


async def wait_for(condition, what: str) -> None:
    async with asyncio.timeout(600):
        while not await condition():
            await asyncio.sleep(0.05)


def sent(api: FakeBotApi) -> int:
    return int(api.stats()["sent"])


def serve_env(url: str, api: FakeBotApi) -> dict[str, str]:
    return {**os.environ, "YKIEN_DATABASE_URL": url, "YKIEN_TELEGRAM_TOKEN": api.token,
            "YKIEN_TELEGRAM_API_URL": api.url, "YKIEN_TELEGRAM_WEBHOOK_SECRET": SECRET,
            "YKIEN_PUBLIC_URL": "https://bench.example",
            "YKIEN_TELEGRAM_MESSAGES_PER_SECOND": "0", "YKIEN_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT)}


async def start_serve(url: str, api: FakeBotApi) -> Server:
    """`ykien serve` on a free port of 127.0.0.1, answering through the fake Bot API, on the
    database of `url` (its INFO log line says where it listens)."""
    return await start([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                        "--port", "0"], serve_env(url, api))


async def all_handled(sessionmaker) -> None:
    """Wait until every update stored has been handled."""

    async def nothing_left() -> bool:
        async with sessionmaker() as session:
            left = await session.scalar(
                select(func.count()).where(InboundUpdate.handled_at.is_(None)))
        return not left

    await wait_for(nothing_left, "ykien serve")


async def measure_serve(url: str, api: FakeBotApi, count: int, concurrency: int,
                        first_chat: int, kind: str, processes: int = 1) -> Run:
    """`count` comment updates (kind "comment") or first messages ("start") through
    `processes` ykien serve."""
    if kind == "comment":
        await prepare(url, first_chat, count)
    servers = [await start_serve(url, api) for _ in range(processes)]
    try:
        hooks = [f"http://127.0.0.1:{server.port}{telegram_path(SECRET)}" for server in servers]
        api.reset()
        cpu_before = cpu_seconds(servers)
        started = time.perf_counter()
        posted = await post_all(hooks, updates(first_chat, count, kind), concurrency)
        async with open_database(url) as sessionmaker:

            async def all_handled() -> bool:
                async with sessionmaker() as session:
                    left = await session.scalar(select(func.count()).where(
                        InboundUpdate.handled_at.is_(None)))
                return not left and sent(api) >= count

            await wait_for(all_handled, "ykien serve")
            handled = time.perf_counter() - started
            cpu_after = cpu_seconds(servers)
            if kind == "comment":
                async with sessionmaker() as session:
                    comments = await session.scalar(select(func.count()).select_from(Comment))
                assert comments is not None and comments >= count, comments
    finally:
        for server in servers:
            await stop(server)
    writes = [WRITES.search("".join(server.log)) for server in servers]
    totals = [sum(int(found.group(n)) for found in writes if found) for n in range(1, 5)]
    transactions = ""
    if all(writes) and totals[0]:
        per_update = sum(totals[1:]) / totals[0]
        transactions = (f"; {per_update:.2f} webhook transactions per update besides the "
                        f"conversation's one ({totals[0]} stored in {totals[1]} writes, "
                        f"claimed in {totals[2]}, recorded handled in {totals[3]})")
    return Run(count / posted.seconds, count / handled, posted.latencies, transactions,
               per_update_ms(cpu_before, cpu_after, count))


async def measure_ptb(url: str, api: FakeBotApi, count: int, concurrency: int,
                      first_chat: int, kind: str) -> Run:
    env = {**os.environ, "BENCH_DATABASE_URL": url, "BENCH_API_URL": api.url,
           "BENCH_TOKEN": api.token}
    server = await start([sys.executable, str(ROOT / "benchmarks" / "ptb_bot.py")], env)
    try:
        api.reset()
        cpu_before = cpu_seconds([server])
        started = time.perf_counter()
        posted = await post_all([f"http://127.0.0.1:{server.port}/hook"],
                                updates(first_chat, count, kind), concurrency)
        async with open_database(url) as sessionmaker:

            # It may lose updates (a pool timeout under load fails its handler after the
            # 200): it is done when all are handled, or when nothing moved for 30 s.
            progress, moved = (-1, -1), time.perf_counter()
            while True:
                async with sessionmaker() as session:
                    stored = await session.scalar(text(
                        "SELECT count(*) FROM bench_ptb_comments WHERE update_id >= :first"
                    ), {"first": first_chat}) or 0
                now = (stored, min(stored, sent(api)))
                if now != progress:
                    progress, moved = now, time.perf_counter()
                if now[1] >= count or time.perf_counter() - moved > 30:
                    break
                await asyncio.sleep(0.05)
            handled = moved - started
            cpu_after = cpu_seconds([server])
    finally:
        await stop(server)
    run = Run(count / posted.seconds, progress[1] / handled, posted.latencies,
              cpu_ms=per_update_ms(cpu_before, cpu_after, max(progress[1], 1)))
    if progress[1] < count:
        run.transactions = f"; LOST {count - progress[1]} acknowledged updates"
    return run


async def measure_bare(count: int, concurrency: int) -> Run:
    server = await start([sys.executable, "-c", BARE], dict(os.environ))
    try:
        posted = await post_all([f"http://127.0.0.1:{server.port}/hook"],
                                updates(1, count), concurrency)
    finally:
        await stop(server)
    rate = count / posted.seconds
    return Run(rate, rate, posted.latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=1000)
    parser.add_argument("concurrency", nargs="?", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1,
                        help="also run this many ykien serve on PostgreSQL")
    args = parser.parse_args()
    count, concurrency = args.count, args.concurrency
    lines = [f"webhook ingest, {count} updates a run, client concurrency {concurrency}, "
             f"Telegram's pace lifted",
             environment("aiohttp", "SQLAlchemy", "python-telegram-bot"),
             f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    bare = await measure_bare(count, concurrency)
    lines.append(f"bare aiohttp handler (parse JSON, answer 200): {bare.handled:,.0f} updates/s; "
                 f"{percentiles(bare.latencies)}")
    print("\n".join(lines), flush=True)
    first_chat = 10_000_000 + int(time.time()) % 100_000 * 10_000
    async with contextlib.AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        api = stack.enter_context(FakeBotApi())
        targets = {"sqlite": f"sqlite+aiosqlite:///{folder}/bench.db"}
        if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
            targets["postgres"] = await stack.enter_async_context(
                postgres_database(os.environ["YKIEN_BENCH_POSTGRES_URL"], "ingest"))
        for name, url in targets.items():
            found = [f"{name}:"]
            for kind, what in (("comment", "comments"), ("start", "first messages (/start)")):
                first_chat += count
                ptb = await measure_ptb(url, api, count, concurrency, first_chat, kind)
                first_chat += count
                ours = await measure_serve(url, api, count, concurrency, first_chat, kind)
                found += [f" {what}", ptb.line("PTB bot (no guarantees)", None, bare.handled),
                          ours.line("ykien serve", ptb, bare.handled)]
                if name == "postgres" and args.processes > 1:
                    first_chat += count
                    more = await measure_serve(url, api, count, concurrency, first_chat, kind,
                                               args.processes)
                    found.append(more.line(f"{args.processes} ykien serve", ptb, bare.handled))
                print("\n".join(found[-3:]), flush=True)
            lines += found
    lines.append(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n".join(lines))
    print(f"written to {write_results('ingest.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
