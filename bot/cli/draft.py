"""`ykien draft …`: create, list, broadcast, follow and steer a draft's broadcast.

Exit codes: 0 done (or nothing to do), 1 cannot be done (no such draft, draft closed),
2 bad input (argparse, a draft file with problems).

A cancelled message stays cancelled when the draft is broadcast again (a re-broadcast that
adds new subscribers must not undo an official's cancel); `broadcast N --resend-cancelled`
queues the cancelled ones again on purpose.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import Translator

if TYPE_CHECKING:  # the database is imported by the commands that use it, for a fast start
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.config import Settings
    from storage import outbox
    from storage.audit import AuditAction
    from storage.models import Draft
    from storage.outbox import QueueState

# Created drafts list their communes when there are this few; more are summed up by count.
COMMUNES_LISTED = 10
# `broadcast` follows the queue this often, and gives up on a worker after this much silence
# (no row of the draft moved, and no row anywhere is leased).
POLL_SECONDS = 0.5
QUIET_SECONDS = 3.0
# A progress line is printed at most this often when the output is not a terminal.
LOG_LINE_SECONDS = 2.0
# `cancel` waits at most this long for the workers sending the draft to let go of its
# messages (they check every second or so), to say which went and which did not.
SETTLE_SECONDS = 10.0

def add_draft_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    """Register `ykien draft …` under the top-level subcommands."""
    draft = commands.add_parser(
        "draft", help=t("create, list, broadcast, follow and steer drafts"))
    drafts = draft.add_subparsers(dest="draft_command", required=True, metavar="COMMAND")
    create = add("create", t("create a draft from a TOML file (see examples/draft.toml)"),
                 cmd_draft_create, drafts)
    # The file as typed first, or named as the README and the example file write it.
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar=t("FILE"), help=t("the draft file"))
    source.add_argument("--file", dest="named_file", metavar=t("FILE"),
                        help=t("the draft file (another way to write {file})", file=t("FILE")))
    add("list", t("list drafts with their progress"), cmd_draft_list, drafts)
    send = add("broadcast", t("queue a draft for every subscribed resident of its communes, "
                              "then show the progress while a bot sends it"),
               cmd_draft_broadcast, drafts)
    send.add_argument("id", type=int, help=t("draft number"))
    send.add_argument("--no-wait", action="store_true",
                      help=t("return once queued, without following the progress"))
    send.add_argument("--resend-cancelled", action="store_true",
                      help=t("queue the cancelled messages of this draft again"))
    for name, help_text, handler in (
        ("status", t("how far a draft's broadcast is, and the time left"), cmd_draft_status),
        ("pause", t("stop sending a draft's messages until it is resumed"), cmd_draft_pause),
        ("resume", t("send a paused draft's messages again"), cmd_draft_resume),
        ("cancel", t("never send a draft's messages that are not sent yet"), cmd_draft_cancel),
        ("retry", t("queue a draft's failed messages again"), cmd_draft_retry),
        ("close", t("close a draft before its deadline"), cmd_draft_close),
    ):
        add(name, help_text, handler, drafts).add_argument(
            "id", type=int, help=t("draft number"))


async def cmd_draft_create(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.draftfile import DraftFileError, load_draft_file
    from storage import communes
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.drafts import commune_code_text, create_draft

    path = args.file or args.named_file
    try:
        spec = load_draft_file(Path(path), t)
    except DraftFileError as error:
        print(t.plural(
            "Draft not created; {count} problem in {path}:",
            "Draft not created; {count} problems in {path}:",
            len(error.problems), path=path,
        ), file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await create_draft(session, spec)
        await _audit(session, AuditAction.DRAFT_CREATED, draft.id)
        await session.commit()
    codes = sorted(set(spec.commune_codes))
    print(t.plural(
        "Created draft no. {id}: “{title}” for {count} commune. "
        "Send it with: ykien draft broadcast {id}",
        "Created draft no. {id}: “{title}” for {count} communes. "
        "Send it with: ykien draft broadcast {id}",
        len(codes), id=draft.id, title=draft.title,
    ))
    if len(codes) <= COMMUNES_LISTED:  # so the official sees which communes a name chose
        for code in codes:
            commune = communes.get_commune(code)
            print(f"  {commune_code_text(code)}  {commune.label if commune else ''}")
    if not spec.issuer_level:  # the annual report counts drafts by it
        print(t("The level of the issuing body is not stated: add issuer_level = "
                "\"national\", \"provincial\" or \"commune\" to the file to count the draft "
                "by level in the annual report (ykien report)."))
    return 0


async def cmd_draft_list(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.db import open_database
    from storage.drafts import STATE_WORDS, list_drafts
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        rows = await list_drafts(session, utcnow())
    if not rows:
        print(t("No drafts yet. Create one with: ykien draft create --file draft.toml"))
    for row in rows:
        status = t(STATE_WORDS[row.state])
        if row.draft.paused:
            status += ", " + t("paused")
        print(t(
            "no. {id} [{status}] {title} — deadline {deadline}; {communes}, {reached} "
            "(broadcast: {sent}/{queued} sent), {comments}, {votes}",
            id=row.draft.id, title=row.draft.title, status=status,
            deadline=t.datetime(row.draft.deadline),
            communes=t.plural("{count} commune", "{count} communes", row.communes),
            reached=t.plural("reached {count} resident", "reached {count} residents",
                             row.reached),
            sent=t.number(row.sent), queued=t.number(row.queued),
            comments=t.plural("{count} comment", "{count} comments", row.comments),
            votes=t.plural("{count} vote", "{count} votes", row.votes),
        ))
    return 0


async def draft_or_say(session: AsyncSession, draft_id: int, t: Translator) -> Draft | None:
    """The draft with this number, or None after telling the person there is none."""
    from storage.queries import get_draft

    draft = await get_draft(session, draft_id)
    if draft is None:
        print(t("There is no draft no. {id}.", id=draft_id), file=sys.stderr)
    return draft


async def _audit(
    session: AsyncSession, action: AuditAction, draft_id: int, detail: str = ""
) -> None:
    """One audit row for what the operator did to the draft, in the command's transaction."""
    from bot.cli.audit import operator
    from storage import audit
    from storage.models import utcnow

    await audit.record(session, operator(), action, utcnow(), draft_id=draft_id, detail=detail)


