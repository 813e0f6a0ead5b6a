"""Migration 0006 (link_guesses): wrong link codes, kept until now as rows of link_codes whose
code starts with "?", move to a table of their own and still count; real codes stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Integer, String, column, insert, select, table

from storage.db import make_engine, make_sessionmaker, upgrade
from storage.linking import wrong_guesses
from storage.models import LinkCode, LinkGuess, UtcDateTime, utcnow
from tests.test_migration_0004 import upgrade_to

persons = table("persons", column("id", Integer), column("created_at", UtcDateTime()))
link_codes = table(
    "link_codes", column("code", String), column("person_id", Integer),
    column("created_at", UtcDateTime()), column("expires_at", UtcDateTime()),
)


async def test_wrong_guesses_move_to_their_table_and_still_count(empty_database_url):
    now = utcnow()
    guessed_at = now - timedelta(minutes=5)
    engine = make_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0005"))
        async with engine.begin() as connection:
            await connection.execute(insert(persons).values(id=1, created_at=now))
            await connection.execute(insert(link_codes), [
                {"code": "AB2345", "person_id": 1, "created_at": now,
                 "expires_at": now + timedelta(minutes=15)},
                {"code": "?0123456789abcd", "person_id": 1, "created_at": guessed_at,
                 "expires_at": guessed_at + timedelta(hours=1)},
            ])
        await upgrade(engine)  # as every process does at start

        async with make_sessionmaker(engine)() as session:
            assert (await session.scalars(select(LinkCode.code))).all() == ["AB2345"]
            guesses = (await session.execute(
                select(LinkGuess.person_id, LinkGuess.created_at))).all()
            assert [(person, at) for person, at in guesses] == [(1, guessed_at)]
            assert await wrong_guesses(session, 1, now) == [guessed_at]
    finally:
        await engine.dispose()
