"""outbox for everything sent, paused broadcasts, shared send budget, inbound updates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:45:31.365750
"""

from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_updates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('update_id', sa.String(length=64), nullable=False),
    sa.Column('chat_key', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('handled_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_updates')),
    sa.UniqueConstraint('channel', 'update_id', name=op.f('uq_inbound_updates_channel'))
    )
    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_updates_pending', ['handled_at', 'id'], unique=False)

    op.create_table('send_budgets',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('refreshed_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_send_budgets'))
    )
    # Existing rows are draft messages: their key is (draft, resident), their life ends at the
    # draft's deadline, and they were queued no later than the draft was broadcast.
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='draft'))
        batch_op.add_column(sa.Column('dedup_key', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_token', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expires_at', storage.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE deliveries SET dedup_key = 'draft:' || draft_id || ':' || resident_id, "
        "expires_at = (SELECT deadline FROM drafts WHERE drafts.id = deliveries.draft_id), "
        "created_at = COALESCE((SELECT broadcast_at FROM drafts WHERE drafts.id = deliveries.draft_id), not_before)"
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16), server_default=None)
        batch_op.alter_column('payload', existing_type=sa.Text(), server_default=None)
        batch_op.alter_column('lease_token', existing_type=sa.String(length=32), server_default=None)
        batch_op.alter_column('dedup_key', existing_type=sa.String(length=160), nullable=False)
        batch_op.alter_column('created_at', existing_type=storage.models.UtcDateTime(timezone=True), nullable=False)
        batch_op.alter_column('draft_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.drop_constraint(batch_op.f('uq_deliveries_draft_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_deliveries_draft_id'), ['draft_id'], unique=False)
        batch_op.create_index('ix_deliveries_due', ['status', 'not_before'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_deliveries_dedup_key'), ['dedup_key'])

    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.alter_column('paused', existing_type=sa.Boolean(), server_default=None)



def downgrade() -> None:
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('paused')

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_deliveries_dedup_key'), type_='unique')
        batch_op.drop_index('ix_deliveries_due')
        batch_op.drop_index(batch_op.f('ix_deliveries_draft_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_deliveries_draft_id'), ['draft_id', 'resident_id'])
        batch_op.alter_column('draft_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('created_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('lease_token')
        batch_op.drop_column('payload')
        batch_op.drop_column('dedup_key')
        batch_op.drop_column('kind')

    op.drop_table('send_budgets')
    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_updates_pending')

    op.drop_table('inbound_updates')
