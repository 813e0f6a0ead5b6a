"""Schema and constraints on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from storage.models import Base, Resident, Vote, utcnow
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
        resident = Resident(channel="t", platform_id="1", consent_at=utcnow(),
                            consent_version="x")
        session.add(resident)
        await session.flush()
        for option in draft.options[:2]:
            session.add(Vote(draft_id=draft.id, resident_id=resident.id, option_id=option.id))
        with pytest.raises(IntegrityError):
            await session.flush()


async def test_times_come_back_aware_in_utc(sessionmaker):
    draft = await add_draft(sessionmaker, send=False)
    async with sessionmaker() as session:
        from storage.models import Draft

        stored = await session.get(Draft, draft.id)
    assert stored.deadline.utcoffset().total_seconds() == 0
    assert stored.deadline == draft.deadline
