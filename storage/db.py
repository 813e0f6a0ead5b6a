"""Engine, sessions and schema upgrades."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

from storage import DEFAULT_DATABASE_URL, sealed_rows, sealing, sqlite_hops

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a connection waits for another process's lock
# PostgreSQL: a connection left unused in the pool this long is checked before it is handed
# out, so a server restarted or a connection dropped while idle costs no one an error. One
# used more recently goes out as it is: under load that spares every transaction the check,
# three round trips (asyncpg's ping opens and rolls back a transaction), about a tenth of
# `ykien serve`'s CPU a comment. Should the server go away within those seconds, the first
# statement's disconnect error makes SQLAlchemy replace every connection of the pool.
IDLE_BEFORE_CHECK_SECONDS = 10.0
# PostgreSQL connections a process keeps, opened as needed and never closed on return: the
# same most a process had before (SQLAlchemy's 5, and 10 more in a burst), but the 10 were
# closed as soon as they came back and opened again for the next update (a connection
# costs several round trips and a server process): under a burst of first messages that
# was a fifth of `ykien serve`'s CPU (300-320 against 440-460 updates a second).
POSTGRES_CONNECTIONS = 15
_RETURNED_AT = "ykien returned at"  # in a pooled connection's info: time.monotonic()


def in_memory(database: str | None) -> bool:
    """Whether an SQLite URL's database is in memory rather than a file."""
    return not database or database == ":memory:" or "mode=memory" in database


def make_engine(url: str = DEFAULT_DATABASE_URL) -> AsyncEngine:
    """An engine for the URL; SQLite gets foreign keys, one connection per process and a busy
    timeout so processes share it.

    SQL parameters are hidden from errors: they hold comments and chat ids, which must not
    reach a log through a traceback.
    """
    # aiosqlite logs every statement with its parameters at DEBUG: comments and chat ids.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    if url.startswith("sqlite"):
        # One connection per process: SQLite has one writer at a time, and a second
        # connection of the same process waiting for the write lock sleeps in SQLite's busy
        # handler (up to seconds) where queueing for the pool costs nothing. Other
        # processes sharing the file still wait through the busy timeout.
        # A database in memory lives in one connection already (SQLAlchemy's StaticPool).
        memory = in_memory(make_url(url).database)
        engine = create_async_engine(
            url, hide_parameters=True, async_creator=_one_trip_connector(url),
            **({} if memory else {"pool_size": 1, "max_overflow": 0}),
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            dbapi_connection.run_async(_prepare_sqlite)

        return engine
    engine = create_async_engine(url, hide_parameters=True,
                                 pool_size=POSTGRES_CONNECTIONS, max_overflow=0)
    _check_after_idle(engine)
    return engine


def _check_after_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, only for connections idle IDLE_BEFORE_CHECK_SECONDS or more
    (its documented way: a check-out that raises DisconnectionError is given a new
    connection)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check_if_idle(dbapi_connection, record, _proxy) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < IDLE_BEFORE_CHECK_SECONDS:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(f"an idle connection failed its check: {error}") from error


def _one_trip_connector(url: str) -> Callable[[], Awaitable[sqlite_hops.OneTripConnection]]:
    """Connections as SQLAlchemy's aiosqlite dialect would open them (the URL's file and
    options), running their statements on the event loop (storage.sqlite_hops)."""
    parsed = make_url(url)
    arguments, options = parsed.get_dialect()().create_connect_args(parsed)

    async def connect() -> sqlite_hops.OneTripConnection:
        connection = sqlite_hops.connect(*arguments, **options, timeout=SQLITE_BUSY_TIMEOUT)
        connection._thread.daemon = True  # as SQLAlchemy does: an exit never waits for it
        await connection  # opens it
        return connection

    return connect


# PostgreSQL's "deadlock detected" and "could not serialize": the transaction was chosen to
# give way to another one and may simply be run again.
_GIVE_WAY = {"40P01", "40001"}


def gave_way(error: BaseException) -> bool:
    """Whether a transaction failed only because the database chose it to give way to a
    concurrent one (PostgreSQL: a deadlock between two lock orders; running it again works)."""
    return (isinstance(error, DBAPIError)
            and getattr(error.orig, "sqlstate", None) in _GIVE_WAY)


def conversation_slots(engine: AsyncEngine) -> int:
    """How many conversation transactions may wait for the engine's connections at once: all
    of them but two (a webhook update's store, claim and record each write one batch at a
    time), and at least one. The pool serves its waiters first come, first served: with
    every handler queued there, an update's store (what its 200 waits for) would wait behind
    all of them (on SQLite, one connection, seconds under load)."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return 1  # SQLite in memory: one connection
    return max(1, pool.size() + max(0, pool._max_overflow) - 2)


async def _prepare_sqlite(connection: aiosqlite.Connection) -> None:
    """Foreign keys on, WAL so readers never wait for the writer, NORMAL sync (still safe
    from corruption in WAL, and spares an fsync per commit).

    Switching to WAL, or opening while the last connection of another process cleans up
    its WAL, can answer "database is locked" at once instead of waiting in the busy handler
    (sqlite.org/wal.html, "Sometimes Queries Return SQLITE_BUSY In WAL Mode"): so WAL is
    asked for again, without blocking the event loop, for as long as the busy timeout.
    """
    await _run(connection, "PRAGMA foreign_keys=ON")
    deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT
    pause = 0.005
    while True:
        try:
            await _run(connection, "PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or asyncio.get_running_loop().time() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)
    await _run(connection, "PRAGMA synchronous=NORMAL")


async def _run(connection: aiosqlite.Connection, statement: str) -> None:
    async with connection.execute(statement):
        pass


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Alembic configuration without an ini file, so an installed package can migrate itself."""
    config = Config()
    config.set_main_option("script_location", str(files("storage") / "migrations"))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


# Any fixed number: the PostgreSQL advisory lock that lets one process at a time migrate.
MIGRATION_LOCK = 0x796B69656E  # "ykien"


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the latest migration (does nothing when already there).

    Every process migrates at start. On PostgreSQL several starting at once (a deployment
    of several `ykien serve`) would collide creating the same tables, so each waits for a
    transaction-scoped advisory lock first and then finds the work done. On SQLite the
    write lock, taken at the start (BEGIN IMMEDIATE) rather than at the first write, does
    the same.

    SQLite alters a table by copying it and dropping the old one: with foreign keys on,
    that drop would cascade and delete the rows that refer to it (poll options, votes,
    deliveries). So SQLite migrates with foreign keys off, checks them before committing,
    and the connection is not reused afterwards.
    """
    sqlite = engine.dialect.name == "sqlite"
    async with engine.begin() as connection:
        if not sqlite:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": MIGRATION_LOCK})
        else:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await connection.run_sync(_upgrade)
        if sqlite:
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first()
            if broken is not None:
                raise RuntimeError(f"migration left a row pointing nowhere in {broken[0]}")
    if sqlite and in_memory(engine.url.database):
        # Its one connection is the database: keep it, with foreign keys back on.
        async with engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    elif sqlite:
        await engine.dispose()  # fresh connections get foreign keys back (see make_engine)


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Open, upgrade and yield a session factory; dispose the engine afterwards.

    Secrets stored before YKIEN_SECRET_KEY was set are sealed now, and a key that does not
    open the sealed ones is an error now (storage.sealed_rows.on_start).
    """
    engine = make_engine(url)
    try:
        await upgrade(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            await sealed_rows.on_start(session, sealing.current())
        yield sessionmaker
    finally:
        await engine.dispose()
