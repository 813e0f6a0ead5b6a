"""answers to comments ("tiếp thu, giải trình"), published responses, hidden comments,
reminders (issue 18)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:00:00
"""

from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('comment_answers',
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.Column('handling', sa.String(length=16), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('answered_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_comment_answers_comment_id_comments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id', name=op.f('pk_comment_answers'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hidden_reason', sa.String(length=16), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('hidden_note', sa.String(length=300), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('hidden_at', storage.models.UtcDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    op.create_table('publications',
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=False),
    sa.Column('published_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], name=op.f('fk_publications_draft_id_drafts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('draft_id', name=op.f('pk_publications'))
    )


def downgrade() -> None:
    op.drop_table('publications')
    op.drop_table('comment_answers')
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('reminders')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_column('hidden_at')
        batch_op.drop_column('hidden_note')
        batch_op.drop_column('hidden_reason')
