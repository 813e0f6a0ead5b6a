"""The `ykien` command line: the parser made of each command group's module, and `main`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.cli.audit import add_audit_commands
from bot.cli.backup import add_backup_commands
from bot.cli.command import Command, LanguageOnly
from bot.cli.comment import add_comment_commands
from bot.cli.communes import add_communes_commands
from bot.cli.draft import add_draft_commands
from bot.cli.errors import (
    SUPPORTED_DRIVERS,
    config_problem,
    database_problem,
    driver,
    file_problem,
    shown_url,
)
from bot.cli.export import add_export_commands
from bot.cli.groups import add_groups_commands
from bot.cli.language import configured_language
from bot.cli.parser import Parser, speak
from bot.cli.privacy import add_privacy_commands
from bot.cli.reminders import add_reminders_commands
from bot.cli.report import add_report_commands
from bot.cli.results import add_results_commands
from bot.cli.role import add_role_commands
from bot.cli.run import add_run_commands
from bot.cli.secret import add_secret_commands, generating, secret_problem
from bot.cli.synthesis import add_synthesis_commands
from bot.cli.web import add_web_commands
from bot.cli.webhook import add_webhook_commands
from bot.cli.zalo import add_zalo_commands
from handlers.i18n import LANGUAGES, Translator, translator

# The settings (pydantic), the channels and the event loop are imported by the commands that
# need them: `ykien communes search` and `--help` start without them.
if TYPE_CHECKING:
    from bot.config import Settings

def build_parser(t: Translator) -> argparse.ArgumentParser:
    speak(t)
    parser = Parser(
        prog="ykien",
        description=t("Ý kiến: public consultation on draft policies in Zalo and Telegram chats."),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, handler: Command | LanguageOnly, parent=commands):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for add_commands in (add_run_commands, add_webhook_commands, add_draft_commands,
                         add_zalo_commands, add_export_commands, add_results_commands,
                         add_communes_commands, add_role_commands, add_web_commands,
                         add_audit_commands, add_secret_commands, add_backup_commands,
                         add_privacy_commands, add_synthesis_commands,
                         add_reminders_commands, add_groups_commands,
                         add_report_commands, add_comment_commands):
        add_commands(commands, add, t)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        language = configured_language()
    except OSError as error:  # an unreadable .env file
        print(file_problem(error, translator(None)), file=sys.stderr)
        return 1
    settings: Settings | None = None
    if language and language not in LANGUAGES:  # the settings name it, with any other bad value
        read = read_settings(language)
        if isinstance(read, int):
            return read
        settings, language = read, read.language
    t = translator(language)
    args = build_parser(t).parse_args(argv)
    if args.handler is None:  # a command group alone (`ykien`, `ykien draft`): its commands
        args.listing.print_help()
        return 2
    if isinstance(args.handler, LanguageOnly):
        return run_language_only(args.handler, args, t)
    if settings is None:
        read = read_settings(language)
        if isinstance(read, int):
            return read
        settings = read
    return run_with_settings(args.handler, args, settings, t)


def read_settings(language: str) -> Settings | int:
    """The settings from the environment and .env, or the exit code once their problems
    are told (in `language` when it is a valid one, else the default)."""
    from bot.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as error:
        early = translator(language)
        for problem in error.problems:
            print(config_problem(problem, early), file=sys.stderr)
        return 2
    except OSError as error:  # an unreadable .env file
        print(file_problem(error, translator(None)), file=sys.stderr)
        return 1


def run_language_only(command: LanguageOnly, args: argparse.Namespace, t: Translator) -> int:
    try:
        return command.run(args, t)
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:  # `ykien communes search phu | head`: the reader has gone
        return _reader_gone()


def _interrupted() -> int:
    """Ctrl-C: the shell's code for it, and the shell's prompt on a line of its own rather
    than after "^C"."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return 130


def _reader_gone() -> int:
    """Standard output's reader has gone (`| head`): nothing more is written, quietly."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def run_with_settings(handler: Command, args: argparse.Namespace, settings: Settings,
                      t: Translator) -> int:
    import logging

    from bot.channels.registry import configured_entries
    from bot.cli import eventloop
    from handlers import logref
    from storage import sealing

    if settings.language != t.language:  # read alike; should they differ, the settings win
        t = translator(settings.language)
        speak(t)
    logref.configure(settings.pseudonym_key.encode())  # the same log references everywhere
    try:
        sealing.configure(settings.secret_key)  # the keys of secrets at rest, everywhere
    except sealing.BadSecretKey as bad:
        if not generating(args):  # a bad key must not stop making a good one
            print(secret_problem(bad, t), file=sys.stderr)
            return 2
    no_channel = not configured_entries(settings)
    quiet = args.command == "console" or (args.command == "run" and no_channel)
    logging.basicConfig(
        level=logging.WARNING if quiet else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    try:
        return eventloop.run(handler(args, settings, t))
    except KeyboardInterrupt:
        return _interrupted()
    except sealing.SecretKeyProblem as problem:
        print(secret_problem(problem, t), file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ykien export --out - | head`: the reader has gone
        return _reader_gone()
    except OSError as error:
        if error.filename is not None:  # a file, not the database connection
            print(file_problem(error, t), file=sys.stderr)
        else:  # refused or lost network connections to the database server
            logging.getLogger("ykien").debug("database failure", exc_info=True)
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
    except Exception as error:
        if not is_database_error(error):
            raise
        logging.getLogger("ykien").debug("database failure", exc_info=True)
        print(database_problem(error, settings.database_url, t), file=sys.stderr)
        return 1


def is_database_error(error: Exception) -> bool:
    """Whether SQLAlchemy raised it; a command that never touched it did not import it."""
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.SQLAlchemyError)
