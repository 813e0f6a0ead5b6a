"""`ykien results ID`: a draft's figures (reached, held, unreachable, comments, votes per
option, participation) in total and by commune, as a table or JSON, and as a PNG chart.

Exit codes: 0 shown, 1 cannot be done (no such draft; a chart file that exists without
--force, a folder, the database), 2 bad input (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from storage.results import CommuneFigures, DraftResults, Figures

# With more communes than this, the table lists only those where something happened.
TABLE_COMMUNES = 30
OPTION_HEADER = 12  # an option's column is headed by its label cut to this length
WAY_WORDS = {
    "broadcast": N_("broadcast message {count}"),
    "subscribed": N_("on subscribing {count}"),
    "asked": N_("on asking for open drafts {count}"),
    "took_part": N_("by taking part {count}"),
}


def add_results_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    results = add("results", t("a draft's results: reached, comments, votes and participation, "
                               "by commune"), cmd_results)
    results.add_argument("id", type=int, help=t("draft number"))
    results.add_argument("--chart", metavar="FILE.png",
                         help=t("also draw the results as a PNG chart in this file"))
    results.add_argument("--force", action="store_true",
                         help=t("replace the chart file if it already exists"))
    results.add_argument("--format", choices=("text", "json"), default="text",
                         help=t("text (a table, the default) or json (for programs)"))


async def cmd_results(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.outfile import Refused, bytes_replaced_on_success, export_refusal
    from storage.db import open_database
    from storage.results import draft_results, results_dict

    chart = Path(args.chart) if args.chart else None

    def refusal() -> str | None:
        assert chart is not None
        return export_refusal(chart, args.force, settings.database_url, t)

    if chart is not None and (reason := refusal()):
        print(reason, file=sys.stderr)
        return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        results = await draft_results(session, args.id)
    if results is None:
        print(t("There is no draft no. {id}.", id=args.id), file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(results_dict(results), ensure_ascii=False, indent=2))
    else:
        print(results_text(results, t))
    if chart is not None:
        from storage.charts import results_png

        png = results_png(results, t, t.language)
        try:
            with bytes_replaced_on_success(chart, refusal) as out:
                out.write(png)
        except Refused as refused:  # something appeared at the chart's path meanwhile
            print(refused, file=sys.stderr)
            return 1
        print(t("Chart written to {path}.", path=str(chart)),
              file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def results_text(results: DraftResults, t: Translator) -> str:
    """The figures as an official reads them: a summary, the votes, a table by commune, then
    where the comments and votes came from."""
    from handlers.breakdown import breakdown_lines, reached_line, took_part_line, vote_share
    from storage.drafts import STATE_WORDS

    total = results.total
    lines = [t("Draft no. {id}: “{title}” — {state}, comments until {deadline}",
               id=results.draft_id, title=results.title, state=t(STATE_WORDS[results.state]),
               deadline=t.datetime(results.deadline))]
    ways = ", ".join(t(WAY_WORDS[way.value], count=t.number(count))
                     for way, count in total.reached_by_way.items() if count)
    lines.append(reached_line(total, t, ways))
    lines.append(took_part_line(total, t))
    if results.options:
        lines.append(t("Votes per option:"))
        width = max(len(option.label) for option in results.options)
        for option, count in zip(results.options, total.votes, strict=True):
            share = vote_share(count, total, t)
            lines.append(f"  {option.label.ljust(width)}  {t.number(count):>7}  {share:>6}")
    shown = list(results.communes)
    if len(shown) > TABLE_COMMUNES:
        shown = list(results.active_communes)
    lines += ["", *_table(results, shown, t)]
    if len(shown) < len(results.communes):
        lines.append(t("{count} other target communes, where nothing has happened yet, are "
                       "not listed.", count=t.number(len(results.communes) - len(shown))))
    if split := breakdown_lines(results.breakdown, t):
        lines += ["", *split]
    return "\n".join(lines)


def _table(results: DraftResults, shown: list[CommuneFigures], t: Translator) -> list[str]:
    from handlers.breakdown import participation
    from storage.charts import commune_name
    from storage.drafts import commune_code_text

    headers = [t("Code"), t("Commune"), t("Reached"), t("Waiting"), t("Unreachable"),
               t("Comments"),
               *(textwrap.shorten(option.label, OPTION_HEADER, placeholder="…")
                 for option in results.options),
               t("Took part")]

    def row(code: str, name: str, figures: Figures) -> list[str]:
        return [code, name, *(t.number(value) for value in (
            figures.reached, figures.held, figures.unreachable, figures.comments,
            *figures.votes)), participation(figures, t)]

    rows = [row(commune_code_text(entry.code) if entry.code is not None else "",
                commune_name(entry.code, t), entry.figures) for entry in shown]
    rows.append(row("", t("Total"), results.total))
    widths = [max(len(cells[column]) for cells in [headers, *rows])
              for column in range(len(headers))]

    def line(cells: list[str]) -> str:
        # the code and the name to the left, the figures to the right
        return "  ".join(cell.ljust(width) if column < 2 else cell.rjust(width)
                         for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
                         ).rstrip()

    return [line(headers), *(line(cells) for cells in rows)]
