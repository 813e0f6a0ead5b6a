"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.console import ConsoleChannel
from bot.draftfile import load_draft_file
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from handlers.i18n import translator
from storage.db import open_database
from storage.drafts import broadcast, create_draft
from storage.models import Draft, utcnow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DRAFT = ROOT / "examples" / "draft.toml"
POSTGRES_URL = os.environ.get("YKIEN_TEST_POSTGRES_URL", "")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


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


async def _postgres_database() -> tuple[str, str]:
    """Create a database with a unique name; returns (its URL, its name)."""
    name = f"ykien_test_{uuid.uuid4().hex[:12]}"
    await _on_postgres_server(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def _drop_postgres_database(name: str) -> None:
    await _on_postgres_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    """A new, empty database: an SQLite file, or a uniquely named PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ykien.db'}"
        return
    url, name = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with open_database(database_url) as factory:
        yield factory


@pytest.fixture
def service(sessionmaker) -> ChatService:
    return ChatService(sessionmaker)


class Console:
    """Drives the real console channel with scripted lines, as a piped terminal would."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], user: str) -> None:
        self.sessionmaker = sessionmaker
        self.user = user
        self.transcript = ""

    async def say(self, *lines: str) -> str:
        """Type the lines in one console session; returns what the bot printed."""
        stdout = io.StringIO()
        channel = ConsoleChannel(
            ChatService(self.sessionmaker), self.user, io.StringIO("\n".join(lines) + "\n"),
            stdout,
        )
        await channel.run(DeliveryWorker(self.sessionmaker, {channel.name: channel}))
        self.transcript += stdout.getvalue()
        return stdout.getvalue()


@pytest.fixture
def console(sessionmaker):
    def make(user: str = "console") -> Console:
        return Console(sessionmaker, user)

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
