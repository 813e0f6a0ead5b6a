"""XLSX export beside the CSV one: time and peak memory for 100,000 and 1,000,000 rows.

Run by hand from the repository root:
    python benchmarks/bench_export_xlsx.py [--rows 1000000] [--small-rows 100000] [--repeat 1]
                                           [--postgres URL | --no-postgres] [--no-sqlite]

The data are bench_export.py's (20 drafts, 4 comments : 1 vote, erased residents, formula-like
and multi-line cells), built the same way on an SQLite file and on a uniquely named PostgreSQL
database (dropped afterwards). Each export runs in a fresh child process, which reports its
time and its peak RSS beside the RSS before the export began: flat memory means the 1,000,000
rows cost no more than the 100,000. The CSV export of the same database is timed too, for the
ratio. Writes benchmarks/results/export_xlsx.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_export import (  # noqa: E402
    DEFAULT_POSTGRES,
    DRAFTS,
    KEY,
    Run,
    best,
    prepare,
    rss_mb,
)
from common import environment, postgres_database, write_results  # noqa: E402

from storage.db import open_database  # noqa: E402


async def child(url: str, out: str, kind: str) -> None:
    """In a fresh process: export to `out`, print JSON with seconds, rows and peak RSS."""
    from storage.export import export_csv
    from storage.export_xlsx import export_xlsx

    async with open_database(url) as sessionmaker, sessionmaker() as session:
        base = rss_mb()
        started = time.perf_counter()
        if kind == "xlsx":
            with open(out, "wb") as handle:
                count = await export_xlsx(session, handle, key=KEY)
        else:
            with open(out, "w", encoding="utf-8-sig", newline="") as handle:
                count = await export_csv(session, handle, key=KEY)
        elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "rows": count, "rss_mb": rss_mb(), "base_mb": base}))


def measure(url: str, out: Path, kind: str) -> Run:
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, str(out), kind],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )
    return Run(**json.loads(result.stdout.strip().splitlines()[-1]))


async def backend(name: str, urls: list[tuple[int, str]], repeat: int, folder: Path
                  ) -> list[str]:
    lines = [f"== {name}"]
    for size, url in urls:
        built, total, _ = await prepare(url, size)
        runs = {}
        for kind in ("xlsx", "csv"):
            out = folder / f"{name}-{size}.{kind}"
            runs[kind] = best([measure(url, out, kind) for _ in range(repeat)])
            assert runs[kind].rows == total, (kind, runs[kind].rows, total)
            runs[kind].note = f"{out.stat().st_size / 2**20:.0f} MB"
            out.unlink()
        xlsx, csv = runs["xlsx"], runs["csv"]
        lines.append(
            f"{size:>9,} rows (built in {built:.1f} s): export_xlsx {xlsx.seconds:6.1f} s"
            f" = {xlsx.rows / xlsx.seconds:>7,.0f} rows/s, {xlsx.note};"
            f" peak RSS {xlsx.rss_mb:.0f} MB ({xlsx.base_mb:.0f} MB before the export)"
        )
        lines.append(
            f"{'':>9}  export_csv {csv.seconds:6.1f} s, {csv.note}, peak RSS {csv.rss_mb:.0f} MB;"
            f" xlsx / csv = {xlsx.seconds / csv.seconds:.1f}x"
        )
        print("\n".join(lines[-2:]), flush=True)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get(
        "YKIEN_BENCH_POSTGRES_URL", os.environ.get("YKIEN_TEST_POSTGRES_URL", DEFAULT_POSTGRES)))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("URL", "OUT", "KIND"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(*args.child)
        return

    started = time.perf_counter()
    lines = [
        f"XLSX export (storage.export_xlsx, XlsxWriter constant_memory) beside the CSV export,"
        f" best of {args.repeat}",
        environment("SQLAlchemy", "aiosqlite", "asyncpg", "XlsxWriter"),
        f"data: bench_export.py's ({DRAFTS} drafts; 4 comments : 1 vote; erased residents;"
        " formula-like, quoted and multi-line cells)",
    ]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.no_sqlite:
            lines.append("== sqlite: skipped (--no-sqlite)")
        else:
            lines += await backend("sqlite", [
                (args.small_rows, f"sqlite+aiosqlite:///{folder / 'small.db'}"),
                (args.rows, f"sqlite+aiosqlite:///{folder / 'bench.db'}"),
            ], args.repeat, folder)
            for path in folder.glob("*.db*"):
                path.unlink()
        if args.no_postgres:
            lines.append("== postgresql: skipped (--no-postgres)")
        else:
            try:
                async with postgres_database(args.postgres, "export_xlsx") as small_url, \
                        postgres_database(args.postgres, "export_xlsx") as url:
                    lines += await backend("postgresql", [(args.small_rows, small_url),
                                                          (args.rows, url)],
                                           args.repeat, folder)
            except OSError as error:
                lines.append(f"== postgresql: not reachable at {args.postgres} ({error}):"
                             " skipped")
    lines.append(f"whole run {time.perf_counter() - started:.0f} s")
    print(lines[-1])
    print(f"wrote {write_results('export_xlsx.txt', lines)}")


if __name__ == "__main__":
    asyncio.run(main())
