"""persons and residents never reuse an erased one's number on SQLite (AUTOINCREMENT): the
audit log's and the exports' pseudonyms are keyed by it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 21:45:00

PostgreSQL's sequences never hand a number out twice: nothing to do there. On SQLite the
tables are copied into ones declared AUTOINCREMENT (storage.db.upgrade migrates with foreign
keys off, so the copy cascades nothing). Numbers erased before this, above the highest
remaining one, cannot be known any more and may still be given once.
"""

from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TABLES = ('persons', 'residents')


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
