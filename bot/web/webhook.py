"""The webhook server of `ykien serve`: platforms POST updates, a load balancer asks /healthz.

Every channel that receives by webhook (bot.channels.channel.WebhookChannel) gets a route at its
`webhook_path`. An update is answered 200 only once it is stored (`storage.inbound`), then
handled in the background through the channel's own update processing (each chat in order,
chats concurrently). The answers that make a platform retry later: 503 while the backlog in
memory is full (or the database is down); the ones that make it give up: what the channel's
`verify` refuses (403 without the right secret or signature), 400 for what is not an update,
413 over a megabyte.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import WebhookChannel
from storage import inbound

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # the platforms' updates are far smaller; anything bigger is not one
DEFAULT_BACKLOG = 1000


class WebhookReceiver:
    """Stored updates handed to a channel: at most `backlog` in memory, each claimed first.

    On `start`, rows stored but never handled (a crash after the 200) are handled first, in
    the order they came. A claim holds a row for `lease` (renewed while the update is being
    handled); every `sweep_seconds` (half a lease), rows whose lease ran out (their process
    died), or never claimed for `stale_after` (a lease), are taken over. An update whose
    chat has an earlier update not handled yet (in another process, say) waits, out of its
    chat's lane, and is tried again every `retry_seconds` or as soon as this process
    finishes an update of that chat.
    """

    def __init__(
        self,
        sessionmaker: inbound.Sessionmaker,
        channel: WebhookChannel,
        *,
        backlog: int = DEFAULT_BACKLOG,
        lease: timedelta = inbound.LEASE,
        stale_after: timedelta | None = None,
        sweep_seconds: float | None = None,
        retry_seconds: float = 0.25,
        clock: inbound.Clock = inbound.utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channel = channel
        self.backlog = backlog
        self.lease = lease
        self.stale_after = stale_after if stale_after is not None else lease
        self.sweep_seconds = (
            sweep_seconds if sweep_seconds is not None else lease.total_seconds() / 2
        )
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # by row id
        self._claims: dict[int, int] = {}  # rows this process is handling: {id: attempt}
        self._deferred: dict[int, tuple[inbound.StoredUpdate, dict]] = {}  # waiting their turn
        self._retry = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    @property
    def waiting(self) -> int:
        """Updates scheduled and not yet handled, in this process."""
        return len(self._in_flight) + len(self._deferred.keys() - self._in_flight.keys())

    @property
    def full(self) -> bool:
        return self.waiting >= self.backlog

    async def start(self) -> None:
        """Handle what was stored but never handled, then keep sweeping in the background."""
        await self._recover(unclaimed=True)
        self._background = [
            asyncio.create_task(self._sweep()),
            asyncio.create_task(self._renew()),
            asyncio.create_task(self._retry_deferred()),
        ]

    async def accept(self, payload_text: str, payload: object) -> bool:
        """Store a posted update and schedule it; False when it was stored before.

        Raises ValueError for what is not an update, SQLAlchemyError if it cannot be stored.
        """
        update_id, chat_key = self.channel.webhook_update_key(payload)
        row = await inbound.store(
            self.sessionmaker, self.channel.name, update_id, chat_key, payload_text,
            now=self.clock(),
        )
        if row is None:
            return False
        self._schedule(row, payload)
        return True

    async def close(self, timeout: float = 15.0) -> None:
        """Stop sweeping; let the updates under way finish (bounded); the rest stay stored."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.warning("webhook: %d updates left for the next start", len(pending))
        if self._deferred:
            log.info("webhook: %d updates waiting for their turn left for the next start",
                     len(self._deferred))
            self._deferred.clear()

    async def _recover(self, *, unclaimed: bool) -> None:
        free = self.backlog - self.waiting
        if free <= 0:
            return
        known = self._in_flight.keys() | self._deferred.keys()
        rows = await inbound.unhandled(
            self.sessionmaker, self.channel.name, stale_after=self.stale_after,
            unclaimed=unclaimed, limit=free + len(known), now=self.clock(),
        )
        rows = [row for row in rows if row.id not in known][:free]
        if rows:
            log.info("webhook: handling %d updates stored earlier", len(rows))
        for row in rows:
            self._schedule(row, json.loads(row.payload))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self._recover(unclaimed=False)
            except Exception:
                log.exception("webhook: looking for abandoned updates failed")

    async def _renew(self) -> None:
        """Keep the leases of the updates being handled alive (a long reply, a slow API)."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            if not self._claims:
                continue
            try:
                await inbound.renew(
                    self.sessionmaker, dict(self._claims), lease=self.lease, now=self.clock()
                )
            except Exception as exc:
                log.warning("webhook: could not renew leases (%s)", type(exc).__name__)

    async def _retry_deferred(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.retry_seconds):
                    await self._retry.wait()
            except TimeoutError:
                pass
            self._retry.clear()
            # In the order they came: the channel's lanes keep each chat in that order.
            for row_id in sorted(self._deferred.keys() - self._in_flight.keys()):
                row, payload = self._deferred.pop(row_id)
                self._schedule(row, payload)

    def _schedule(self, row: inbound.StoredUpdate, payload: object) -> None:
        # Tasks start in the order they are created: the channel keeps each chat in order.
        assert isinstance(payload, dict)
        task = asyncio.create_task(self.channel.process_webhook_update(
            payload, lambda process: self._handle(row, payload, process)
        ))
        self._in_flight[row.id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(row.id, None))

    async def _handle(
        self, row: inbound.StoredUpdate, payload: dict, process: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            attempt = await inbound.claim(
                self.sessionmaker, row, lease=self.lease, now=self.clock()
            )
            if attempt is None:
                if await inbound.awaits_turn(self.sessionmaker, row, now=self.clock()):
                    # An earlier update of the chat is not handled yet (here or elsewhere):
                    # leave the lane free for it and try again later.
                    self._deferred[row.id] = (row, payload)
                return  # handled, or another process has it
        except SQLAlchemyError:
            log.exception("webhook: could not claim update row %d; it stays stored", row.id)
            return
        self._claims[row.id] = attempt
        try:
            try:
                await process()
            except Exception:
                log.exception("webhook: handling update row %d failed", row.id)
            try:
                await inbound.finish(self.sessionmaker, row.id, attempt)
            except SQLAlchemyError:
                log.exception("webhook: could not record update row %d as handled", row.id)
        finally:
            del self._claims[row.id]
        if any(waiting.chat_key == row.chat_key for waiting, _ in self._deferred.values()):
            self._retry.set()  # its next update may go now


def make_app(
    receivers: Sequence[WebhookReceiver],
    *,
    extra_routes: Sequence[web.RouteDef] = (),
    client_max_size: int = MAX_BODY,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> web.Application:
    """The aiohttp application: one webhook route per channel, /healthz, and `extra_routes`
    (an OAuth callback, for instance)."""
    app = web.Application(client_max_size=client_max_size)
    for receiver in receivers:
        app.router.add_post(receiver.channel.webhook_path, _webhook_route(receiver))
    app.router.add_routes(extra_routes)

    async def healthz(request: web.Request) -> web.Response:
        # The receivers' database, or the given one when there is none (`ykien web serve`).
        database_of = sessionmaker or (receivers[0].sessionmaker if receivers else None)
        try:
            database = database_of is not None and await inbound.database_reachable(database_of)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("healthz: database unreachable: %s", type(exc).__name__)
            database = False
        status = 200 if database else 503
        return web.json_response(
            {"status": "ok" if database else "unavailable", "database": database,
             "backlog": sum(receiver.waiting for receiver in receivers)},
            status=status,
        )

    app.router.add_get("/healthz", healthz)
    return app


def _webhook_route(
    receiver: WebhookReceiver,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    channel = receiver.channel

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()  # over client_max_size: 413 from aiohttp
        verdict = channel.verify(request.headers, body)
        if verdict == 200:  # genuine, but nothing for us (the platform's own echo events)
            return web.Response(status=200)
        if verdict is not None:
            log.warning("webhook: %s refused a request (%d)", channel.name, verdict)
            return web.Response(status=verdict)
        if receiver.full:
            return web.Response(status=503, headers={"Retry-After": "1"})
        try:
            payload_text = body.decode("utf-8")
            accepted = await receiver.accept(payload_text, json.loads(payload_text))
        except ValueError:  # JSON, UTF-8, or not an update
            return web.Response(status=400)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("webhook: could not store a %s update (%s); it will be retried",
                        channel.name, type(exc).__name__)
            return web.Response(status=503)
        if not accepted:
            log.info("webhook: a %s update delivered again was ignored", channel.name)
        return web.Response(status=200)

    return receive
