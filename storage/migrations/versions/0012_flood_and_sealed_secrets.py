"""flood control's "told until" per person; the PKCE verifier becomes Text, since sealed
(encrypted) it is longer than 128 characters (issue 20, parts 3 and 4)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 23:00:00

The secrets themselves are not encrypted here: migrations run without settings, so without
YKIEN_SECRET_KEY; the first start that has a key seals the rows (storage.sealing).
"""

from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comments_refused_until',
                                      storage.models.UtcDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('channel_tokens', schema=None) as batch_op:
        batch_op.alter_column('pkce_verifier', existing_type=sa.String(length=128),
                              type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    # A sealed verifier does not fit 128 characters: an authorisation under way is dropped
    # (start `ykien zalo auth` again), the tokens themselves are kept.
    op.execute("UPDATE channel_tokens SET pkce_verifier = '', pkce_state = ''"
               " WHERE length(pkce_verifier) > 128")
    with op.batch_alter_table('channel_tokens', schema=None) as batch_op:
        batch_op.alter_column('pkce_verifier', existing_type=sa.Text(),
                              type_=sa.String(length=128), existing_nullable=False)
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('comments_refused_until')
