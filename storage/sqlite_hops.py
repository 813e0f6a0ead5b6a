"""SQLite statements run on the event loop itself, not in aiosqlite's thread.

aiosqlite runs each cursor call in its connection's thread: SQLAlchemy's adapter makes a
cursor, executes, fetches and closes, each a trip there and back, and every trip wakes the
thread and waits for it (the GIL, and on a busy machine the scheduler: ~0.6 ms a trip
measured under load, where the statement itself takes tens of microseconds). A webhook
update costs a dozen statements, so the trips were most of its time. Here a statement is
executed and its first rows fetched in one call (the rest of a long result, a streamed
export, in chunks), and that call is made right on the event loop: a process has one SQLite
connection anyway, so nothing else could use the database meanwhile.

Only waiting for another process's write lock must not stall the loop: SQLite's own busy
handler would sleep in it, so the connection has none (timeout 0) and a statement refused
as busy is tried again after an asyncio sleep, backing off, for up to the busy timeout.
Plugged in through SQLAlchemy's `async_creator` (storage.db.make_engine).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite

# Rows fetched with the statement: any row a conversation reads, and a streamed result's
# first chunk (its rest comes by `fetchmany`).
FIRST_ROWS = 512


def _execute(
    connection: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> tuple[sqlite3.Cursor, list[Any], bool]:
    """In the connection's thread: run the statement and fetch its first rows."""
    cursor = connection.cursor()
    if many:
        cursor.executemany(sql, parameters)
    else:
        cursor.execute(sql, parameters)
    if cursor.description is None:
        return cursor, [], True
    rows = cursor.fetchmany(FIRST_ROWS)
    return cursor, rows, len(rows) < FIRST_ROWS


class OneTripCursor:
    """The part of aiosqlite's cursor SQLAlchemy uses, one trip to the thread a statement."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None
        self._rows: list[Any] = []
        self._exhausted = True
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneTripCursor:
        return await self._run(sql, () if parameters is None else parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneTripCursor:
        return await self._run(sql, parameters, many=True)

    async def _run(self, sql: str, parameters: Any, *, many: bool) -> OneTripCursor:
        connection = self._connection
        self._cursor, self._rows, self._exhausted = await connection._execute(
            _execute, connection._conn, sql, parameters, many)
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        if not self._exhausted:
            rows += await self._connection._execute(self._sqlite.fetchall)
            self._exhausted = True
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        if len(self._rows) < size and not self._exhausted:
            more = await self._connection._execute(self._sqlite.fetchmany, max(size, FIRST_ROWS))
            self._exhausted = len(more) < max(size, FIRST_ROWS)
            self._rows += more
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchone(self) -> Any:
        rows = await self.fetchmany(1)
        return rows[0] if rows else None

    async def close(self) -> None:
        # A cursor left unfinished (a stream stopped early) is finished in its thread; one
        # read to its end holds nothing (SQLite reset the statement) and is let go.
        self._rows = []
        if self._cursor is not None and not self._exhausted:
            await self._connection._execute(self._cursor.close)
        self._exhausted = True

    @property
    def _sqlite(self) -> sqlite3.Cursor:
        if self._cursor is None:
            raise sqlite3.ProgrammingError("no statement executed")
        return self._cursor

    @property
    def description(self) -> Sequence[Any] | None:
        return None if self._cursor is None else self._cursor.description

    @property
    def rowcount(self) -> int:
        return -1 if self._cursor is None else self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return None if self._cursor is None else self._cursor.lastrowid


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection whose statements run on the event loop, one call each.

    Its thread still opens and closes the connection (aiosqlite and SQLAlchemy's adapter
    use it for that and for setting the isolation level)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self.busy_timeout = busy_timeout

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            return await super()._execute(fn, *args, **kwargs)  # its error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                # Plain SQLITE_BUSY only: another process holds the lock, and the same call
                # may succeed later. (A stale snapshot, BUSY_SNAPSHOT, never would.)
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)


def connect(database: str, *, timeout: float, **kwargs: Any) -> OneTripConnection:
    """Like `aiosqlite.connect` (awaited, it opens the connection), waiting up to `timeout`
    seconds for another process's lock without blocking the event loop."""

    def connector() -> sqlite3.Connection:
        # Opened in aiosqlite's thread, used on the event loop's; no busy handler (above).
        return sqlite3.connect(database, **{**kwargs, "check_same_thread": False}, timeout=0)

    return OneTripConnection(connector, timeout)

