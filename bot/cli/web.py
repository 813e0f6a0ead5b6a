"""`ykien web login-link --chat telegram:123456`: the one-time sign-in link /login gives in the
chat, printed here (for the first administrator, or a chat app that is not connected yet);
`ykien web serve`: the workspace alone, for a bot that polls (`ykien serve` registers webhooks).

Exit codes: 0 printed, 1 cannot be done (no one agreed in that chat, or they hold no role),
2 bad input (argparse, YKIEN_PUBLIC_URL not set).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.role import chat_argument, chat_text, no_person
from bot.cli.run import add_listen_arguments, until_stopped
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings


def add_web_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    web = commands.add_parser("web", help=t("the officials' workspace served by ykien serve"))
    commands_of_web = web.add_subparsers(dest="web_command", required=True, metavar="COMMAND")
    link = add("login-link", t("print a one-time sign-in link to the workspace for the person "
                               "of a chat who holds a role"), cmd_login_link, commands_of_web)
    link.add_argument("--chat", required=True, type=chat_argument(t), metavar="CHANNEL:ID",
                      help=t("the person's chat, such as telegram:123456"))
    serve = add("serve", t("serve only the workspace, beside a bot that polls (ykien run): "
                           "no webhook is registered and nothing is sent"),
                cmd_web_serve, commands_of_web)
    add_listen_arguments(serve, t)


async def cmd_web_serve(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.web.server import serve

    if not settings.public_url:
        print(t("YKIEN_PUBLIC_URL is not set: set it to the https:// address where the "
                "workspace is reached (through the reverse proxy); the sign-in links the bot "
                "sends point there."), file=sys.stderr)
        return 2
    return await until_stopped(serve(settings, args.host, args.port, receive=False,
                                     own_process=True), t)


async def cmd_login_link(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.officials import sign_in_url
    from storage import audit, roles, sessions
    from storage.db import open_database
    from storage.models import utcnow

    if not settings.public_url:
        print(t("YKIEN_PUBLIC_URL is not set: set it to the https:// address where ykien serve "
                "is reached, and run ykien serve."), file=sys.stderr)
        return 2
    chat = chat_text(args.chat)
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        person_id = await roles.person_of_chat(session, args.chat)
        if person_id is None:
            return no_person(args.chat, t)
        authority = await roles.authority_of(session, person_id, settings.admin_chats)
        if not authority.holds_a_role:
            print(t("The person of {chat} holds no role: give them one first with ykien role "
                    "grant.", chat=chat), file=sys.stderr)
            return 1
        now = utcnow()
        token = await sessions.new_login_link(session, person_id, now)
        await audit.record(session, operator(), audit.AuditAction.LOGIN_LINK, now,
                           subject=person_id)
        await session.commit()
    print(sign_in_url(settings.public_url, token))
    print(t("It works once, for {minutes} minutes, for the person of {chat}. Open it in their "
            "browser; do not send it anywhere else.", chat=chat,
            minutes=t.number(int(sessions.LOGIN_LINK_LIFETIME.total_seconds() // 60))),
          file=sys.stderr)
    return 0
