"""The `ykien` command line."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.config import LANGUAGES, LOG_LEVELS, ConfigError, Settings
from handlers.i18n import N_, Translator, translator
from storage import communes
from storage.db import make_engine, open_database, upgrade
from storage.drafts import DraftState, commune_code_text

log = logging.getLogger("ykien")

STATE_WORDS = {
    DraftState.NOT_SENT: N_("not sent yet"),
    DraftState.SCHEDULED: N_("scheduled"),
    DraftState.OPEN: N_("open"),
    DraftState.CLOSED: N_("closed"),
}
# The settings that take one of a few words, and those words (see bot.config).
SETTING_CHOICES = {"YKIEN_LOG_LEVEL": LOG_LEVELS, "YKIEN_LANGUAGE": LANGUAGES}
# bot.config's description of the minutes setting, here so that the catalogue has it.
N_("a whole number of minutes from 1 to 10080")
# Created drafts list their communes when there are this few; more are summed up by count.
COMMUNES_LISTED = 10
# The database drivers the package installs; another driver in the URL is not there.
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# Files SQLite keeps beside the database: overwriting any of them corrupts it.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

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
        print(t.plural(
            "Draft not created; {count} problem in {path}:",
            "Draft not created; {count} problems in {path}:",
            len(error.problems), path=args.file,
        ), file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await create_draft(session, spec)
    codes = sorted(set(spec.commune_codes))
    print(t.plural(
        "Created draft no. {id}: “{title}” for {count} commune. "
        "Send it with: ykien draft broadcast {id}",
        "Created draft no. {id}: “{title}” for {count} communes. "
        "Send it with: ykien draft broadcast {id}",
        len(codes), id=draft.id, title=draft.title,
    ))
    if len(codes) <= COMMUNES_LISTED:  # so the official sees which communes a name chose
        for code in codes:
            commune = communes.get_commune(code)
            print(f"  {commune_code_text(code)}  {commune.label if commune else ''}")
    return 0


async def cmd_draft_list(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.drafts import list_drafts
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        rows = await list_drafts(session, utcnow())
    if not rows:
        print(t("No drafts yet. Create one with: ykien draft create --file draft.toml"))
    for row in rows:
        print(t(
            "no. {id} [{status}] {title} — deadline {deadline}; {communes}, "
            "{sent}/{queued} sent, {comments}",
            id=row.draft.id, title=row.draft.title, status=t(STATE_WORDS[row.state]),
            deadline=t.datetime(row.draft.deadline),
            communes=t.plural("{count} commune", "{count} communes", row.communes),
            sent=t.number(row.sent), queued=t.number(row.queued),
            comments=t.plural("{count} comment", "{count} comments", row.comments),
        ))
    return 0


async def cmd_draft_broadcast(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.drafts import broadcast, draft_state
    from storage.models import utcnow
    from storage.queries import get_draft

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await get_draft(session, args.id)
        if draft is None:
            print(t("There is no draft no. {id}.", id=args.id), file=sys.stderr)
            return 1
        now = utcnow()
        if draft_state(draft, now) == DraftState.CLOSED:
            print(t("Draft no. {id} is closed; it cannot be broadcast.", id=draft.id),
                  file=sys.stderr)
            return 1
        added = await broadcast(session, draft, now)
    print(t.plural(
        "Draft no. {id}: {count} new message queued. The running bot (ykien run) sends it.",
        "Draft no. {id}: {count} new messages queued. The running bot (ykien run) sends them.",
        added, id=args.id,
    ))
    return 0


async def cmd_draft_close(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.drafts import close_draft
    from storage.models import utcnow
    from storage.queries import get_draft

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await get_draft(session, args.id)
        if draft is None:
            print(t("There is no draft no. {id}.", id=args.id), file=sys.stderr)
            return 1
        if not await close_draft(session, draft, utcnow()):
            print(t("Draft no. {id} was already closed.", id=draft.id))
            return 0
    print(t(
        "Closed draft no. {id}: comments and votes are no longer accepted, and messages not "
        "sent yet will not be sent.", id=draft.id,
    ))
    return 0


def _database_files(database_url: str) -> list[Path]:
    """The SQLite database file and its companions, resolved; [] for a server database."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return []
    database = url.database or ""
    if not url.drivername.startswith("sqlite") or database in ("", ":memory:"):
        return []
    database = database.removeprefix("file:")  # the URI form, sqlite:///file:ykien.db?uri=true
    main_file = Path(database).resolve()
    return [main_file.with_name(main_file.name + suffix) for suffix in SQLITE_COMPANIONS]


def _is_database_file(target: Path, database_url: str) -> bool:
    resolved = target.resolve()  # through symbolic links and ".."
    for database_file in _database_files(database_url):
        if resolved == database_file:
            return True
        if target.exists() and database_file.exists() and target.samefile(database_file):
            return True  # a hard link
    return False


