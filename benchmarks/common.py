"""Shared bits of the benchmarks: where results go, and the line describing the machine.

A benchmark run as a script has benchmarks/ on sys.path, so it can
`from common import RESULTS, environment, write_results`.
"""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def versions(*packages: str) -> str:
    """'aiohttp 3.14.5, httpx 0.28.1' for the installed distributions named."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def environment(*packages: str) -> str:
    """One line: date (UTC), Python, library versions, machine and its core count."""
    libraries = versions(*packages)
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}"
        f"{', ' + libraries if libraries else ''}; {platform.machine()}, "
        f"nproc {len(os.sched_getaffinity(0))} ({os.cpu_count()} CPUs)"
    )


def write_results(name: str, lines: list[str]) -> Path:
    """Write the report to benchmarks/results/<name> and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@asynccontextmanager
async def postgres_database(server: str, purpose: str) -> AsyncIterator[str]:
    """A new, uniquely named database on the PostgreSQL server of the URL `server`, dropped
    afterwards; yields its URL. A run never adds to a database another run or a person
    uses, whose size would change the figures."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql+asyncpg")
    name = f"ykien_bench_{purpose}_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            database=url.database or "postgres",
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
