"""`ykien comment add`: enter a comment received offline (a village meeting, a phone call, a
letter) so that it counts in the results, the answers and the synthesis like a chat comment,
marked with its source. It gets the draft's next receipt number, printed for the paper trail.

Exit codes: 0 recorded, 1 cannot be done (no such draft, a problem with the comment), 2 bad
input (argparse: an unknown source or category, a badly written date).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.draft import draft_or_say
from bot.cli.parser import whole_number
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from storage.offline import OfflineRefused

LARGEST_CODE = 99999  # commune codes have five digits
# The values of storage.models.OFFLINE_SOURCES and RespondentCategory (a test keeps them
# equal), written out so that building the parser imports no SQLAlchemy (quick start).
SOURCES = ("meeting", "phone", "paper", "other")
CATEGORIES = ("individual", "organisation", "business")
OFFLINE_WORDS = {
    "not_broadcast": N_("Draft no. {id} was never broadcast: comments are taken on a draft "
                        "once it is open."),
    "commune": N_("Commune {commune} is not among the communes of draft no. {id}."),
    "source": N_("The source must be one of: {sources}."),
    "category": N_("The category must be one of: {categories}."),
    "empty": N_("The comment is empty: give its words with --text (or --text - to read them "
                "from standard input)."),
    "too_long": N_("The comment is {length} characters long; a comment may have at most "
                   "{limit}."),
    "before_opening": N_("Draft no. {id} opened on {opens}: a comment received before that "
                         "is not one of its comments."),
    "after_closing": N_("Draft no. {id} took comments until {closes}: give with --received "
                        "the day the comment was received, if it was on time."),
    "future": N_("The day received, {received}, has not come yet."),
}


def received_day(t: Translator) -> Callable[[str], date]:
    """An argparse type: a day written 2026-11-27."""

    def parse(text: str) -> date:
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(t(
                "“{value}” is not a date: write it as 2026-11-27.", value=text)) from None

    return parse


def add_comment_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    comment = commands.add_parser("comment", help=t("comments received offline"))
    group = comment.add_subparsers(dest="comment_command", required=True, metavar="COMMAND")
    adding = add("add", t("enter a comment received at a meeting, by phone or on paper: it "
                          "counts like a chat comment, marked with its source"),
                 cmd_add, group)
    adding.add_argument("--draft", type=int, required=True, help=t("draft number"))
    adding.add_argument("--commune", type=whole_number(t, 1, LARGEST_CODE), required=True,
                        metavar="CODE", help=t("the code of the commune it came from"))
    adding.add_argument("--source", required=True,
                        choices=SOURCES,
                        help=t("how it was received"))
    adding.add_argument("--text", required=True,
                        help=t("the comment's words; - reads them from standard input"))
    adding.add_argument("--category", default="",
                        choices=CATEGORIES,
                        help=t("whom the person answered for, if known"))
    adding.add_argument("--received", type=received_day(t), metavar="YYYY-MM-DD",
                        help=t("the day it was received (Vietnam time; today if not given)"))


def offline_problem_words(refused: OfflineRefused, draft_id: int, commune: int,
                          text_length: int, received: date | None, t: Translator,
                          opens: str, closes: str) -> list[str]:
    from storage.drafts import commune_code_text
    from storage.queries import COMMENT_LIMIT

    return [t(OFFLINE_WORDS[problem.value], id=draft_id, commune=commune_code_text(commune),
              sources=", ".join(SOURCES), categories=", ".join(CATEGORIES),
              length=t.number(text_length), limit=t.number(COMMENT_LIMIT),
              received=received.isoformat() if received else "", opens=opens, closes=closes)
            for problem in refused.problems]


async def cmd_add(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from storage import audit
    from storage.db import open_database
    from storage.models import utcnow
    from storage.offline import (
        OfflineRefused,
        audit_detail,
        check_offline_comment,
        closing_time,
        record_offline_comment,
    )
    from storage.text import clean_text

    text = sys.stdin.read() if args.text == "-" else args.text
    async with open_database(settings.database_url) as sessionmaker, \
            sessionmaker() as session, session.begin():
        draft = await draft_or_say(session, args.draft, t)
        if draft is None:
            return 1
        now = utcnow()
        try:
            comment = await check_offline_comment(
                session, draft, args.commune, args.source, text, args.category,
                args.received, now=now)
        except OfflineRefused as refused:
            for words in offline_problem_words(
                    refused, draft.id, args.commune, len(clean_text(text)), args.received, t,
                    t.datetime(draft.opens_at), t.datetime(closing_time(draft))):
                print(words, file=sys.stderr)
            return 1
        receipt = await record_offline_comment(session, comment)
        await audit.record(session, operator(), audit.AuditAction.COMMENT_ADDED, now,
                           draft_id=draft.id, detail=audit_detail(comment, receipt))
    print(t("Recorded: comment no. {receipt} on “{title}”.", receipt=receipt,
            title=draft.title))
    return 0
