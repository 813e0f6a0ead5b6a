"""CSV export against the database's own tools: `storage.export.export_csv` beside the sqlite3
shell (`.mode csv` + `.once`) and `psql \\copy (query) to file csv`, same query, same rows.

Run by hand from the repository root:
    python benchmarks/bench_export.py [--rows 1000000] [--small-rows 100000] [--repeat 2]
                                      [--postgres URL | --no-postgres] [--impl MODULE]

For each backend (an SQLite file in a temporary folder; on PostgreSQL a uniquely named database
created on the server of --postgres, default $YKIEN_BENCH_POSTGRES_URL, else
$YKIEN_TEST_POSTGRES_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/postgres, and
dropped afterwards) it builds a database of --rows comments and votes with bulk
INSERT … SELECT (generate_series on PostgreSQL, a recursive CTE on SQLite), then times, best
of --repeat:
  - our export: `export_csv` to a file (UTF-8 with BOM), in a child process, which also reports
    its peak RSS; done for --small-rows and --rows so one sees whether memory stays flat;
  - the reference tool on the same SQL (the export's query compiled with literal values),
    writing CSV to a file: the `sqlite3` shell, `psql \\copy`.
A missing tool or an unreachable PostgreSQL is reported in the results, not an error.
`--impl` names another module with the same `export_csv` (e.g. a saved copy of an older
version, with its folder on PYTHONPATH) to compare before and after.
Prints seconds, rows/s and ratios; writes benchmarks/results/export.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a plain script, the repository root is not on sys.path.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, postgres_database, write_results  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from storage import communes  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import Draft, PollOption, utcnow  # noqa: E402

DRAFTS = 20
OPTIONS = ("Đồng ý", "Không đồng ý", "+ Ý kiến khác")  # the third is formula-like on purpose
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
KEY = b"bench-export-key"


# ---------------------------------------------------------------------------- data


def _series(dialect: str, count: int) -> str:
    """SQL for the rows i = 1..count, as a FROM item named s with column i."""
    if dialect == "postgresql":
        return f"generate_series(1::bigint, {count}) AS s(i)"
    return (f"(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {count})"
            " SELECT i FROM r) AS s")


def _time(dialect: str, seconds: str) -> str:
    """A UTC time `seconds` after 2026-01-01, with microseconds, as each backend stores it."""
    if dialect == "postgresql":
        return (f"(timestamptz '2026-01-01 00:00:00+00' + ({seconds}) * interval '1 second'"
                f" + ((i * 7919) % 1000000) * interval '1 microsecond')")
    # SQLAlchemy's SQLite DateTime: naive UTC text with six fractional digits.
    return (f"(strftime('%Y-%m-%d %H:%M:%S', 1767225600 + ({seconds}), 'unixepoch')"
            f" || printf('.%06d', (i * 7919) % 1000000))")


async def build(session: AsyncSession, rows: int) -> None:
    """Residents, drafts with polls, `rows` comments and votes (4:1), some erased, some formulas."""
    dialect = session.bind.dialect.name
    residents = max(rows // 10, DRAFTS)
    votes = rows // 5
    comments = rows - votes
    now = utcnow()
    await session.execute(insert(Draft), [
        {"id": d, "title": f"=Dự thảo {d}" if d == 3 else f"Dự thảo quy định số {d}, \"phí\"",
         "issuer": "UBND", "summary": "Tóm tắt", "link": "", "scope": "all",
         "opens_at": now, "deadline": now, "status": "open", "poll_question": "Ý kiến?",
         "created_at": now, "comment_count": 0, "paused": False}
        for d in range(1, DRAFTS + 1)
    ])
    await session.execute(insert(PollOption), [
        {"id": (d - 1) * len(OPTIONS) + p + 1, "draft_id": d, "position": p, "label": label}
        for d in range(1, DRAFTS + 1) for p, label in enumerate(OPTIONS)
    ])
    await session.execute(text("CREATE TABLE bench_codes (n INTEGER PRIMARY KEY, code INTEGER)"))
    codes = [c.code for c in communes.communes()]
    await session.execute(text("INSERT INTO bench_codes (n, code) VALUES (:n, :code)"),
                          [{"n": n, "code": code} for n, code in enumerate(codes)])
    true = "true" if dialect == "postgresql" else "1"
    newline = "chr(10)" if dialect == "postgresql" else "char(10)"
    await session.execute(text(
        f"INSERT INTO persons (id, created_at) SELECT i, {_time(dialect, 'i')}"
        f" FROM {_series(dialect, residents)}"
    ))
    await session.execute(text(
        "INSERT INTO residents (channel, platform_id, person_id, language, commune_code,"
        " consent_at, consent_version, subscribed, reachable, last_seen_at, notice_version,"
        " awaiting, awaiting_since, held_text, created_at)"
        f" SELECT CASE WHEN i % 3 = 0 THEN 'zalo' ELSE 'telegram' END, '849' || i, i, 'vi',"
        " c.code,"
        f" {_time(dialect, 'i')}, 'v1', {true}, {true}, NULL, 'v1', '', NULL, '',"
        f" {_time(dialect, 'i')}"
        f" FROM {_series(dialect, residents)} JOIN bench_codes c ON c.n = i % {len(codes)}"
    ))
    await session.execute(text(
        "INSERT INTO comments (draft_id, number, resident_id, commune_code, text, created_at)"
        f" SELECT (i - 1) % {DRAFTS} + 1, (i - 1) / {DRAFTS} + 1,"
        f" CASE WHEN i % 101 = 0 THEN NULL ELSE (i - 1) % {residents} + 1 END,"
        f" CASE WHEN i % 211 = 0 THEN NULL ELSE c.code END,"
        " CASE i % 40 WHEN 0 THEN '=HYPERLINK(\"http://x.example\",\"Bấm\")'"
        " WHEN 1 THEN '-5% phí là hợp lý' WHEN 2 THEN '@ban' WHEN 3 THEN"
        f" 'Dòng một' || {newline} || 'dòng hai'"
        " ELSE 'Góp ý số ' || i || ': tôi đồng ý với \"phí\", nhưng mức thu cần giảm' END,"
        f" {_time(dialect, 'i * 3')}"
        f" FROM {_series(dialect, comments)} JOIN bench_codes c ON c.n = i % {len(codes)}"
    ))
    await session.execute(text(
        "INSERT INTO votes (draft_id, resident_id, option_id, commune_code, created_at,"
        " updated_at)"
        f" SELECT (i - 1) % {DRAFTS} + 1,"
        f" CASE WHEN i % 89 = 0 THEN NULL ELSE (i - 1) / {DRAFTS} + 1 END,"
        f" ((i - 1) % {DRAFTS}) * {len(OPTIONS)} + i % {len(OPTIONS)} + 1, c.code,"
        f" {_time(dialect, 'i * 15')}, {_time(dialect, 'i * 15 + 1')}"
        f" FROM {_series(dialect, votes)} JOIN bench_codes c ON c.n = (i * 7) % {len(codes)}"
    ))
    await session.execute(text("DROP TABLE bench_codes"))
    await session.commit()
    await session.execute(text("ANALYZE"))
    await session.commit()


# ---------------------------------------------------------------------------- databases


async def prepare(url: str, rows: int) -> tuple[float, int, str]:
    """Build the data; returns (seconds, rows in the export, the export's SQL with literals)."""
    export = importlib.import_module("storage.export")
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        started = time.perf_counter()
        await build(session, rows)
        elapsed = time.perf_counter() - started
        total = (await session.execute(text(
            "SELECT (SELECT count(*) FROM comments) + (SELECT count(*) FROM votes)"
        ))).scalar_one()
        if session.bind.dialect.name == "sqlite":
            await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        # The query the export's rows come from on this database (on PostgreSQL the export
        # wraps it in COPY with most of each line built in SQL).
        query = export.export_query(None, session.bind.dialect.name).compile(
            dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
        )
    return elapsed, total, " ".join(str(query).split())


# ---------------------------------------------------------------------------- measurements


@dataclass
class Run:
    seconds: float
    rows: int = 0
    rss_mb: float = 0.0  # peak resident memory of the process
    base_mb: float = 0.0  # resident memory before the export began
    note: str = ""


def rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


async def child(url: str, out: str, impl: str) -> None:
    """In a fresh process: export to `out`, print JSON with seconds, rows and peak RSS."""
    export = importlib.import_module(impl)
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        base = rss_mb()
        with open(out, "w", encoding="utf-8-sig", newline="") as handle:
            started = time.perf_counter()
            count = await export.export_csv(session, handle, key=KEY)
            handle.flush()
            elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "rows": count, "rss_mb": rss_mb(), "base_mb": base}))


