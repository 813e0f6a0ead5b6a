"""`ykien webhook delete`: remove a bot's webhook so that `ykien run` can poll."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings


def add_webhook_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    webhook = commands.add_parser(
        "webhook", help=t("the webhook of the Telegram bot and the Zalo Bot")
    ).add_subparsers(dest="webhook_command", required=True, metavar="COMMAND")
    add("delete",
        t("remove the webhook of the Telegram bot and the Zalo Bot so that ykien run can poll"),
        cmd_webhook_delete, webhook)


async def cmd_webhook_delete(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.channels.registry import configured_entries, remove_webhook

    bots = [entry for entry in configured_entries(settings) if entry.webhook_removed]
    if not bots:
        print(t("Neither YKIEN_TELEGRAM_TOKEN nor YKIEN_ZALO_BOT_TOKEN is set: there is no "
                "bot whose webhook could be removed."), file=sys.stderr)
        return 2
    for entry in bots:
        try:
            url = await remove_webhook(entry, settings)
        except RuntimeError as error:
            print(t("Could not remove the webhook: {reason}", reason=str(error)), file=sys.stderr)
            return 1
        print(t(entry.webhook_removed, url=url) if url else t(entry.no_webhook))
    return 0
