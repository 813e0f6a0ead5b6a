"""`ykien consent export` (the consent record, for an inspection) and `ykien purge` (the
retention period, which the running bot also applies once a day).

Exit codes: 0 done, 1 cannot be done (the file), 2 bad input (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.audit import moment
from bot.cli.command import AddCommand, Subcommands
from bot.cli.outfile import Refused, csv_output, export_refusal, say_written
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings


def add_privacy_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    group = commands.add_parser(
        "consent", help=t("the consent record: who agreed, stopped or was erased, and when"))
    consent_commands = group.add_subparsers(dest="consent_command", required=True,
                                            metavar="COMMAND")
    export = add("export", t("write the consent record as CSV (UTF-8 with BOM), persons "
                             "pseudonymised, for an inspection"), cmd_consent_export,
                 consent_commands)
    export.add_argument("--since", type=moment(t), metavar="DATE",
                        help=t("only what happened from this date (or date and time), "
                               "Vietnam time"))
    export.add_argument("--out", required=True,
                        help=t("the file to write, or - for standard output"))
    export.add_argument("--force", action="store_true",
                        help=t("replace the file if it already exists"))
    purge = add("purge", t("apply the retention period (YKIEN_RETENTION_MONTHS): make old "
                           "comments and votes anonymous, erase persons long silent"),
                cmd_purge)
    purge.add_argument("--dry-run", action="store_true",
                       help=t("show what would be done, and change nothing"))


async def cmd_consent_export(args: argparse.Namespace, settings: Settings,
                             t: Translator) -> int:
    from storage import consent
    from storage.db import open_database

    to_stdout = args.out == "-"
    target = Path(args.out)

    def refusal() -> str | None:
        return export_refusal(target, args.force, settings.database_url, t)

    if not to_stdout and (reason := refusal()):
        print(reason, file=sys.stderr)
        return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        try:
            with csv_output(None if to_stdout else target, refusal) as out:
                count = await consent.export_csv(session, out, args.since, translate=t)
        except Refused as refused:  # something appeared at the target meanwhile
            print(refused, file=sys.stderr)
            return 1
    say_written(count, None if to_stdout else target, t)
    return 0


async def cmd_purge(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import retention
    from storage.db import open_database
    from storage.models import utcnow

    now = utcnow()
    months = settings.retention_months
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        done = await retention.purge(session, now, months)
        if args.dry_run:
            await session.rollback()  # reports what a run would do, exactly
        else:
            await session.commit()
    print(t.plural("Retention period: {count} month (YKIEN_RETENTION_MONTHS).",
                   "Retention period: {count} months (YKIEN_RETENTION_MONTHS).", months))
    lines = [
        t.plural("Comments made anonymous: {count}", "Comments made anonymous: {count}",
                 done.comments),
        t.plural("Votes made anonymous: {count}", "Votes made anonymous: {count}",
                 done.votes),
        t.plural("Drafts concerned: {count}", "Drafts concerned: {count}", done.drafts),
        t.plural("Persons erased: {count} ({chats} chat)",
                 "Persons erased: {count} ({chats} chats)", done.persons,
                 chats=t.number(done.chats)),
    ]
    if args.dry_run:
        print(t("Dry run: nothing was changed. A run without --dry-run would do this:"))
    print("\n".join(lines))
    return 0
