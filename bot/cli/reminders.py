"""`ykien reminders on|off|status ID`: a draft's reminders before its deadline (sent
YKIEN_REMINDER_DAYS before it to who has not taken part), turned on or off, and counted.

Exit codes: 0 done, 1 no such draft, 2 bad input (argparse).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.draft import draft_or_say
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings


def add_reminders_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    reminders = commands.add_parser(
        "reminders", help=t("a draft's reminders before its deadline: on, off, how many"))
    group = reminders.add_subparsers(dest="reminders_command", required=True,
                                     metavar="COMMAND")
    for name, help_text in (
        ("on", t("remind who has not taken part, before the draft's deadline (the default)")),
        ("off", t("send no reminders for this draft (those queued are not sent)")),
        ("status", t("whether reminders are on, and how many were sent")),
    ):
        add(name, help_text, cmd_reminders, group).add_argument(
            "id", type=int, help=t("draft number"))


async def cmd_reminders(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.cli.audit import operator
    from handlers.reminders import reminder_counts, set_reminders
    from storage import audit
    from storage.db import open_database
    from storage.models import DeliveryStatus, utcnow

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        draft = await draft_or_say(session, args.id, t)
        if draft is None:
            return 1
        if args.reminders_command != "status":
            wanted = args.reminders_command == "on"
            now = utcnow()
            if await set_reminders(session, draft, wanted, now):
                await audit.record(session, operator(), audit.AuditAction.REMINDERS, now,
                                   draft_id=draft.id, detail=args.reminders_command)
            await session.commit()
        counts = await reminder_counts(session, draft.id)
    print(t("Reminders for draft no. {id}: {state}; {sent} sent, {waiting} waiting, {held} "
            "waiting for Zalo's window.", id=draft.id,
            state=t("on") if draft.reminders else t("off"),
            sent=t.number(counts.get(DeliveryStatus.SENT, 0)),
            waiting=t.number(counts.get(DeliveryStatus.PENDING, 0)
                             + counts.get(DeliveryStatus.SENDING, 0)),
            held=t.number(counts.get(DeliveryStatus.HELD, 0))))
    return 0
