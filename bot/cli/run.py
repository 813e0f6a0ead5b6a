"""`ykien run`, `ykien worker`, `ykien serve`, `ykien console` and `ykien db upgrade`.

Each imports what it starts only when it runs, so that the short commands start fast.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings

# What Telegram accepts as a webhook secret_token.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")

def add_run_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    add("run", t("run every configured channel and the delivery worker"), cmd_run)
    add("worker", t("only send what the outbox holds, receiving nothing (a process added "
                    "beside ykien serve on one PostgreSQL database)"), cmd_worker)
    serve = add("serve", t("run the webhook server (Telegram, Zalo) and the delivery worker"),
                cmd_serve)
    add_listen_arguments(serve, t)
    console = add("console", t("talk to the bot in this terminal (reads standard input)"),
                  cmd_console)
    console.add_argument("--user", default="console", help=t("who you are in the console"))
    db = commands.add_parser("db", help=t("database schema")).add_subparsers(
        dest="db_command", required=True, metavar="COMMAND")
    add("upgrade", t("create or upgrade the database tables"), cmd_db_upgrade, db)


async def cmd_run(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.app import run_channels
    from bot.channels.registry import configured_entries

    entries = configured_entries(settings)
    if entries and not any(entry.can_poll for entry in entries):
        print(t(
            "A Zalo Official Account sends messages to a webhook only: start the bot with "
            "ykien serve (see README, Zalo)."
        ), file=sys.stderr)
        return 2
    if not entries:
        print(t(
            "No chat channel is configured. To connect Telegram, create a bot with @BotFather "
            "and set YKIEN_TELEGRAM_TOKEN in the environment or in a .env file (see "
            ".env.example). Meanwhile, here is the bot in this terminal (ykien console); "
            "type /start, and press Ctrl-D to leave."
        ), file=sys.stderr)
        return await cmd_console(args, settings, t)
    return await until_stopped(run_channels(settings), t)


async def cmd_worker(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.app import run_worker
    from bot.channels.registry import configured_entries

    if not configured_entries(settings):
        print(t("No chat channel is configured, so there is nothing to send through. Set "
                "YKIEN_TELEGRAM_TOKEN or the Zalo settings (see .env.example)."),
              file=sys.stderr)
        return 2
    return await until_stopped(run_worker(settings), t)


async def cmd_console(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    import asyncio

    from bot.channels.console import ConsoleChannel
    from bot.sending.worker import DeliveryWorker
    from bot.service import ChatService
    from storage import communes
    from storage.db import open_database

    if args.command == "console":  # (`ykien run` with no channel has said so already)
        print(t("The bot, in this terminal. Type /start to begin; Ctrl-D leaves."),
              file=sys.stderr)
    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)
        service = ChatService.for_settings(sessionmaker, settings)
        console = ConsoleChannel(service, user_id=getattr(args, "user", "console"))
        await console.run(DeliveryWorker(sessionmaker, {console.name: console}, settings.delivery))
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.web.server import serve

    problem = webhook_problem(settings, t)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    return await until_stopped(serve(settings, args.host, args.port, own_process=True), t)


async def until_stopped(running: Awaitable[None], t: Translator) -> int:
    """Run the bot's long-running part until it is stopped (0), or say in one line why it
    could not start (1): a wrong token, no network, a port taken, a webhook in the way."""
    from bot.channels.channel import StartRefused

    try:
        await running
    except StartRefused as error:  # a webhook registered where we would poll
        print(error.explain(t), file=sys.stderr)
        return 1
    except RuntimeError as error:
        print(t("Could not start: {reason}", reason=str(error)), file=sys.stderr)
        return 1
    return 0


def add_listen_arguments(parser: argparse.ArgumentParser, t: Translator) -> None:
    """--host and --port of a command that serves HTTP."""
    parser.add_argument("--host", default="127.0.0.1", help=t("the address to listen on"))
    parser.add_argument("--port", type=int, default=8080, help=t("the port to listen on"))


def webhook_problem(settings: Settings, t: Translator) -> str | None:
    """Why `ykien serve` cannot start with these settings (one line), or None."""
    from bot.channels.registry import configured_entries

    if not configured_entries(settings):
        return t(
            "No chat channel is configured for the webhook server. For Telegram, set "
            "YKIEN_TELEGRAM_TOKEN, YKIEN_PUBLIC_URL and YKIEN_TELEGRAM_WEBHOOK_SECRET; for a "
            "Zalo Official Account, YKIEN_ZALO_APP_ID and its secrets; for a Zalo Bot, "
            "YKIEN_ZALO_BOT_TOKEN and YKIEN_ZALO_BOT_WEBHOOK_SECRET — in the environment or "
            "in a .env file (see .env.example and the README)."
        )
    if settings.telegram_token:
        missing = [
            name
            for name, value in (
                ("YKIEN_PUBLIC_URL", settings.public_url),
                ("YKIEN_TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret),
            )
            if not value
        ]
        if missing:
            return t(
                "The webhook server needs {variables}: YKIEN_PUBLIC_URL is the https:// "
                "address where Telegram reaches this server (through the reverse proxy), and "
                "YKIEN_TELEGRAM_WEBHOOK_SECRET a secret of 1 to 256 letters, digits, _ or -. "
                "Set them in the environment or in the .env file, or poll instead with: "
                "ykien run",
                variables=", ".join(missing),
            )
        if not SECRET_PATTERN.fullmatch(settings.telegram_webhook_secret):
            return t(
                "YKIEN_TELEGRAM_WEBHOOK_SECRET is not valid: it must be 1 to 256 characters, "
                "each a letter A–Z or a–z, a digit, _ or -. Correct it in the environment or "
                "in the .env file."
            )
    zalo_needs = [
        ("YKIEN_PUBLIC_URL", settings.public_url),
        *([("YKIEN_ZALO_OA_SECRET", settings.zalo_oa_secret)] if settings.zalo_app_id else []),
        *([("YKIEN_ZALO_BOT_WEBHOOK_SECRET", settings.zalo_bot_webhook_secret)]
          if settings.zalo_bot_token else []),
    ] if settings.zalo_app_id or settings.zalo_bot_token else []
    missing = [name for name, value in zalo_needs if not value]
    if missing:
        return t(
            "Zalo needs {variables} for the webhook server. Set them in the environment or in "
            "the .env file (see .env.example).",
            variables=", ".join(missing),
        )
    return None


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(t("The database is up to date."))
    return 0
