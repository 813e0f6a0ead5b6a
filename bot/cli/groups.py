"""`ykien groups …`: group a draft's comments (`compute`, with progress), list and show the
groups, and correct them by hand (`merge`, `split`, `move`, `rename`), each correction
written to the audit log as the operator's.

Comments are named by their number in the draft ("17", or the receipt "3-17").
Exit codes: 0 done, 1 cannot be done (no such draft, group or comment), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.parser import whole_number
from bot.cli.role import scope_argument
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import Settings
    from storage.audit import AuditAction
    from storage.groups import GroupError

LARGEST_ID = 2**31 - 1
LISTED = 50  # groups `list` shows unless told
PROGRESS_SECONDS = 1.0  # a progress line at most this often
STAGE_WORDS = {
    "reading": N_("read {done} new comments"),
    "fingerprints": N_("fingerprints: {done} of {total}"),
    "candidates": N_("pairs of comments to compare: {done}"),
    "verified": N_("compared: {done} of {total} pairs"),
    "writing": N_("saved: {done} of {total} comments"),
    "suggestions": N_("suggestions of similar points: {done}"),
}
EXTRA_MISSING = N_("Suggestions of similar points need the optional extra: pip install "
                   "'ykien[grouping]' (missing: {module}). The near-duplicate groups above "
                   "do not need it.")


def add_groups_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    group = commands.add_parser(
        "groups", help=t("group a draft's comments so that each point is answered once"))
    sub = group.add_subparsers(dest="groups_command", metavar="COMMAND")
    number = whole_number(t, 1, LARGEST_ID)

    def with_draft(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        parser = add(name, help_text, handler, sub)
        parser.add_argument("--draft", required=True, type=number,
                            help=t("draft number"))
        return parser

    compute = with_draft("compute", t("group the comments not grouped yet, showing progress"),
                         cmd_compute)
    compute.add_argument("--rebuild", action="store_true", help=t(
        "group every comment again, except those an official placed by hand"))
    listing = with_draft("list", t("the groups, the largest first"), cmd_list)
    listing.add_argument("--limit", type=whole_number(t, 1, 1_000_000), default=LISTED,
                         help=t("how many groups to show"))
    listing.add_argument("--scope", type=scope_argument(t),
                         help=t("only the comments from this scope"))
    show = with_draft("show", t("one group's comments"), cmd_show)
    show.add_argument("group", type=number, help=t("group number"))
    show.add_argument("--scope", type=scope_argument(t),
                      help=t("only the comments from this scope"))
    merge = with_draft("merge", t("move every comment of the other groups into the first"),
                       cmd_merge)
    merge.add_argument("group", type=number, help=t("group number"))
    merge.add_argument("others", type=number, nargs="+", help=t("group number"))
    split = with_draft("split", t("take these comments out of the group into a new one"),
                       cmd_split)
    split.add_argument("group", type=number, help=t("group number"))
    split.add_argument("comments", nargs="+", help=t("comment number"))
    move = with_draft("move", t("move one comment into another group"), cmd_move)
    move.add_argument("comment", help=t("comment number"))
    move.add_argument("--to", required=True, type=number, help=t("group number"))
    rename = with_draft("rename", t("give a group a name"), cmd_rename)
    rename.add_argument("group", type=number, help=t("group number"))
    rename.add_argument("name", help=t("the group's name"))


def _progress(t: Translator) -> Callable[[str, int, int], None]:
    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_SECONDS and done < total:
            return
        last[0] = now
        print(t(STAGE_WORDS[stage], done=t.number(done), total=t.number(total)), flush=True)

    return show


async def _draft_exists(session: AsyncSession, draft_id: int, t: Translator) -> bool:
    from storage.models import Draft

    if await session.get(Draft, draft_id) is None:
        print(t("There is no draft no. {id}.", id=draft_id), file=sys.stderr)
        return False
    return True


def _refused(error: GroupError, t: Translator) -> int:
    from storage.groups import PROBLEM_WORDS

    print(t(PROBLEM_WORDS[error.problem], detail=error.detail), file=sys.stderr)
    return 1


async def _audit(session: AsyncSession, action: AuditAction, draft_id: int, detail: str
                 ) -> None:
    from bot.cli.audit import operator
    from storage import audit
    from storage.models import utcnow

    await audit.record(session, operator(), action, utcnow(), draft_id=draft_id, detail=detail)


async def cmd_compute(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.grouping.job import group_draft

    async with open_database(settings.database_url) as sessionmaker:
        async with sessionmaker() as session:
            if not await _draft_exists(session, args.draft, t):
                return 1
        done = await group_draft(sessionmaker, args.draft, rebuild=args.rebuild,
                                 progress=_progress(t))
        async with sessionmaker() as session, session.begin():
            await _audit(session, AuditAction.GROUPS_COMPUTED, args.draft,
                         f"comments: {done.grouped}; new groups: {done.new_groups}"
                         + ("; rebuilt" if args.rebuild else ""))
    print(t("Draft no. {id}: {grouped} comments grouped ({joined} joined existing groups, "
            "{new} new groups); {groups} groups in all.", id=args.draft,
            grouped=t.number(done.grouped), joined=t.number(done.joined),
            new=t.number(done.new_groups), groups=t.number(done.groups)))
    if done.suggestions is None:
        print(t(EXTRA_MISSING, module=done.missing_module))
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.db import open_database

    scope = args.scope.communes() if args.scope else None
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        if not await _draft_exists(session, args.draft, t):
            return 1
        listed = await groups.groups_of_draft(session, args.draft, scope, limit=args.limit)
        total = await groups.count_groups(session, args.draft, scope)
        loose = await groups.ungrouped_count(session, args.draft, scope)
        suggested = await groups.suggestions_of(session, args.draft)
    for summary in listed:
        # Named before the call: the catalogue's extractor loses a plural that passes `t` on.
        places = groups.places_text(summary.communes, t)
        print(t.plural("Group {group} · {count} comment · {communes}",
                       "Group {group} · {count} comments · {communes}", summary.size,
                       group=summary.id, communes=places))
        print(f"  {summary.label}")
    print(t.plural("{shown} of {total} groups shown; {count} comment not grouped yet.",
                   "{shown} of {total} groups shown; {count} comments not grouped yet.", loose,
                   shown=t.number(len(listed)), total=t.number(total)))
    for suggestion in suggested:
        print(t("Suggestion: groups {groups} may make one point ({terms}): {label}",
                groups=", ".join(str(ref.id) for ref in suggestion.groups),
                terms=suggestion.terms, label=suggestion.label))
    return 0


async def cmd_show(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.charts import commune_name
    from storage.db import open_database
    from storage.export import receipt_number

    scope = args.scope.communes() if args.scope else None
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        if not await _draft_exists(session, args.draft, t):
            return 1
        try:
            group = await groups.find_group(session, args.draft, args.group)
        except groups.GroupError as error:
            return _refused(error, t)
        ref = await groups.group_ref(session, group)
        members = await groups.members_of(session, group.id, scope)
    print(t("Group {group}: {label}", group=ref.id, label=ref.label))
    for member in members:
        print(f"  {receipt_number(args.draft, member.number)} · "
              f"{commune_name(member.commune_code, t)} · {member.text}")
    return 0


def _numbers(texts: list[str], draft_id: int, t: Translator) -> list[int] | None:
    from storage.groups import comment_number

    numbers = []
    for text in texts:
        number = comment_number(text, draft_id)
        if number is None:
            print(t("“{value}” is not a comment number of draft no. {id}: write 17 or "
                    "{id}-17.", value=text, id=draft_id), file=sys.stderr)
            return None
        numbers.append(number)
    return numbers


async def _correct(args: argparse.Namespace, settings: Settings, t: Translator, correction
                   ) -> int:
    """Run a correction (session -> (action, detail, what to print)) in one transaction with
    its audit row; a refusal changes nothing."""
    from storage import groups
    from storage.db import open_database

    async with open_database(settings.database_url) as sessionmaker:
        try:
            async with sessionmaker() as session, session.begin():
                if not await _draft_exists(session, args.draft, t):
                    return 1
                action, detail, said = await correction(session)
                await _audit(session, action, args.draft, detail)
        except groups.GroupError as error:  # rolled back: nothing changed
            return _refused(error, t)
    print(said)
    return 0


async def cmd_merge(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.audit import AuditAction

    async def correction(session: AsyncSession):
        moved = await groups.merge(session, args.draft, args.group, args.others)
        others = " ".join(str(other) for other in args.others)
        return (AuditAction.GROUPS_MERGED, f"groups {others} into {args.group}",
                t.plural("Merged into group {group}: {count} comment moved.",
                         "Merged into group {group}: {count} comments moved.", moved,
                         group=args.group))

    return await _correct(args, settings, t, correction)


async def cmd_split(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.audit import AuditAction

    numbers = _numbers(args.comments, args.draft, t)
    if numbers is None:
        return 2

    async def correction(session: AsyncSession):
        new = await groups.split(session, args.draft, args.group, numbers)
        return (AuditAction.GROUP_SPLIT,
                f"group {args.group}: comments {' '.join(map(str, numbers))} to {new.id}",
                t("Comments taken out of group {group} into the new group {new}.",
                  group=args.group, new=new.id))

    return await _correct(args, settings, t, correction)


async def cmd_move(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.audit import AuditAction

    numbers = _numbers([args.comment], args.draft, t)
    if numbers is None:
        return 2

    async def correction(session: AsyncSession):
        source = await groups.move(session, args.draft, numbers[0], args.to)
        return (AuditAction.COMMENT_MOVED,
                f"comment {numbers[0]}: group {source.id} to {args.to}",
                t("Comment no. {number} moved to group {group}.", number=numbers[0],
                  group=args.to))

    return await _correct(args, settings, t, correction)


async def cmd_rename(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import groups
    from storage.audit import AuditAction

    async def correction(session: AsyncSession):
        group = await groups.rename(session, args.draft, args.group, args.name)
        return (AuditAction.GROUP_RENAMED, f"group {group.id}",
                t("Group {group} is now named “{name}”.", group=group.id, name=group.label))

    return await _correct(args, settings, t, correction)
