"""SQLite statements run on the event loop (storage.sqlite_hops): another process's lock is
waited for without stopping the loop, long results still arrive whole and in order."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import text

from storage import sqlite_hops
from storage.db import make_engine

ROWS = sqlite_hops.FIRST_ROWS * 2 + 7  # beyond what is fetched with the statement


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "hops.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        connection.executemany("INSERT INTO numbers VALUES (?)", ((n,) for n in range(ROWS)))
    return path


async def test_another_process_lock_is_waited_for_while_the_loop_runs(database):
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    other = sqlite3.connect(database, isolation_level=None)  # another process, as SQLite sees it
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        insert = text("INSERT INTO numbers VALUES (-1)")

        async def write() -> None:
            async with engine.begin() as connection:
                await connection.execute(insert)

        writing = asyncio.create_task(write())
        # The loop is free while the write waits (SQLite's busy handler would stop it until
        # the timeout, and this coroutine could never release the lock): the write gets its
        # turns, and this coroutine its own, finding the write still waiting.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not writing.done()
        other.execute("COMMIT")
        await writing
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM numbers")) == ROWS + 1
    finally:
        other.close()
        await engine.dispose()


async def test_a_lock_held_past_the_timeout_fails_the_statement(database):
    other = sqlite3.connect(database, isolation_level=None)
    connection = await sqlite_hops.connect(str(database), timeout=0.05)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            async with connection.cursor() as cursor:
                await cursor.execute("INSERT INTO numbers VALUES (-1)")
        other.execute("ROLLBACK")
        async with connection.cursor() as cursor:  # and the connection still works
            await cursor.execute("SELECT count(*) FROM numbers")
            assert await cursor.fetchall() == [(ROWS,)]
    finally:
        await connection.close()
        other.close()


async def test_long_results_arrive_whole_fetched_or_streamed(database):
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    query = text("SELECT n FROM numbers ORDER BY n")
    try:
        async with engine.connect() as connection:
            assert list(await connection.scalars(query)) == list(range(ROWS))
            streamed = await connection.stream(query.execution_options(yield_per=100))
            assert [n async for n in streamed.scalars()] == list(range(ROWS))
            # A stream left early gives its connection back in a usable state.
            partial = await connection.stream(query.execution_options(yield_per=10))
            assert [n for n, in await partial.fetchmany(3)] == [0, 1, 2]
            await partial.close()
            assert await connection.scalar(text("SELECT max(n) FROM numbers")) == ROWS - 1
    finally:
        await engine.dispose()
