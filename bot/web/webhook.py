"""The webhook server of `ykien serve`: platforms POST updates, a load balancer asks /healthz.

Every channel that receives by webhook (bot.channels.channel.WebhookChannel) gets a route at its
`webhook_path`. An update is answered 200 only once it is stored (`storage.inbound`), then
handled in the background through the channel's own update processing (each chat in order,
chats concurrently); it counts as handled once its replies are sent. The answers that make a
platform retry later: 503 while the backlog in memory is full (or the database is down); the
ones that make it give up: what the channel's `verify` refuses (403 without the right secret
or signature), 400 for what is not an update (or nests deeper than any update does), 408 for
a body that does not arrive in time, 413 over a megabyte. Genuine updates the bot ignores (a
group's, a bot's, one the platform library cannot read) are acknowledged and not stored.

Updates beyond what memory holds (`backlog`) are still stored and acknowledged at once, and
taken up in the order they came as room frees (or by another process with room, once they
have waited a lease): the database is the queue, so a burst is taken in without the
platform's retries and their delays. Only beyond `spill` of those is the answer 503.

One chat cannot take the server from the others: beyond `chat_backlog` of its updates waiting
here, its updates are acknowledged and dropped for a minute, and it is told once when it can
write again (a 429 would only make the platform send them again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import accumulate

from aiohttp import hdrs, web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import SendError, WebhookChannel
from bot.channels.pacing import Priority
from bot.web.groupcommit import GroupCommit
from handlers.conversation import language_of, too_fast
from handlers.logref import chat_ref
from storage import inbound

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # the platforms' updates are far smaller; anything bigger is not one
MAX_DEPTH = 32  # arrays and objects within each other: the platforms' updates nest ~6 deep
DEFAULT_BACKLOG = 1000
# Updates stored beyond the backlog, waiting in the database for their turn: each costs this
# process only its row id and chat in memory. A burst of first messages from a campaign is
# thousands; beyond this many, 503 and the platform retries later.
DEFAULT_SPILL = 100_000
DEFAULT_CHAT_BACKLOG = 20  # one chat's updates waiting (its replies go 1/s after 3 at once)
FLOOD_PAUSE = timedelta(minutes=1)  # a chat over its bound is not read for this long
READ_TIMEOUT = 15.0  # seconds for a request's headers (and idle connections), then its body
# The records of updates handled wait this long to go together (a chat's next update waits
# for its previous one's; a crash meanwhile gives those updates' replies again, not fewer).
FINISH_LINGER = 0.02
SERVER = "ykien"  # the Server header: no software version for anyone to look up


class Outcome(StrEnum):
    """What became of a posted update."""

    STORED = "stored"  # and scheduled
    AGAIN = "again"  # stored before: a retry
    IGNORED = "ignored"  # genuine, nothing for the bot
    DROPPED = "dropped"  # its chat is over its bound


class WebhookReceiver:
    """Stored updates handed to a channel: at most `backlog` in memory (`chat_backlog` per
    chat, those stored beyond the backlog counted), each claimed first. Beyond `backlog`, up
    to `spill` more are stored and left in the database, taken up oldest first whenever the
    updates in memory fall to half the backlog.

    On `start`, rows stored but never handled (a crash after the 200) are handled first, in
    the order they came. A claim holds a row for `lease` (renewed while the update is being
    handled); every `sweep_seconds` (half a lease), rows whose lease ran out (their process
    died), or never claimed for `stale_after` (a lease), are taken over, and rows that
    crashed every process are given up. An update whose chat has an earlier update not
    handled yet (in another process, say) waits, out of its chat's lane, and is tried again
    every `retry_seconds` or as soon as this process finishes an update of that chat. An
    update the channel cannot even take up is recorded as failed, once.
    """

    def __init__(
        self,
        sessionmaker: inbound.Sessionmaker,
        channel: WebhookChannel,
        *,
        backlog: int = DEFAULT_BACKLOG,
        chat_backlog: int = DEFAULT_CHAT_BACKLOG,
        spill: int = DEFAULT_SPILL,
        lease: timedelta = inbound.LEASE,
        stale_after: timedelta | None = None,
        sweep_seconds: float | None = None,
        retry_seconds: float = 0.25,
        clock: inbound.Clock = inbound.utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channel = channel
        self.backlog = backlog
        self.chat_backlog = chat_backlog
        self.spill = spill
        self.lease = lease
        self.stale_after = stale_after if stale_after is not None else lease
        self.sweep_seconds = (
            sweep_seconds if sweep_seconds is not None else lease.total_seconds() / 2
        )
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # by row id
        self._claims: dict[int, int] = {}  # rows this process is handling: {id: attempt}
        self._deferred: dict[int, tuple[inbound.StoredUpdate, object]] = {}  # not their turn
        self._chats: dict[int, str] = {}  # every row scheduled here and not done: its chat
        self._spilled: dict[int, str] = {}  # stored here beyond the backlog, in order: chat
        self._refilling: asyncio.Task[None] | None = None  # taking spilled rows up
        self._per_chat: Counter[str] = Counter()  # both, counted by chat
        self._silenced: dict[str, datetime] = {}  # chats over their bound: dropped until
        self._retry = asyncio.Event()
        # Updates stored, claimed and recorded as handled by group commit: one transaction
        # for all that arrive (or finish) while the previous one is written.
        # Each of these writes is one statement (a batch of at most MAX_BATCH rows).
        self.storing = GroupCommit(sessionmaker, inbound.store_many, one_statement=True)
        self.claiming = GroupCommit(sessionmaker, self._claim, one_statement=True)
        self.finishing = GroupCommit(sessionmaker, self._finish, linger=FINISH_LINGER,
                                     one_statement=True)
        self.unclaiming = GroupCommit(sessionmaker, self._unclaim, one_statement=True)
        self._early: dict[int, int] = {}  # claimed on arrival, handling not begun: {id: attempt}
        self._background: list[asyncio.Task[None]] = []
        self._notices: set[asyncio.Task[None]] = set()
        # Set by close(): first no more sweeping, then (updates under way done) no renewing.
        self._closing, self._closed = asyncio.Event(), asyncio.Event()

    @property
    def waiting(self) -> int:
        """Updates scheduled and not yet handled, in this process."""
        return len(self._chats)

    @property
    def queued(self) -> int:
        """Updates this process stored and has not handled yet: in memory or spilled."""
        return len(self._chats) + len(self._spilled)

    @property
    def full(self) -> bool:
        """Nothing more can be taken: the backlog and the spill beyond it are both full."""
        return self.waiting >= self.backlog and len(self._spilled) >= self.spill

    async def start(self) -> None:
        """Handle what was stored but never handled, then keep sweeping in the background."""
        self._closing.clear()
        self._closed.clear()
        await self._recover(unclaimed=True)
        self._background = [
            asyncio.create_task(self._sweep()),
            asyncio.create_task(self._renew()),
            asyncio.create_task(self._retry_deferred()),
        ]

    async def accept(self, payload_text: str, payload: object) -> Outcome:
        """Store a posted update and schedule it, unless it is none of the bot's business, a
        retry, or its chat is over its bound.

        Raises ValueError for what is not an update, SQLAlchemyError if it cannot be stored.
        """
        read = self.channel.read_webhook_update(payload)
        if read is None:
            return Outcome.IGNORED
        if read.chat_key and self._silenced_now(read.chat_key):
            return Outcome.DROPPED
        row = await self.storing.submit(inbound.Received(
            self.channel.name, read.update_id, read.chat_key, payload_text, self.clock()))
        if row is None:
            return Outcome.AGAIN
        if self._spilled or self.waiting >= self.backlog:
            # Stored, and taken up in its turn (after those spilled before it).
            self._spilled[row.id] = row.chat_key
            self._per_chat[row.chat_key] += 1
            self._refill_soon()  # when there is room after all (a refill failed meanwhile)
        else:
            self._schedule(row, read.update)
        return Outcome.STORED

    async def close(self, timeout: float = 15.0) -> None:
        """Stop sweeping; let the updates under way finish (bounded), their leases renewed
        meanwhile; the rest stay stored. A database round under way is let finish, not
        cancelled."""
        self._closing.set()
        if self._refilling is not None:
            await asyncio.gather(self._refilling, return_exceptions=True)
        tasks = [*self._in_flight.values(), *self._notices]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            left = len(pending - self._notices)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if left:
                log.warning("webhook: %d updates left for the next start", left)
        for writes in (self.storing, self.claiming, self.finishing, self.unclaiming):
            await writes.close()  # what was handled is recorded so
        if self.storing.items:
            log.info("webhook: %d %s updates stored in %d writes, claimed in %d, recorded as "
                     "handled in %d", self.storing.items, self.channel.name,
                     self.storing.writes, self.claiming.writes, self.finishing.writes)
        self._closed.set()
        if self._background:
            _, stuck = await asyncio.wait(self._background, timeout=timeout)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            self._background = []
        if self._deferred:
            log.info("webhook: %d updates waiting for their turn left for the next start",
                     len(self._deferred))
            self._deferred.clear()
        if self._spilled:
            log.info("webhook: %d updates stored beyond the backlog left for the next start",
                     len(self._spilled))
            self._let_go_of_spilled(list(self._spilled))

    # ---- group commit ------------------------------------------------------------------

    async def _claim(
        self, session: AsyncSession, rows: Sequence[inbound.StoredUpdate]
    ) -> list[int | None]:
        return await inbound.claim_many(session, rows, lease=self.lease, now=self.clock())

    @staticmethod
    async def _finish(session: AsyncSession, claims: Sequence[tuple[int, int]]) -> list[None]:
        await inbound.finish_many(session, claims)
        return [None] * len(claims)

    @staticmethod
    async def _unclaim(session: AsyncSession, claims: Sequence[tuple[int, int]]) -> list[None]:
        await inbound.unclaim_many(session, claims)
        return [None] * len(claims)

    # ---- one chat's bound ----------------------------------------------------------------

    def _silenced_now(self, chat_key: str) -> bool:
        """Whether the chat's updates are dropped now; a chat reaching its bound is silenced
        for FLOOD_PAUSE (until a whole minute) and told so, once."""
        now = self.clock()
        until = self._silenced.get(chat_key)
        if until is not None and now < until:
            return True
        self._silenced.pop(chat_key, None)
        if self._per_chat[chat_key] < self.chat_backlog:
            return False
        until = _next_minute(now + FLOOD_PAUSE)
        self._silenced = {chat: end for chat, end in self._silenced.items() if end > now}
        self._silenced[chat_key] = until
        log.warning("webhook: %s sends faster than it is answered; its updates are dropped "
                    "until %s", chat_ref(self.channel.name, chat_key), until.isoformat())
        notice = asyncio.create_task(self._tell_to_wait(chat_key, until))
        self._notices.add(notice)
        notice.add_done_callback(self._notices.discard)
        return True

    async def _tell_to_wait(self, chat_key: str, until: datetime) -> None:
        """The chat's one notice, in its language, after the replies already queued for it."""
        try:
            async with self.sessionmaker() as session:
                language = await language_of(session, self.channel.name, chat_key)
            await self.channel.limiter.acquire(chat_key, Priority.REPLY)
            await self.channel.send(chat_key, too_fast(language, until))
        except (SendError, SQLAlchemyError, OSError) as exc:
            log.warning("webhook: could not tell %s to wait (%s)",
                        chat_ref(self.channel.name, chat_key), type(exc).__name__)
        except Exception:  # a task of its own: nobody else would see it
            log.exception("webhook: telling %s to wait failed",
                          chat_ref(self.channel.name, chat_key))

    # ---- scheduling ------------------------------------------------------------------------

    async def _recover(self, *, unclaimed: bool) -> None:
        free = self.backlog - self.waiting
        if free <= 0:
            return
        known = self._chats.keys()
        rows = await inbound.unhandled(
            self.sessionmaker, self.channel.name, stale_after=self.stale_after,
            unclaimed=unclaimed, limit=free + len(known), now=self.clock(),
        )
        rows = [row for row in rows if row.id not in known][:free]
        if rows:
            log.info("webhook: handling %d updates stored earlier", len(rows))
        await self._schedule_stored(rows)

    async def _refill(self) -> None:
        """Take up the updates stored beyond the backlog, oldest first, while there is room
        (those handled elsewhere meanwhile are let go)."""
        try:
            while self._spilled and not self._closing.is_set():
                free = self.backlog - self.waiting
                if free <= 0:
                    return
                ids = list(itertools.islice(self._spilled, free))
                rows = await inbound.unhandled_among(self.sessionmaker, ids)
                # Scheduling moves a row from the spill to memory (the sweep may have taken
                # some meanwhile); what is left of `ids` was handled elsewhere, or given up.
                await self._schedule_stored([row for row in rows if row.id in self._spilled])
                self._let_go_of_spilled(ids)
        except Exception as exc:  # they stay stored: the next refill or the sweep takes them
            log.warning("webhook: could not take up updates stored beyond the backlog (%s)",
                        type(exc).__name__)
        finally:
            self._refilling = None

    def _let_go_of_spilled(self, ids: Sequence[int]) -> None:
        """These rows are no longer this process's to take up (left stored, for another
        process or the next start): their chats' counts go with them."""
        for row_id in ids:
            chat = self._spilled.pop(row_id, None)
            if chat is not None:
                self._forget_chat_count(chat)

    def _refill_soon(self) -> None:
        if (self._spilled and self._refilling is None and not self._closing.is_set()
                and self.waiting <= self.backlog // 2):
            self._refilling = asyncio.create_task(self._refill())

    async def _schedule_stored(self, rows: Sequence[inbound.StoredUpdate]) -> None:
        """Schedule rows read back from the database, in their order; give up those that
        cannot be read."""
        for row in rows:
            try:
                payload = json.loads(row.payload)
            except ValueError:  # stored by hand, or by a version that kept no body
                await self._give_up(row, "it has no body")
                continue
            try:
                read = self.channel.read_webhook_update(payload)
            except Exception as exc:  # not an update, or one this version cannot read
                await self._give_up(row, f"it cannot be read ({type(exc).__name__})")
                continue
            if read is None:  # nothing this version handles (an update kind no longer read)
                await self._give_up(row, "it is not a resident's update")
                continue
            self._schedule(row, read.update)

    async def _sweep(self) -> None:
        while await _until(self._closing, self.sweep_seconds):
            try:
                given_up = await inbound.give_up_exhausted(
                    self.sessionmaker, self.channel.name, now=self.clock())
                if given_up:
                    log.warning("webhook: %d %s updates crashed every process that took them; "
                                "recorded as failed", given_up, self.channel.name)
                await self._recover(unclaimed=False)
            except Exception:
                log.exception("webhook: looking for abandoned updates failed")
            self._refill_soon()  # should a refill have failed with nothing in flight

    async def _renew(self) -> None:
        """Keep the leases of the updates being handled alive (a long reply, a slow API)."""
        while await _until(self._closed, self.lease.total_seconds() / 3):
            if not self._claims:
                continue
            try:
                await inbound.renew(
                    self.sessionmaker, dict(self._claims), lease=self.lease, now=self.clock()
                )
            except Exception as exc:
                log.warning("webhook: could not renew leases (%s)", type(exc).__name__)

    async def _retry_deferred(self) -> None:
        while not self._closing.is_set():
            try:
                async with asyncio.timeout(self.retry_seconds):
                    await self._retry.wait()
            except TimeoutError:
                pass
            self._retry.clear()
            # In the order they came: the channel's lanes keep each chat in that order.
            for row_id in sorted(self._deferred.keys() - self._in_flight.keys()):
                row, update = self._deferred.pop(row_id)
                self._schedule(row, update)

    def _schedule(self, row: inbound.StoredUpdate, update: object) -> None:
        # Tasks start in the order they are created: the channel keeps each chat in order.
        if row.id not in self._chats:
            self._chats[row.id] = row.chat_key
            if self._spilled.pop(row.id, None) is None:  # a spilled row is counted already
                self._per_chat[row.chat_key] += 1
        task = asyncio.create_task(self._process(row, update))
        self._in_flight[row.id] = task
        task.add_done_callback(lambda _: self._done(row.id))

    def _done(self, row_id: int) -> None:
        self._in_flight.pop(row_id, None)
        if row_id in self._deferred:
            return  # scheduled again later
        chat = self._chats.pop(row_id, None)
        if chat is not None:
            self._forget_chat_count(chat)
        self._refill_soon()

    def _forget_chat_count(self, chat: str) -> None:
        self._per_chat[chat] -= 1
        if self._per_chat[chat] <= 0:
            del self._per_chat[chat]

    async def _process(self, row: inbound.StoredUpdate, update: object) -> None:
        # Claimed at once when its chat has nothing earlier to handle (the usual case): the
        # updates that arrived together are claimed together. Otherwise it is claimed in its
        # chat's lane, once the earlier ones are handled.
        try:
            early = await self.claiming.submit(row)
        except (SQLAlchemyError, OSError):
            early = None  # claimed in its lane, or taken over by the sweep
        if early is not None:
            self._claims[row.id] = early
            self._early[row.id] = early
        try:
            await self.channel.process_webhook_update(
                update, lambda process: self._handle(row, update, process, early)
            )
        except Exception as exc:
            # The channel could not even take it up (a malformed field from someone with the
            # secret): it never will, and must not hold its chat back.
            await self._give_up(row, type(exc).__name__)
        finally:
            self._claims.pop(row.id, None)
            unbegun = self._early.pop(row.id, None)
            if unbegun is not None:
                # Never taken up here (a stop while it waited for its turn): given back at
                # once, its attempt not counted, for the next start or another process.
                try:
                    await self.unclaiming.submit((row.id, unbegun))
                except SQLAlchemyError as exc:
                    log.warning("webhook: could not give back update row %d (%s); taken over "
                                "once its lease runs out", row.id, type(exc).__name__)

    async def _give_up(self, row: inbound.StoredUpdate, reason: str) -> None:
        try:
            failed = await inbound.give_up(self.sessionmaker, row.id)
        except SQLAlchemyError as exc:
            log.warning("webhook: could not record %s update row %d as failed (%s); it stays "
                        "stored", self.channel.name, row.id, type(exc).__name__)
            return
        if failed:
            log.warning("webhook: a %s update could not be handled (%s); recorded as failed",
                        self.channel.name, reason)

    async def _handle(
        self, row: inbound.StoredUpdate, update: object,
        process: Callable[[], Awaitable[None]], claimed: int | None,
    ) -> None:
        try:
            if claimed is not None:
                del self._early[row.id]  # begun
            attempt = claimed if claimed is not None else await self.claiming.submit(row)
            if attempt is None:
                if await inbound.awaits_turn(self.sessionmaker, row, now=self.clock()):
                    # An earlier update of the chat is not handled yet (here or elsewhere):
                    # leave the lane free for it and try again later.
                    self._deferred[row.id] = (row, update)
                return  # handled, or another process has it
        except SQLAlchemyError:
            log.exception("webhook: could not claim update row %d; it stays stored", row.id)
            return
        self._claims[row.id] = attempt
        try:
            try:
                await process()  # returns once the update's replies are sent
            except Exception:
                log.exception("webhook: handling update row %d failed", row.id)
            try:
                await self.finishing.submit((row.id, attempt))
            except SQLAlchemyError:
                log.exception("webhook: could not record update row %d as handled", row.id)
        finally:
            self._claims.pop(row.id, None)
        if any(waiting.chat_key == row.chat_key for waiting, _ in self._deferred.values()):
            self._retry.set()  # its next update may go now


async def _until(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set: whether to go on."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return not stop.is_set()


def _next_minute(at: datetime) -> datetime:
    """`at` rounded up to a whole minute (what a person is told)."""
    seconds = at.second + at.microsecond / 1e6
    return at.replace(second=0, microsecond=0) + timedelta(minutes=math.ceil(seconds / 60))


# ---- the requests ----------------------------------------------------------------------------

# A JSON string, its escapes included, or all that is left of the body if it is never closed
# (a backslash at the very end too): no backtracking and no second start inside a string, so a
# hostile body costs one pass; and every byte that is not a bracket.
_STRING = re.compile(rb'"(?:[^"\\]|\\.|\\\Z)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 in, -1 out (as signed bytes)


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the arrays and objects of a JSON body nest deeper than `limit`: checked before
    parsing, which would otherwise recurse as deep as the body asks (linear, in C)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets)), default=0) > limit


