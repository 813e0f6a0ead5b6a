"""`ykien communes search`: the commune list, searched as residents type names."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, LanguageOnly, Subcommands
from bot.cli.parser import whole_number
from handlers.i18n import Translator

if TYPE_CHECKING:  # loaded by the search itself, not by every command's parser
    from storage import communes

SHOWN_AT_MOST = 5000  # more than any name shares (the most common, "phuong 1", has 89)


def add_communes_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    communes_parser = commands.add_parser("communes", help=t("the list of communes"))
    communes_commands = communes_parser.add_subparsers(
        dest="communes_command", required=True, metavar="COMMAND")
    search = add("search", t("find communes by name, old names included"),
                 LanguageOnly(cmd_communes_search), communes_commands)
    search.add_argument("query", nargs="+", help=t("a commune name, with or without accents"))
    # Several words, so that `--province ho chi minh` needs no quotes.
    search.add_argument("--province", nargs="+", metavar="PROVINCE",
                        help=t("only in this province (a name or a code)"))
    search.add_argument("--limit", type=whole_number(t, 1, SHOWN_AT_MOST), default=10,
                        help=t("how many to show (default 10)"))


def cmd_communes_search(args: argparse.Namespace, t: Translator) -> int:
    from storage import communes

    province = " ".join(args.province) if args.province else None
    if province is not None and _province(province) is None:
        print(t("No province or city is called “{name}”. Write its name (with or without "
                "accents, e.g. thanh hoa, ho chi minh) or its code.", name=province),
              file=sys.stderr)
        return 1
    matches = communes.search(" ".join(args.query), province=province, limit=SHOWN_AT_MOST)
    if not matches:
        print(t("No commune found."))
        return 1
    for match in matches[: args.limit]:
        line = f"{communes.commune_code_text(match.commune.code)}  {match.commune.label}"
        if match.former is not None:
            line += "  " + t("(includes former {former})", former=match.former.name)
        print(line)
    if len(matches) > args.limit:
        print(t("Shown: {shown} of {count}. To see them all: --limit {count}; to narrow the "
                "search: --province NAME.", shown=t.number(args.limit),
                count=t.number(len(matches))), file=sys.stderr)  # the list stays clean to pipe
    return 0


def _province(name: str) -> communes.Province | None:
    from storage import communes

    if name.strip().isdigit():
        return communes.get_province(int(name))
    return communes.find_province(name)
