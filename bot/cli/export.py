"""`ykien export`: comments and votes as CSV or XLSX, to a file (replaced only on success)
or - ."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.outfile import (
    Refused,
    bytes_replaced_on_success,
    csv_output,
    export_refusal,
    say_written,
)
from handlers.i18n import Translator

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import Settings

FORMATS = ("csv", "xlsx")


def add_export_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    export = add("export", t("export comments and votes as CSV (UTF-8 with BOM) or XLSX"),
                 cmd_export)
    export.add_argument("--draft", type=int, help=t("only this draft (default: all)"))
    export.add_argument("--out", required=True,
                        help=t("the file to write, or - for standard output"))
    export.add_argument("--format", choices=FORMATS,
                        help=t("csv, or xlsx (a summary sheet, comments, votes); by default "
                               "xlsx when --out ends in .xlsx, else csv"))
    export.add_argument("--force", action="store_true",
                        help=t("replace the file if it already exists"))


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.db import open_database
    from storage.export import export_csv
    from storage.keys import pseudonym_key
    from storage.queries import get_draft

    to_stdout = args.out == "-"
    target = Path(args.out)
    suffix = "" if to_stdout else target.suffix.lower()
    chosen = args.format or ("xlsx" if suffix == ".xlsx" else "csv")
    if not to_stdout and (chosen == "xlsx") != (suffix == ".xlsx"):
        # Excel refuses a workbook named .csv, and reads a CSV named .xlsx as broken.
        print(t("{path} does not end in .{extension}, but the export is {format}: name the "
                "file .{extension}, or choose the format that matches its name.",
                path=str(target), extension=chosen, format=chosen.upper()), file=sys.stderr)
        return 1

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
        # Generated on the first export if need be, and kept for the next ones.
        key = await pseudonym_key(session, settings.pseudonym_key)
        await session.commit()
        try:
            if chosen == "xlsx":
                count = await _export_xlsx(session, None if to_stdout else target, refusal,
                                           args.draft, key, t)
            else:
                with csv_output(None if to_stdout else target, refusal) as out:
                    count = await export_csv(session, out, args.draft, key, translate=t)
        except Refused as refused:  # something appeared at the target meanwhile
            print(refused, file=sys.stderr)
            return 1
    say_written(count, None if to_stdout else target, t)
    return 0


async def _export_xlsx(session: AsyncSession, target: Path | None,
                       refusal: Callable[[], str | None], draft: int | None, key: bytes,
                       t: Translator) -> int:
    """The workbook to target (None: standard output)."""
    from storage.export_xlsx import export_xlsx

    if target is None:
        sys.stdout.flush()
        return await export_xlsx(session, sys.stdout.buffer, draft, key, translate=t)
    with bytes_replaced_on_success(target, refusal) as out:
        return await export_xlsx(session, out, draft, key, translate=t)
