"""Peak memory for 10,000 vs 100,000 residents: broadcasting a draft to every subscribed
resident of a commune and sending it all (delivery worker, a channel that costs nothing),
then exporting the comments and votes (`storage.export.export_csv`). Both should stay flat:
the broadcast is one INSERT … SELECT, the worker claims batches, the export streams.

Run by hand:  python benchmarks/bench_memory.py
On SQLite (a file in a temporary folder) always; on PostgreSQL too when
YKIEN_BENCH_POSTGRES_URL is set (each size in a database of its own, created on that server
and dropped afterwards). Each size runs in fresh child processes: one builds the data
(residents in batches, half of them commenting and the other half voting), then one
broadcasts and sends, then one exports, so the peak RSS each reports belongs to that work
alone.
Prints peak-minus-baseline per size and the ratio 100k / 10k of that growth;
writes benchmarks/results/memory.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a plain script, the repository root is not on sys.path.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, postgres_database, write_results  # noqa: E402
from null_channel import NullChannel  # noqa: E402
from sqlalchemy import String, func, insert, literal, select, text, update  # noqa: E402
from sqlalchemy import cast as sa_cast  # noqa: E402

from bot.draftfile import load_draft_file  # noqa: E402
from bot.sending.worker import DeliveryWorker  # noqa: E402
from handlers.i18n import translator  # noqa: E402
from storage import communes  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.drafts import broadcast, create_draft  # noqa: E402
from storage.export import BATCH as EXPORT_BATCH  # noqa: E402
from storage.export import PSEUDONYM_CACHE, export_csv  # noqa: E402
from storage.models import Comment, Draft, PollOption, Resident, Vote, utcnow  # noqa: E402
from storage.queries import add_residents_in_bulk  # noqa: E402

SIZES = (10_000, 100_000)
BUILD_BATCH = 5_000  # residents per add_residents_in_bulk call, so building stays small too
ONE_IN = 2  # one resident in two comments, the other votes: both sizes over an export batch
COMMUNE = 15148  # Xã Cẩm Tú, the commune examples/draft.toml targets
KEY = b"bench-memory-key"
FLAT_BELOW = 2.0  # growth ratio 100k / 10k under which memory is called flat
MIB = 1024  # RSS figures are in KiB


def peak_kib() -> int:
    """Peak RSS since the process began, or since `start_peak`: VmHWM, what ru_maxrss reads."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))


def start_peak() -> int:
    """Make the current RSS the peak, and return it: the baseline of the work that follows.

    What ran before (opening the database, loading the commune list) may have peaked above
    the RSS it left, which would hide the work's own peak. getrusage offers no reset; the
    kernel's high-water mark, read as VmHWM, has one (Linux 4.0+).
    """
    with contextlib.suppress(OSError):  # not Linux: the peak includes what came before
        Path("/proc/self/clear_refs").write_text("5")
    return peak_kib()


# ---------------------------------------------------------------------------- child processes


