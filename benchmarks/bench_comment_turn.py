"""The conversation's share of a comment update: CPU per comment of `ChatService.handle` alone
(no HTTP, no platform), against the same statements written directly in SQLAlchemy Core
without the ORM (a floor for the comment's database work in this stack, not a second way of
taking comments: it checks none of the comment's rules), and against a first message's turn.
On SQLite (and PostgreSQL when YKIEN_BENCH_POSTGRES_URL is set: a new database on its server,
dropped after). Comments are handled one after the other, as `ykien serve` does on SQLite's one
connection, so the wall clock is the CPU.

Run by hand:  python benchmarks/bench_comment_turn.py [N]
Writes benchmarks/results/comment_turn.txt. Subtract these from `bench_ingest.py`'s server CPU
per update to see what every update pays outside the conversation (aiohttp, the platform
library, the webhook's writes, the reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import prepare  # noqa: E402
from common import environment, postgres_database, write_results  # noqa: E402
from sqlalchemy import bindparam, select, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bot.service import ChatService  # noqa: E402
from handlers.events import Incoming  # noqa: E402
from storage import flood, queries, reach  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import Draft, DraftCommune, Person, Resident, utcnow  # noqa: E402

WARM_UP = 100
RESIDENTS, PERSONS, DRAFTS, DRAFT_COMMUNES = (
    queries.table_of(model) for model in (Resident, Person, Draft, DraftCommune))
THE_RESIDENT = (
    select(RESIDENTS, PERSONS.c.respondent_category)
    .join(PERSONS, PERSONS.c.id == RESIDENTS.c.person_id)
    .where(RESIDENTS.c.channel == bindparam("channel"),
           RESIDENTS.c.platform_id == bindparam("chat"))
)
THE_DRAFT = (
    select(DRAFTS)
    .join(DRAFT_COMMUNES, DRAFT_COMMUNES.c.draft_id == DRAFTS.c.id)
    .where(DRAFTS.c.id == bindparam("draft"), DRAFT_COMMUNES.c.commune_code == bindparam("commune"))
)
STEP_DONE = (
    update(RESIDENTS).where(RESIDENTS.c.id == bindparam("resident"))
    .values(last_seen_at=bindparam("now"), awaiting="", awaiting_since=None, held_text="")
)
# The conversation's own Core statements, built once in storage: the flood-control count, the
# reach taking part, the receipt counter, the comment, the update's record.
LATEST, TAKING_PART, COUNTER = flood._LATEST, reach._TAKING_PART, queries._COUNTER
STORE, RECORD = queries._INSERT_COMMENT, queries._FIRST_TIME


def core_turn(engine: AsyncEngine, first_chat: int) -> Callable[[int], Awaitable[str]]:
    """A comment's statements in Core, one transaction, as the conversation runs them (on
PostgreSQL 7, the counter and the comment in one, as storage.queries does; 8 on SQLite)."""
    taking_part, record = TAKING_PART[engine.dialect.name], RECORD[engine.dialect.name]
    numbered_in_one = engine.dialect.name == "postgresql"  # as storage.queries does

    async def turn(i: int) -> str:
        now, chat = utcnow(), str(first_chat + i)
        async with engine.begin() as connection:
            resident = (await connection.execute(
                THE_RESIDENT, {"channel": "telegram", "chat": chat})).one()
            draft_id = int(resident.awaiting.split(":")[1])
            draft = (await connection.execute(
                THE_DRAFT, {"draft": draft_id, "commune": resident.commune_code})).one()
            await connection.execute(LATEST, {
                "person": resident.person_id, "since": now - timedelta(hours=1), "most": 30})
            await connection.execute(taking_part, {
                "draft_id": draft_id, "person_id": resident.person_id, "way": "took_part",
                "channel": "telegram", "commune_code": resident.commune_code,
                "reached_at": now, "took_part_at": now})
            await connection.execute(STEP_DONE, {"resident": resident.id, "now": now})
            values = {
                "draft_id": draft_id, "resident_id": resident.id,
                "commune_code": resident.commune_code, "text": f"Góp ý số {i}",
                "forwarded": False, "created_at": now, "hidden_reason": "", "hidden_note": "",
                "channel": "telegram", "respondent_category": resident.respondent_category,
                "source": "chat"}
            if numbered_in_one:  # the counter taken and the comment stored in one statement
                stored = (await connection.execute(
                    queries._numbered_insert(tuple(values)),
                    {f"{queries._VALUE}{name}": value for name, value in values.items()})).one()
            else:
                number = (await connection.execute(COUNTER, {"of_draft": draft_id})).scalar_one()
                stored = (await connection.execute(STORE, {**values, "number": number})).one()
            await connection.execute(record, {
                "channel": "telegram", "update_id": chat, "platform_id": chat,
                "replies": "", "created_at": now})
            return f"{draft_id}-{stored.number} {draft.title}"

    return turn


def service_turn(
    service: ChatService, first_chat: int, text: str
) -> Callable[[int], Awaitable[str]]:
    async def turn(i: int) -> str:
        chat = str(first_chat + i)
        replies = await service.handle(Incoming("telegram", chat, text=text, update_id=chat))
        return replies[0].text if replies else ""

    return turn


async def cpu_ms(turn: Callable[[int], Awaitable[str]], count: int) -> float:
    """CPU milliseconds a turn, after a warm-up (statements compiled, caches filled)."""
    for i in range(WARM_UP):
        await turn(i)
    started = time.process_time()
    for i in range(WARM_UP, count):
        await turn(i)
    return (time.process_time() - started) * 1000 / (count - WARM_UP)


async def measure(url: str, count: int, first_chat: int) -> list[str]:
    chats = iter(range(first_chat, first_chat + 10 * count, count))
    async with open_database(url) as sessionmaker:
        service = ChatService(sessionmaker)
        engine = sessionmaker.kw["bind"]
        ours_chat, core_chat, start_chat = next(chats), next(chats), next(chats)
        await prepare(url, ours_chat, count)
        await prepare(url, core_chat, count)
        ours = await cpu_ms(service_turn(service, ours_chat, "Nên thu gom rác lúc 18 giờ."), count)
        core = await cpu_ms(core_turn(engine, core_chat), count)
        start = await cpu_ms(service_turn(service, start_chat, "/start"), count)
    return [f"  a comment through the conversation (ChatService.handle): {ours:.2f} ms of CPU",
            f"  its statements in SQLAlchemy Core, no ORM, no rules: {core:.2f} ms "
            f"({ours / core:.2f}x less)",
            f"  a first message (/start) through the conversation: {start:.2f} ms"]


async def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    lines = [f"the conversation's CPU per update, {count} updates a run, one after the other",
             environment("SQLAlchemy", "aiosqlite", "asyncpg"),
             f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    print("\n".join(lines), flush=True)
    first_chat = 60_000_000 + int(time.time()) % 100_000 * 10_000
    async with contextlib.AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        targets = {"sqlite": f"sqlite+aiosqlite:///{folder}/turn.db"}
        if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
            targets["postgres"] = await stack.enter_async_context(
                postgres_database(os.environ["YKIEN_BENCH_POSTGRES_URL"], "turn"))
        for name, url in targets.items():
            found = [f"{name}:", *await measure(url, count, first_chat)]
            print("\n".join(found), flush=True)
            lines += found
    lines.append(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"written to {write_results('comment_turn.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
