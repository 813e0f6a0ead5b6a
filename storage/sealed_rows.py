"""Every secret the database holds, as stored: sealing the ones written before a key existed,
checking that the configured keys open the sealed ones, and sealing them all again with the
first key (rotation).

The rows are read and written here as stored (untyped columns), not through the models, whose
sealed columns open what they read. An update changes a value only if it is still the one read,
so a secret another process replaced meanwhile (a refreshed token) is left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import column, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.keys import SECRET_SETTINGS
from storage.queries import affected
from storage.sealing import Sealer, is_sealed

log = logging.getLogger(__name__)

# (table, the column that names a row, the columns that hold secrets)
SECRET_COLUMNS = (
    ("channel_tokens", "channel", ("access_token", "refresh_token", "pkce_verifier")),
    ("app_settings", "key", ("value",)),
)


@dataclass(frozen=True)
class StoredSecret:
    table: str
    key_column: str
    key: str
    column: str
    stored: str

    @property
    def where(self) -> str:
        """How an error names it: "channel_tokens.access_token of zalo"."""
        return f"{self.table}.{self.column} of {self.key}"


async def stored_secrets(session: AsyncSession) -> list[StoredSecret]:
    """Every secret cell that holds something, as stored."""
    found = []
    for name, key_column, columns in SECRET_COLUMNS:
        rows = table(name, column(key_column), *map(column, columns))
        query = select(rows)
        if name == "app_settings":
            query = query.where(rows.c[key_column].in_(SECRET_SETTINGS))
        for row in (await session.execute(query)).all():
            found += [StoredSecret(name, key_column, str(row[0]), name_, str(value))
                      for name_, value in zip(columns, row[1:], strict=True) if value]
    return found


async def _replace(session: AsyncSession, secret: StoredSecret, value: str) -> bool:
    rows = table(secret.table, column(secret.key_column), column(secret.column))
    result = await session.execute(
        update(rows).where(rows.c[secret.key_column] == secret.key,
                           rows.c[secret.column] == secret.stored)
        .values({secret.column: value}))
    return affected(result) == 1


async def seal_plain(session: AsyncSession, sealer: Sealer) -> int:
    """Seal the secrets stored unsealed (before a key existed): how many. Does not commit."""
    if not sealer.has_key:
        return 0
    sealed = 0
    for secret in await stored_secrets(session):
        if not is_sealed(secret.stored):
            sealed += await _replace(session, secret, sealer.seal(secret.stored))
    return sealed


async def check_open(session: AsyncSession, sealer: Sealer) -> None:
    """Raise WrongSecretKey, naming the first sealed secret the keys do not open."""
    for secret in await stored_secrets(session):
        sealer.open(secret.stored, secret.where)


async def reseal_all(session: AsyncSession, sealer: Sealer) -> int:
    """Seal every secret again with the first key (the others may then go): how many. Raises
    NoSecretKey without a key, WrongSecretKey for a secret no key opens (then nothing
    changes: the caller rolls back). Does not commit."""
    resealed = 0
    for secret in await stored_secrets(session):
        resealed += await _replace(session, secret, sealer.reseal(secret.stored, secret.where))
    return resealed


async def on_start(session: AsyncSession, sealer: Sealer) -> None:
    """What every process does at start: seal what was stored before the key existed (the
    first start with a key does it), and check that every sealed secret opens, so a wrong
    YKIEN_SECRET_KEY is a clear error at once rather than a failure later. Commits."""
    sealed = await seal_plain(session, sealer)
    await session.commit()
    if sealed:
        log.warning("encrypted %d secrets stored before YKIEN_SECRET_KEY was set", sealed)
        if session.get_bind().dialect.name == "sqlite":
            await _scrub_sqlite(session)
    await check_open(session, sealer)


async def _scrub_sqlite(session: AsyncSession) -> None:
    """SQLite keeps a changed row's old bytes in free space and in the WAL: rewrite the file
    (VACUUM) and empty the WAL, so a copy of the files holds no unsealed secret. Once, at the
    start that sealed them. (PostgreSQL's old row versions go with its autovacuum.)"""
    connection = await session.connection()
    await connection.exec_driver_sql("VACUUM")
    await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    await session.commit()
