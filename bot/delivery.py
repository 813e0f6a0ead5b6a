"""The delivery worker: sends queued broadcast rows through the channels and records outcomes.

Rows are claimed with a lease (status `sending` until `not_before`), so several workers can
share one database and a crashed worker's rows are taken up again once the lease runs out.

Nothing is delivered late: a row whose draft is closed or past its deadline is not sent but
marked `expired`, with the reason. A row that keeps failing temporarily is retried with a
growing delay and marked `failed` after MAX_ATTEMPTS. Times come from the worker's clock
(`now`), so tests and schedules can move it. Logs name residents by pseudonymous reference
only (handlers.logref), never by chat id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channel import Channel, PermanentFailure, TemporaryFailure, Throttled, Unreachable
from handlers.drafts import render_draft
from handlers.events import Reply
from handlers.i18n import translator
from handlers.logref import chat_ref
from storage import queries
from storage.models import Delivery, DeliveryStatus, Draft, DraftStatus, Resident, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5
BATCH = 100


@dataclass
class Progress:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unreachable: int = 0
    skipped: int = 0
    expired: int = 0


class Pacer:
    """Keeps a channel under its platform's send rate, and paused after a 429."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self.next_at = 0.0
        self.paused_until = 0.0

    async def wait(self) -> None:
        delay = self.next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.next_at = max(self.next_at, time.monotonic()) + self.interval

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def paused_for(self) -> float:
        """Seconds left of a channel-wide pause (0 when sending may go on)."""
        return max(0.0, self.paused_until - time.monotonic())


def why_expired(draft: Draft, now: datetime) -> str:
    """Why a message about this draft must not be sent any more ("" while it may be)."""
    if draft.status == DraftStatus.CLOSED:
        return "draft closed"
    if draft.deadline <= now:
        return "deadline passed"
    return ""


