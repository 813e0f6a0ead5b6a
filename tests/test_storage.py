"""Schema and constraints on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.service import ChatService
from handlers import conversation
from handlers.events import Incoming, Kind
from storage.models import Base, Draft, Resident, Vote, utcnow
from storage.queries import add_residents_in_bulk, forget_updates_before
from tests.conftest import BACKENDS, add_draft


async def test_migrations_match_the_models(sessionmaker):
    def differences(connection):
        context = MigrationContext.configure(connection)
        return compare_metadata(context, Base.metadata)

    async with sessionmaker() as session:
        connection = await session.connection()
        assert await connection.run_sync(differences) == []


async def test_one_vote_per_resident_per_poll(sessionmaker):
    draft = await add_draft(sessionmaker, send=False)
    async with sessionmaker() as session:
        await add_residents_in_bulk(session, [
            {"channel": "t", "platform_id": "1", "consent_at": utcnow(), "consent_version": "x"}
        ])
        resident = await session.scalar(select(Resident))
        for option in draft.options[:2]:
            session.add(Vote(draft_id=draft.id, resident_id=resident.id, option_id=option.id))
        with pytest.raises(IntegrityError):
            await session.flush()


async def test_times_come_back_aware_in_utc(sessionmaker):
    draft = await add_draft(sessionmaker, send=False)
    async with sessionmaker() as session:
        stored = await session.get(Draft, draft.id)
    assert stored.deadline.utcoffset().total_seconds() == 0
    assert stored.deadline == draft.deadline


async def test_old_update_ids_are_forgotten(sessionmaker):
    service = ChatService(sessionmaker)
    event = Incoming("t", "1", Kind.CHOICE, choice="agree:en", update_id="5")
    [first, *_] = await service.handle(event)
    [again, *_] = await service.handle(event)  # recognised: the same answer, given again
    assert first.text == again.text == "Thank you. Your consent is recorded."
    async with sessionmaker() as session, session.begin():
        assert await forget_updates_before(session, utcnow() - timedelta(minutes=1)) == 0
        assert await forget_updates_before(session, utcnow() + timedelta(seconds=1)) == 1
    [afresh, *_] = await service.handle(event)  # no longer known: handled as new
    assert afresh.text.startswith("Your consent is already recorded.")


@pytest.mark.allow_errors  # the new update's failure is rightly logged
async def test_an_update_handled_before_gets_its_replies_even_if_handling_it_again_fails(
    sessionmaker, monkeypatch, caplog
):
    """A platform delivers an update again after a crash: what it was answered is given
    again, also when running it anew would fail (say, a row it would add is there already);
    a new update failing so gets the apology."""
    service = ChatService(sessionmaker)
    event = Incoming("t", "1", Kind.CHOICE, choice="agree:en", update_id="5")
    [first, *_] = await service.handle(event)

    async def failing(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("fails whenever the update is handled anew")

    monkeypatch.setattr(conversation, "_answer", failing)
    [again, *_] = await service.handle(event)
    assert again.text == first.text == "Thank you. Your consent is recorded."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [sorry] = await service.handle(Incoming("t", "1", Kind.TEXT, text="hi", update_id="6"))
    assert sorry.text.startswith("Sorry, something went wrong")
    assert "failed to handle a text event" in caplog.text


async def test_several_processes_migrate_a_fresh_database_at_once(
    empty_database_url, tmp_path
):
    """Deployments start several processes together; each migrates at start.

    On SQLite a process opening the file while another one's last connection cleans up
    its WAL is refused at once ("database is locked", no busy wait): rare in one start, so
    SQLite starts fresh several times.
    """
    import asyncio

    from alembic.script import ScriptDirectory

    from storage.db import alembic_config, make_engine, upgrade

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    sqlite = empty_database_url.startswith("sqlite")
    urls = ([f"sqlite+aiosqlite:///{tmp_path / f'start{n}.db'}" for n in range(12)]
            if sqlite else [empty_database_url])
    for url in urls:
        engines = [make_engine(url) for _ in range(4)]
        try:
            await asyncio.gather(*(upgrade(engine) for engine in engines))
            async with engines[0].connect() as connection:
                version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            assert version == head
        finally:
            for engine in engines:
                await engine.dispose()



async def _backend_of(engine) -> int:
    """The PostgreSQL server process behind the connection the engine's pool hands out."""
    async with engine.connect() as connection:
        return await connection.scalar(text("SELECT pg_backend_pid()"))


async def _drop_connection(url: str, backend: int) -> None:
    """End a connection from the server's side (as a restart or a firewall would), and wait
    until its process is gone."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    admin = create_async_engine(url, poolclass=NullPool)
    try:
        # The server waits for the process itself (PostgreSQL 14+). Polling pg_stat_activity
        # instead read one snapshot per transaction, so a first look taken before the end
        # was repeated until the bound ran out.
        async with admin.connect() as connection:
            ended = await connection.scalar(
                text("SELECT pg_terminate_backend(:b, 10000)"), {"b": backend})
        if not ended:
            raise AssertionError(f"server process {backend} did not end")
    finally:
        await admin.dispose()


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
async def test_a_connection_dropped_while_idle_in_the_pool_is_replaced_unseen(
    database_url, monkeypatch
):
    from storage import db

    monkeypatch.setattr(db, "IDLE_BEFORE_CHECK_SECONDS", 0.0)  # every connection idle enough
    engine = db.make_engine(database_url)
    try:
        dropped = await _backend_of(engine)
        await _drop_connection(database_url, dropped)
        assert await _backend_of(engine) != dropped  # checked, found gone, replaced
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
async def test_a_connection_used_a_moment_ago_is_not_checked_and_a_drop_costs_one_error(
    database_url, monkeypatch
):
    """Under load no transaction pays for the check; a server gone meanwhile fails the first
    statement on each old connection, and SQLAlchemy then replaces the whole pool."""
    from sqlalchemy.exc import DBAPIError

    from storage import db

    monkeypatch.setattr(db, "IDLE_BEFORE_CHECK_SECONDS", 3600.0)
    engine = db.make_engine(database_url)
    try:
        dropped = await _backend_of(engine)
        await _drop_connection(database_url, dropped)
        with pytest.raises(DBAPIError) as failed:
            await _backend_of(engine)  # handed out unchecked
        assert failed.value.connection_invalidated
        assert await _backend_of(engine) != dropped
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
async def test_the_connections_of_a_burst_are_kept_for_the_next_one(database_url):
    """A burst of updates uses many connections at once; the next burst finds them open
    rather than connecting again (a connection costs round trips and a server process)."""
    import asyncio
    from contextlib import AsyncExitStack

    from storage.db import POSTGRES_CONNECTIONS, make_engine

    engine = make_engine(database_url)

    async def burst() -> set[int]:
        async with AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(engine.connect())
                           for _ in range(POSTGRES_CONNECTIONS)]
            return set(await asyncio.gather(*(
                connection.scalar(text("SELECT pg_backend_pid()"))
                for connection in connections)))

    try:
        first = await burst()
        assert len(first) == POSTGRES_CONNECTIONS
        assert await burst() == first
    finally:
        await engine.dispose()
