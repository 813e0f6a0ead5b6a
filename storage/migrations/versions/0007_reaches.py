"""reaches: the first time each draft reached each person, and whether they took part

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00
"""

from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Each person's first sent broadcast message of each draft (a person's linked chats may have
# had one each, before they were linked).
_SENT = """
SELECT draft_id, person_id, channel, commune_code, at FROM (
    SELECT d.draft_id, r.person_id, d.channel, r.commune_code,
           COALESCE(d.sent_at, d.created_at) AS at,
           ROW_NUMBER() OVER (PARTITION BY d.draft_id, r.person_id
                              ORDER BY COALESCE(d.sent_at, d.created_at), d.id) AS n
    FROM deliveries d JOIN residents r ON r.id = d.resident_id
    WHERE d.kind = 'draft' AND d.status = 'sent' AND d.draft_id IS NOT NULL
) sent WHERE n = 1
"""

# Every comment and vote still linked to a person, with where and when.
_PARTS = """
SELECT c.draft_id, r.person_id, r.channel, c.commune_code, c.created_at AS at
FROM comments c JOIN residents r ON r.id = c.resident_id
UNION ALL
SELECT v.draft_id, r.person_id, r.channel, v.commune_code, v.created_at AS at
FROM votes v JOIN residents r ON r.id = v.resident_id
"""


def upgrade() -> None:
    op.create_table('reaches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('way', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('commune_code', sa.Integer(), nullable=True),
    sa.Column('reached_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('took_part_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], name=op.f('fk_reaches_draft_id_drafts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_reaches_person_id_persons'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reaches')),
    sa.UniqueConstraint('draft_id', 'person_id', name=op.f('uq_reaches_draft_id'))
    )
    with op.batch_alter_table('reaches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reaches_person_id'), ['person_id'], unique=False)

    # What the database still knows: the broadcast messages sent (the outbox keeps them 90
    # days), and who commented or voted (the draft reached them, one way or another). Drafts
    # shown on subscribing or on /drafts were not recorded before: they cannot be recovered.
    op.execute(
        "INSERT INTO reaches (draft_id, person_id, way, channel, commune_code, reached_at) "
        f"SELECT draft_id, person_id, 'broadcast', channel, commune_code, at FROM ({_SENT}) s"
    )
    op.execute(
        f"UPDATE reaches SET took_part_at = (SELECT MIN(p.at) FROM ({_PARTS}) p "
        "WHERE p.draft_id = reaches.draft_id AND p.person_id = reaches.person_id)"
    )
    op.execute(
        "INSERT INTO reaches (draft_id, person_id, way, channel, commune_code, reached_at, "
        "took_part_at) "
        "SELECT draft_id, person_id, 'took_part', channel, commune_code, at, at FROM ("
        "  SELECT p.*, ROW_NUMBER() OVER (PARTITION BY p.draft_id, p.person_id ORDER BY p.at) AS n"
        f"  FROM ({_PARTS}) p"
        ") first WHERE n = 1 AND NOT EXISTS (SELECT 1 FROM reaches e "
        "WHERE e.draft_id = first.draft_id AND e.person_id = first.person_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('reaches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reaches_person_id'))
    op.drop_table('reaches')
