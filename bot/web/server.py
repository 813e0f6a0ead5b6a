"""`ykien serve`: the webhook server plus the delivery worker (started by bot/cli/run.py).

Several `ykien serve` may run behind one load balancer on one PostgreSQL database: each
update is stored, then claimed and handled by exactly one of them (`storage.inbound`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from datetime import timedelta

from bot.config import Settings

log = logging.getLogger(__name__)


def freeze_start_up() -> None:
    """Take what start-up built (modules, the commune index, catalogues, templates), which
    lives as long as the process, out of the garbage collector's full passes: each walked it
    all, stalling the event loop ~100 ms every few seconds under load (every update waiting
    then was acknowledged that much later)."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    *,
    on_listening: Callable[[str], None] | None = None,
    backlog: int | None = None,
    chat_backlog: int | None = None,
    spill: int | None = None,
    read_timeout: float | None = None,
    receive: bool = True,
    own_process: bool = False,
) -> None:
    """Receive by webhook and deliver until `stop` is set (or SIGINT/SIGTERM).

    `on_listening` gets the server's own address (http://host:port) once the webhook is
    registered; `backlog` bounds the updates waiting in memory (then they wait in the
    database, up to `spill` of them, then 503), `chat_backlog` those of one chat (then they
    are dropped, and the chat told to wait); `read_timeout` is
    how long a request's headers, and then its body, may take (tests shorten them). Without
    `receive`, only the officials' workspace is served (`ykien web serve`): no channel is
    started, no webhook registered, nothing sent, so a bot that polls keeps polling.
    `own_process`: the process is the server's alone (the command line), so what start-up
    built is frozen out of the garbage collector's passes before the first request.
    """
    from aiohttp import web

    from bot.app import housekeeping, stop_on_signals
    from bot.channels.channel import ServesRoutes, WebhookChannel
    from bot.channels.registry import configured_channels
    from bot.sending.worker import DeliveryWorker
    from bot.service import ChatService
    from bot.web.mydata import mydata_routes
    from bot.web.webhook import (
        DEFAULT_BACKLOG,
        DEFAULT_CHAT_BACKLOG,
        DEFAULT_SPILL,
        READ_TIMEOUT,
        WebhookReceiver,
        make_app,
    )
    from bot.web.workspace import workspace_app
    from handlers.officials import ADMIN_PATH
    from storage import communes
    from storage.db import open_database

    if stop is None:
        stop = stop_on_signals()
    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)  # the first resident should not wait for it
        service = ChatService.for_settings(sessionmaker, settings)
        channels = configured_channels(settings, service) if receive else {}
        hooked = [c for c in channels.values() if isinstance(c, WebhookChannel)]
        receivers = [
            WebhookReceiver(
                sessionmaker, channel, backlog=backlog or DEFAULT_BACKLOG,
                chat_backlog=chat_backlog or DEFAULT_CHAT_BACKLOG,
                spill=DEFAULT_SPILL if spill is None else spill,
                lease=timedelta(seconds=settings.webhook_lease_seconds),
            )
            for channel in hooked
        ]
        routes = [
            route for c in channels.values() if isinstance(c, ServesRoutes)
            for route in c.extra_routes()
        ] + mydata_routes(sessionmaker)  # residents' own data, downloaded by link
        timeout = read_timeout or READ_TIMEOUT
        app = make_app(receivers, extra_routes=routes, read_timeout=timeout,
                       sessionmaker=sessionmaker)
        app.add_subapp(ADMIN_PATH, workspace_app(sessionmaker, settings))  # officials' pages
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=5,
            # aiohttp's keep-alive timer also closes a connection still sending its headers.
            keepalive_timeout=timeout,
        )
        upkeep = asyncio.create_task(housekeeping(sessionmaker, stop, settings.delivery,
                                                  settings.retention_months))
        started: list[str] = []
        try:
            for channel in hooked:
                await channel.start_webhook()
                started.append(channel.name)
            for receiver in receivers:
                await receiver.start()  # updates stored before a crash come first
            await runner.setup()
            if own_process:
                freeze_start_up()
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            listening = runner.addresses[0]
            log.info("%s listening on %s:%s", "webhook server" if receive else "workspace",
                     listening[0], listening[1])
            for channel in hooked:
                await channel.register_webhook(settings.public_url + channel.webhook_path)
            if on_listening is not None:
                on_listening(f"http://{host}:{listening[1]}")
            if receive:
                await DeliveryWorker(sessionmaker, channels, settings.delivery).run(stop)
            else:
                await stop.wait()
        finally:
            stop.set()
            await runner.cleanup()  # no new updates
            for receiver in receivers:
                await receiver.close()  # the ones under way finish; the rest stay stored
            await upkeep
            for name in reversed(started):
                await channels[name].stop()

