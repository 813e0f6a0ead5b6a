"""`ykien report`: the Decision 407 annual report (storage.report) of a period, for all
communes, a province or a commune, as Markdown, printable HTML or XLSX.

Exit codes: 0 written, 1 cannot be done (an output file that exists without --force, a
folder, the database), 2 bad input (a date, a period ending before it starts, an unknown
province or commune, both a province and a commune).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.parser import whole_number
from handlers.i18n import VIETNAM, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from storage.report import Report
    from storage.report_table import ReportView

FORMATS = ("md", "html", "xlsx")


def add_report_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    report = add("report", t("the annual report (Decision 407): drafts communicated, residents "
                             "reached, comments and votes received, answered and published"),
                 cmd_report)
    report.add_argument("--year", type=whole_number(t, 2000, 2999),
                        help=t("the year (default: this year)"))
    report.add_argument("--from", dest="first", type=_day(t),
                        help=t("the first day counted (2026-01-01 or 01/01/2026; default: "
                               "1 January of the year)"))
    report.add_argument("--to", dest="last", type=_day(t),
                        help=t("the last day counted (default: 31 December of the year)"))
    where = report.add_mutually_exclusive_group()
    where.add_argument("--province", help=t("only this province (its code)"))
    where.add_argument("--commune", help=t("only this commune (its code)"))
    report.add_argument("--format", choices=FORMATS, default="md",
                        help=t("md (Markdown, the default), html (printable) or xlsx"))
    report.add_argument("--out", help=t("the file to write (md and html: standard output "
                                        "without it; xlsx needs it)"))
    report.add_argument("--force", action="store_true",
                        help=t("replace the file if it already exists"))


def _day(t: Translator) -> Callable[[str], date]:
    """An argparse type: a day as 2026-10-31 or 31/10/2026."""

    def parse(text: str) -> date:
        from storage.report import parse_day  # when used: short commands start without it

        day = parse_day(text)
        if day is None:
            raise argparse.ArgumentTypeError(t(
                "“{value}” is not a date: write it as 2026-10-31 or 31/10/2026.", value=text))
        return day

    return parse


def _code(text: str) -> int | None:
    stripped = text.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() and len(stripped) <= 9 \
        else None


def _scope(args: argparse.Namespace, t: Translator) -> tuple[frozenset[int] | None, str] | str:
    """The communes asked for and their name, or why they cannot be."""
    from storage import communes
    from storage.roles import Scope, ScopeKind

    if args.province is not None:
        code = _code(args.province)
        if code is None or communes.get_province(code) is None:
            return t("There is no province with code “{code}” (see ykien communes).",
                     code=args.province)
        scope = Scope(ScopeKind.PROVINCE, code)
    elif args.commune is not None:
        code = _code(args.commune)
        if code is None or communes.get_commune(code) is None:
            return t("There is no commune with code “{code}” (see ykien communes).",
                     code=args.commune)
        scope = Scope(ScopeKind.COMMUNE, code)
    else:
        return None, ""
    return scope.communes(), scope.place


def markdown(view: ReportView) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(cell(text) for text in header) + " |",
                "|" + "---|" * len(header),
                *("| " + " | ".join(cell(text) for text in row) + " |" for row in rows)]

    lines = [f"# {view.title}", "", view.period, "", view.place, "", view.definitions, "",
             f"## {view.headings[0]}", "",
             *table(view.totals_header, [list(row) for row in view.totals]), "",
             f"## {view.headings[1]}", "", *table(view.communes_header, view.communes), "",
             f"## {view.headings[2]}", "", *table(view.drafts_header, view.drafts)]
    return "\n".join(lines) + "\n"


async def cmd_report(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.outfile import Refused, bytes_replaced_on_success, export_refusal
    from storage.db import open_database
    from storage.report import Period, build_report

    year = args.year or (args.first or args.last or datetime.now(VIETNAM).date()).year
    period = Period(args.first or Period.year(year).first, args.last or Period.year(year).last)
    if period.first > period.last:
        print(t("The period ends ({last}) before it starts ({first}).",
                first=period.first.isoformat(), last=period.last.isoformat()), file=sys.stderr)
        return 2
    scope = _scope(args, t)
    if isinstance(scope, str):
        print(scope, file=sys.stderr)
        return 2
    communes, place = scope
    target = Path(args.out) if args.out and args.out != "-" else None
    if args.format == "xlsx" and target is None:
        print(t("An XLSX report is a file: give it with --out FILE.xlsx."), file=sys.stderr)
        return 2

    def refusal() -> str | None:
        assert target is not None
        return export_refusal(target, args.force, settings.database_url, t)

    if target is not None and (reason := refusal()):
        print(reason, file=sys.stderr)
        return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        report = await build_report(session, period, communes)
    data = _rendered(report, place, args.format, t)
    if target is None:
        sys.stdout.write(data.decode())
        return 0
    try:
        with bytes_replaced_on_success(target, refusal) as out:
            out.write(data)
    except Refused as refused:
        print(refused, file=sys.stderr)
        return 1
    print(t("Wrote the report to {path}.", path=str(target)))
    return 0


def _rendered(report: Report, place: str, chosen: str, t: Translator) -> bytes:
    import io

    from storage.report_table import report_view

    if chosen == "xlsx":
        from storage.report_xlsx import write_report

        buffer = io.BytesIO()
        write_report(buffer, report, place, t)
        return buffer.getvalue()
    view = report_view(report, place, t, t.number)
    if chosen == "html":
        from bot.web.report import printable_html

        return printable_html(view, t).encode()
    return markdown(view).encode()
