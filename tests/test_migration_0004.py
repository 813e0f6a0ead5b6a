"""Migration 0004 (persons): a database written the 0003 way comes out with one person per
resident, numbered like the resident, so outbox keys queued before it still de-duplicate."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import Boolean, Integer, String, column, delete, func, insert, select, table, text
from sqlalchemy.engine import Connection

from storage.db import alembic_config, make_engine, make_sessionmaker, upgrade
from storage.drafts import broadcast
from storage.models import (
    Delivery,
    Draft,
    Person,
    Resident,
    UtcDateTime,
    Vote,
    draft_dedup_key,
    utcnow,
)
from storage.queries import add_resident

CAM_TU = 15148

# The 0003 tables, only the columns written here (the others have defaults or may be NULL).
residents = table(
    "residents", column("id", Integer), column("channel", String),
    column("platform_id", String), column("language", String), column("commune_code", Integer),
    column("consent_at", UtcDateTime()), column("consent_version", String),
    column("subscribed", Boolean), column("reachable", Boolean), column("awaiting", String),
    column("held_text", String), column("notice_version", String),
    column("created_at", UtcDateTime()),
)
drafts = table(
    "drafts", column("id", Integer), column("title", String), column("issuer", String),
    column("summary", String), column("link", String), column("scope", String),
    column("opens_at", UtcDateTime()), column("deadline", UtcDateTime()),
    column("status", String), column("poll_question", String),
    column("created_at", UtcDateTime()), column("broadcast_at", UtcDateTime()),
    column("comment_count", Integer), column("paused", Boolean),
)
draft_communes = table("draft_communes", column("draft_id", Integer),
                       column("commune_code", Integer))
poll_options = table("poll_options", column("id", Integer), column("draft_id", Integer),
                     column("position", Integer), column("label", String))
votes = table(
    "votes", column("draft_id", Integer), column("resident_id", Integer),
    column("option_id", Integer), column("commune_code", Integer),
    column("created_at", UtcDateTime()), column("updated_at", UtcDateTime()),
)
deliveries = table(
    "deliveries", column("kind", String), column("dedup_key", String),
    column("draft_id", Integer), column("resident_id", Integer), column("channel", String),
    column("payload", String), column("status", String), column("attempts", Integer),
    column("not_before", UtcDateTime()), column("lease_token", String),
    column("expires_at", UtcDateTime()), column("created_at", UtcDateTime()),
    column("error", String),
)


def upgrade_to(revision: str):
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def test_every_resident_becomes_a_person_with_its_number(empty_database_url):
    now = utcnow()
    engine = make_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0003"))
        async with engine.begin() as connection:
            for user in ("1", "2", "3"):
                await connection.execute(insert(residents).values(
                    channel="telegram", platform_id=user, language="vi", commune_code=CAM_TU,
                    consent_at=now, consent_version="1", subscribed=True, reachable=True,
                    awaiting="", held_text="", notice_version="1", created_at=now,
                ))
            # A gap in the numbers, as an erased resident leaves.
            await connection.execute(delete(residents).where(residents.c.platform_id == "2"))
            old_ids = sorted((await connection.scalars(select(residents.c.id))).all())
            draft_id = (await connection.execute(insert(drafts).values(
                title="t", issuer="i", summary="s", link="", scope="all",
                opens_at=now - timedelta(hours=1), deadline=now + timedelta(days=1),
                status="open", poll_question="q", created_at=now, broadcast_at=now,
                comment_count=0, paused=False,
            ).returning(drafts.c.id))).scalar_one()
            await connection.execute(insert(draft_communes).values(
                draft_id=draft_id, commune_code=CAM_TU))
            option_id = (await connection.execute(insert(poll_options).values(
                draft_id=draft_id, position=0, label="Yes").returning(poll_options.c.id)
            )).scalar_one()
            for resident_id in old_ids:
                await connection.execute(insert(votes).values(
                    draft_id=draft_id, resident_id=resident_id, option_id=option_id,
                    commune_code=CAM_TU, created_at=now, updated_at=now))
                await connection.execute(insert(deliveries).values(
                    kind="draft", dedup_key=f"draft:{draft_id}:{resident_id}",
                    draft_id=draft_id, resident_id=resident_id, channel="telegram",
                    payload="", status="sent", attempts=1, not_before=now, lease_token="",
                    expires_at=now + timedelta(days=1), created_at=now, error=""))
        await upgrade(engine)  # as every process does at start

        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            people = (await session.execute(
                select(Resident.id, Resident.person_id).order_by(Resident.id))).all()
            assert [(r, p) for r, p in people] == [(r, r) for r in old_ids]
            assert sorted((await session.scalars(select(Person.id))).all()) == old_ids
            assert sorted((await session.scalars(select(Vote.resident_id))).all()) == old_ids

            # A new resident is a new person, numbered after the old ones (on PostgreSQL
            # the migration moved the sequence on).
            newcomer = await add_resident(session, "zalo", "z1", "vi", "1", now)
            newcomer.commune_code = CAM_TU
            assert newcomer.person_id > max(old_ids)

            # The keys queued before the migration are the keys of the same people now.
            old_keys = set((await session.scalars(select(Delivery.dedup_key))).all())
            assert old_keys == {draft_dedup_key(draft_id, person) for _, person in people}
            draft = await session.get(Draft, draft_id)
            assert draft is not None
            assert await broadcast(session, draft, now) == 1  # the newcomer only
            await session.commit()
    finally:
        await engine.dispose()


async def test_upgrading_from_0002_keeps_poll_options_and_targets(empty_database_url):
    """0003 rebuilds `drafts`; on SQLite that must not cascade to the rows that refer to it."""
    now = utcnow()
    engine = make_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0002"))
        async with engine.begin() as connection:
            draft_id = (await connection.execute(insert(drafts).values(
                title="t", issuer="i", summary="s", link="", scope="all",
                opens_at=now, deadline=now + timedelta(days=1), status="open",
                poll_question="q", created_at=now, broadcast_at=now, comment_count=0,
            ).returning(drafts.c.id))).scalar_one()
            await connection.execute(insert(draft_communes).values(
                draft_id=draft_id, commune_code=CAM_TU))
            await connection.execute(insert(poll_options).values(
                draft_id=draft_id, position=0, label="Yes"))
        await upgrade(engine)
        async with engine.connect() as connection:
            assert (await connection.scalar(select(func.count()).select_from(poll_options))) == 1
            assert (await connection.scalar(
                select(func.count()).select_from(draft_communes))) == 1
            assert (await connection.scalar(text("PRAGMA foreign_keys"))
                    if engine.dialect.name == "sqlite" else 1) == 1  # back on afterwards
    finally:
        await engine.dispose()