def _export_refusal(target: Path, force: bool, database_url: str, t: Translator) -> str | None:
    """Why the export must not write to target, or None when it may."""
    if _is_database_file(target, database_url):
        return t(
            "{path} is the database (YKIEN_DATABASE_URL): writing the export there would "
            "destroy it. Choose another file name.", path=str(target),
        )
    if target.is_dir():
        return t("{path} is a folder; give a file name, such as {example}.",
                 path=str(target), example=str(target / "comments.csv"))
    if target.exists() and not force:
        return t("{path} already exists. Choose another file name, or add --force to "
                 "replace it.", path=str(target))
    return None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _replaced_on_success(target: Path) -> Iterator[TextIO]:
    """A CSV file written beside target and renamed over it only when all went well.

    A failed export leaves the previous file as it was, never a truncated one.
    """
    mode = target.stat().st_mode if target.exists() else 0o666 & ~_current_umask()
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as error:  # name the file asked for, not the temporary one
        raise OSError(error.errno, error.strerror, str(target)) from error
    try:
        # utf-8-sig writes the BOM that makes Excel read Vietnamese correctly.
        with open(descriptor, "w", encoding="utf-8-sig", newline="") as handle:
            yield handle
        os.chmod(temporary, mode & 0o7777)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _standard_output() -> Iterator[TextIO]:
    """Standard output as UTF-8 with BOM, whatever the terminal's encoding."""
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8-sig", newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()  # leave sys.stdout's buffer open


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.export import export_csv
    from storage.queries import get_draft

    to_stdout = args.out == "-"
    target = Path(args.out)
    if not to_stdout:
        refusal = _export_refusal(target, args.force, settings.database_url, t)
        if refusal:
            print(refusal, file=sys.stderr)
            return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        if args.draft is not None and await get_draft(session, args.draft) is None:
            print(t("There is no draft no. {id}; nothing was written.", id=args.draft),
                  file=sys.stderr)
            return 1
        with _standard_output() if to_stdout else _replaced_on_success(target) as out:
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
    console = add("console", t("talk to the bot in this terminal (reads standard input)"),
                  cmd_console)
    console.add_argument("--user", default="console", help=t("who you are in the console"))

    db = commands.add_parser("db", help=t("database schema")).add_subparsers(
        dest="db_command", required=True, metavar="COMMAND")
    add("upgrade", t("create or upgrade the database tables"), cmd_db_upgrade, db)

    draft = commands.add_parser("draft", help=t("create, list, broadcast and close drafts"))
    drafts = draft.add_subparsers(dest="draft_command", required=True, metavar="COMMAND")
    create = add("create", t("create a draft from a TOML file (see examples/draft.toml)"),
                 cmd_draft_create, drafts)
    create.add_argument("--file", required=True, help=t("the draft file"))
    add("list", t("list drafts with their progress"), cmd_draft_list, drafts)
    send = add("broadcast", t("queue a draft for every subscribed resident of its communes"),
               cmd_draft_broadcast, drafts)
    send.add_argument("id", type=int, help=t("draft number"))
    close = add("close", t("close a draft before its deadline"), cmd_draft_close, drafts)
    close.add_argument("id", type=int, help=t("draft number"))

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


def _config_problem(error: ConfigError, t: Translator) -> str:
    choices = SETTING_CHOICES.get(error.variable)
    if choices:
        return t(
            "{variable} is “{value}”, which is not valid: use one of {choices}. "
            "Correct it in the environment or in the .env file.",
            variable=error.variable, value=error.value, choices=", ".join(choices),
        )
    return t(
        "{variable} is “{value}”, which is not valid: it must be {expected}. "
        "Correct it in the environment or in the .env file.",
        variable=error.variable, value=error.value, expected=t(error.expected),
    )


def _file_problem(error: OSError, t: Translator) -> str:
    return t(
        "Cannot use the file {path}: {reason}. Check the name, the folder and the permissions.",
        path=str(error.filename), reason=error.strerror or str(error),
    )


def _driver(database_url: str) -> str:
    try:
        return make_url(database_url).drivername
    except ArgumentError:
        return ""


def _shown_url(database_url: str, t: Translator) -> str:
    """The database address without its password."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return t("(not a database address)")


def _database_problem(error: Exception, database_url: str, t: Translator) -> str:
    return t(
        "Cannot use the database {url}: {reason}. Check YKIEN_DATABASE_URL.",
        url=_shown_url(database_url, t),
        reason=(str(error).splitlines() or [type(error).__name__])[0],
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        # No valid settings, so no configured language yet: the default one, or the
        # environment's when that part is valid.
        early = translator(os.environ.get("YKIEN_LANGUAGE", "").strip().lower())
        print(_config_problem(error, early), file=sys.stderr)
        return 2
    except OSError as error:  # an unreadable .env file
        print(_file_problem(error, translator(None)), file=sys.stderr)
        return 1
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
    except BrokenPipeError:  # `ykien export --out - | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        if error.filename is not None:  # a file, not the database connection
            print(_file_problem(error, t), file=sys.stderr)
        else:  # refused or lost network connections to the database server
            log.debug("database failure", exc_info=True)
            print(_database_problem(error, settings.database_url, t), file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        log.debug("database failure", exc_info=True)
        print(_database_problem(error, settings.database_url, t), file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        if _driver(settings.database_url) in SUPPORTED_DRIVERS:
            raise  # a broken installation, not a setting
        print(t(
            "Cannot use the database {url}: its driver is not installed ({reason}). "
            "In YKIEN_DATABASE_URL, use an address starting with sqlite+aiosqlite:// or "
            "postgresql+asyncpg://.",
            url=_shown_url(settings.database_url, t), reason=str(error),
        ), file=sys.stderr)
        return 1
