"""`ykien role grant|revoke|list|invite`: who may use the officials' workspace, and where.

A person is named by one of their chats (`--chat telegram:123456`): no command shows the
database's person numbers. Every change is written to the audit log as the operator's.

Exit codes: 0 done, 1 cannot be done (no one agreed in that chat, nothing to revoke),
2 bad input (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.parser import whole_number
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from storage.roles import Chat, Scope

ROLES = ("admin", "official", "staff")  # storage.models.Role, without importing the database
SCOPE_PROBLEMS = {
    "shape": N_("“{value}” is not a scope: write all, province:CODE or commune:CODE "
                "(find codes with ykien communes search)."),
    "unknown_province": N_("There is no province with the code in “{value}”."),
    "unknown_commune": N_("There is no commune with the code in “{value}” (find codes with "
                          "ykien communes search)."),
}
MAX_INVITE_HOURS = 24 * 30


def chat_argument(t: Translator) -> Callable[[str], Chat]:
    """An argparse type: a chat written channel:user_id."""

    def parse(text: str) -> Chat:
        from bot.config import chat_pair  # with the settings' pydantic: only when given

        pair = chat_pair(text)
        if pair is None:
            raise argparse.ArgumentTypeError(t(
                "“{value}” is not a chat: write the chat app and the user id, such as "
                "telegram:123456 (chat apps: telegram, zalo, zalobot, console).", value=text))
        return pair

    return parse


def scope_argument(t: Translator) -> Callable[[str], Scope]:
    """An argparse type: all, province:CODE or commune:CODE, of a place that exists."""

    def parse(text: str) -> Scope:
        from storage.roles import Scope, ScopeError

        try:
            return Scope.parse(text)
        except ScopeError as error:
            raise argparse.ArgumentTypeError(
                t(SCOPE_PROBLEMS[error.problem], value=text)) from None

    return parse


def chat_text(chat: Chat) -> str:
    return f"{chat[0]}:{chat[1]}"


def add_role_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    role = commands.add_parser(
        "role", help=t("who may use the officials' workspace: grant, revoke, list, invite"))
    roles = role.add_subparsers(dest="role_command", required=True, metavar="COMMAND")
    chat_help = t("the person's chat, such as telegram:123456; they must have agreed to the "
                  "privacy notice there")
    role_help = t("admin, official or staff")
    scope_help = t("all, province:CODE or commune:CODE")

    grant = add("grant", t("give the person of a chat a role within a scope"), cmd_role_grant,
                roles)
    grant.add_argument("--chat", required=True, type=chat_argument(t), metavar="CHANNEL:ID",
                       help=chat_help)
    grant.add_argument("--role", required=True, choices=ROLES, help=role_help)
    grant.add_argument("--scope", required=True, type=scope_argument(t), help=scope_help)

    revoke = add("revoke", t("take a person's roles (all of them, or those given) and sign "
                             "them out of the workspace"), cmd_role_revoke, roles)
    revoke.add_argument("--chat", required=True, type=chat_argument(t), metavar="CHANNEL:ID",
                        help=chat_help)
    revoke.add_argument("--role", choices=ROLES, help=t("only this role"))
    revoke.add_argument("--scope", type=scope_argument(t), help=t("only in this scope"))

    add("list", t("who holds which role, by their chats"), cmd_role_list, roles)

    invite = add("invite", t("print a one-time code that gives a role to whoever types it to "
                             "the bot"), cmd_role_invite, roles)
    invite.add_argument("--role", required=True, choices=ROLES, help=role_help)
    invite.add_argument("--scope", required=True, type=scope_argument(t), help=scope_help)
    invite.add_argument("--hours", type=whole_number(t, 1, MAX_INVITE_HOURS), default=48,
                        help=t("how long the code works (48 hours unless given)"))


def no_person(chat: Chat, t: Translator) -> int:
    print(t("No one has agreed to the privacy notice in the chat {chat}: they must type /start "
            "there and agree first.", chat=chat_text(chat)), file=sys.stderr)
    return 1


async def cmd_role_grant(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.officials import grant_words
    from storage import audit, roles
    from storage.db import open_database
    from storage.models import utcnow

    given = roles.Grant(roles.Role(args.role), args.scope)
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        person_id = await roles.person_of_chat(session, args.chat)
        if person_id is None:
            return no_person(args.chat, t)
        now = utcnow()
        added = await roles.grant(session, person_id, given, now)
        if added:
            await audit.record(session, operator(), audit.AuditAction.ROLE_GRANTED, now,
                               subject=person_id, detail=str(given))
        await session.commit()
    print(t("The person of {chat} is now {grant}.", chat=chat_text(args.chat),
            grant=grant_words(given, t)) if added else
          t("The person of {chat} already is {grant}: nothing changed.",
            chat=chat_text(args.chat), grant=grant_words(given, t)))
    return 0


async def cmd_role_revoke(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.officials import grant_words
    from storage import audit, roles, sessions
    from storage.db import open_database
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        person_id = await roles.person_of_chat(session, args.chat)
        if person_id is None:
            return no_person(args.chat, t)
        now = utcnow()
        taken = await roles.revoke(session, person_id, args.role and roles.Role(args.role),
                                   args.scope)
        ended = await sessions.end_sessions_of(session, person_id) if taken else 0
        for grant in taken:
            await audit.record(session, operator(), audit.AuditAction.ROLE_REVOKED, now,
                               subject=person_id, detail=str(grant))
        if ended:
            await audit.record(session, operator(), audit.AuditAction.SESSION_ENDED, now,
                               subject=person_id, detail=f"revoke: {ended}")
        chats = await roles.chats_of(session, person_id)
        await session.commit()
    chat = chat_text(args.chat)
    if not taken:
        print(t("The person of {chat} holds no such role: nothing changed.", chat=chat),
              file=sys.stderr)
    for grant in taken:
        print(t("The person of {chat} is no longer {grant}.", chat=chat,
                grant=grant_words(grant, t)))
    if ended:
        print(t.plural("Their {count} open session of the workspace has ended.",
                       "Their {count} open sessions of the workspace have ended.", ended))
    if not settings.admin_chats.isdisjoint(chats):
        print(t("They are still an administrator through YKIEN_ADMIN_IDS: remove their chat "
                "from it and restart the bot."), file=sys.stderr)
    return 0 if taken else 1


async def cmd_role_list(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from handlers.officials import grant_words
    from storage import roles
    from storage.db import open_database

    configured = sorted(settings.admin_chats)
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        holders = await roles.holders(session)
        agreed = {chat: await roles.person_of_chat(session, chat) is not None
                  for chat in configured}
    if not holders and not configured:
        print(t("No one holds a role yet. Give one with ykien role grant or ykien role invite, "
                "or list administrators' chats in YKIEN_ADMIN_IDS."))
        return 0
    for holder in holders:
        print(", ".join(chat_text(chat) for chat in holder.chats))
        for grant, since in holder.grants:
            print("  " + t("{grant}, since {time}", grant=grant_words(grant, t),
                           time=t.datetime(since)))
    if configured:
        print(t("Administrators of all communes through YKIEN_ADMIN_IDS:"))
        for chat in configured:
            print("  " + chat_text(chat) + ("" if agreed[chat] else "  " + t(
                "(has not agreed to the privacy notice there yet)")))
    return 0


async def cmd_role_invite(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.officials import grant_words
    from storage import audit, roles
    from storage.db import open_database
    from storage.models import utcnow

    given = roles.Grant(roles.Role(args.role), args.scope)
    now = utcnow()
    lifetime = timedelta(hours=args.hours)
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        code = await roles.new_invite(session, given, now, lifetime)
        await audit.record(session, operator(), audit.AuditAction.INVITE_CREATED, now,
                           detail=f"{given} hours:{args.hours}")
        await session.commit()
    print(t("Invite code: {code}", code=roles.shown_invite(code)))
    print(t("Whoever types it to the bot (in Telegram, Zalo or the console, after agreeing to "
            "the privacy notice) becomes {grant}. It works once, until {time}. Give it to that "
            "person only.", grant=grant_words(given, t), time=t.datetime(now + lifetime)))
    return 0
