"""persons with several chat identities, link codes, stored numbered choices, channel tokens,
inbound claims

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:50:00
"""

from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('persons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons'))
    )
    # Every existing resident is a person of their own, with the same number, so existing
    # outbox keys ("draft:<draft>:<person>") stay the same.
    op.execute("INSERT INTO persons (id, created_at) SELECT id, created_at FROM residents")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "SELECT setval(pg_get_serial_sequence('persons', 'id'), "
            "COALESCE((SELECT MAX(id) FROM persons), 0) + 1, false)"
        )
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_promotion_at', storage.models.UtcDateTime(timezone=True), nullable=True))
    op.execute("UPDATE residents SET person_id = id")
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.alter_column('person_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_residents_person_id'), ['person_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_residents_person_id_persons'), 'persons', ['person_id'], ['id'], ondelete='CASCADE')

    op.create_table('link_codes',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_link_codes_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_link_codes'))
    )
    with op.batch_alter_table('link_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_codes_person_id'), ['person_id'], unique=False)

    op.create_table('chat_choices',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('platform_id', sa.String(length=64), nullable=False),
    sa.Column('choices', sa.Text(), nullable=False),
    sa.Column('updated_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'platform_id', name=op.f('pk_chat_choices'))
    )
    with op.batch_alter_table('chat_choices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_choices_updated_at'), ['updated_at'], unique=False)

    op.create_table('channel_tokens',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=False),
    sa.Column('access_expires_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('refresh_expires_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('problem', sa.String(length=300), nullable=False),
    sa.Column('pkce_verifier', sa.String(length=128), nullable=False),
    sa.Column('pkce_state', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_tokens'))
    )

    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', storage.models.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_updates', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
    op.drop_table('channel_tokens')
    with op.batch_alter_table('chat_choices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_choices_updated_at'))
    op.drop_table('chat_choices')
    with op.batch_alter_table('link_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_codes_person_id'))
    op.drop_table('link_codes')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_residents_person_id_persons'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_residents_person_id'))
        batch_op.drop_column('last_promotion_at')
        batch_op.drop_column('person_id')
    op.drop_table('persons')
