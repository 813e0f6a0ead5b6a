"""`ykien serve`: the webhook server plus the delivery worker; `ykien webhook delete`.

Several `ykien serve` may run behind one load balancer on one PostgreSQL database: each
update is stored, then claimed and handled by exactly one of them (`storage.inbound`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from handlers.i18n import Translator

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)

# What Telegram accepts as a webhook secret_token.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def webhook_problem(settings: Settings, t: Translator) -> str | None:
    """Why `ykien serve` cannot start with these settings (one line), or None."""
    from bot.channels.registry import configured_entries

    if not configured_entries(settings):
        return t(
            "No chat channel is configured for the webhook server. To connect Telegram, set "
            "YKIEN_TELEGRAM_TOKEN, YKIEN_PUBLIC_URL and YKIEN_TELEGRAM_WEBHOOK_SECRET in the "
            "environment or in a .env file (see .env.example)."
        )
    if settings.telegram_token:
        missing = [
            name
            for name, value in (
                ("YKIEN_PUBLIC_URL", settings.public_url),
                ("YKIEN_TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret),
            )
            if not value
        ]
        if missing:
            return t(
                "The webhook server needs {variables}: YKIEN_PUBLIC_URL is the https:// "
                "address where Telegram reaches this server (through the reverse proxy), and "
                "YKIEN_TELEGRAM_WEBHOOK_SECRET a secret of 1 to 256 letters, digits, _ or -. "
                "Set them in the environment or in the .env file, or poll instead with: "
                "ykien run",
                variables=", ".join(missing),
            )
        if not SECRET_PATTERN.fullmatch(settings.telegram_webhook_secret):
            return t(
                "YKIEN_TELEGRAM_WEBHOOK_SECRET is not valid: it must be 1 to 256 characters, "
                "each a letter A–Z or a–z, a digit, _ or -. Correct it in the environment or "
                "in the .env file."
            )
    zalo_needs = [
        ("YKIEN_PUBLIC_URL", settings.public_url),
        *([("YKIEN_ZALO_OA_SECRET", settings.zalo_oa_secret)] if settings.zalo_app_id else []),
        *([("YKIEN_ZALO_BOT_WEBHOOK_SECRET", settings.zalo_bot_webhook_secret)]
          if settings.zalo_bot_token else []),
    ] if settings.zalo_app_id or settings.zalo_bot_token else []
    missing = [name for name, value in zalo_needs if not value]
    if missing:
        return t(
            "Zalo needs {variables} for the webhook server. Set them in the environment or in "
            "the .env file (see .env.example).",
            variables=", ".join(missing),
        )
    return None


async def cmd_serve(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    problem = webhook_problem(settings, t)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    try:
        await serve(settings, args.host, args.port)
    except RuntimeError as error:  # wrong token, Telegram refused the URL, port taken
        print(t("Could not start: {reason}", reason=str(error)), file=sys.stderr)
        return 1
    return 0


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


async def serve(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    *,
    on_listening: Callable[[str], None] | None = None,
    backlog: int | None = None,
) -> None:
    """Receive by webhook and deliver until `stop` is set (or SIGINT/SIGTERM).

    `on_listening` gets the server's own address (http://host:port) once the webhook is
    registered; `backlog` bounds the updates waiting in memory (then 503).
    """
    from aiohttp import web

    from bot.app import housekeeping
    from bot.channels.channel import ServesRoutes, WebhookChannel
    from bot.channels.registry import configured_channels
    from bot.sending.worker import DeliveryWorker
    from bot.service import ChatService
    from bot.web.webhook import DEFAULT_BACKLOG, WebhookReceiver, make_app
    from storage import communes
    from storage.db import open_database

    if stop is None:
        stop = _stop_on_signals()
    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)  # the first resident should not wait for it
        service = ChatService(sessionmaker, settings.conversation_timeout)
        channels = configured_channels(settings, service)
        hooked = [c for c in channels.values() if isinstance(c, WebhookChannel)]
        receivers = [
            WebhookReceiver(
                sessionmaker, channel, backlog=backlog or DEFAULT_BACKLOG,
                lease=timedelta(seconds=settings.webhook_lease_seconds),
            )
            for channel in hooked
        ]
        routes = [
            route for c in channels.values() if isinstance(c, ServesRoutes)
            for route in c.extra_routes()
        ]
        runner = web.AppRunner(
            make_app(receivers, extra_routes=routes), access_log=None, shutdown_timeout=5
        )
        upkeep = asyncio.create_task(housekeeping(sessionmaker, stop, settings.delivery))
        started: list[str] = []
        try:
            for channel in hooked:
                await channel.start_webhook()
                started.append(channel.name)
            for receiver in receivers:
                await receiver.start()  # updates stored before a crash come first
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            listening = runner.addresses[0]
            log.info("webhook server listening on %s:%s", listening[0], listening[1])
            for channel in hooked:
                await channel.register_webhook(settings.public_url + channel.webhook_path)
            if on_listening is not None:
                on_listening(f"http://{host}:{listening[1]}")
            await DeliveryWorker(sessionmaker, channels, settings.delivery).run(stop)
        finally:
            stop.set()
            await runner.cleanup()  # no new updates
            for receiver in receivers:
                await receiver.close()  # the ones under way finish; the rest stay stored
            await upkeep
            for name in reversed(started):
                await channels[name].stop()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop
