"""`ykien communes search`: the commune list, searched as residents type names."""

from __future__ import annotations

import argparse

from bot.cli.command import AddCommand, Subcommands
from bot.config import Settings
from handlers.i18n import Translator
from storage import communes
from storage.drafts import commune_code_text


def add_communes_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    communes_parser = commands.add_parser("communes", help=t("the list of communes"))
    communes_commands = communes_parser.add_subparsers(
        dest="communes_command", required=True, metavar="COMMAND")
    search = add("search", t("find communes by name, old names included"), cmd_communes_search,
                 communes_commands)
    search.add_argument("query", nargs="+", help=t("a commune name, with or without accents"))
    search.add_argument("--province", help=t("only in this province"))
    search.add_argument("--limit", type=int, default=10, help=t("how many to show"))


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
