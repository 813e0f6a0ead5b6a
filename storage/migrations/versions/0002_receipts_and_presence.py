"""receipt numbers per draft, closing drafts, resident presence and waiting state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:10:00
"""

from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', storage.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('comment_count', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', storage.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notice_version', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('awaiting_since', storage.models.UtcDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
    # Existing comments get their receipt numbers in the order they arrived.
    op.execute(
        "UPDATE comments SET number = (SELECT COUNT(*) FROM comments AS earlier "
        "WHERE earlier.draft_id = comments.draft_id AND earlier.id <= comments.id)"
    )
    op.execute(
        "UPDATE drafts SET comment_count = (SELECT COUNT(*) FROM comments "
        "WHERE comments.draft_id = drafts.id)"
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_comments_draft_id'), ['draft_id', 'number'])
    # The server defaults only filled the existing rows; the models give the values from now on.
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.alter_column('comment_count', server_default=None)
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.alter_column('notice_version', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_comments_draft_id'), type_='unique')
        batch_op.drop_column('number')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('awaiting_since')
        batch_op.drop_column('notice_version')
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('comment_count')
        batch_op.drop_column('closed_at')
