"""The audit log: one row for every official action, written by `record` in the transaction
of the action itself (so an action rolled back leaves no row, and no action goes unrecorded).

Append-only: the application only inserts (the database refuses UPDATE and DELETE, see
migration 0008). Persons appear as keyed pseudonyms ("P-3f9a1c02d4e5"), never as ids: the
log survives a person's erasure and then points at no one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.keys import AUDIT_KEY, generated_key
from storage.models import AuditEntry, Role
from storage.text import N_

DETAIL_LENGTH = 300  # AuditEntry.detail


class Via(StrEnum):
    """Where an official acted from."""

    CHAT = "chat"
    WEB = "web"
    CLI = "cli"


class AuditAction(StrEnum):
    """What was done. Later features add theirs (draft created, broadcast, export…)."""

    ROLE_GRANTED = "role_granted"
    ROLE_REVOKED = "role_revoked"
    INVITE_CREATED = "invite_created"
    INVITE_USED = "invite_used"  # the subject got the invite's role
    LOGIN_LINK = "login_link"  # a one-time sign-in link was given (chat /login, or the CLI)
    SESSION_STARTED = "session_started"  # a sign-in link was used
    SESSION_ENDED = "session_ended"  # signed out, or ended by a revoke (detail: how many)
    # The workspace's draft actions (bot/web).
    DRAFT_CREATED = "draft_created"
    DRAFT_EDITED = "draft_edited"  # every field, before the first broadcast
    DEADLINE_CHANGED = "deadline_changed"  # detail: the new deadline, UTC
    NO_SECRETS_CONFIRMED = "no_secrets_confirmed"  # the text holds no state secret
    BROADCAST = "broadcast"  # detail: how many messages were queued
    SCHEDULED = "scheduled"  # broadcast, to go at its opening time (detail: when, UTC)
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"  # detail: how many messages
    CLOSED = "closed"
    EXPORTED = "exported"  # detail: the format and the communes it was limited to
    RESULTS_READ = "results_read"  # a draft's figures and chart asked for in a chat
    RETRIED = "retried"  # failed messages queued again (detail: how many)
    # Answering comments (issue 18): detail says how many and the handling.
    ANSWERED = "answered"
    ANSWERS_IMPORTED = "answers_imported"  # from a spreadsheet (detail: how many changed)
    PUBLISHED = "published"  # the response queued to the participants (detail: how many)
    COMMENT_HIDDEN = "comment_hidden"  # detail: the receipt number and the reason
    COMMENT_SHOWN = "comment_shown"  # shown again (detail: the receipt number)
    REMINDERS = "reminders"  # a draft's reminders turned on or off (detail: on or off)
    # Comment groups (storage.groups); detail: the groups and comments concerned.
    GROUPS_COMPUTED = "groups_computed"  # detail: comments grouped, groups made
    GROUP_RENAMED = "group_renamed"
    GROUPS_MERGED = "groups_merged"
    GROUP_SPLIT = "group_split"
    COMMENT_MOVED = "comment_moved"
    # The annual report downloaded (detail: the format, the period and the communes).
    REPORT_DOWNLOADED = "report_downloaded"
    # A comment gathered offline entered by staff (detail: receipt, source, commune).
    COMMENT_ADDED = "comment_added"


# What each action is called where people read the log (translated by the caller).
ACTION_WORDS = {
    AuditAction.ROLE_GRANTED: N_("role granted"),
    AuditAction.ROLE_REVOKED: N_("role revoked"),
    AuditAction.INVITE_CREATED: N_("invite code made"),
    AuditAction.INVITE_USED: N_("invite code used"),
    AuditAction.LOGIN_LINK: N_("sign-in link given"),
    AuditAction.SESSION_STARTED: N_("signed in"),
    AuditAction.SESSION_ENDED: N_("session ended"),
    AuditAction.DRAFT_CREATED: N_("draft created"),
    AuditAction.DRAFT_EDITED: N_("draft edited"),
    AuditAction.DEADLINE_CHANGED: N_("deadline changed"),
    AuditAction.NO_SECRETS_CONFIRMED: N_("confirmed: no state secrets"),
    AuditAction.BROADCAST: N_("broadcast"),
    AuditAction.SCHEDULED: N_("broadcast scheduled"),
    AuditAction.PAUSED: N_("broadcast paused"),
    AuditAction.RESUMED: N_("broadcast resumed"),
    AuditAction.CANCELLED: N_("messages cancelled"),
    AuditAction.CLOSED: N_("draft closed"),
    AuditAction.EXPORTED: N_("comments and votes downloaded"),
    AuditAction.RESULTS_READ: N_("results read"),
    AuditAction.RETRIED: N_("failed messages queued again"),
    AuditAction.ANSWERED: N_("comments answered"),
    AuditAction.ANSWERS_IMPORTED: N_("answers imported from a spreadsheet"),
    AuditAction.PUBLISHED: N_("response published"),
    AuditAction.COMMENT_HIDDEN: N_("comment hidden"),
    AuditAction.COMMENT_SHOWN: N_("comment shown again"),
    AuditAction.REMINDERS: N_("reminders turned on or off"),
    AuditAction.GROUPS_COMPUTED: N_("comments grouped"),
    AuditAction.GROUP_RENAMED: N_("group renamed"),
    AuditAction.GROUPS_MERGED: N_("groups merged"),
    AuditAction.GROUP_SPLIT: N_("group split"),
    AuditAction.COMMENT_MOVED: N_("comment moved to another group"),
    AuditAction.REPORT_DOWNLOADED: N_("annual report downloaded"),
    AuditAction.COMMENT_ADDED: N_("comment received offline entered"),
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a person under a role (in a chat or on the web), or the operator of the
    command line (`operator`: their operating-system user name)."""

    via: Via
    person_id: int | None = None
    role: Role | None = None
    channel: str = ""  # the chat app, when via is chat
    operator: str = ""


async def pseudonym(session: AsyncSession, person_id: int) -> str:
    """The person as the audit log names them: stable, keyed, and meaningless without the
    key (a different key from the exports', so the two cannot be matched)."""
    key = await generated_key(session, AUDIT_KEY)
    return "P-" + hmac.digest(key, f"person:{person_id}".encode(), hashlib.sha256)[:6].hex()


async def record(
    session: AsyncSession, actor: Actor, action: AuditAction, now: datetime, *,
    draft_id: int | None = None, subject: int | None = None, detail: str = "",
) -> None:
    """Write one row: `actor` did `action` (to the person `subject`, on `draft_id`).

    `detail` is what else the row must say, in no language (a scope such as
    "commune:15148", a count): never a token, a code or a chat id.
    """
    who = await pseudonym(session, actor.person_id) if actor.person_id is not None else (
        actor.operator)
    session.add(AuditEntry(
        at=now, via=actor.via, channel=actor.channel, actor=who,
        role=actor.role or "", action=action, draft_id=draft_id,
        subject=await pseudonym(session, subject) if subject is not None else "",
        detail=detail[:DETAIL_LENGTH],
    ))
    await session.flush()


async def entries(session: AsyncSession, since: datetime | None = None) -> Sequence[AuditEntry]:
    """The rows from `since` (all of them if None), oldest first."""
    query = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return (await session.scalars(query)).all()


async def newest_entries(session: AsyncSession, offset: int, limit: int
                         ) -> tuple[Sequence[AuditEntry], int]:
    """A page of the rows, newest first, and how many rows there are in all."""
    total = await session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    rows = (await session.scalars(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset(offset).limit(limit))).all()
    return rows, total
