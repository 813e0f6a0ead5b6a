"""`ykien synthesis …`: answering every comment ("tiếp thu, giải trình") from a spreadsheet,
the synthesis table, and publishing the response to the participants.

Exit codes: 0 done (or nothing to change), 1 cannot be done (no such draft, a file with
problems, comments still unanswered), 2 bad input (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.draft import draft_or_say
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from handlers.publication import PublishRefused
    from storage.synthesis_xlsx import ImportIssue

IMPORT_WORDS = {
    "unreadable": N_("the file is not an XLSX workbook ({value})"),
    "layout": N_("the first sheet does not have the columns of `ykien synthesis export` "
                 "(found: {value})"),
    "receipt": N_("there is no comment with the receipt number “{value}”"),
    "duplicate": N_("comment {value} is on another row too"),
    "handling": N_("“{value}” is not a handling: choose one of the list"),
    "edited": N_("the words of comment {value} were changed: a comment is answered as the "
                 "resident wrote it"),
    "no_handling": N_("comment {value} has an explanation but no handling"),
    "no_explanation": N_("comment {value} is not (or partly) accepted: say why in the "
                         "explanation"),
    "too_long": N_("the explanation of comment {value} is too long"),
}
PUBLISH_WORDS = {
    "not_closed": N_("Draft no. {id} is still open for comments: publish its response once "
                     "it is closed (ykien draft close {id})."),
    "unanswered": N_("Draft no. {id} still has {count} comments without an answer: answer "
                     "every comment before publishing (ykien synthesis export)."),
    "no_summary": N_("Write the overall response with --summary."),
    "too_long": N_("The overall response or its link is too long."),
    "bad_link": N_("The link must be an address starting with https:// or http://."),
}


def add_synthesis_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    synthesis = commands.add_parser(
        "synthesis", help=t("answer every comment, the synthesis table, publish the response"))
    group = synthesis.add_subparsers(dest="synthesis_command", required=True,
                                     metavar="COMMAND")
    export = add("export", t("write a draft's comments to an XLSX file, to fill in each "
                             "one's handling and explanation"), cmd_export, group)
    table = add("table", t("write a draft's synthesis table (comments, handling, "
                           "explanation) to an XLSX file"), cmd_table, group)
    for sub in (export, table):
        sub.add_argument("--draft", type=int, required=True, help=t("draft number"))
        sub.add_argument("--out", required=True, help=t("the .xlsx file to write"))
        sub.add_argument("--force", action="store_true",
                         help=t("replace the file if it already exists"))
    read = add("import", t("store the answers of a file written by `ykien synthesis export`"),
               cmd_import, group)
    read.add_argument("file", help=t("the .xlsx file"))
    publish = add("publish", t("send each participant the response, with the answers to "
                               "their own comments"), cmd_publish, group)
    publish.add_argument("id", type=int, help=t("draft number"))
    publish.add_argument("--summary", default="",
                         help=t("the overall response, a short text (not needed to resume)"))
    publish.add_argument("--link", default="",
                         help=t("the address of the full response document"))
    status = add("status", t("how many comments are answered, and how far the response is "
                             "sent"), cmd_status, group)
    status.add_argument("id", type=int, help=t("draft number"))


def _xlsx_refusal(target: Path, force: bool, settings: Settings, t: Translator) -> str | None:
    from bot.cli.outfile import export_refusal

    if target.suffix.lower() != ".xlsx":
        return t("{path} does not end in .{extension}, but the export is {format}: name the "
                 "file .{extension}, or choose the format that matches its name.",
                 path=str(target), extension="xlsx", format="XLSX")
    return export_refusal(target, force, settings.database_url, t)


async def _write(args: argparse.Namespace, settings: Settings, t: Translator,
                 table: bool) -> int:
    from bot.cli.outfile import Refused, bytes_replaced_on_success
    from storage.answers import answered_comments, synthesis_rows
    from storage.db import open_database
    from storage.groups import group_of_comments
    from storage.synthesis_xlsx import write_answer_sheet, write_synthesis_table

    target = Path(args.out)

    def refusal() -> str | None:
        return _xlsx_refusal(target, args.force, settings, t)

    if reason := refusal():
        print(reason, file=sys.stderr)
        return 1
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.draft, t)
        if draft is None:
            return 1
        comments, _ = await answered_comments(session, draft.id)
        groups = await group_of_comments(session, draft.id)
    try:
        with bytes_replaced_on_success(target, refusal) as out:
            if table:
                write_synthesis_table(out, draft.title, synthesis_rows(comments, groups), t)
            else:
                write_answer_sheet(out, comments, t, groups)
    except Refused as refused:
        print(refused, file=sys.stderr)
        return 1
    print(t.plural("Wrote {count} comment to {path}.", "Wrote {count} comments to {path}.",
                   len(comments), path=str(target)))
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    return await _write(args, settings, t, table=False)


async def cmd_table(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    return await _write(args, settings, t, table=True)


def import_issue_words(issue: ImportIssue, t: Translator) -> str:
    words = t(IMPORT_WORDS[issue.problem.value], value=issue.value)
    return t("row {row}: {problem}", row=issue.row, problem=words) if issue.row else words


async def cmd_import(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.i18n import LANGUAGES, translator
    from storage import audit
    from storage.db import open_database
    from storage.models import utcnow
    from storage.synthesis_xlsx import ImportRefused, import_answers, read_answer_sheet

    path = Path(args.file)
    languages = [translator(language) for language in LANGUAGES]
    try:
        rows = read_answer_sheet(str(path), languages)
        async with open_database(settings.database_url) as sessionmaker, \
                sessionmaker() as session:
            now = utcnow()
            done = await import_answers(session, rows, now, languages)
            if done.changed:
                for draft_id in done.drafts:
                    await audit.record(session, operator(), audit.AuditAction.ANSWERS_IMPORTED,
                                       now, draft_id=draft_id, detail=f"changed={done.changed}")
            await session.commit()
    except ImportRefused as refused:
        print(t.plural("Nothing was imported; {count} problem in {path}:",
                       "Nothing was imported; {count} problems in {path}:",
                       len(refused.issues), path=str(path)), file=sys.stderr)
        for issue in refused.issues:
            print("  - " + import_issue_words(issue, t), file=sys.stderr)
        return 1
    print(t("{answered} answers read, {changed} stored or changed (the others were already "
            "so).", answered=t.number(done.answered), changed=t.number(done.changed)))
    return 0


def publish_refusal_words(refused: PublishRefused, draft_id: int, t: Translator) -> str:
    return t(PUBLISH_WORDS[refused.refusal.value], id=draft_id, count=t.number(refused.count))


async def cmd_publish(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.publication import PublishRefused, publish
    from storage import audit
    from storage.db import open_database
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None:
            return 1
        now = utcnow()
        try:
            done = await publish(session, draft, args.summary, args.link, now)
        except PublishRefused as refused:
            print(publish_refusal_words(refused, draft.id, t), file=sys.stderr)
            return 1
        await audit.record(session, operator(), audit.AuditAction.PUBLISHED, now,
                           draft_id=draft.id, detail=f"queued={done.queued}")
        await session.commit()
    if not done.first:
        print(t("The response of draft no. {id} was published on {at}; its text stays as "
                "it was.", id=draft.id, at=t.datetime(done.publication.published_at)))
    print(t("{queued} messages queued for {recipients} participants (the others were "
            "queued before). A running bot (ykien run, serve or worker) sends them; see "
            "ykien synthesis status {id}.", queued=t.number(done.queued),
            recipients=t.number(done.recipients), id=draft.id))
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from handlers.publication import response_progress
    from storage.answers import answer_counts, publication_of
    from storage.db import open_database
    from storage.models import DeliveryStatus

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None:
            return 1
        counts = await answer_counts(session, draft.id)
        publication = await publication_of(session, draft.id)
        progress = await response_progress(session, draft.id)
    print(t("Draft no. {id}: {answered} of {comments} comments answered.", id=draft.id,
            answered=t.number(counts.answered), comments=t.number(counts.comments)))
    if publication is None:
        print(t("The response is not published yet."))
        return 0
    print(t("Response published on {at}: {sent} sent, {waiting} waiting, {held} waiting for "
            "Zalo's window, {other} not sent (stopped, blocked, failed or expired).",
            at=t.datetime(publication.published_at),
            sent=t.number(progress.get(DeliveryStatus.SENT, 0)),
            waiting=t.number(sum(progress.get(status, 0) for status in
                                 (DeliveryStatus.PENDING, DeliveryStatus.SENDING))),
            held=t.number(progress.get(DeliveryStatus.HELD, 0)),
            other=t.number(sum(count for status, count in progress.items() if status not in (
                DeliveryStatus.SENT, DeliveryStatus.PENDING, DeliveryStatus.SENDING,
                DeliveryStatus.HELD)))))
    return 0