def _closed(draft: Draft, t: Translator) -> bool:
    """True, after saying so, when the draft is closed and nothing of it is sent any more."""
    from storage.drafts import DraftState, draft_state
    from storage.models import utcnow

    if draft_state(draft, utcnow()) != DraftState.CLOSED:
        return False
    print(t("Draft no. {id} is closed: none of its messages are sent any more.", id=draft.id),
          file=sys.stderr)
    return True


async def cmd_draft_broadcast(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import outbox
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.drafts import DraftState, broadcast, draft_state
    from storage.models import DeliveryStatus, utcnow

    async with open_database(settings.database_url) as sessionmaker:
        async with sessionmaker() as session:
            draft = await draft_or_say(session, args.id, t)
            if draft is None:
                return 1
            now = utcnow()
            if draft_state(draft, now) == DraftState.CLOSED:
                print(t("Draft no. {id} is closed; it cannot be broadcast.", id=draft.id),
                      file=sys.stderr)
                return 1
            added = await broadcast(session, draft, now)
            resent = 0
            if args.resend_cancelled:
                resent = await outbox.requeue_cancelled(session, draft.id, now)
            await _audit(session, AuditAction.BROADCAST, draft.id, str(added + resent))
            await session.commit()
            state = await outbox.draft_queue(session, draft.id, now)
        print(t.plural("Draft no. {id}: {count} new message queued.",
                       "Draft no. {id}: {count} new messages queued.", added, id=draft.id))
        if args.resend_cancelled:
            print(t.plural("{count} cancelled message queued again.",
                           "{count} cancelled messages queued again.", resent))
        elif state[DeliveryStatus.CANCELLED]:
            print(t.plural(
                "{count} cancelled message stays cancelled; to send it after all: "
                "ykien draft broadcast {id} --resend-cancelled",
                "{count} cancelled messages stay cancelled; to send them after all: "
                "ykien draft broadcast {id} --resend-cancelled",
                state[DeliveryStatus.CANCELLED], id=draft.id,
            ))
        if draft.paused:
            print(t("Draft no. {id} is paused: its messages wait until: ykien draft resume {id}",
                    id=draft.id))
            return 0
        if args.no_wait:
            print(t("The running bot (ykien run or ykien serve) sends them; follow with: "
                    "ykien draft status {id}", id=draft.id))
            return 0
        return await follow(sessionmaker, draft.id, t)


async def follow(
    sessionmaker: async_sessionmaker[AsyncSession], draft_id: int, t: Translator,
    out: TextIO | None = None,
) -> int:
    """Show a draft's progress until its queue is empty, or until nobody is sending it."""
    import asyncio  # here, not at the top: every command's parser imports this module

    from storage import outbox
    from storage.models import Draft, utcnow

    out = out or sys.stdout
    live = out.isatty()
    shown = ""
    shown_at = 0.0
    last_move = time.monotonic()
    last_counts: dict[str, int] | None = None
    while True:
        now = utcnow()
        async with sessionmaker() as session:
            state = await outbox.draft_queue(session, draft_id, now)
            working = state.leased > 0 or await outbox.any_leased(session, now)
            draft = await session.get(Draft, draft_id, populate_existing=True)
            assert draft is not None
            holds = await outbox.channel_holds(session, list(state.remaining_by_channel), now)
        line = progress_line(state, draft_id, t)
        if state.counts != last_counts:
            last_counts = dict(state.counts)
            last_move = time.monotonic()
        if working:
            last_move = time.monotonic()
        finished = None
        if not state.remaining:
            finished = t("Nothing left to send.")
        elif waiting := why_waiting(draft, state, holds, now, t):
            finished = waiting
        elif not state.due and not state.leased and state.next_due is not None:
            finished = t(
                "The remaining messages are due from {time}; the running bot (ykien run or "
                "ykien serve) sends them then.", time=t.datetime(state.next_due))
        elif time.monotonic() - last_move >= QUIET_SECONDS:
            finished = t(
                "No bot is sending right now: the messages wait in the queue until ykien run, "
                "ykien serve or ykien worker starts; trying it in a terminal, ykien console "
                "delivers each console resident's own.")
        if live:
            out.write("\r" + line.ljust(len(shown)) + ("\n" if finished else ""))
            shown = line
        elif line != shown and (finished or time.monotonic() - shown_at >= LOG_LINE_SECONDS):
            out.write(line + "\n")
            shown, shown_at = line, time.monotonic()
        if finished:
            out.write(finished + "\n")
            out.flush()
            return 0
        out.flush()
        await asyncio.sleep(POLL_SECONDS)


def progress_line(state: QueueState, draft_id: int, t: Translator) -> str:
    from storage.models import DeliveryStatus

    return t(
        "Draft no. {id}: {sent} sent, {failed} failed, {unreachable} unreachable, "
        "{skipped} skipped, {expired} expired, {cancelled} cancelled, {remaining} remaining",
        id=draft_id,
        sent=t.number(state[DeliveryStatus.SENT]),
        failed=t.number(state[DeliveryStatus.FAILED]),
        unreachable=t.number(state[DeliveryStatus.UNREACHABLE]),
        skipped=t.number(state[DeliveryStatus.SKIPPED]),
        expired=t.number(state[DeliveryStatus.EXPIRED]),
        cancelled=t.number(state[DeliveryStatus.CANCELLED]),
        remaining=t.number(state.remaining),
    )


def why_waiting(
    draft: Draft, state: QueueState, holds: dict[str, outbox.ChannelHold], now: datetime,
    t: Translator,
) -> str | None:
    """What will become of the draft's messages not sent yet when they are not simply being
    sent (closed, paused, due after the deadline, a channel on hold); None when they are."""
    from storage import outbox
    from storage.drafts import DraftState, draft_state
    from storage.models import DeliveryStatus, DraftStatus

    left = state.remaining + state[DeliveryStatus.HELD]
    if draft_state(draft, now) == DraftState.CLOSED:
        return t.plural(
            "{count} message not sent will not be sent: {why}.",
            "{count} messages not sent will not be sent: {why}.", left,
            why=t("the draft is closed") if draft.status == DraftStatus.CLOSED
            else t("the deadline has passed"))
    if draft.paused:
        return t("Paused: its messages wait until: ykien draft resume {id}", id=draft.id)
    if not state.due and not state.leased and state.next_due is not None \
            and state.next_due >= draft.deadline:
        return t.plural(
            "{count} message not sent will not be sent: it is due only from {time}, after "
            "the deadline.",
            "{count} messages not sent will not be sent: they are due only from {time}, "
            "after the deadline.", state.remaining, time=t.datetime(state.next_due))
    lines = []
    for channel, hold in sorted(holds.items()):
        values = {"channel": channel, "time": t.datetime(hold.until), "detail": hold.detail}
        if hold.reason == outbox.HoldReason.THROTTLED:
            lines.append(t("{channel} asked the bot to wait: sending goes on at {time}.",
                           **values))
        elif hold.reason == outbox.HoldReason.DISABLED:
            lines.append(t("{channel} cannot send ({detail}): its messages wait, and the bot "
                           "tries again at {time}.", **values))
        else:
            lines.append(t("{channel} is not answering ({detail}): sending is paused, and the "
                           "bot tries again at {time}. How long the rest takes depends on "
                           "when it answers.", **values))
    return "\n".join(lines) or None


def channel_rates(settings: Settings) -> dict[str, float]:
    """Each channel's configured pace in messages/s (0: no limit)."""
    return {"telegram": settings.telegram_messages_per_second}


def seconds_left(state: QueueState, rates: dict[str, float]) -> float | None:
    """Time to send what remains, channels in parallel: each at its configured pace, or at the
    pace seen in the last minute where it has none; None when a channel has neither."""
    longest = 0.0
    for channel, remaining in state.remaining_by_channel.items():
        rate = rates.get(channel) or state.sent_last_minute.get(channel, 0) / 60
        if not rate:
            return None
        longest = max(longest, remaining / rate)
    return longest


def duration(seconds: float, t: Translator) -> str:
    if seconds < 60:
        return t.plural("{count} second", "{count} seconds", max(1, math.ceil(seconds)))
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return t.plural("{count} minute", "{count} minutes", minutes)
    return t("{hours} h {minutes} min", hours=t.number(minutes // 60),
             minutes=t.number(minutes % 60))


async def cmd_draft_status(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import outbox
    from storage.db import open_database
    from storage.drafts import STATE_WORDS, DraftState, draft_state
    from storage.models import DeliveryStatus, utcnow
    from storage.results import draft_results

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None:
            return 1
        now = utcnow()
        state = await outbox.draft_queue(session, draft.id, now)
        holds = await outbox.channel_holds(session, list(state.remaining_by_channel), now)
        results = await draft_results(session, draft.id, now=now)
        assert results is not None  # the draft was read just above
        figures = results.total
    status = t(STATE_WORDS[draft_state(draft, now)])
    if draft.paused:
        status += ", " + t("paused")
    print(t("Draft no. {id} [{status}] {title}", id=draft.id, status=status, title=draft.title))
    print(t("Deadline: {deadline}. Reached {reached}; {comments}, {votes}.",
            deadline=t.datetime(draft.deadline), reached=t.number(figures.reached),
            comments=t.plural("{count} comment", "{count} comments", figures.comments),
            votes=t.plural("{count} vote", "{count} votes", sum(figures.votes))))
    print(progress_line(state, draft.id, t))
    closed = draft_state(draft, now) == DraftState.CLOSED
    if state[DeliveryStatus.HELD] and not closed:
        print(t.plural(
            "{count} resident has not written for 7 days (Zalo's window): their message "
            "goes when they next write.",
            "{count} residents have not written for 7 days (Zalo's window): their messages "
            "go when they next write.",
            state[DeliveryStatus.HELD],
        ))
    if not state.remaining and not (closed and state[DeliveryStatus.HELD]):
        return 0
    if waiting := why_waiting(draft, state, holds, now, t):
        print(waiting)
    elif not state.due and not state.leased and state.next_due is not None:
        print(t("The remaining messages are due from {time}.", time=t.datetime(state.next_due)))
    else:
        left = seconds_left(state, channel_rates(settings))
        if left is None:
            print(t("Time left: unknown (no pace is configured for the channel, and nothing "
                    "was sent in the last minute)."))
        elif now + timedelta(seconds=left) > draft.deadline:
            print(t("Time left: about {duration} at the channel's pace, but the deadline comes "
                    "first ({deadline}): messages not sent by then will not be sent.",
                    duration=duration(left, t), deadline=t.datetime(draft.deadline)))
        else:
            print(t("Time left: about {duration} at the channel's pace.",
                    duration=duration(left, t)))
    return 0


async def cmd_draft_pause(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    return await _set_paused(args.id, settings, t, paused=True)


async def cmd_draft_resume(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    return await _set_paused(args.id, settings, t, paused=False)


async def _set_paused(draft_id: int, settings: Settings, t: Translator, paused: bool) -> int:
    from storage import outbox
    from storage.audit import AuditAction
    from storage.db import open_database

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, draft_id, t)
        if draft is None:
            return 1
        if paused and _closed(draft, t):
            return 1
        changed = await outbox.set_paused(session, draft, paused)
        if changed:
            await _audit(session, AuditAction.PAUSED if paused else AuditAction.RESUMED, draft.id)
        await session.commit()
    if not changed:
        print(t("Draft no. {id} is already paused.", id=draft_id) if paused
              else t("Draft no. {id} is not paused.", id=draft_id))
    elif paused:
        print(t("Paused draft no. {id}: its messages wait in the queue until: "
                "ykien draft resume {id}", id=draft_id))
    else:
        print(t("Resumed draft no. {id}: the running bot sends its queued messages again.",
                id=draft_id))
    return 0


async def cmd_draft_cancel(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import outbox
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker:
        async with sessionmaker() as session:
            draft = await draft_or_say(session, args.id, t)
            if draft is None:
                return 1
            cancellation = await outbox.cancel(session, draft.id, utcnow())
            await _audit(session, AuditAction.CANCELLED, draft.id,
                         str(cancellation.waiting + len(cancellation.in_flight)))
            await session.commit()
        settled = await _settled(sessionmaker, cancellation.in_flight)
    cancelled = cancellation.waiting + len(cancellation.in_flight) - settled.went
    if not cancelled:
        print(t("Draft no. {id}: no message was waiting, so nothing was cancelled.",
                id=args.id))
    else:
        print(t.plural(
            "Cancelled draft no. {id}: {count} message not sent yet will not be sent. "
            "Broadcasting again leaves it cancelled; to send it after all: "
            "ykien draft broadcast {id} --resend-cancelled",
            "Cancelled draft no. {id}: {count} messages not sent yet will not be sent. "
            "Broadcasting again leaves them cancelled; to send them after all: "
            "ykien draft broadcast {id} --resend-cancelled",
            cancelled, id=args.id,
        ))
    if settled.went:
        print(t.plural("{count} message was already being sent by a running bot, and went.",
                       "{count} messages were already being sent by a running bot, and went.",
                       settled.went))
    if settled.unsettled:
        print(t.plural(
            "{count} of them was being sent by a bot that has not finished with it: it may "
            "still go (ykien draft status {id} then counts it as sent).",
            "{count} of them were being sent by a bot that has not finished with them: they "
            "may still go (ykien draft status {id} then counts them as sent).",
            settled.unsettled, id=args.id,
        ))
    return 0


async def _settled(
    sessionmaker: async_sessionmaker[AsyncSession], in_flight: list[int]
) -> outbox.Settling:
    """Where the messages that were being sent stand once their workers let go of them (a
    second or two), or after SETTLE_SECONDS when one does not answer."""
    import asyncio

    from storage import outbox
    from storage.models import utcnow

    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        async with sessionmaker() as session:
            settled = await outbox.settling(session, in_flight, utcnow())
        if not settled.unsettled or time.monotonic() >= deadline:
            return settled
        await asyncio.sleep(POLL_SECONDS)


async def cmd_draft_retry(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import outbox
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None or _closed(draft, t):
            return 1
        count = await outbox.retry_failed(session, draft.id, utcnow())
        await _audit(session, AuditAction.RETRIED, draft.id, str(count))
        await session.commit()
    print(t.plural(
        "Draft no. {id}: {count} failed message queued again.",
        "Draft no. {id}: {count} failed messages queued again.",
        count, id=args.id,
    ))
    return 0


async def cmd_draft_close(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.audit import AuditAction
    from storage.db import open_database
    from storage.drafts import close_draft
    from storage.models import utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None:
            return 1
        if not await close_draft(session, draft, utcnow()):
            print(t("Draft no. {id} was already closed.", id=draft.id))
            return 0
        await _audit(session, AuditAction.CLOSED, draft.id)
        await session.commit()
    print(t(
        "Closed draft no. {id}: comments and votes are no longer accepted, and messages not "
        "sent yet will not be sent.", id=draft.id,
    ))
    return 0