async def build(url: str, residents: int) -> dict:
    """A draft (not yet broadcast) to one commune, its residents, and their comments and votes."""
    started = time.perf_counter()
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        spec = load_draft_file(ROOT / "examples" / "draft.toml", translator("en"))
        assert spec.commune_codes == [COMMUNE], spec.commune_codes
        draft = await create_draft(session, spec)
        draft_id = draft.id
        await session.commit()
        for first in range(0, residents, BUILD_BATCH):
            now = utcnow()
            await add_residents_in_bulk(session, [
                {"channel": "bench", "platform_id": str(i), "language": "vi",
                 "commune_code": COMMUNE, "consent_at": now, "consent_version": "bench",
                 "subscribed": True, "reachable": True, "awaiting": "", "held_text": "",
                 "created_at": now}
                for i in range(first, min(first + BUILD_BATCH, residents))
            ])
            await session.commit()
        # Comments and votes are written by the database itself (INSERT … SELECT), so that
        # building them costs this process nothing either.
        now = utcnow()
        commenters = select(
            literal(draft_id),
            func.row_number().over(order_by=Resident.id),
            Resident.id,
            Resident.commune_code,
            literal("Góp ý số ", String).concat(sa_cast(Resident.id, String))
            .concat(": tôi đồng ý với \"phí\", nhưng mức thu cần giảm"),
            literal(now, type_=Comment.created_at.type),
        ).where(Resident.id % ONE_IN == 0)
        added = await session.execute(insert(Comment).from_select(
            ["draft_id", "number", "resident_id", "commune_code", "text", "created_at"],
            commenters,
        ))
        await session.execute(
            update(Draft).where(Draft.id == draft_id).values(comment_count=added.rowcount)
        )
        voters = (
            select(
                literal(draft_id), Resident.id, PollOption.id, Resident.commune_code,
                literal(now, type_=Vote.created_at.type), literal(now, type_=Vote.updated_at.type),
            )
            .join(PollOption, PollOption.position == Resident.id % len(spec.poll_options))
            .where(PollOption.draft_id == draft_id, Resident.id % ONE_IN == ONE_IN // 2)
        )
        await session.execute(insert(Vote).from_select(
            ["draft_id", "resident_id", "option_id", "commune_code", "created_at", "updated_at"],
            voters,
        ))
        await session.commit()
        # No ANALYZE: a broadcast right after residents arrive in bulk must not depend on
        # statistics (it once took 280 s for 100,000 on PostgreSQL without them).
        rows = (await session.execute(text(
            "SELECT (SELECT count(*) FROM comments) + (SELECT count(*) FROM votes)"
        ))).scalar_one()
    return {"draft": draft_id, "rows": rows, "seconds": time.perf_counter() - started}


async def send(url: str, residents: int) -> dict:
    """Broadcast the draft and let the worker send every message; baseline and peak RSS."""
    async with open_database(url) as sessionmaker:
        communes.warm_up()  # the bot loads the commune list at start: not the work's memory
        baseline = start_peak()
        started = time.perf_counter()
        async with sessionmaker() as session:
            draft = (await session.scalars(select(Draft))).one()
            queued = await broadcast(session, draft, utcnow())
            await session.commit()
        assert queued == residents, (queued, residents)
        worker = DeliveryWorker(sessionmaker, {"bench": NullChannel()})
        progress = await worker.run_once()  # returns once nothing is due any more
        assert progress.sent == residents, progress
        return {"baseline": baseline, "peak": peak_kib(),
                "seconds": time.perf_counter() - started}


async def export(url: str, rows: int) -> dict:
    """Export every comment and vote to a CSV file; baseline and peak RSS."""
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        communes.warm_up()  # the bot loads the commune list at start: not the work's memory
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "export.csv"
            baseline = start_peak()
            started = time.perf_counter()
            with path.open("w", encoding="utf-8-sig", newline="") as out:
                written = await export_csv(session, out, key=KEY)
            seconds = time.perf_counter() - started
            assert written == rows, (written, rows)
            return {"baseline": baseline, "peak": peak_kib(), "seconds": seconds,
                    "megabytes": path.stat().st_size / 2**20}


CHILD_WORK = {"build": build, "send": send, "export": export}


def in_child(work: str, url: str, count: int) -> dict:
    """Run one piece of work in a fresh interpreter; what it measured, as a dict."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", work, url, str(count)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- databases


@asynccontextmanager
async def sqlite_database(folder: str, residents: int) -> AsyncIterator[str]:
    yield f"sqlite+aiosqlite:///{folder}/memory-{residents}.db"


# ---------------------------------------------------------------------------- report


def growth_mb(measured: dict) -> float:
    return (measured["peak"] - measured["baseline"]) / MIB


def ratio(large: float, small: float) -> float:
    # Under 1 MB the growth is noise (a page here and there): count it as 1 MB.
    return max(large, 1.0) / max(small, 1.0)


async def measure(name: str, database, folder: str) -> list[str]:
    lines = []
    growth: dict[int, dict[str, float]] = {}
    for residents in SIZES:
        async with database(folder, residents) as url:
            built = await asyncio.to_thread(in_child, "build", url, residents)
            sent = await asyncio.to_thread(in_child, "send", url, residents)
            exported = await asyncio.to_thread(in_child, "export", url, built["rows"])
        growth[residents] = {"send": growth_mb(sent), "export": growth_mb(exported)}
        lines.append(
            f"{name:<8}{residents:>8,} residents: broadcast+send peak"
            f" {growth[residents]['send']:+.0f} MB over {sent['baseline'] / MIB:.0f} MB baseline"
            f" ({sent['seconds']:.0f} s); export peak {growth[residents]['export']:+.0f} MB"
            f" over {exported['baseline'] / MIB:.0f} MB ({built['rows']:,} rows,"
            f" {exported['megabytes']:.1f} MB CSV, {exported['seconds']:.1f} s);"
            f" built in {built['seconds']:.0f} s"
        )
    small, large = SIZES
    # The bot's growth at a size is that of its hungrier phase.
    worst = ratio(max(growth[large].values()), max(growth[small].values()))
    phases = ", ".join(
        f"{phase} {ratio(growth[large][phase], growth[small][phase]):.1f}x"
        for phase in ("send", "export")
    )
    lines.append(
        f"{name}: growth {large // 1000}k / {small // 1000}k = {worst:.1f}x"
        f" ({'flat' if worst < FLAT_BELOW else 'grows'}; {phases})"
    )
    if ratio(growth[large]["export"], growth[small]["export"]) >= FLAT_BELOW:
        # Every resident here comments or votes once: one person per exported row.
        extra = (growth[large]["export"] - growth[small]["export"]) * MIB * 1024
        per_person = extra / (large - small)
        lines.append(
            f"{name}: the export's growth is {per_person:,.0f} bytes per extra person: its"
            f" pseudonym cache, emptied past {PSEUDONYM_CACHE:,} persons"
            f" (at most ~{per_person * PSEUDONYM_CACHE / 1024 / MIB:,.0f} MB)"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("WORK", "URL", "COUNT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work, url, count = args.child
        print(json.dumps(await CHILD_WORK[work](url, int(count))))
        return

    started = time.perf_counter()
    lines = [
        "peak memory (RSS) of broadcast + delivery (null channel) and CSV export,"
        f" {SIZES[0]:,} vs {SIZES[1]:,} residents of one commune, each in a fresh process",
        environment("SQLAlchemy", "aiosqlite", "asyncpg"),
        f"data: residents added {BUILD_BATCH:,} at a time; 1 comment and 1 vote per {ONE_IN}"
        f" residents; the export reads {EXPORT_BATCH:,} rows at a time (storage.export.BATCH)",
        "growth = peak RSS (VmHWM) during the work minus RSS before it, the peak reset then"
        " (below 1 MB counts as 1 MB); the commune list is loaded before (communes.warm_up,"
        " as the bot does at start)",
    ]
    print(*lines, sep="\n")
    targets = {"sqlite": sqlite_database}
    if os.environ.get("YKIEN_BENCH_POSTGRES_URL"):
        server = os.environ["YKIEN_BENCH_POSTGRES_URL"]

        def postgres(_folder: str, residents: int):
            return postgres_database(server, f"memory_{residents}")

        targets["postgres"] = postgres
    with tempfile.TemporaryDirectory() as folder:
        for name, database in targets.items():
            measured = await measure(name, database, folder)
            print(*measured, sep="\n")
            lines += measured
    lines.append(f"whole run {time.perf_counter() - started:.0f} s")
    print(lines[-1])
    write_results("memory.txt", lines)


if __name__ == "__main__":
    asyncio.run(main())
