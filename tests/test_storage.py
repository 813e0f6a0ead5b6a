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
from tests.conftest import add_draft


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
