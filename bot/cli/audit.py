"""`ykien audit [--since DATE]`: the audit log, oldest first; and who the command line acts as
when it writes to it (`operator`).

Exit codes: 0 listed, 2 bad input (argparse).
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import VIETNAM, Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from storage.audit import Actor
    from storage.models import AuditEntry


def operator() -> Actor:
    """The command line's operator, as the audit log records them: an admin, named by their
    operating-system user (the one who ran `ykien`)."""
    from storage.audit import Actor, Via
    from storage.models import Role

    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the passwd file
        name = ""
    return Actor(Via.CLI, role=Role.ADMIN, operator=name or "?")


def moment(t: Translator) -> Callable[[str], datetime]:
    """An argparse type: a date (its midnight) or a date and time, in Vietnam time unless an
    offset is written."""

    def parse(text: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(t(
                "“{value}” is not a date: write it as 2026-11-27 or 2026-11-27 08:30.",
                value=text)) from None
        return value if value.tzinfo else value.replace(tzinfo=VIETNAM)

    return parse


def add_audit_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    listing = add("audit", t("the audit log: every official action, who, from where and when"),
                  cmd_audit)
    listing.add_argument("--since", type=moment(t), metavar="DATE",
                         help=t("only what happened from this date (or date and time), "
                                "Vietnam time"))


async def cmd_audit(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage import audit
    from storage.db import open_database

    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        rows = await audit.entries(session, args.since)
    if not rows:
        print(t("Nothing in the audit log yet.") if args.since is None
              else t("Nothing in the audit log since then."))
        return 0
    print("\n".join(audit_lines(rows, t)))
    return 0


def audit_lines(rows: Sequence[AuditEntry], t: Translator) -> list[str]:
    """The rows as a table: time, from where, who, role, action, draft, person, detail."""
    from storage.audit import ACTION_WORDS, AuditAction

    headers = [t("Time"), t("From"), t("Who"), t("Role"), t("Action"), t("Draft"),
               t("Person"), t("Detail")]
    table = [headers]
    for row in rows:
        action = (t(ACTION_WORDS[AuditAction(row.action)])
                  if row.action in AuditAction.__members__.values() else row.action)
        table.append([
            row.at.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S"),
            f"{row.via}:{row.channel}" if row.channel else row.via,
            row.actor, row.role, action, str(row.draft_id or ""), row.subject, row.detail,
        ])
    widths = [max(len(cells[column]) for cells in table) for column in range(len(headers))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
                      ).rstrip() for cells in table]