def _ascii_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The headers whose values are ASCII (every platform's are); others are as if absent,
    so no check trips over bytes that are not text."""
    return CIMultiDict((name, value) for name, value in headers.items() if value.isascii())


class _RequestsNotHttp(logging.Filter):
    """aiohttp logs a request it cannot parse (not HTTP, a malformed header) at ERROR, with a
    traceback: anyone can send one. One INFO line instead, naming what was wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "refused a request that is not HTTP (%s)", (
                type(error).__name__,)
            record.exc_info, record.exc_text = None, None
        return True


def _answer_as_ykien() -> None:
    """Every answer, also those aiohttp makes before any route (a request that is not
    HTTP), names no software: aiohttp reads its default from this one place."""
    web_response.SERVER_SOFTWARE = SERVER
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(found, _RequestsNotHttp) for found in server_log.filters):
        server_log.addFilter(_RequestsNotHttp())


def make_app(
    receivers: Sequence[WebhookReceiver],
    *,
    extra_routes: Sequence[web.RouteDef] = (),
    client_max_size: int = MAX_BODY,
    read_timeout: float = READ_TIMEOUT,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> web.Application:
    """The aiohttp application: one webhook route per channel, /healthz, and `extra_routes`
    (an OAuth callback, for instance). A body must arrive within `read_timeout`; run it with
    `keepalive_timeout=read_timeout` too, which also bounds the time for a request's headers."""
    app = web.Application(client_max_size=client_max_size)
    _answer_as_ykien()
    for receiver in receivers:
        app.router.add_post(receiver.channel.webhook_path, _webhook_route(receiver, read_timeout))
    app.router.add_routes(extra_routes)

    async def healthz(request: web.Request) -> web.Response:
        # The receivers' database, or the given one when there is none (`ykien web serve`).
        database_of = sessionmaker or (receivers[0].sessionmaker if receivers else None)
        try:
            database = database_of is not None and await inbound.database_reachable(database_of)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("healthz: database unreachable: %s", type(exc).__name__)
            database = False
        busy = any(receiver.full for receiver in receivers)
        status = "unavailable" if not database else "busy" if busy else "ok"
        return web.json_response(
            {"status": status, "database": database,
             "backlog": sum(receiver.queued for receiver in receivers)},
            status=200 if status == "ok" else 503,
        )

    app.router.add_get("/healthz", healthz)
    return app


def _webhook_route(
    receiver: WebhookReceiver, read_timeout: float
) -> Callable[[web.Request], Awaitable[web.Response]]:
    channel = receiver.channel

    async def receive(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(read_timeout):
                body = await request.read()  # over client_max_size: 413 from aiohttp
        except TimeoutError:
            log.info("webhook: a %s request's body did not arrive in time", channel.name)
            return web.Response(status=408, headers={hdrs.CONNECTION: "close"})
        if too_deep(body):
            log.info("webhook: %s refused a body nested too deeply", channel.name)
            return web.Response(status=400)
        try:
            verdict = channel.verify(_ascii_headers(request.headers), body)
        except Exception as exc:  # hostile input our checks did not foresee: refused, noted
            log.warning("webhook: %s could not check a request (%s)", channel.name,
                        type(exc).__name__)
            return web.Response(status=400)
        if verdict is not None:
            log.warning("webhook: %s refused a request (%d)", channel.name, verdict)
            return web.Response(status=verdict)
        if receiver.full:
            return web.Response(status=503, headers={"Retry-After": "1"})
        try:
            payload_text = body.decode("utf-8")
            outcome = await receiver.accept(payload_text, json.loads(payload_text))
        except ValueError:  # JSON, UTF-8, or not an update
            return web.Response(status=400)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("webhook: could not store a %s update (%s); it will be retried",
                        channel.name, type(exc).__name__)
            return web.Response(status=503)
        except Exception as exc:  # a field of a shape the channel did not foresee
            log.warning("webhook: a %s update could not be read (%s); refused",
                        channel.name, type(exc).__name__)
            return web.Response(status=400)
        if outcome is Outcome.AGAIN:
            log.info("webhook: a %s update delivered again was ignored", channel.name)
        return web.Response(status=200)

    return receive
