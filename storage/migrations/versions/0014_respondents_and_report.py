"""whom residents answer for, each comment's and vote's channel, category and source (so that
offline comments count and figures survive erasure), and each draft's issuer level for the
Decision 407 report (issue 18, parts 4 and 5)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 21:30:00

Comments and votes written before this keep what can be known: their chat's channel (while
the resident still exists), source "chat", category "" (not said).
"""

from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

RECORDED = ('comments', 'votes')


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('respondent_category', sa.String(length=16),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('category_asked_at',
                                      storage.models.UtcDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issuer_level', sa.String(length=16), nullable=False,
                                      server_default=''))
    for table in RECORDED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=False,
                                          server_default=''))
            batch_op.add_column(sa.Column('respondent_category', sa.String(length=16),
                                          nullable=False, server_default=''))
            batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False,
                                          server_default='chat'))
        op.execute(f"UPDATE {table} SET channel = (SELECT residents.channel FROM residents"
                   f" WHERE residents.id = {table}.resident_id)"
                   f" WHERE resident_id IS NOT NULL")


def downgrade() -> None:
    for table in reversed(RECORDED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('source')
            batch_op.drop_column('respondent_category')
            batch_op.drop_column('channel')
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('issuer_level')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('category_asked_at')
        batch_op.drop_column('respondent_category')
