"""the replies given to each chat's last update, to give again if they were lost

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_update_id', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('last_replies', sa.Text(), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('last_replies')
        batch_op.drop_column('last_update_id')
