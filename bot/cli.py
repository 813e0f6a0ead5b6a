"""The `ykien` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from handlers.i18n import N_, Translator, translator
from storage import communes
from storage.db import make_engine, open_database, upgrade

log = logging.getLogger("ykien")

STATUS_WORDS = {"draft": N_("not sent yet"), "open": N_("open"), "closed": N_("closed")}

Command = Callable[[argparse.Namespace, Settings, Translator], Awaitable[int]]


async def cmd_run(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.app import run_channels

    if not settings.telegram_token:
        print(t(
            "No chat channel is configured. To connect Telegram, create a bot with @BotFather "
            "and set YKIEN_TELEGRAM_TOKEN in the environment or in a .env file (see "
            ".env.example). Meanwhile, here is the bot in this terminal (ykien console); "
            "type /start, and press Ctrl-D to leave."
        ), file=sys.stderr)
        return await cmd_console(args, settings, t)
    try:
        await run_channels(settings)
    except RuntimeError as error:  # a channel could not start: wrong token, no network
        print(t("Could not start: {reason}", reason=str(error)), file=sys.stderr)
        return 1
    return 0


async def cmd_console(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.console import ConsoleChannel
    from bot.delivery import DeliveryWorker
    from bot.service import ChatService

    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)
        service = ChatService(sessionmaker)
        console = ConsoleChannel(service, user_id=getattr(args, "user", "console"))
        await console.run(DeliveryWorker(sessionmaker, {console.name: console}))
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(t("The database is up to date."))
    return 0


async def cmd_draft_create(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.draftfile import DraftFileError, load_draft_file
    from storage.drafts import create_draft

    try:
        spec = load_draft_file(Path(args.file), t)
    except DraftFileError as error:
        print(t("Draft not created: {reason}", reason=str(error)), file=sys.stderr)
        return 2
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await create_draft(session, spec)
    print(t(
        "Created draft no. {id}: “{title}” for {count} communes. "
        "Send it with: ykien draft broadcast {id}",
        id=draft.id, title=draft.title, count=t.number(len(set(spec.commune_codes))),
    ))
    return 0


async def cmd_draft_list(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.drafts import list_drafts

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        rows = await list_drafts(session)
    if not rows:
        print(t("No drafts yet. Create one with: ykien draft create --file draft.toml"))
    for row in rows:
        print(t(
            "no. {id} [{status}] {title} — deadline {deadline}; {communes} communes, "
            "{sent}/{queued} sent, {comments} comments",
            id=row.draft.id, title=row.draft.title,
            status=t(STATUS_WORDS.get(row.draft.status, row.draft.status)),
            deadline=t.datetime(row.draft.deadline), communes=t.number(row.communes),
            sent=t.number(row.sent), queued=t.number(row.queued),
            comments=t.number(row.comments),
        ))
    return 0


async def cmd_draft_broadcast(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.drafts import broadcast
    from storage.models import DraftStatus, utcnow
    from storage.queries import get_draft

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await get_draft(session, args.id)
        if draft is None:
            print(t("There is no draft no. {id}.", id=args.id), file=sys.stderr)
            return 2
        now = utcnow()
        if draft.status == DraftStatus.CLOSED or draft.deadline <= now:
            print(t("Draft no. {id} is closed; it cannot be broadcast.", id=draft.id),
                  file=sys.stderr)
            return 2
        added = await broadcast(session, draft, now)
    print(t(
        "Draft no. {id}: {count} new messages queued. The running bot (ykien run) sends them.",
        id=args.id, count=t.number(added),
    ))
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.export import export_csv

    out_path = Path(args.out)
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        # utf-8-sig writes the BOM that makes Excel read Vietnamese correctly.
        with out_path.open("w", encoding="utf-8-sig", newline="") as out:
            count = await export_csv(
                session, out, args.draft, settings.pseudonym_key.encode(), translate=t
            )
    print(t("Wrote {count} rows to {path}.", count=t.number(count), path=str(out_path)))
    return 0


async def cmd_communes_search(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    matches = communes.search(" ".join(args.query), province=args.province, limit=args.limit)
    if not matches:
        print(t("No commune found."))
        return 1
    for match in matches:
        line = f"{match.commune.code:>6}  {match.commune.label}"
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
    console = add("console", t("talk to the bot in this terminal (reads standard input)"),
                  cmd_console)
    console.add_argument("--user", default="console", help=t("who you are in the console"))

    db = commands.add_parser("db", help=t("database schema")).add_subparsers(
        dest="db_command", required=True, metavar="COMMAND")
    add("upgrade", t("create or upgrade the database tables"), cmd_db_upgrade, db)

    draft = commands.add_parser("draft", help=t("create, list and broadcast drafts"))
    drafts = draft.add_subparsers(dest="draft_command", required=True, metavar="COMMAND")
    create = add("create", t("create a draft from a TOML file (see examples/draft.toml)"),
                 cmd_draft_create, drafts)
    create.add_argument("--file", required=True, help=t("the draft file"))
    add("list", t("list drafts with their progress"), cmd_draft_list, drafts)
    send = add("broadcast", t("queue a draft for every subscribed resident of its communes"),
               cmd_draft_broadcast, drafts)
    send.add_argument("id", type=int, help=t("draft number"))

    export = add("export", t("export comments and votes as CSV (UTF-8 with BOM)"), cmd_export)
    export.add_argument("--draft", type=int, help=t("only this draft (default: all)"))
    export.add_argument("--out", required=True, help=t("the CSV file to write"))

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
    settings = Settings.from_env()
    t = translator(settings.language)
    args = build_parser(t).parse_args(argv)
    quiet = args.command in ("console", "run") and not settings.telegram_token
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
    except (OSError, SQLAlchemyError) as error:
        log.debug("database failure", exc_info=True)
        print(t(
            "Cannot use the database {url}: {reason}. Check YKIEN_DATABASE_URL.",
            url=make_url(settings.database_url).render_as_string(hide_password=True),
            reason=str(error).splitlines()[0],
        ), file=sys.stderr)
        return 1
