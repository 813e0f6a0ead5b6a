"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.console import ConsoleChannel
from bot.channels.pacing import ChannelLimiter
from bot.draftfile import load_draft_file
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from handlers.i18n import translator
from storage import sealing
from storage.db import open_database
from storage.drafts import broadcast, create_draft
from storage.flood import CommentLimits
from storage.models import Draft, utcnow

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DRAFT = ROOT / "examples" / "draft.toml"
POSTGRES_URL = os.environ.get("YKIEN_TEST_POSTGRES_URL", "")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# The suite's YKIEN_SECRET_KEY, as a deployment has one: every secret a test stores is sealed
# (storage.sealing), in this process (the fixture below) and in every `ykien` it starts (they
# inherit the environment). Tests of a missing or wrong key take it away themselves.
TEST_SECRET_KEY = "jGG_j9OWTu-VQOV6AA5mVnyxKnvG3o_gXURnyicRzOA="
os.environ["YKIEN_SECRET_KEY"] = TEST_SECRET_KEY


@pytest.fixture(autouse=True)
def sealed_secrets() -> Iterator[None]:
    sealing.configure(TEST_SECRET_KEY)
    yield
    sealing.configure(TEST_SECRET_KEY)  # a test that changed the keys leaves them as found


def pytest_collection_modifyitems(config, items) -> None:
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="YKIEN_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL of YKIEN_TEST_POSTGRES_URL")
    config.addinivalue_line(
        "markers", "allow_errors: the test provokes a failure that is rightly logged at ERROR"
    )


@pytest.fixture(autouse=True)
def no_error_logged(request, caplog):
    """Fail a test that logged at ERROR: an apology to the user must not hide a crash."""
    caplog.set_level(logging.INFO)
    yield
    if request.node.get_closest_marker("allow_errors"):
        return
    errors = [
        f"{record.name}: {record.getMessage()}"
        for when in ("setup", "call")
        for record in caplog.get_records(when)
        if record.levelno >= logging.ERROR
    ]
    assert not errors, f"logged at ERROR: {errors}"


