"""`ykien export`: comments and votes as CSV, to a file (replaced only on success) or - ."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.command import AddCommand, Subcommands
from bot.cli.outfile import Refused, export_refusal, replaced_on_success, standard_output
from bot.config import Settings
from handlers.i18n import Translator
from storage.db import open_database


def add_export_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    export = add("export", t("export comments and votes as CSV (UTF-8 with BOM)"), cmd_export)
    export.add_argument("--draft", type=int, help=t("only this draft (default: all)"))
    export.add_argument("--out", required=True,
                        help=t("the CSV file to write, or - for standard output"))
    export.add_argument("--force", action="store_true",
                        help=t("replace the file if it already exists"))


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.export import export_csv
    from storage.queries import get_draft

    to_stdout = args.out == "-"
    target = Path(args.out)

    def refusal() -> str | None:
        return export_refusal(target, args.force, settings.database_url, t)

    if not to_stdout and (reason := refusal()):
        print(reason, file=sys.stderr)
        return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        if args.draft is not None and await get_draft(session, args.draft) is None:
            print(t("There is no draft no. {id}; nothing was written.", id=args.draft),
                  file=sys.stderr)
            return 1
        try:
            with standard_output() if to_stdout else replaced_on_success(target, refusal) as out:
                count = await export_csv(
                    session, out, args.draft, settings.pseudonym_key.encode(), translate=t
                )
        except Refused as refused:  # something appeared at the target meanwhile
            print(refused, file=sys.stderr)
            return 1
    print(t.plural(
        "Wrote {count} row to {path}.", "Wrote {count} rows to {path}.", count,
        path=t("standard output") if to_stdout else str(target),
    ), file=sys.stderr if to_stdout else sys.stdout)
    return 0
