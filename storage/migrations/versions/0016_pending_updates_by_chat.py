"""an index of the pending webhook updates by chat, for the claim's check that no earlier
update of the chat is pending (issue 21)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 00:25:00

The check read every pending row of the channel: under a burst, the whole backlog for each
update claimed. Partial, so handled rows (most of the table) are not in it.
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

PENDING = sa.text('handled_at IS NULL')


def upgrade() -> None:
    op.create_index('ix_inbound_updates_chat_pending', 'inbound_updates',
                    ['channel', 'chat_key', 'id'], unique=False,
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index('ix_inbound_updates_chat_pending', table_name='inbound_updates')
