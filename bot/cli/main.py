"""The `ykien` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.channels.channel import StartRefused
from bot.channels.registry import configured_entries
from bot.cli.errors import (
    SUPPORTED_DRIVERS,
    config_problem,
    database_problem,
    driver,
    file_problem,
    shown_url,
)
from bot.cli.outfile import export_refusal, replaced_on_success, standard_output
from bot.config import ConfigError, Settings
from handlers import logref
from handlers.i18n import Translator, translator
from storage import communes
from storage.db import make_engine, open_database, upgrade
from storage.drafts import commune_code_text

log = logging.getLogger("ykien")

Command = Callable[[argparse.Namespace, Settings, Translator], Awaitable[int]]


async def cmd_run(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.app import run_channels

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
    try:
        await run_channels(settings)
    except StartRefused as error:  # a webhook registered where we would poll
        print(error.explain(t), file=sys.stderr)
        return 1
    except RuntimeError as error:  # a channel could not start: wrong token, no network
        print(t("Could not start: {reason}", reason=str(error)), file=sys.stderr)
        return 1
    return 0


async def cmd_console(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.channels.console import ConsoleChannel
    from bot.sending.worker import DeliveryWorker
    from bot.service import ChatService

    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)
        service = ChatService(sessionmaker, settings.conversation_timeout)
        console = ConsoleChannel(service, user_id=getattr(args, "user", "console"))
        await console.run(DeliveryWorker(sessionmaker, {console.name: console}, settings.delivery))
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(t("The database is up to date."))
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.export import export_csv
    from storage.queries import get_draft

    to_stdout = args.out == "-"
    target = Path(args.out)
    if not to_stdout:
        refusal = export_refusal(target, args.force, settings.database_url, t)
        if refusal:
            print(refusal, file=sys.stderr)
            return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        if args.draft is not None and await get_draft(session, args.draft) is None:
            print(t("There is no draft no. {id}; nothing was written.", id=args.draft),
                  file=sys.stderr)
            return 1
        with standard_output() if to_stdout else replaced_on_success(target) as out:
            count = await export_csv(
                session, out, args.draft, settings.pseudonym_key.encode(), translate=t
            )
    print(t.plural(
        "Wrote {count} row to {path}.", "Wrote {count} rows to {path}.", count,
        path=t("standard output") if to_stdout else str(target),
    ), file=sys.stderr if to_stdout else sys.stdout)
    return 0


async def cmd_communes_search(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    matches = communes.search(" ".join(args.query), province=args.province, limit=args.limit)
    if not matches:
        print(t("No commune found."))
        return 1
    for match in matches:
        line = f"{commune_code_text(match.commune.code)}  {match.commune.label}"
        if match.former is not None:
            line += "  " + t("(includes former {former})", former=match.former.name)
        print(line)
    return 0


def build_parser(t: Translator) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ykien",
        description=t("Ý kiến: public consultation on draft policies in Zalo and Telegram chats."),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, handler: Command, parent=commands):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("run", t("run every configured channel and the delivery worker"), cmd_run)
    from bot.web.server import cmd_serve, cmd_webhook_delete

    serve = add("serve", t("run the webhook server (Telegram) and the delivery worker"),
                cmd_serve)
    serve.add_argument("--host", default="127.0.0.1", help=t("the address to listen on"))
    serve.add_argument("--port", type=int, default=8080, help=t("the port to listen on"))
    webhook = commands.add_parser("webhook", help=t("Telegram's webhook")).add_subparsers(
        dest="webhook_command", required=True, metavar="COMMAND")
    add("delete", t("remove Telegram's webhook so that ykien run can poll"),
        cmd_webhook_delete, webhook)
    console = add("console", t("talk to the bot in this terminal (reads standard input)"),
                  cmd_console)
    console.add_argument("--user", default="console", help=t("who you are in the console"))

    db = commands.add_parser("db", help=t("database schema")).add_subparsers(
        dest="db_command", required=True, metavar="COMMAND")
    add("upgrade", t("create or upgrade the database tables"), cmd_db_upgrade, db)

    from bot.cli.draft import add_draft_commands

    add_draft_commands(commands, add, t)

    from bot.cli.zalo import add_zalo_commands

    add_zalo_commands(commands, add, t)

    export = add("export", t("export comments and votes as CSV (UTF-8 with BOM)"), cmd_export)
    export.add_argument("--draft", type=int, help=t("only this draft (default: all)"))
    export.add_argument("--out", required=True,
                        help=t("the CSV file to write, or - for standard output"))
    export.add_argument("--force", action="store_true",
                        help=t("replace the file if it already exists"))

    communes_parser = commands.add_parser("communes", help=t("the list of communes"))
    communes_commands = communes_parser.add_subparsers(
        dest="communes_command", required=True, metavar="COMMAND")
    search = add("search", t("find communes by name, old names included"), cmd_communes_search,
                 communes_commands)
    search.add_argument("query", nargs="+", help=t("a commune name, with or without accents"))
    search.add_argument("--province", help=t("only in this province"))
    search.add_argument("--limit", type=int, default=10, help=t("how many to show"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        # No valid settings, so no configured language yet: the default one, or the
        # environment's when that part is valid.
        early = translator(os.environ.get("YKIEN_LANGUAGE", "").strip().lower())
        print(config_problem(error, early), file=sys.stderr)
        return 2
    except OSError as error:  # an unreadable .env file
        print(file_problem(error, translator(None)), file=sys.stderr)
        return 1
    t = translator(settings.language)
    logref.configure(settings.pseudonym_key.encode())  # the same log references everywhere
    args = build_parser(t).parse_args(argv)
    no_channel = not configured_entries(settings)
    quiet = args.command == "console" or (args.command == "run" and no_channel)
    logging.basicConfig(
        level=logging.WARNING if quiet else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    try:
        return asyncio.run(args.handler(args, settings, t))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ykien export --out - | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        if error.filename is not None:  # a file, not the database connection
            print(file_problem(error, t), file=sys.stderr)
        else:  # refused or lost network connections to the database server
            log.debug("database failure", exc_info=True)
            print(database_problem(error, settings.database_url, t), file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        log.debug("database failure", exc_info=True)
        print(database_problem(error, settings.database_url, t), file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        if driver(settings.database_url) in SUPPORTED_DRIVERS:
            raise  # a broken installation, not a setting
        print(t(
            "Cannot use the database {url}: its driver is not installed ({reason}). "
            "In YKIEN_DATABASE_URL, use an address starting with sqlite+aiosqlite:// or "
            "postgresql+asyncpg://.",
            url=shown_url(settings.database_url, t), reason=str(error),
        ), file=sys.stderr)
        return 1
