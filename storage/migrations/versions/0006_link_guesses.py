"""wrong link codes in a table of their own (they were rows of link_codes marked with "?")

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 07:15:00
"""

from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_guesses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_link_guesses_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_guesses'))
    )
    with op.batch_alter_table('link_guesses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_guesses_person_id'), ['person_id'], unique=False)
    # The guesses still counting move over; no real code starts with "?".
    op.execute("INSERT INTO link_guesses (person_id, created_at) "
               "SELECT person_id, created_at FROM link_codes WHERE code LIKE '?%'")
    op.execute("DELETE FROM link_codes WHERE code LIKE '?%'")


def downgrade() -> None:
    # Guesses count for an hour only: going back forgets them (the limit starts afresh).
    with op.batch_alter_table('link_guesses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_guesses_person_id'))
    op.drop_table('link_guesses')