async def _on_postgres_server(statement: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    server = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(
        host=server.host, port=server.port, user=server.username, password=server.password,
        database=server.database or "postgres",
    )
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _postgres_url(name: str) -> str:
    url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _postgres_database(template: str | None = None) -> tuple[str, str]:
    """Create a database with a unique name, empty or a copy of `template`; returns (its URL,
    its name)."""
    name = f"ykien_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _on_postgres_server(f'CREATE DATABASE "{name}"{copy}')
    return _postgres_url(name), name


async def _drop_postgres_database(name: str) -> None:
    await _on_postgres_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(url: str) -> None:
    """Migrate a database as every process does at start, and close every connection."""
    async with open_database(url):
        pass


def _run_aside(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to its end in a thread of its own, with an event loop of its own: a
    session-wide fixture may be set up while a test's loop runs, and must not touch it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="database-template")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# A test gets a database of its own, already migrated: a copy of a template migrated once per
# test process (pytest-xdist runs several). Migrating cost 0.2 s on SQLite and 0.4-0.6 s on
# PostgreSQL per test; a copy costs milliseconds. The migrations themselves are still run for
# real from an empty database by the template, by `empty_database_url`'s tests (migration
# tests) and by test_migrations_match_the_models (the template against the models).


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file migrated to the latest revision, all its connections closed (so the WAL
    is checkpointed into it and the file alone is the whole database)."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    _run_aside(_migrate(f"sqlite+aiosqlite:///{path}"))
    assert not Path(f"{path}-wal").exists(), "the template's WAL was not checkpointed"
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the latest revision, with no connection
    left open (CREATE DATABASE … TEMPLATE needs that), dropped at the end of the session."""
    _, name = _run_aside(_postgres_database())
    try:
        _run_aside(_migrate(_postgres_url(name)))
        yield name
    finally:
        _run_aside(_drop_postgres_database(name))


class PostgresCopies:
    """Copies of the template made one ahead of the tests and dropped behind them, in a
    thread with an event loop of its own: a test no longer waits for its CREATE DATABASE
    (0.15-0.6 s) nor for its DROP DATABASE … WITH (FORCE) (up to 1.3 s: PostgreSQL polls
    every 100 ms until the test's last connections have gone). A drop that fails fails the
    session, naming the database."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="postgres-copies",
                                       daemon=True)
        self.thread.start()
        self.drops: list[tuple[str, concurrent.futures.Future[None]]] = []
        self.spare = self._aside(_postgres_database(template=self.template))

    def _aside(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def take(self) -> tuple[str, str]:
        """A copy of this test's own (its URL, its name); the next one is begun."""
        ready, self.spare = self.spare, self._aside(_postgres_database(template=self.template))
        return await asyncio.wrap_future(ready)

    def drop(self, name: str) -> None:
        self.drops.append((name, self._aside(_drop_postgres_database(name))))

    def close(self) -> None:
        """Drop the spare copy, wait for every drop, and stop the thread."""
        try:
            with contextlib.suppress(Exception):  # a spare that failed was never created
                self.drop(self.spare.result()[1])
            failed = []
            for name, dropped in self.drops:
                try:
                    dropped.result()
                except Exception as error:
                    failed.append(f"{name}: {error!r}")
            if failed:
                raise RuntimeError(f"test databases not dropped: {failed}")
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()


@pytest.fixture(scope="session")
def postgres_copies(postgres_template: str) -> Iterator[PostgresCopies]:
    copies = PostgresCopies(postgres_template)
    try:
        yield copies
    finally:
        copies.close()  # before the template is dropped: the spare is copied from it


@pytest.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    """A new database of this test's own, migrated to the latest revision: an SQLite file, or
    a uniquely named PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        path = tmp_path / "ykien.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    copies = request.getfixturevalue("postgres_copies")
    url, name = await copies.take()
    try:
        yield url
    finally:
        copies.drop(name)


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request, tmp_path) -> AsyncIterator[str]:
    """A new, empty database (no table at all), for the tests of migrations: an SQLite file
    not created yet, or a uniquely named PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ykien.db'}"
        return
    copies = request.getfixturevalue("postgres_copies")
    url, name = await _postgres_database()
    try:
        yield url
    finally:
        copies.drop(name)


@pytest.fixture
def brisk_chats(monkeypatch) -> None:
    """A chat's pace (1 message/s after a burst of 3) is tested in test_pacing on a clock of
    its own; in a whole conversation through a fake platform it only made the test wait a
    second of real time for every reply past the third. Used by such modules with
    `pytestmark = pytest.mark.usefixtures("brisk_chats")`."""
    monkeypatch.setattr(ChannelLimiter, "chat_rate", 1000.0)
    monkeypatch.setattr(ChannelLimiter, "chat_burst", 100)


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with open_database(database_url) as factory:
        yield factory


@pytest.fixture
def service(sessionmaker) -> ChatService:
    return ChatService(sessionmaker)


class Console:
    """Drives the real console channel with scripted lines, as a piped terminal would."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], user: str,
                 comment_limits: CommentLimits | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.user = user
        self.comment_limits = comment_limits
        self.transcript = ""

    async def say(self, *lines: str) -> str:
        """Type the lines in one console session; returns what the bot printed."""
        stdout = io.StringIO()
        channel = ConsoleChannel(
            ChatService(self.sessionmaker, comment_limits=self.comment_limits), self.user,
            io.StringIO("\n".join(lines) + "\n"),
            stdout,
        )
        await channel.run(DeliveryWorker(self.sessionmaker, {channel.name: channel}))
        self.transcript += stdout.getvalue()
        return stdout.getvalue()


@pytest.fixture
def console(sessionmaker):
    def make(user: str = "console", comment_limits: CommentLimits | None = None) -> Console:
        return Console(sessionmaker, user, comment_limits)

    return make


async def add_draft(
    sessionmaker: async_sessionmaker[AsyncSession], path: Path = EXAMPLE_DRAFT, send: bool = True
) -> Draft:
    """Create the example draft (and queue its broadcast), as `ykien draft` would."""
    spec = load_draft_file(path, translator("en"))
    async with sessionmaker() as session:
        draft = await create_draft(session, spec)
        if send:
            await broadcast(session, draft, utcnow())
        await session.commit()
    return draft


def cli_environment(database_url: str) -> dict[str, str]:
    """The environment `ykien …` runs in for a test: its database, no token, English."""
    return {
        **os.environ,
        "YKIEN_DATABASE_URL": database_url,
        "YKIEN_TELEGRAM_TOKEN": "",
        "YKIEN_LANGUAGE": "en",
        "PYTHONPATH": str(ROOT),
    }


def lines_with(text: str, words: Iterable[str]) -> list[str]:
    return [line for line in text.splitlines() if all(word in line for word in words)]
