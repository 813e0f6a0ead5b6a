"""consent events that survive erasure, residents' data requests and their one-time download
links (issue 20, parts 1 and 2)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 23:00:00
"""

import hashlib
import hmac
import secrets
from datetime import UTC

from alembic import op
import sqlalchemy as sa

import storage.models
from storage import sealing


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

AUDIT_KEY = 'audit_key'  # storage.keys.AUDIT_KEY: the key of storage.consent.pseudonym


def upgrade() -> None:
    op.create_table('consent_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('notice_version', sa.String(length=16), nullable=False),
    sa.Column('at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_events_person'), ['person'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_events_at'), ['at'], unique=False)

    op.create_table('data_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_data_requests_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_requests'))
    )
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_requests_person_id'), ['person_id'], unique=False)

    op.create_table('data_links',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_data_links_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_data_links'))
    )
    with op.batch_alter_table('data_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_links_person_id'), ['person_id'], unique=False)

    _record_earlier_consents()


def _record_earlier_consents() -> None:
    """Each chat's consent given before this revision becomes its first event (the one
    residents.consent_at holds: the latest agreement)."""
    bind = op.get_bind()
    when = storage.models.UtcDateTime(timezone=True)
    table = sa.table('residents', sa.column('id'), sa.column('person_id'), sa.column('channel'),
                     sa.column('consent_version'), sa.column('consent_at', when))
    persons = sa.table('persons', sa.column('id'), sa.column('created_at', when))
    residents = bind.execute(sa.select(
        table.c.person_id, persons.c.created_at, table.c.channel, table.c.consent_version,
        table.c.consent_at,
    ).join(persons, persons.c.id == table.c.person_id).order_by(table.c.id)).all()
    if not residents:
        return
    settings = sa.table('app_settings', sa.column('key'), sa.column('value'))
    key = bind.execute(sa.select(settings.c.value).where(settings.c.key == AUDIT_KEY)).scalar()
    if key is None:
        key = secrets.token_hex(32)
        bind.execute(settings.insert().values(key=AUDIT_KEY, value=key))
    events = sa.table(
        'consent_events', sa.column('person'), sa.column('channel'), sa.column('event'),
        sa.column('notice_version'),
        sa.column('at', when), sa.column('detail'))
    # A key sealed by a start with YKIEN_SECRET_KEY (a database migrated down and up again)
    # is opened with the process's keys, which the command line sets before migrating.
    secret = bytes.fromhex(sealing.current().open(key, "the audit log's key in app_settings"))
    # storage.consent.pseudonym, as it is today.
    bind.execute(events.insert(), [
        {'person': 'C-' + hmac.digest(
            secret, f'consent:{person_id}:{created.astimezone(UTC).isoformat()}'.encode(),
            hashlib.sha256)[:6].hex(),
         'channel': channel, 'event': 'agreed', 'notice_version': version, 'at': at,
         'detail': 'before 0011'}
        for person_id, created, channel, version, at in residents
    ])


def downgrade() -> None:
    with op.batch_alter_table('data_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_links_person_id'))
    op.drop_table('data_links')
    with op.batch_alter_table('data_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_requests_person_id'))
    op.drop_table('data_requests')
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_events_at'))
        batch_op.drop_index(batch_op.f('ix_consent_events_person'))
    op.drop_table('consent_events')
