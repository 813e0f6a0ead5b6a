"""Migration 0012 (flood control's "told until", the PKCE verifier as Text for its sealed
form): down to 0009 and up again on SQLite and PostgreSQL. Going down, a sealed verifier too
long for the old column drops the authorisation under way, and keeps the tokens."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.db import make_engine, upgrade
from tests.test_migration_0007 import downgrade_to


async def test_down_to_0009_and_up_again(database_url):
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO channel_tokens (channel, access_token, refresh_token, updated_at, "
                "problem, pkce_verifier, pkce_state) VALUES ('zalo', 'fernet:a', 'fernet:r', "
                "CURRENT_TIMESTAMP, '', :verifier, 'state')"), {"verifier": "fernet:" + "v" * 200})
            await connection.run_sync(downgrade_to("0009"))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("persons")})
            row = (await connection.execute(text(
                "SELECT access_token, pkce_verifier, pkce_state FROM channel_tokens"))).one()
        assert "comments_refused_until" not in columns
        assert tuple(row) == ("fernet:a", "", "")
        await upgrade(engine)
        async with engine.begin() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("persons")})
            assert "comments_refused_until" in columns
            await connection.execute(text("UPDATE channel_tokens SET pkce_verifier = :v"),
                                     {"v": "fernet:" + "v" * 300})
    finally:
        await engine.dispose()
