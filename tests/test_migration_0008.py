"""Migration 0008 (roles, invites, sign-in links, sessions, the audit log): it goes down and
up again cleanly on SQLite and PostgreSQL, and the audit log is append-only after it."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from storage.db import make_engine, upgrade
from tests.test_migration_0007 import downgrade_to

TABLES = {"role_grants", "role_invites", "login_links", "web_sessions", "sign_in_failures",
          "audit_log"}


async def test_down_to_0007_and_up_again(database_url):
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO audit_log (at, via, channel, actor, role, action, subject, detail) "
                "VALUES (CURRENT_TIMESTAMP, 'cli', '', 'root', 'admin', 'role_granted', '', '')"))
            await connection.run_sync(downgrade_to("0007"))
            left = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not TABLES & left and "reaches" in left
        await upgrade(engine)
        async with engine.begin() as connection:
            back = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert back >= TABLES
            assert (await connection.execute(text("SELECT count(*) FROM audit_log"))).scalar() == 0
            await connection.execute(text(
                "INSERT INTO audit_log (at, via, channel, actor, role, action, subject, detail) "
                "VALUES (CURRENT_TIMESTAMP, 'cli', '', 'root', 'admin', 'role_granted', '', '')"))
        async with engine.begin() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(text("DELETE FROM audit_log"))
    finally:
        await engine.dispose()
