"""Officials in the chat: the invite code that gives a role, and /login (or "đăng nhập"),
which answers with a one-time link to the workspace.

Residents never learn that any of this exists: an official command from a chat whose person
holds no role is left to the resident conversation (`answer` returns None), which treats it
as it treats any text it does not know. Later official commands (/results, /export) join
OFFICIAL_COMMANDS and get the same guard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from handlers.commands import slash_name
from handlers.events import Outgoing, Reply
from handlers.i18n import N_, Translator
from handlers.linking import too_many_guesses
from handlers.logref import chat_ref
from handlers.onboarding import greeting
from handlers.turn import Turn
from storage import audit, communes, linking, roles, sessions
from storage.audit import Actor, AuditAction, Via
from storage.roles import Authority, Grant, Role, Scope, ScopeKind
from storage.text import fold

log = logging.getLogger(__name__)

# The workspace's pages, under YKIEN_PUBLIC_URL (bot/web/auth.py serves them).
ADMIN_PATH = "/admin"
LOGIN_PATH = ADMIN_PATH + "/login/"

ROLE_WORDS = {
    Role.ADMIN: N_("administrator"),
    Role.OFFICIAL: N_("official"),
    Role.STAFF: N_("staff member"),
}

OfficialStep = Callable[[Turn, Authority], Awaitable[list[Outgoing]]]
_SPACING = re.compile(r"[\s\-.]+")


def sign_in_url(public_url: str, token: str) -> str:
    return f"{public_url}{LOGIN_PATH}{token}"


def role_words(role: Role, t: Translator) -> str:
    return t(ROLE_WORDS[role])


def scope_words(scope: Scope, t: Translator) -> str:
    """"all communes", "Tỉnh Thanh Hóa (province 38)", "Xã Cẩm Tú — Tỉnh Thanh Hóa (commune
    15148)"."""
    if scope.kind is ScopeKind.ALL:
        return t("all communes")
    if scope.kind is ScopeKind.PROVINCE:
        return t("{place} (province {code})", place=scope.place, code=scope.code)
    return t("{place} (commune {code})", place=scope.place,
             code=communes.commune_code_text(scope.code))


def grant_words(grant: Grant, t: Translator) -> str:
    return t("{role} of {scope}", role=role_words(grant.role, t), scope=scope_words(grant.scope, t))


async def login(turn: Turn, authority: Authority) -> list[Outgoing]:
    """A one-time link that signs this person in to the workspace (10 minutes, once)."""
    public_url = turn.workspace.public_url
    if not public_url:
        return [Reply(turn.t(
            "The officials' workspace is not set up on this server yet. The administrator "
            "must set YKIEN_PUBLIC_URL to the server's https:// address and run ykien serve "
            "(see “For officials” in the README)."
        ))]
    token = await sessions.new_login_link(turn.session, authority.person_id, turn.now)
    await audit.record(turn.session, Actor(Via.CHAT, authority.person_id, authority.role,
                                           turn.event.channel),
                       AuditAction.LOGIN_LINK, turn.now)
    log.info("sign-in link given on %s", chat_ref(turn.event.channel, turn.event.user_id))
    minutes = int(sessions.LOGIN_LINK_LIFETIME.total_seconds() // 60)
    return [Reply(turn.t(
        "Your sign-in link to the officials' workspace:\n{url}\n"
        "It works once, for {minutes} minutes. Do not forward it: whoever opens it is signed "
        "in as you.",
        url=sign_in_url(public_url, token), minutes=turn.t.number(minutes),
    ), secret=True)]


OFFICIAL_COMMANDS: dict[str, OfficialStep] = {"login": login}
# Official commands typed as words, folded ("đăng nhập", "dang nhap").
OFFICIAL_WORDS = {"dang nhap": "login"}


def _official_command(text: str) -> str | None:
    name = slash_name(text)
    if name is None:
        name = OFFICIAL_WORDS.get(fold(text))
    return name if name in OFFICIAL_COMMANDS else None


async def answer(turn: Turn, text: str) -> list[Outgoing] | None:
    """The answer to an official command from a person holding a role; None for any other
    text, and for an official command from anyone else (a resident is answered as if no
    official command existed)."""
    name = _official_command(text)
    if name is None or turn.resident is None:
        return None
    # Nothing of this turn is written before the step (the resident row is written once).
    with turn.session.no_autoflush:
        authority = await roles.authority_of(turn.session, turn.resident.person_id,
                                             turn.workspace.admin_chats)
    if not authority.holds_a_role:
        return None
    return await OFFICIAL_COMMANDS[name](turn, authority)


def typed_invite(text: str) -> str | None:
    """The invite code in a message that is only one ("K7M4-QX9P-2HTR", any case, spaces
    or dashes anywhere); None otherwise. Twelve characters of the code alphabet with a
    letter and a digit: no word, sentence or number is ever taken for one."""
    compact = _SPACING.sub("", text).upper()
    return compact if roles.is_invite_shaped(compact) else None


async def use_invite(turn: Turn, code: str) -> list[Outgoing]:
    """An invite code typed in a chat: its role, for this chat's person."""
    resident = turn.resident
    if resident is None:  # a person exists only from consent: nothing to give a role to
        return [Reply(turn.t("To use this code, first agree to the privacy notice below, "
                             "then type the code again.")),
                *greeting(turn.t.language)]
    where = chat_ref(turn.event.channel, turn.event.user_id)
    # Wrong invite codes and wrong link codes count together: one limit on guessing.
    refused = await too_many_guesses(turn, resident.person_id, "invite code")
    if refused is not None:
        return refused
    with turn.session.no_autoflush:
        found = await roles.find_invite(turn.session, code)
    if found is None:
        await linking.record_wrong_guess(turn.session, resident.person_id, turn.now)
        log.info("wrong invite code on %s", where)
        return [Reply(turn.t("That code is wrong. Check it and type it again."))]
    if not await roles.spend_invite(turn.session, found, turn.now):
        log.info("expired or used invite code on %s", where)
        return [Reply(turn.t("That code has expired or was used already. Ask whoever gave "
                             "it to you for a new one."))]
    await roles.grant(turn.session, resident.person_id, found.grant, turn.now)
    await audit.record(turn.session, Actor(Via.CHAT, resident.person_id, found.grant.role,
                                           turn.event.channel),
                       AuditAction.INVITE_USED, turn.now, detail=str(found.grant))
    log.info("invite code used on %s", where)
    return [Reply(turn.t(
        "Done: you are now {grant}. Type /login for a link to the officials' workspace.",
        grant=grant_words(found.grant, turn.t),
    ))]

