"""Roles and scopes: who may see and do what in the officials' workspace, in chat and on the
command line.

A person holds roles (admin, official, staff), each within a scope (all, a province, a
commune). `authority_of` gathers them into an `Authority`, and every official feature asks
it one of two questions: which communes may this person see (`Authority.communes`, None
meaning all: filter every query with `in_scope`), and may they do this to that draft
(`draft_access`, `Authority.may`). A commune official sees the rows of their communes only,
and edits or broadcasts only drafts whose every commune is theirs; staff read and export,
and enter the comments their communes received offline.

Invite codes (`ykien role invite`) give a role to whoever types one to the bot. None of these
functions commits: the caller owns the transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import communes
from storage.keys import token_hash
from storage.linking import CODE_ALPHABET, CODE_DIGITS, CODE_LETTERS
from storage.models import (
    Draft,
    DraftCommune,
    Resident,
    Role,
    RoleGrant,
    RoleInvite,
    ScopeKind,
)
from storage.queries import affected, insert_unless_present

__all__ = [
    "ALL", "Authority", "Chat", "Grant", "Permission", "Role", "Scope", "ScopeError",
    "ScopeKind", "ScopeProblem",
]

# A chat as YKIEN_ADMIN_IDS and `--chat` name it: (channel, the platform's user id).
Chat = tuple[str, str]


class Permission(StrEnum):
    READ = "read"  # drafts, their progress, results and comments
    EXPORT = "export"  # comments and votes as files
    EDIT = "edit"  # create and change drafts
    BROADCAST = "broadcast"  # broadcast, schedule, pause, resume, cancel, close
    MANAGE = "manage"  # roles and the audit log
    RECORD = "record"  # enter comments received offline (meetings, phone, paper)


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OFFICIAL: frozenset({Permission.READ, Permission.EXPORT, Permission.EDIT,
                              Permission.BROADCAST, Permission.RECORD}),
    Role.STAFF: frozenset({Permission.READ, Permission.EXPORT, Permission.RECORD}),
}
# Reading concerns the communes of a draft one by one (each sees its own rows); these
# concern the draft as a whole, so every one of its communes must be in scope.
WHOLE_DRAFT = frozenset({Permission.EDIT, Permission.BROADCAST, Permission.MANAGE})
RANK = (Role.ADMIN, Role.OFFICIAL, Role.STAFF)  # the highest first


class ScopeProblem(StrEnum):
    SHAPE = "shape"  # not all / province:CODE / commune:CODE
    UNKNOWN_PROVINCE = "unknown_province"
    UNKNOWN_COMMUNE = "unknown_commune"


class ScopeError(ValueError):
    def __init__(self, problem: ScopeProblem, text: str) -> None:
        super().__init__(f"{problem}: {text!r}")
        self.problem = problem
        self.text = text


@dataclass(frozen=True, order=True)
class Scope:
    """Where a role holds; `code` is the province's or commune's (0 for all)."""

    kind: ScopeKind
    code: int = 0

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`all`, `province:38` or `commune:15148` (the code as the government lists it,
        leading zeros allowed); ScopeError for anything else or an unknown code."""
        kind, _, code = text.strip().lower().partition(":")
        if kind == ScopeKind.ALL and not code:
            return ALL
        if kind not in (ScopeKind.PROVINCE, ScopeKind.COMMUNE) or not (
                code.isascii() and code.isdigit() and len(code) <= 9):
            raise ScopeError(ScopeProblem.SHAPE, text)
        scope = cls(ScopeKind(kind), int(code))
        if scope.kind is ScopeKind.PROVINCE and communes.get_province(scope.code) is None:
            raise ScopeError(ScopeProblem.UNKNOWN_PROVINCE, text)
        if scope.kind is ScopeKind.COMMUNE and communes.get_commune(scope.code) is None:
            raise ScopeError(ScopeProblem.UNKNOWN_COMMUNE, text)
        return scope

    def __str__(self) -> str:
        if self.kind is ScopeKind.ALL:
            return "all"
        if self.kind is ScopeKind.COMMUNE:
            return f"commune:{communes.commune_code_text(self.code)}"
        return f"province:{self.code}"

    @property
    def place(self) -> str:
        """The province's or commune's name ("" for all, or a code no longer listed)."""
        if self.kind is ScopeKind.COMMUNE:
            commune = communes.get_commune(self.code)
            return commune.label if commune else ""
        if self.kind is ScopeKind.PROVINCE:
            province = communes.get_province(self.code)
            return province.name if province else ""
        return ""

    def communes(self) -> frozenset[int] | None:
        """The commune codes inside (None: all)."""
        if self.kind is ScopeKind.ALL:
            return None
        if self.kind is ScopeKind.COMMUNE:
            return frozenset({self.code})
        return _province_communes(self.code)


ALL = Scope(ScopeKind.ALL)


@cache
def _province_communes(code: int) -> frozenset[int]:
    return frozenset(commune.code for commune in communes.communes_in_province(code))