def ours(url: str, out: Path, impl: str) -> Run:
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, str(out), "--impl", impl],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )
    return Run(**json.loads(result.stdout.strip().splitlines()[-1]))


def sqlite_shell(path: Path, query: str, out: Path) -> Run:
    tool = shutil.which("sqlite3")
    if tool is None:
        return Run(0.0, note="sqlite3 shell not installed (apt-get install sqlite3): no reference")
    script = f".mode csv\n.headers on\n.once '{out}'\n{query};\n"
    started = time.perf_counter()
    subprocess.run([tool, str(path)], input=script, check=True, text=True,
                   capture_output=True)
    return Run(time.perf_counter() - started)


def psql_copy(url: str, query: str, out: Path) -> Run:
    tool = shutil.which("psql")
    if tool is None:
        return Run(0.0, note="psql not installed (apt-get install postgresql-client): no reference")
    parsed = make_url(url)
    env = dict(os.environ, PGPASSWORD=parsed.password or "")
    command = [
        tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", parsed.host or "127.0.0.1",
        "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres",
        "-d", parsed.database or "postgres",
        "-c", f"\\copy ({query}) to '{out}' with (format csv, header)",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return Run(time.perf_counter() - started)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.seconds)


async def backend(name: str, url: str, rows: int, small: int, repeat: int, impl: str,
                  folder: Path, db_path: Path | None, small_url: str) -> list[str]:
    lines = [f"== {name}"]
    for size, target in ((small, small_url), (rows, url)):
        built, total, query = await prepare(target, size)
        out = folder / f"ours-{name}-{size}.csv"
        mine = best([ours(target, out, impl) for _ in range(repeat)])
        assert mine.rows == total, (mine.rows, total)
        size_mb = out.stat().st_size / 2**20
        lines.append(
            f"{size:>9,} rows (built in {built:.1f} s): export_csv {mine.seconds:6.2f} s"
            f" = {mine.rows / mine.seconds:>9,.0f} rows/s, {size_mb:.0f} MB;"
            f" peak RSS {mine.rss_mb:.0f} MB ({mine.base_mb:.0f} MB before the export)"
        )
        reference_out = folder / f"reference-{name}-{size}.csv"
        if name == "sqlite":
            assert db_path is not None
            ref_path = db_path if target == url else db_path.with_name("small.db")
            runs = [sqlite_shell(ref_path, query, reference_out) for _ in range(repeat)]
            tool = "sqlite3 shell .once"
        else:
            runs = [psql_copy(target, query, reference_out) for _ in range(repeat)]
            tool = "psql \\copy"
        reference = best(runs)
        if reference.note:
            lines.append(f"{'':>9}  {tool}: {reference.note}")
        else:
            lines.append(
                f"{'':>9}  {tool} {reference.seconds:6.2f} s"
                f" = {total / reference.seconds:>9,.0f} rows/s;"
                f" export_csv / {tool} = {mine.seconds / reference.seconds:.2f}x"
            )
        for path in (out, reference_out):
            path.unlink(missing_ok=True)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres", default=os.environ.get(
        "YKIEN_BENCH_POSTGRES_URL", os.environ.get("YKIEN_TEST_POSTGRES_URL", DEFAULT_POSTGRES)))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--impl", default="storage.export")
    parser.add_argument("--child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(*args.child, args.impl)
        return

    started = time.perf_counter()
    lines = [
        f"CSV export ({args.impl}.export_csv) vs the databases' own CSV tools, best of"
        f" {args.repeat}",
        environment("SQLAlchemy", "aiosqlite", "asyncpg"),
        f"data: {DRAFTS} drafts; 4 comments : 1 vote; 1 in 101 comments and 1 in 89 votes by an"
        " erased resident; formula-like, quoted and multi-line cells",
    ]
    versions = []
    for tool in ("sqlite3", "psql"):
        found = shutil.which(tool)
        shown = "not installed"
        if found:
            said = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
            shown = said.split()[0] if tool == "sqlite3" else said.split()[2]
        versions.append(f"{tool} {shown}")
    lines.append("reference tools: " + ", ".join(versions))
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        db_path = folder / "bench.db"
        if args.no_sqlite:
            section = ["== sqlite: skipped (--no-sqlite)"]
        else:
            section = await backend(
                "sqlite", f"sqlite+aiosqlite:///{db_path}", args.rows, args.small_rows,
                args.repeat, args.impl, folder, db_path,
                f"sqlite+aiosqlite:///{folder / 'small.db'}",
            )
            for path in folder.glob("*.db*"):
                path.unlink()
        print("\n".join(section), flush=True)
        lines += section
        if args.no_postgres:
            section = ["== postgresql: skipped (--no-postgres)"]
        else:
            try:
                async with postgres_database(args.postgres, "export") as small_url, \
                        postgres_database(args.postgres, "export") as url:
                    section = await backend(
                        "postgresql", url, args.rows, args.small_rows, args.repeat, args.impl,
                        folder, None, small_url,
                    )
            except OSError as error:
                section = [f"== postgresql: not reachable at {args.postgres} ({error}): skipped"]
        print("\n".join(section), flush=True)
        lines += section
    lines.append(f"whole run {time.perf_counter() - started:.0f} s")
    print(lines[-1])
    print(f"wrote {write_results('export.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
