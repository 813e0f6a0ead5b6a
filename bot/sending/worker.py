"""The delivery worker: sends the outbox's due rows through the channels, and records outcomes.

Each pass claims a batch per channel (storage.outbox: a lease with a fencing token, so several
workers share one database and a dead worker's rows come back when its lease runs out),
sends up to `concurrency` messages at once, each after the channel's limiter allows it, and
writes the outcomes by group commit: whatever finished is written as soon as the previous
write is done, in one transaction, while the next messages are sent. So a crash resends only
the messages in flight: those sent and not answered yet, and those whose outcome was being
written (or waiting for the write under way, which lasts one database round); never more
than twice the concurrency in all.

- Too late: a draft's row after its deadline or close, a ready message after `expires_at`,
  is not sent but marked `expired`, with the reason; nor is a row whose resident stopped.
- 429: the whole channel waits `retry_after` (the limiter and this worker); rows not sent yet
  go back to the queue without counting an attempt.
- Temporary failure: retried with exponential backoff and jitter, `failed` after
  `max_attempts` (or `expired` if the expiry comes first). When different rows keep failing
  one after another the channel is down: it is held with growing pauses and its rows go back
  without counting, so an outage costs nobody their attempts.
- Blocked (403): the row is `unreachable` and so is the resident, until they write again.
- Outside the channel's messaging window (Zalo OA: no message from the resident for 7 days,
  known from `last_seen_at` or said by the platform): the row is `held`, without using an
  attempt, until the resident writes (storage.outbox.release_held).
- A disabled channel (its configuration is wrong): its rows stay queued and the channel
  pauses, asked again every minute. A platform that says when to retry (`retry_at`) gets
  the row back then, without using an attempt.
- After a hold (or at start) one message goes first; full concurrency once it got an answer.
- Stop: no new send starts, the ones in flight finish, and claimed rows not started go back
  to the queue at once, their attempt not counted.

Times come from the worker's clock (`now`); logs name residents by pseudonymous reference
(handlers.logref), never by chat id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import (
    Channel,
    ChannelDisabled,
    OutsideWindow,
    PermanentFailure,
    TemporaryFailure,
    Throttled,
    Unreachable,
)
from bot.channels.pacing import Priority
from bot.config import DeliveryConfig
from handlers.drafts import render_draft
from handlers.events import Outgoing
from handlers.i18n import translator
from handlers.logref import chat_ref
from handlers.payload import PayloadError, decode_reply
from storage import outbox
from storage.db import gave_way
from storage.models import DeliveryKind, DeliveryStatus, utcnow
from storage.outbox import Claim, ClaimedRow, Outcome, why_expired

log = logging.getLogger(__name__)

BATCH = 500  # rows claimed at once per channel (fewer on a slow channel, see _batch_size)
# A pause, cancel or close reaches a batch under way at its first write of outcomes, then
# within this long: checking the rows still queued costs a query as long as the queue.
RECHECK_SECONDS = 1.0
OUTAGE_ROWS = 5  # this many different rows failing in a row: the channel is down
DISABLED_PAUSE = timedelta(minutes=1)  # a disabled channel is asked again this often
# Tries at writing a batch's outcomes when PostgreSQL makes the write give way (a deadlock).
OUTCOME_WRITES = 3
LEASE_MARGIN = 0.25  # no send starts in the last quarter of its lease


@dataclass
class Progress:
    """What a pass did, by recorded outcome."""

    sent: int = 0
    failed: int = 0
    retried: int = 0  # to be tried again later; the attempt counted
    unreachable: int = 0
    skipped: int = 0
    expired: int = 0
    deferred: int = 0  # given back to the queue without counting an attempt
    held: int = 0  # waiting for the resident to open the messaging window
    lost: int = 0  # outcome not recorded: another worker had reclaimed the row

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


class _Tally(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRIED = "retried"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    DEFERRED = "deferred"
    HELD = "held"
    WITHDRAWN = "withdrawn"  # no longer ours: nothing to record


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    tally: _Tally


class _Lane:
    """One channel as this worker sends through it: its limiter, holds and failure streak."""

    def __init__(self, name: str, channel: Channel) -> None:
        self.name = name
        self.channel = channel
        self.limiter = channel.limiter
        # Rows of residents silent for longer are held, not sent (None: no window).
        self.window = channel.capabilities.messaging_window
        self.proven = False  # a send got an answer since the last hold: full concurrency
        self.streak: set[int] = set()  # rows failing temporarily one after another
        self.outage = 0  # consecutive outage holds (0: none)
        self.held_until: datetime | None = None  # this worker's hold (the worker's clock)
        self.hold_reason = outbox.HoldReason.OUTAGE  # why this worker's hold
        self.hold_detail = ""
        self.hold_noted: datetime | None = None  # the hold last written for everyone to see
        self.epoch = 0  # bumped by each hold, so a send knows a hold began after it started
        self.interrupt: asyncio.Future[None] | None = None  # the batch being sent

    def held_for(self, now: datetime) -> float:
        """Seconds before this channel may send again (0 when it may)."""
        held = (self.held_until - now).total_seconds() if self.held_until else 0.0
        return max(held, self.limiter.paused_for(), 0.0)

    def hold(self, until: datetime, reason: outbox.HoldReason, detail: str = "") -> None:
        """Stop starting sends until `until`; the batch being sent gives its rows back."""
        self.held_until = until if self.held_until is None else max(self.held_until, until)
        self.hold_reason, self.hold_detail = reason, detail
        self.proven = False
        self.epoch += 1
        _resolve(self.interrupt)

    def answered(self) -> None:
        """The platform answered (sent, blocked or refused): it is up."""
        self.proven = True
        self.streak.clear()
        self.outage = 0


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class DeliveryWorker:
    """Claims due deliveries for its channels and sends them.

    `recipient`, when given, restricts the worker to the rows of that one platform id (a
    console delivers to its own user only); `now` is the clock every due time is read from.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        config: DeliveryConfig = DeliveryConfig(),  # noqa: B008 (frozen, so shared safely)
        *,
        recipient: str | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = dict(channels)
        self.config = config
        self.recipient = recipient
        self.now = now
        self.lease = timedelta(seconds=config.lease_seconds)
        self._lanes = {name: _Lane(name, channel) for name, channel in self.channels.items()}
        self._random = random.Random()

    def for_recipient(self, platform_id: str) -> DeliveryWorker:
        """A worker on the same channels, settings and clock that delivers to one recipient."""
        return DeliveryWorker(
            self.sessionmaker, self.channels, self.config, recipient=platform_id, now=self.now
        )

    async def run_once(self) -> Progress:
        """Send every delivery that is due now; returns what happened."""
        return await self._pass(asyncio.Event())

    async def run(self, stop: asyncio.Event, idle_seconds: float | None = None) -> None:
        """Deliver until `stop` is set, looking for new work every `idle_seconds`.

        Returns promptly once `stop` is set: sends in flight finish, claimed rows not started
        go back to the queue.
        """
        idle = self.config.idle_seconds if idle_seconds is None else idle_seconds
        while not stop.is_set():
            try:
                progress = await self._pass(stop)
                if progress:
                    log.info("delivery: %s", progress)
            except Exception:
                log.exception("delivery pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle)

    async def _pass(self, stop: asyncio.Event) -> Progress:
        progress = Progress()
        results = await asyncio.gather(
            *(self._drain(lane, stop, progress) for lane in self._lanes.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return progress

    def _batch_size(self, lane: _Lane) -> int:
        """A batch small enough to be sent well within its lease at the channel's pace."""
        rate = getattr(lane.limiter, "rate", 0) or 0
        if not rate:
            return BATCH
        return max(1, min(BATCH, int(rate * self.config.lease_seconds * LEASE_MARGIN)))

    async def _drain(self, lane: _Lane, stop: asyncio.Event, progress: Progress) -> None:
        """Claim and send batches of one channel until none is due (or it is held, or stop)."""
        while not stop.is_set():
            now = self.now()
            if lane.held_for(now):
                await self._note_hold(lane, now)
                return
            async with self.sessionmaker() as session, session.begin():
                claim = await outbox.claim(
                    session, lane.name, now, self.lease, self._batch_size(lane), self.recipient
                )
            if not claim.rows:
                return
            await self._send_batch(lane, claim, now, stop, progress)

    async def _note_hold(self, lane: _Lane, now: datetime) -> None:
        """Write a new hold of the channel where `ykien draft status` reads it."""
        until = now + timedelta(seconds=lane.held_for(now))
        if lane.hold_noted is not None and abs((until - lane.hold_noted).total_seconds()) < 1:
            return
        if lane.held_until is not None and lane.held_until > now:
            hold = outbox.ChannelHold(until, lane.hold_reason, lane.hold_detail)
        else:  # only the limiter waits: a reply was answered 429
            hold = outbox.ChannelHold(until, outbox.HoldReason.THROTTLED)
        async with self.sessionmaker() as session, session.begin():
            await outbox.note_hold(session, lane.name, hold)
        lane.hold_noted = until

    async def _send_batch(
        self, lane: _Lane, claim: Claim, claimed_at: datetime, stop: asyncio.Event,
        progress: Progress,
    ) -> None:
        concurrency = self.config.concurrency
        interrupt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.interrupt = interrupt
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: _resolve(interrupt))
        results: list[_Result] = []
        queue: deque[tuple[ClaimedRow, Outgoing]] = deque()
        rendered: dict[tuple[int, str], Outgoing] = {}
        for row in claim.rows:
            prepared = self._prepare(lane, row, claim, rendered)
            if isinstance(prepared, _Result):
                results.append(prepared)
            else:
                queue.append((row, prepared))
        lease_end = claimed_at + self.lease * (1 - LEASE_MARGIN)
        running: set[asyncio.Task[_Result]] = set()
        # Group commit: the outcomes gathered are written as soon as the previous write has
        # finished, while the next ones are being sent; at most one write at a time.
        writing: asyncio.Task[None] | None = None
        being_written = 0
        rechecked_at: float | None = None
        try:
            while queue or running or results or writing is not None:
                if writing is not None and writing.done():
                    writing.result()  # a write that failed fails the batch, as before
                    writing, being_written = None, 0
                    continue
                if queue and interrupt.done():
                    # Stop, or the channel is held: what has not started goes back at once.
                    retry_at = self._resume_time(lane)
                    results += [self._give_back(row, retry_at) for row, _ in queue]
                    queue.clear()
                    continue
                if results and writing is None:
                    now = time.monotonic()
                    if queue and (rechecked_at is None or now - rechecked_at >= RECHECK_SECONDS):
                        # Rows an official withdrew since the claim leave the queue: nothing
                        # may start meanwhile, so this write is awaited here.
                        rechecked_at = now
                        await self._flush(claim.token, results, progress, queue)
                        continue
                    batch = results[:]
                    results.clear()
                    being_written = len(batch)
                    writing = asyncio.create_task(self._flush(claim.token, batch, progress))
                    continue
                limit = concurrency if lane.proven else 1
                unrecorded = len(running) + len(results) + being_written
                if queue and len(running) < limit and unrecorded < 2 * concurrency:
                    row, message = queue.popleft()
                    running.add(asyncio.create_task(
                        self._send(lane, row, message, interrupt, lease_end)
                    ))
                    continue
                waiting: set[asyncio.Future[Any]] = set(running)
                if queue:
                    waiting.add(interrupt)
                if writing is not None:
                    waiting.add(writing)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done & running:
                    running.discard(task)
                    results.append(task.result())
        finally:
            # Reached with tasks still running only when cancelled (the process is going
            # away): nothing more is recorded, and the lease brings the rows back.
            for task in running:
                task.cancel()
            if writing is not None and not writing.done():
                writing.cancel()
            stopping.cancel()
            lane.interrupt = None

    def _prepare(
        self, lane: _Lane, row: ClaimedRow, claim: Claim,
        rendered: dict[tuple[int, str], Outgoing],
    ) -> Outgoing | _Result:
        """The message to send, or the outcome of a row that must not be sent now."""
        now = self.now()
        draft = claim.drafts.get(row.draft_id) if row.draft_id is not None else None
        if row.kind == DeliveryKind.DRAFT:
            expired = why_expired(draft, now) if draft is not None else "draft deleted"
        else:
            expired = "expired" if row.expires_at is not None and row.expires_at <= now else ""
        withheld = None
        if expired:
            withheld = _Result(Outcome(row.id, DeliveryStatus.EXPIRED, expired), _Tally.EXPIRED)
        elif not (row.subscribed and row.reachable):
            reason = "resident stopped" if not row.subscribed else "unreachable"
            withheld = _Result(Outcome(row.id, DeliveryStatus.SKIPPED, reason), _Tally.SKIPPED)
        elif self._outside_window(lane, row, now):
            withheld = self._held(row)
        if withheld is not None:
            log.info("delivery %s to %s not sent: %s", row.id, self._ref(lane, row),
                     withheld.outcome.error)
            return withheld
        if row.kind == DeliveryKind.DRAFT:
            assert draft is not None
            key = (draft.id, row.language)
            if key not in rendered:
                rendered[key] = render_draft(
                    draft, translator(row.language),
                    reply_hint=lane.channel.capabilities.replies_to_messages,
                )
            return rendered[key]
        try:
            return decode_reply(row.payload)
        except PayloadError as error:
            log.warning("delivery %s: %s", row.id, error)
            return _Result(Outcome(row.id, DeliveryStatus.FAILED, str(error)), _Tally.FAILED)

    async def _send(
        self, lane: _Lane, row: ClaimedRow, message: Outgoing,
        interrupt: asyncio.Future[None], lease_end: datetime,
    ) -> _Result:
        """Wait for the channel's pace, send one message, and say what became of it."""
        epoch = lane.epoch
        turn = asyncio.ensure_future(lane.limiter.acquire(row.platform_id, Priority.BROADCAST))
        try:
            await asyncio.wait({turn, interrupt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not turn.done():
                turn.cancel()
        if not turn.done() or turn.cancelled() or interrupt.done() or epoch != lane.epoch:
            return self._give_back(row, self._resume_time(lane))
        if turn.exception() is not None:
            # Not this row's fault; a short hold keeps a broken limiter from spinning the loop.
            log.warning("delivery: %s pacing failed, holding the channel briefly: %r",
                        lane.name, turn.exception())
            lane.hold(self.now() + timedelta(seconds=self.config.idle_seconds),
                      outbox.HoldReason.OUTAGE, "pacing failed")
            return self._give_back(row, self._resume_time(lane))
        if self.now() >= lease_end:
            # Too close to the end of the lease: another worker may take the row any moment.
            return self._give_back(row, self.now())
        ref = self._ref(lane, row)
        try:
            message_id = await lane.channel.send(row.platform_id, message)
        except Throttled as error:
            now = self.now()
            lane.limiter.pause(error.retry_after)
            lane.hold(now + timedelta(seconds=error.retry_after), outbox.HoldReason.THROTTLED,
                      str(error))
            log.info("delivery: %s asks to wait %ss", lane.name, error.retry_after)
            return self._give_back(row, lane.held_until or now, str(error))
        except OutsideWindow:
            lane.answered()
            log.info("delivery %s: %s is outside the messaging window", row.id, ref)
            return self._held(row)
        except ChannelDisabled as error:
            # Every row would fail alike: pause the channel, its rows stay queued.
            lane.hold(self.now() + DISABLED_PAUSE, outbox.HoldReason.DISABLED, str(error))
            log.warning("delivery: %s is disabled, its messages wait: %s", lane.name, error)
            return self._give_back(row, self._resume_time(lane), str(error))
        except Unreachable as error:
            lane.answered()
            log.info("delivery %s: %s is unreachable", row.id, ref)
            return _Result(Outcome(row.id, DeliveryStatus.UNREACHABLE, str(error)),
                           _Tally.UNREACHABLE)
        except PermanentFailure as error:
            lane.answered()
            log.warning("delivery %s to %s refused by the platform", row.id, ref)
            return _Result(Outcome(row.id, DeliveryStatus.FAILED, str(error)), _Tally.FAILED)
        except TemporaryFailure as error:
            if error.retry_at is not None:  # the platform said when: not this row's fault
                lane.answered()
                return self._later(row, error.retry_at, str(error))
            return self._temporary(lane, row, epoch, str(error))
        except Exception as error:  # an adapter's bug: this row fails, the others go on
            log.exception("delivery %s: the %s channel failed unexpectedly", row.id, lane.name)
            return self._temporary(lane, row, epoch, f"{type(error).__name__}: {error}")
        lane.answered()
        return _Result(Outcome(row.id, DeliveryStatus.SENT, message_id=message_id or ""),
                       _Tally.SENT)

    def _temporary(self, lane: _Lane, row: ClaimedRow, epoch: int, error: str) -> _Result:
        """A temporary failure: retry the row, or hold the channel if it seems down."""
        now = self.now()
        if epoch != lane.epoch:
            # The channel was held while this send was under way: the same trouble.
            return self._give_back(row, self._resume_time(lane), error)
        if lane.outage:
            # The first send after an outage hold failed too: the outage goes on. This row's
            # attempt counts, so a row that always fails is not tried first forever.
            lane.outage += 1
            lane.hold(now + self._backoff(lane.outage), outbox.HoldReason.OUTAGE, error)
        else:
            lane.streak.add(row.id)
            if len(lane.streak) >= OUTAGE_ROWS:
                lane.outage = 1
                lane.hold(now + self._backoff(lane.outage), outbox.HoldReason.OUTAGE, error)
                log.warning("delivery: %s seems down (%d messages failed in a row): holding "
                            "it until %s", lane.name, len(lane.streak), lane.held_until)
                return self._give_back(row, self._resume_time(lane), error)
        return self._retry(row, error, now)

    def _retry(self, row: ClaimedRow, error: str, now: datetime) -> _Result:
        if row.attempts >= self.config.max_attempts:
            log.warning("delivery %s failed after %d attempts", row.id, row.attempts)
            return _Result(Outcome(row.id, DeliveryStatus.FAILED, error), _Tally.FAILED)
        retry_at = now + self._backoff(row.attempts)
        if row.expires_at is not None and retry_at >= row.expires_at:
            return _Result(
                Outcome(row.id, DeliveryStatus.EXPIRED, f"expires before a retry: {error}"),
                _Tally.EXPIRED,
            )
        return _Result(Outcome(row.id, DeliveryStatus.PENDING, error, retry_at), _Tally.RETRIED)

    def _backoff(self, step: int) -> timedelta:
        """Exponential from `retry_base_seconds`, capped, with jitter (half to all of it)."""
        config = self.config
        delay = min(config.retry_cap_seconds, config.retry_base_seconds * 2 ** min(step - 1, 40))
        return timedelta(seconds=delay * self._random.uniform(0.5, 1.0))

    def _resume_time(self, lane: _Lane) -> datetime:
        now = self.now()
        return now + timedelta(seconds=lane.held_for(now))

    @staticmethod
    def _give_back(row: ClaimedRow, retry_at: datetime, error: str | None = None) -> _Result:
        return _Result(
            Outcome(row.id, DeliveryStatus.PENDING, error, retry_at, count_attempt=False),
            _Tally.DEFERRED,
        )

    @staticmethod
    def _later(row: ClaimedRow, retry_at: datetime, error: str) -> _Result:
        if row.expires_at is not None and retry_at >= row.expires_at:
            return _Result(
                Outcome(row.id, DeliveryStatus.EXPIRED, f"expires before it may go: {error}"),
                _Tally.EXPIRED,
            )
        return _Result(
            Outcome(row.id, DeliveryStatus.PENDING, error, retry_at, count_attempt=False),
            _Tally.DEFERRED,
        )

    @staticmethod
    def _outside_window(lane: _Lane, row: ClaimedRow, now: datetime) -> bool:
        """Known to be outside the channel's messaging window: no use asking the platform."""
        window = lane.window
        return window is not None and row.last_seen_at is not None and (
            row.last_seen_at < now - window)

    @staticmethod
    def _held(row: ClaimedRow) -> _Result:
        # Sent when the resident next writes (storage.outbox.release_held); no attempt used.
        return _Result(
            Outcome(row.id, DeliveryStatus.HELD, "outside the messaging window",
                    count_attempt=False),
            _Tally.HELD,
        )

    def _withdraw(self, row: ClaimedRow, verdict: str, now: datetime) -> _Result:
        """What becomes of a row found cancelled, paused or closed before it was sent."""
        if verdict == outbox.GONE:
            log.info("delivery %s: withdrawn before sending (cancelled or taken over)", row.id)
            return _Result(Outcome(row.id, DeliveryStatus.CANCELLED), _Tally.WITHDRAWN)
        if verdict == outbox.PAUSED:
            return self._give_back(row, now)
        return _Result(Outcome(row.id, DeliveryStatus.EXPIRED, verdict), _Tally.EXPIRED)

    @staticmethod
    def _ref(lane: _Lane, row: ClaimedRow) -> str:
        return chat_ref(lane.name, row.platform_id)

    async def _flush(
        self, token: str, results: list[_Result], progress: Progress,
        queue: deque[tuple[ClaimedRow, Outgoing]] | None = None,
    ) -> None:
        """Write the outcomes gathered so far, in one transaction.

        With the rows still to send (`queue`), also drop those an official cancelled, paused
        or closed since the claim.
        """
        if not results:
            return
        batch = results[:]
        results.clear()
        for attempt in range(1, OUTCOME_WRITES + 1):
            try:
                recorded = await self._write_outcomes(token, batch, queue)
                break
            except Exception as error:
                # The messages were sent: writing their outcomes again beats sending them
                # twice once the lease runs out.
                if not gave_way(error) or attempt == OUTCOME_WRITES:
                    raise
                log.info("delivery outcomes gave way to another transaction; writing again")
        for result in batch:
            delivery_id = result.outcome.delivery_id
            if result.tally == _Tally.WITHDRAWN or delivery_id in recorded.cancelled:
                continue
            if delivery_id in recorded.ids:
                field_name = result.tally.value
                setattr(progress, field_name, getattr(progress, field_name) + 1)
            else:
                progress.lost += 1
                log.warning(
                    "delivery %s: another worker took the row over (lease ran out); "
                    "outcome %s not recorded", result.outcome.delivery_id, result.tally.value,
                )

    async def _write_outcomes(
        self, token: str, batch: list[_Result],
        queue: deque[tuple[ClaimedRow, Outgoing]] | None,
    ) -> outbox.Recorded:
        """One transaction: drop from `queue` what was withdrawn since the claim (its
        outcome joins `batch`), and record the outcomes of `batch`."""
        async with self.sessionmaker() as session, session.begin():
            if queue:
                now = self.now()
                verdicts = await outbox.recheck(session, token, [row.id for row, _ in queue], now)
                if verdicts:
                    kept = [(row, message) for row, message in queue if row.id not in verdicts]
                    batch += [self._withdraw(row, verdicts[row.id], now)
                              for row, _ in queue if row.id in verdicts]
                    queue.clear()
                    queue.extend(kept)
            # Withdrawn rows go too: one an official cancelled is released (record).
            return await outbox.record(
                session, token, [result.outcome for result in batch], self.now())