@dataclass(frozen=True, order=True)
class Grant:
    role: Role
    scope: Scope

    def __str__(self) -> str:
        """As the audit log and the command line write it: "official commune:15148"."""
        return f"{self.role} {self.scope}"


def _union(scopes: Iterable[Scope]) -> frozenset[int] | None:
    codes: set[int] = set()
    for scope in scopes:
        inside = scope.communes()
        if inside is None:
            return None
        codes |= inside
    return frozenset(codes)


@dataclass(frozen=True)
class Authority:
    """What one person may do: their grants (from the database and YKIEN_ADMIN_IDS)."""

    person_id: int
    grants: frozenset[Grant] = frozenset()

    @property
    def holds_a_role(self) -> bool:
        """An official, staff member or admin: otherwise a resident, who sees none of this."""
        return bool(self.grants)

    @property
    def role(self) -> Role | None:
        """The highest role held (what a sign-in is recorded under)."""
        held = {grant.role for grant in self.grants}
        return next((role for role in RANK if role in held), None)

    def communes(self, permission: Permission = Permission.READ) -> frozenset[int] | None:
        """The communes where the person has this permission: None means all of them."""
        return _union(grant.scope for grant in self.grants
                      if permission in PERMISSIONS[grant.role])

    def role_for(self, permission: Permission, communes: Collection[int] | None = None
                 ) -> Role | None:
        """The role under which the person may do this (the highest that allows it), to
        communes (a draft's), or None when no role allows it.

        Reading needs one of the communes in the role's scope (the person then sees those
        rows only); a whole-draft permission needs every one, and a draft without communes
        belongs to the scope `all` alone. Without `communes`, having the permission anywhere
        is enough.
        """
        for role in RANK:
            if permission not in PERMISSIONS[role]:
                continue
            scopes = [grant.scope for grant in self.grants if grant.role is role]
            if not scopes:
                continue
            inside = _union(scopes)
            if communes is None or inside is None:
                return role
            if permission in WHOLE_DRAFT:
                if communes and inside.issuperset(communes):
                    return role
            elif not inside.isdisjoint(communes):
                return role
        return None

    def may(self, permission: Permission, communes: Collection[int] | None = None) -> bool:
        return self.role_for(permission, communes) is not None


def in_scope(authority: Authority, column: Any,
             permission: Permission = Permission.READ) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows whose commune (`column`) the person may see."""
    codes = authority.communes(permission)
    return true() if codes is None else column.in_(sorted(codes))


def visible_drafts(authority: Authority, permission: Permission = Permission.READ
                   ) -> Select[Any]:
    """The ids of the drafts with at least one commune the person may see."""
    query = select(DraftCommune.draft_id).distinct()
    return query.where(in_scope(authority, DraftCommune.commune_code, permission))


async def draft_communes(session: AsyncSession, draft_id: int) -> frozenset[int] | None:
    """A draft's target communes; None when there is no such draft."""
    if await session.get(Draft, draft_id) is None:
        return None
    return frozenset((await session.scalars(
        select(DraftCommune.commune_code).where(DraftCommune.draft_id == draft_id))).all())


async def draft_access(session: AsyncSession, authority: Authority, permission: Permission,
                       draft_id: int) -> frozenset[int] | None:
    """The communes of the draft the person may see while doing this, or None when they
    may not (or there is no such draft: a guessed id learns nothing, so answer both alike).
    Filter the draft's rows and figures to the communes returned."""
    targets = await draft_communes(session, draft_id)
    if targets is None or not authority.may(permission, targets):
        return None
    seen = authority.communes(permission)
    return targets if seen is None else targets & seen


# ---- who holds what ------------------------------------------------------------------------


async def person_of_chat(session: AsyncSession, chat: Chat) -> int | None:
    """The person behind a chat, once it has agreed to the privacy notice (None before)."""
    return await session.scalar(select(Resident.person_id).where(
        Resident.channel == chat[0], Resident.platform_id == chat[1]))


async def chats_of(session: AsyncSession, person_id: int) -> list[Chat]:
    rows = await session.execute(
        select(Resident.channel, Resident.platform_id)
        .where(Resident.person_id == person_id).order_by(Resident.id))
    return [(channel, platform_id) for channel, platform_id in rows.all()]


async def grants_of(session: AsyncSession, person_id: int) -> frozenset[Grant]:
    rows = await session.execute(
        select(RoleGrant.role, RoleGrant.scope_kind, RoleGrant.scope_code)
        .where(RoleGrant.person_id == person_id))
    return frozenset(Grant(Role(role), Scope(ScopeKind(kind), code)) for role, kind, code in rows)


async def authority_of(session: AsyncSession, person_id: int,
                       admin_chats: Collection[Chat] = ()) -> Authority:
    """Everything the person holds: their grants, and admin of all when one of their chats
    is in YKIEN_ADMIN_IDS (`admin_chats`)."""
    grants = set(await grants_of(session, person_id))
    if admin_chats and not set(admin_chats).isdisjoint(await chats_of(session, person_id)):
        grants.add(Grant(Role.ADMIN, ALL))
    return Authority(person_id, frozenset(grants))


