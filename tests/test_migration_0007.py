"""Migration 0007 (reaches): a database from before it gets the reaches it can still prove:
each broadcast message sent, and each person who commented or voted."""

from __future__ import annotations

from alembic import command
from sqlalchemy.engine import Connection

from storage.db import alembic_config, make_engine, make_sessionmaker, upgrade
from storage.models import ReachWay
from storage.results import draft_results
from tests.results_data import known_consultation


def downgrade_to(revision: str):
    def run(connection: Connection) -> None:
        if connection.dialect.name == "sqlite":
            # As storage.db.upgrade does: SQLite alters a table by copying it and dropping the
            # old one, which with foreign keys on deletes the rows pointing at it (a
            # downgrade past 0009 copies residents: deliveries would go).
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    return run


async def test_reaches_are_rebuilt_from_sent_messages_comments_and_votes(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    engine = make_engine(sessionmaker.kw["bind"].url.render_as_string(hide_password=False))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to("0006"))  # as before reaches were recorded
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            found = await draft_results(session, known.draft.id)
    finally:
        await engine.dispose()
    assert found is not None
    # a, c, d, e, f: their sent messages; g was shown it on subscribing, which left no trace
    # but their comment; b erased their data and the outbox row with it.
    assert found.total.reached_by_way == {ReachWay.BROADCAST: 5, ReachWay.TOOK_PART: 1}
    assert (found.total.reached, found.total.participants) == (6, 5)  # a, c, e, f, g
