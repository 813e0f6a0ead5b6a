"""each handled update keeps its chat and its replies (not only a chat's last one); failed
webhook updates; forwarded comments

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_id', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('replies', sa.Text(), nullable=False, server_default=''))
    # The replies each chat's last update was given move to that update.
    op.execute(
        "UPDATE processed_updates SET platform_id = (SELECT r.platform_id FROM residents r"
        " WHERE r.channel = processed_updates.channel"
        " AND r.last_update_id = processed_updates.update_id),"
        " replies = (SELECT r.last_replies FROM residents r"
        " WHERE r.channel = processed_updates.channel"
        " AND r.last_update_id = processed_updates.update_id)"
        " WHERE EXISTS (SELECT 1 FROM residents r WHERE r.channel = processed_updates.channel"
        " AND r.last_update_id = processed_updates.update_id AND r.last_update_id <> '')"
    )
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('last_replies')
        batch_op.drop_column('last_update_id')
        batch_op.add_column(sa.Column('held_forwarded', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forwarded', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # Bodies of updates already handled are no longer kept.
    op.execute("UPDATE inbound_updates SET payload = '', chat_key = ''"
               " WHERE handled_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_column('forwarded')
    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.drop_column('failed')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('held_forwarded')
        batch_op.add_column(sa.Column('last_update_id', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('last_replies', sa.Text(), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_column('replies')
        batch_op.drop_column('platform_id')