async def grant(session: AsyncSession, person_id: int, given: Grant, now: datetime) -> bool:
    """Give the person a role in a scope; False when they held it already."""
    return await insert_unless_present(
        session, RoleGrant, person_id=person_id, role=given.role,
        scope_kind=given.scope.kind, scope_code=given.scope.code, granted_at=now)


async def revoke(session: AsyncSession, person_id: int, role: Role | None = None,
                 scope: Scope | None = None) -> list[Grant]:
    """Take the person's grants of `role` (any, if None) in `scope` (any, if None): the
    grants taken."""
    query = delete(RoleGrant).where(RoleGrant.person_id == person_id)
    if role is not None:
        query = query.where(RoleGrant.role == role)
    if scope is not None:
        query = query.where(RoleGrant.scope_kind == scope.kind, RoleGrant.scope_code == scope.code)
    rows = await session.execute(
        query.returning(RoleGrant.role, RoleGrant.scope_kind, RoleGrant.scope_code)
        .execution_options(synchronize_session=False))
    return sorted(Grant(Role(r), Scope(ScopeKind(k), c)) for r, k, c in rows.all())


@dataclass(frozen=True)
class Holder:
    """A person holding roles, as `ykien role list` shows them: by their chats."""

    person_id: int
    chats: tuple[Chat, ...]
    grants: tuple[tuple[Grant, datetime], ...]  # with when each was granted


async def holder_ids(session: AsyncSession) -> set[int]:
    """The persons holding a role in the database (YKIEN_ADMIN_IDS' admins aside)."""
    return set((await session.scalars(select(RoleGrant.person_id).distinct())).all())


async def holders(session: AsyncSession) -> list[Holder]:
    """Every person holding a role in the database, in the order they first got one."""
    rows = (await session.execute(
        select(RoleGrant.person_id, RoleGrant.role, RoleGrant.scope_kind, RoleGrant.scope_code,
               RoleGrant.granted_at).order_by(RoleGrant.id))).all()
    granted: dict[int, list[tuple[Grant, datetime]]] = {}
    for person_id, role, kind, code, at in rows:
        granted.setdefault(person_id, []).append((Grant(Role(role), Scope(ScopeKind(kind), code)),
                                                  at))
    return [Holder(person_id, tuple(await chats_of(session, person_id)), tuple(sorted(grants)))
            for person_id, grants in granted.items()]


# ---- invite codes ---------------------------------------------------------------------------

# Longer than a link code (it gives power, and is valid for days), from the same alphabet
# (nothing to confuse when copied by eye); printed in groups of four.
INVITE_LENGTH = 12
INVITE_GROUP = 4
DEFAULT_INVITE_LIFETIME = timedelta(hours=48)


def is_invite_shaped(compact: str) -> bool:
    """Twelve characters of the code alphabet with a letter and a digit."""
    return (len(compact) == INVITE_LENGTH and all(c in CODE_ALPHABET for c in compact)
            and any(c in CODE_LETTERS for c in compact)
            and any(c in CODE_DIGITS for c in compact))


def shown_invite(code: str) -> str:
    """"K7M4QX9P2HTR" as it is printed: "K7M4-QX9P-2HTR"."""
    return "-".join(code[i:i + INVITE_GROUP] for i in range(0, len(code), INVITE_GROUP))


async def new_invite(session: AsyncSession, given: Grant, now: datetime,
                     lifetime: timedelta = DEFAULT_INVITE_LIFETIME) -> str:
    """A fresh invite code for a role in a scope (compact: shown_invite prints it). Only its
    hash is stored; expired invites go."""
    await session.execute(delete(RoleInvite).where(RoleInvite.expires_at <= now))
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(INVITE_LENGTH))
        if is_invite_shaped(code) and await insert_unless_present(
                session, RoleInvite, code_hash=token_hash(code), role=given.role,
                scope_kind=given.scope.kind, scope_code=given.scope.code, created_at=now,
                expires_at=now + lifetime):
            return code


@dataclass(frozen=True)
class Invite:
    code_hash: str
    grant: Grant
    expires_at: datetime


async def find_invite(session: AsyncSession, code: str) -> Invite | None:
    if not is_invite_shaped(code):
        return None
    found = await session.get(RoleInvite, token_hash(code))
    if found is None:
        return None
    return Invite(found.code_hash, Grant(Role(found.role),
                                         Scope(ScopeKind(found.scope_kind), found.scope_code)),
                  found.expires_at)


async def spend_invite(session: AsyncSession, invite: Invite, now: datetime) -> bool:
    """Use an invite: False when it has expired or was used (by another chat, even at the
    same moment on another process). A used invite expires at once, so that typed again it
    is said to be used rather than counted as a wrong guess; it goes with the expired ones."""
    result = await session.execute(
        update(RoleInvite)
        .where(RoleInvite.code_hash == invite.code_hash, RoleInvite.expires_at > now)
        .values(expires_at=now)
        .execution_options(synchronize_session=False))
    return affected(result) == 1