class DeliveryWorker:
    """Claims due deliveries for its channels and sends them.

    `recipient`, when given, restricts the worker to the rows of that one platform id (a
    console delivers to its own user only); `now` is the clock every due time is read from.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        *,
        recipient: str | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = dict(channels)
        self.recipient = recipient
        self.now = now
        self.pacers = {
            name: Pacer(getattr(channel, "messages_per_second", None))
            for name, channel in self.channels.items()
        }

    def for_recipient(self, platform_id: str) -> DeliveryWorker:
        """A worker on the same channels and clock that delivers to this one recipient only."""
        return DeliveryWorker(
            self.sessionmaker, self.channels, recipient=platform_id, now=self.now
        )

    async def _claim(self, session: AsyncSession) -> list[int]:
        now = self.now()
        active = [name for name, pacer in self.pacers.items() if not pacer.paused_for()]
        due = or_(
            Delivery.status == DeliveryStatus.PENDING, Delivery.status == DeliveryStatus.SENDING
        )
        candidates = (
            select(Delivery.id)
            .where(Delivery.channel.in_(active), due, Delivery.not_before <= now)
            .order_by(Delivery.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        if self.recipient is not None:
            # A subquery rather than a join, so FOR UPDATE locks delivery rows only.
            recipient_ids = select(Resident.id).where(Resident.platform_id == self.recipient)
            candidates = candidates.where(Delivery.resident_id.in_(recipient_ids))
        ids = (await session.scalars(candidates)).all()
        if not ids:
            await session.commit()
            return []
        # Conditional update: on SQLite (no row locks) a row another worker took is not taken.
        claimed = await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(ids), due, Delivery.not_before <= now)
            .values(
                status=DeliveryStatus.SENDING,
                not_before=now + LEASE,
                attempts=Delivery.attempts + 1,
            )
            .returning(Delivery.id)
        )
        result = sorted(claimed.all())
        await session.commit()
        return result

    async def run_once(self) -> Progress:
        """Send every delivery that is due now; returns what happened."""
        progress = Progress()
        while True:
            async with self.sessionmaker() as session:
                ids = await self._claim(session)
                if not ids:
                    return progress
                rows = await session.execute(
                    select(Delivery, Resident, Draft)
                    .join(Resident, Resident.id == Delivery.resident_id)
                    .join(Draft, Draft.id == Delivery.draft_id)
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.id)
                )
                rendered: dict[tuple[int, str], Reply] = {}
                for delivery, resident, draft in rows.all():
                    key = (draft.id, resident.language)
                    if key not in rendered:
                        rendered[key] = render_draft(draft, translator(resident.language))
                    await self._deliver(
                        session, delivery, resident, draft, rendered[key], progress
                    )

    async def _deliver(
        self,
        session: AsyncSession,
        delivery: Delivery,
        resident: Resident,
        draft: Draft,
        message: Reply,
        progress: Progress,
    ) -> None:
        """Send one claimed row and record the outcome (committed at once, row by row)."""
        ref = chat_ref(delivery.channel, resident.platform_id)
        if self._withhold(delivery, resident, draft, progress):
            log.info("delivery %s to %s not sent: %s", delivery.id, ref, delivery.error)
            await session.commit()
            return
        channel = self.channels[delivery.channel]
        pacer = self.pacers[delivery.channel]
        paused_for = pacer.paused_for()
        if paused_for:
            # The platform said to wait: hand the row back rather than hold the worker.
            self._retry_later(delivery, paused_for, "paused", count_attempt=False)
            await session.commit()
            return
        await pacer.wait()
        try:
            message_id = await channel.send(resident.platform_id, message)
        except Throttled as error:
            pacer.pause(error.retry_after)
            self._retry_later(delivery, error.retry_after, str(error), count_attempt=False)
            progress.retried += 1
        except Unreachable as error:
            delivery.status = DeliveryStatus.UNREACHABLE
            delivery.error = str(error)[:300]
            resident.reachable = False
            progress.unreachable += 1
            log.info("delivery %s: %s is unreachable", delivery.id, ref)
        except TemporaryFailure as error:
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                delivery.error = str(error)[:300]
                progress.failed += 1
                log.warning("delivery %s to %s failed after %d attempts",
                            delivery.id, ref, delivery.attempts)
            else:
                self._retry_later(delivery, 2 ** delivery.attempts, str(error))
                progress.retried += 1
        except PermanentFailure as error:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = str(error)[:300]
            progress.failed += 1
            log.warning("delivery %s to %s refused by the platform", delivery.id, ref)
        else:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = self.now()
            delivery.error = ""
            progress.sent += 1
            if message_id and delivery.draft_id is not None:
                await queries.remember_message(session, resident, message_id, delivery.draft_id)
        await session.commit()

    def _withhold(
        self, delivery: Delivery, resident: Resident, draft: Draft, progress: Progress
    ) -> bool:
        """Settle a row that must not be sent now (too late, or nobody to send to)."""
        expired = why_expired(draft, self.now())
        if expired:
            delivery.status = DeliveryStatus.EXPIRED
            delivery.error = expired
            progress.expired += 1
            return True
        if not (resident.subscribed and resident.reachable):
            delivery.status = DeliveryStatus.SKIPPED
            delivery.error = "resident stopped" if not resident.subscribed else "unreachable"
            progress.skipped += 1
            return True
        return False

    def _retry_later(
        self, delivery: Delivery, seconds: float, reason: str, count_attempt: bool = True
    ) -> None:
        delivery.status = DeliveryStatus.PENDING
        delivery.not_before = self.now() + timedelta(seconds=seconds)
        delivery.error = reason[:300]
        if not count_attempt:
            delivery.attempts -= 1  # being told to wait is not a failed attempt

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until `stop` is set, checking for new work every `idle_seconds`."""
        while not stop.is_set():
            try:
                progress = await self.run_once()
                if progress.sent or progress.failed or progress.unreachable or progress.expired:
                    log.info("delivery: %s", progress)
            except Exception:
                log.exception("delivery pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_seconds)
