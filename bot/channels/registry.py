"""Every chat platform the bot knows, configured from the environment in one place.

A channel module (bot/channels/telegram/channel.py, bot/channels/zalo_oa/channel.py, …) exposes
`from_settings(settings, service) -> Channel`; an entry here says when it is configured and
whether it can poll (`ykien run`) or only receive by webhook (`ykien serve`). Modules are
imported only when their channel is configured, so an unused platform costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import Settings
from storage.text import N_

if TYPE_CHECKING:
    from bot.channels.channel import Channel
    from bot.service import ChatService


@dataclass(frozen=True)
class ChannelEntry:
    name: str
    module: str
    configured: Callable[[Settings], bool]
    can_poll: bool  # False: the platform only pushes updates (a webhook on `ykien serve`)
    # A bot that polls may have a webhook registered instead, which stops the polling: its
    # module's `remove_webhook(settings) -> str` removes it (`ykien webhook delete`) and
    # returns the URL it had, "" if none. What to say then, as catalogue texts.
    webhook_removed: str = ""  # with {url}
    no_webhook: str = ""


CHANNELS = (
    ChannelEntry(
        "telegram", "bot.channels.telegram.channel", lambda s: bool(s.telegram_token),
        can_poll=True,
        webhook_removed=N_("The webhook {url} is removed. Telegram keeps new updates until "
                           "ykien run polls for them."),
        no_webhook=N_("No webhook was registered: ykien run can poll."),
    ),
    ChannelEntry(
        "zalo", "bot.channels.zalo_oa.channel", lambda s: bool(s.zalo_app_id), can_poll=False
    ),
    ChannelEntry(
        "zalobot", "bot.channels.zalo_bot", lambda s: bool(s.zalo_bot_token), can_poll=True,
        webhook_removed=N_("The Zalo bot's webhook {url} is removed: ykien run can poll."),
        no_webhook=N_("No webhook was registered for the Zalo bot: ykien run can poll."),
    ),
)


def configured_entries(settings: Settings) -> list[ChannelEntry]:
    return [entry for entry in CHANNELS if entry.configured(settings)]


async def remove_webhook(entry: ChannelEntry, settings: Settings) -> str:
    """Remove the entry's webhook (see `ChannelEntry.webhook_removed`); the URL it had."""
    module = importlib.import_module(entry.module)
    url: str = await module.remove_webhook(settings)
    return url


def configured_channels(
    settings: Settings, service: ChatService, *, polling: bool | None = None
) -> dict[str, Channel]:
    """The channels whose credentials are set (only those that can poll, if `polling`)."""
    channels: dict[str, Channel] = {}
    for entry in configured_entries(settings):
        if polling and not entry.can_poll:
            continue
        module = importlib.import_module(entry.module)
        channels[entry.name] = module.from_settings(settings, service)
    return channels
