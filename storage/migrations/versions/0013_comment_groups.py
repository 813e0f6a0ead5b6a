"""comment groups: groups, memberships (with fingerprints) and suggestions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 23:00:00
"""

from alembic import op
import sqlalchemy as sa

from storage.models import UtcDateTime


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'comment_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=300), nullable=False),
        sa.Column('named_by_hand', sa.Boolean(), nullable=False),
        sa.Column('representative_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE',
                                name=op.f('fk_comment_groups_draft_id_drafts')),
        sa.ForeignKeyConstraint(['representative_id'], ['comments.id'], ondelete='SET NULL',
                                name=op.f('fk_comment_groups_representative_id_comments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_comment_groups')),
    )
    op.create_index(op.f('ix_comment_groups_draft_id'), 'comment_groups', ['draft_id'])
    op.create_table(
        'group_memberships',
        sa.Column('comment_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('manual', sa.Boolean(), nullable=False),
        sa.Column('key_hash', sa.BigInteger(), nullable=False),
        sa.Column('band_keys', sa.LargeBinary(), nullable=False),
        sa.Column('joined_at', UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE',
                                name=op.f('fk_group_memberships_comment_id_comments')),
        sa.ForeignKeyConstraint(['group_id'], ['comment_groups.id'], ondelete='CASCADE',
                                name=op.f('fk_group_memberships_group_id_comment_groups')),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE',
                                name=op.f('fk_group_memberships_draft_id_drafts')),
        sa.PrimaryKeyConstraint('comment_id', name=op.f('pk_group_memberships')),
    )
    op.create_index(op.f('ix_group_memberships_group_id'), 'group_memberships', ['group_id'])
    op.create_index(op.f('ix_group_memberships_draft_id'), 'group_memberships', ['draft_id'])
    op.create_table(
        'group_suggestions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=300), nullable=False),
        sa.Column('terms', sa.String(length=300), nullable=False),
        sa.Column('group_ids', sa.Text(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE',
                                name=op.f('fk_group_suggestions_draft_id_drafts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_group_suggestions')),
    )
    op.create_index(op.f('ix_group_suggestions_draft_id'), 'group_suggestions', ['draft_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_group_suggestions_draft_id'), table_name='group_suggestions')
    op.drop_table('group_suggestions')
    op.drop_index(op.f('ix_group_memberships_draft_id'), table_name='group_memberships')
    op.drop_index(op.f('ix_group_memberships_group_id'), table_name='group_memberships')
    op.drop_table('group_memberships')
    op.drop_index(op.f('ix_comment_groups_draft_id'), table_name='comment_groups')
    op.drop_table('comment_groups')
