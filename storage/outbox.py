"""The outbox in SQL: queue, claim with a fenced lease, record outcomes, officials' controls.

A worker claims due rows (status `sending`, `not_before` = end of the lease, a fresh
`lease_token`, `attempts` + 1). Every outcome it writes names the token, so a worker whose
lease ran out, and whose rows another worker has claimed since, records nothing over them.

None of these functions commits: the caller owns the unit of work.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import reach
from storage.models import (
    AppSetting,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Draft,
    DraftMessage,
    DraftStatus,
    Resident,
    utcnow,
)
from storage.queries import affected, dialect_insert, insert_unless_present

# Statuses a row never leaves by itself (an official's retry aside): purged after retention.
FINISHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.UNREACHABLE,
)
QUEUED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
# Not sent yet and not being sent: due some time, or held for the resident's window.
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.HELD)
ERROR_LENGTH = 300  # Delivery.error


# ---- TEXT payloads ------------------------------------------------------------------------


async def enqueue_text(
    session: AsyncSession,
    resident: Resident,
    key: str,
    payload: str,
    expires_at: datetime | None,
    *,
    draft_id: int | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue a ready message for one resident, once per `key`; False when the key was queued.

    Reminders, answers and the published response use this. A TEXT row expires only at
    `expires_at` (a closed draft does not stop it: the published response follows the close);
    `payload` is the message as handlers.payload encodes it; `draft_id` is kept so a reply
    to the message counts as a comment on that draft.
    """
    queued_at = now or utcnow()
    return await insert_unless_present(
        session,
        Delivery,
        kind=DeliveryKind.TEXT.value,
        dedup_key=key,
        draft_id=draft_id,
        resident_id=resident.id,
        channel=resident.channel,
        payload=payload,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        not_before=not_before or queued_at,
        lease_token="",
        expires_at=expires_at,
        created_at=queued_at,
        error="",
    )


# ---- claiming -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedRow:
    """A claimed delivery with what sending it needs."""

    id: int
    kind: str
    draft_id: int | None
    payload: str
    attempts: int  # this attempt included
    expires_at: datetime | None
    resident_id: int
    platform_id: str
    language: str
    subscribed: bool
    reachable: bool
    # When the resident last wrote: a channel with a messaging window holds the row if long ago.
    last_seen_at: datetime | None = None


@dataclass
class Claim:
    """Rows claimed together: one lease token fences every outcome written for them."""

    token: str
    rows: list[ClaimedRow]
    drafts: dict[int, Draft] = field(default_factory=dict)  # the DRAFT rows' drafts


def _due(now: datetime) -> Any:
    # A `sending` row whose lease ran out (its worker died) is due again.
    return and_(Delivery.status.in_(QUEUED), Delivery.not_before <= now)


async def claim(
    session: AsyncSession,
    channel: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    recipient: str | None = None,
) -> Claim:
    """Claim up to `limit` due rows of one channel, oldest due first, for `lease`.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so workers never wait for or share rows. SQLite
    ignores it; there the single UPDATE runs under the database's write lock, which serialises
    claims just as well. Rows of paused drafts stay queued.
    """
    paused = select(Draft.id).where(Draft.paused.is_(True))
    candidates = (
        select(Delivery.id)
        .where(
            _due(now),
            Delivery.channel == channel,
            or_(
                Delivery.kind != DeliveryKind.DRAFT,
                Delivery.draft_id.is_(None),
                Delivery.draft_id.not_in(paused),
            ),
        )
        .order_by(Delivery.not_before, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if recipient is not None:
        # A subquery rather than a join, so FOR UPDATE locks delivery rows only.
        recipients = select(Resident.id).where(Resident.platform_id == recipient)
        candidates = candidates.where(Delivery.resident_id.in_(recipients))
    token = secrets.token_hex(16)
    claimed = (
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(candidates.scalar_subquery()), _due(now))
            .values(
                status=DeliveryStatus.SENDING,
                not_before=now + lease,
                lease_token=token,
                attempts=Delivery.attempts + 1,
            )
            .returning(
                Delivery.id, Delivery.kind, Delivery.draft_id, Delivery.payload,
                Delivery.attempts, Delivery.expires_at, Delivery.resident_id,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed:
        return Claim(token, [])
    residents = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    Resident.id, Resident.platform_id, Resident.language, Resident.subscribed,
                    Resident.reachable, Resident.last_seen_at,
                ).where(Resident.id.in_({row.resident_id for row in claimed}))
            )
        ).all()
    }
    rows = [
        ClaimedRow(
            row.id, row.kind, row.draft_id, row.payload, row.attempts, row.expires_at,
            row.resident_id, resident.platform_id, resident.language, resident.subscribed,
            resident.reachable, resident.last_seen_at,
        )
        for row in sorted(claimed, key=lambda row: row.id)
        if (resident := residents.get(row.resident_id)) is not None
    ]
    draft_ids = {row.draft_id for row in rows if row.kind == DeliveryKind.DRAFT and row.draft_id}
    drafts = {}
    if draft_ids:
        drafts = {
            draft.id: draft
            for draft in (await session.scalars(select(Draft).where(Draft.id.in_(draft_ids))))
        }
    return Claim(token, rows, drafts)


def why_expired(draft: Draft, now: datetime) -> str:
    """Why a message about this draft must not be sent any more ("" while it may be)."""
    return _expiry(draft.status, draft.deadline, now)


def _expiry(status: str, deadline: datetime, now: datetime) -> str:
    if status == DraftStatus.CLOSED:
        return "draft closed"
    if deadline <= now:
        return "deadline passed"
    return ""


GONE = "gone"  # cancelled, or claimed by another worker since
PAUSED = "paused"


async def recheck(
    session: AsyncSession, token: str, ids: Sequence[int], now: datetime
) -> dict[int, str]:
    """Which claimed rows, not sent yet, must not be sent after all, and why.

    GONE: no longer ours (an official cancelled it, or our lease ran out and another worker
    took it); PAUSED: its draft was paused; else the reason it expired (see why_expired).
    """
    rows = await session.execute(
        select(Delivery.id, Delivery.status, Delivery.lease_token, Draft.id, Draft.paused,
               Draft.status, Draft.deadline)
        .outerjoin(Draft, and_(Draft.id == Delivery.draft_id,
                               Delivery.kind == DeliveryKind.DRAFT))
        .where(Delivery.id.in_(ids))
    )
    verdicts = dict.fromkeys(ids, GONE)
    for delivery_id, status, lease_token, draft_id, paused, draft_status, deadline in rows:
        if status != DeliveryStatus.SENDING or lease_token != token:
            continue
        verdict = ""
        if draft_id is not None:
            verdict = PAUSED if paused else _expiry(draft_status, deadline, now)
        if verdict:
            verdicts[delivery_id] = verdict
        else:
            del verdicts[delivery_id]
    return verdicts


# ---- outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed row.

    PENDING hands the row back, due at `retry_at`; `count_attempt=False` gives back the
    attempt its claim counted (the platform asked us to wait, the worker stopped, the
    channel is down: no fault of the row's).
    """

    delivery_id: int
    status: DeliveryStatus
    error: str | None = ""  # None: keep the row's last error
    retry_at: datetime | None = None
    count_attempt: bool = True
    message_id: str = ""  # SENT: the platform's id, remembered for a draft's message


@dataclass(frozen=True)
class Recorded:
    """What `record` did with the outcomes it was given."""

    ids: set[int]  # outcomes written
    # Rows an official cancelled while they were claimed, and which did not go: they stay
    # cancelled, and the claim lets go of them (ykien draft cancel waits for that).
    cancelled: set[int]


async def record(
    session: AsyncSession, token: str, outcomes: Sequence[Outcome], now: datetime
) -> Recorded:
    """Write outcomes of rows claimed with `token`.

    A row is recorded only while it still carries the token and is still being sent: a
    row reclaimed by another worker (a new token) is left alone. A sent row is recorded
    even if an official cancelled it meanwhile, since the message did go; any other outcome
    of a row cancelled meanwhile (a CANCELLED outcome: withdrawn before sending) leaves it
    cancelled and releases it. Sent rows share one UPDATE, and the draft messages they
    showed one INSERT.
    """
    recorded: set[int] = set()
    sent = [outcome for outcome in outcomes if outcome.status == DeliveryStatus.SENT]
    if sent:
        rows = (
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_([outcome.delivery_id for outcome in sent]),
                    Delivery.lease_token == token,
                    Delivery.status.in_([DeliveryStatus.SENDING, DeliveryStatus.CANCELLED]),
                )
                .values(status=DeliveryStatus.SENT, sent_at=now, error="")
                .returning(Delivery.id, Delivery.resident_id, Delivery.draft_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        recorded.update(row.id for row in rows)
        message_ids = {outcome.delivery_id: outcome.message_id for outcome in sent}
        shown = [
            {"resident_id": row.resident_id, "message_id": message_ids[row.id],
             "draft_id": row.draft_id}
            for row in rows
            if row.draft_id is not None and message_ids[row.id]
        ]
        if shown:
            insert = dialect_insert(session)
            # One statement with many parameter sets: compiled once, then cached.
            await session.execute(insert(DraftMessage).on_conflict_do_nothing(), shown)
        # The drafts reached their persons: counted in the results after the row is purged.
        await reach.record_sent(session, [row.id for row in rows if row.draft_id is not None],
                                now)
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.status not in (DeliveryStatus.SENT, DeliveryStatus.CANCELLED):
            error = None if outcome.error is None else outcome.error[:ERROR_LENGTH]
            key = (outcome.status, error, outcome.retry_at, outcome.count_attempt)
            groups[key].append(outcome.delivery_id)
    for (status, error, retry_at, count_attempt), ids in groups.items():
        values: dict[str, Any] = {"status": status}
        if error is not None:
            values["error"] = error
        if retry_at is not None:
            values["not_before"] = retry_at
        if not count_attempt:
            values["attempts"] = Delivery.attempts - 1
        changed = (
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.lease_token == token,
                    Delivery.status == DeliveryStatus.SENDING,
                )
                .values(**values)
                .returning(Delivery.id, Delivery.resident_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        recorded.update(row.id for row in changed)
        if status == DeliveryStatus.UNREACHABLE and changed:
            # Left out of later broadcasts until they write again (handlers mark them back).
            await session.execute(
                update(Resident)
                .where(Resident.id.in_({row.resident_id for row in changed}))
                .values(reachable=False)
                .execution_options(synchronize_session=False)
            )
    not_sent = [outcome.delivery_id for outcome in outcomes
                if outcome.status != DeliveryStatus.SENT and outcome.delivery_id not in recorded]
    released: set[int] = set()
    if not_sent:
        released = set((await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(not_sent), Delivery.lease_token == token,
                   Delivery.status == DeliveryStatus.CANCELLED)
            .values(lease_token="")
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )).all())
    return Recorded(recorded, released)


# ---- the messaging window ----------------------------------------------------------------


def _too_late(now: datetime) -> Any:
    """Rows whose message may no longer go: past its expiry, or its draft closed or over."""
    return or_(
        and_(Delivery.expires_at.is_not(None), Delivery.expires_at <= now),
        and_(
            Delivery.kind == DeliveryKind.DRAFT,
            Delivery.draft_id.in_(select(Draft.id).where(
                or_(Draft.status == DraftStatus.CLOSED, Draft.deadline <= now)
            )),
        ),
    )


async def expire_held(session: AsyncSession, now: datetime) -> int:
    """Held rows whose resident never came back in time expire (housekeeping), so they
    count as over and are purged with the other finished rows."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.HELD, _too_late(now))
        .values(status=DeliveryStatus.EXPIRED.value, error="expired while held for the window")
        .execution_options(synchronize_session=False)
    )
    return affected(result)


async def release_held(session: AsyncSession, resident_id: int, now: datetime) -> int:
    """The resident wrote: their held messages are due now, except those too late by now
    (a draft closed or past its deadline, a message past its expiry), which expire. One
    statement; returns how many rows it changed."""
    too_late = _too_late(now)
    result = await session.execute(
        update(Delivery)
        .where(Delivery.resident_id == resident_id, Delivery.status == DeliveryStatus.HELD)
        .values(
            status=case((too_late, DeliveryStatus.EXPIRED.value),
                        else_=DeliveryStatus.PENDING.value),
            error=case((too_late, "expired while held for the window"), else_=""),
            not_before=now, lease_token="",
        )
        .execution_options(synchronize_session=False)
    )
    return affected(result)


PROMOTION_INTERVAL = timedelta(days=1)


async def reserve_promotion(
    session: AsyncSession, channel: str, platform_id: str, now: datetime
) -> datetime | None:
    """Take the resident's one promotion message of the day; None when taken, else when the
    next one is allowed."""
    resident = (Resident.channel == channel, Resident.platform_id == platform_id)
    taken = await session.execute(
        update(Resident)
        .where(*resident, or_(Resident.last_promotion_at.is_(None),
                              Resident.last_promotion_at <= now - PROMOTION_INTERVAL))
        .values(last_promotion_at=now)
        .execution_options(synchronize_session=False)
    )
    if affected(taken):
        return None
    last = await session.scalar(select(Resident.last_promotion_at).where(*resident))
    return (last or now) + PROMOTION_INTERVAL


# ---- officials' controls ------------------------------------------------------------------


def broadcast_rows(draft_id: Any) -> tuple[Any, ...]:
    """Where-clauses for the rows of a draft's broadcast (`draft_id` a number or a column);
    the draft's other messages (reminders, say) are TEXT rows and not part of it."""
    return (Delivery.draft_id == draft_id, Delivery.kind == DeliveryKind.DRAFT)


async def set_paused(session: AsyncSession, draft: Draft, paused: bool) -> bool:
    """Pause or resume a draft's broadcast; False when it already was so.

    Paused rows are not claimed; the few a worker already holds (one batch) still go.
    """
    if draft.paused == paused:
        return False
    draft.paused = paused
    await session.flush()
    return True


CANCELLED_IN_FLIGHT = "cancelled while being sent"


@dataclass(frozen=True)
class Cancellation:
    """What a cancel found: messages waiting, and messages a live worker was sending."""

    waiting: int  # pending, held, or claimed by a worker whose lease ran out: never sent
    in_flight: list[int]  # claimed by a live worker: those whose send had begun still go


async def cancel(session: AsyncSession, draft_id: int, now: datetime) -> Cancellation:
    """Cancel the draft's messages not sent yet, those held for a messaging window too.

    A message being sent at this moment may still go: it is then recorded as sent. The
    others a worker had claimed it withdraws at its next check (see recheck and record);
    `settling` follows them.
    """
    in_flight = and_(Delivery.status == DeliveryStatus.SENDING, Delivery.not_before > now)
    rows = (await session.execute(
        update(Delivery)
        .where(*broadcast_rows(draft_id), Delivery.status.in_((*WAITING, DeliveryStatus.SENDING)))
        .values(status=DeliveryStatus.CANCELLED,
                error=case((in_flight, CANCELLED_IN_FLIGHT), else_="cancelled"))
        .returning(Delivery.id, Delivery.error)
        .execution_options(synchronize_session=False)
    )).all()
    flying = [row.id for row in rows if row.error == CANCELLED_IN_FLIGHT]
    return Cancellation(len(rows) - len(flying), flying)


@dataclass(frozen=True)
class Settling:
    """Where messages cancelled while being sent stand."""

    went: int  # sent after all
    unsettled: int  # still cancelled, but a live worker's claim may send them yet


SETTLING_CHUNK = 1000  # ids per query (SQLite limits the parameters of a statement)


async def settling(session: AsyncSession, ids: Sequence[int], now: datetime) -> Settling:
    """Of these messages cancelled while being sent (Cancellation.in_flight), how many went,
    and how many a live worker still holds."""
    held = and_(Delivery.status == DeliveryStatus.CANCELLED, Delivery.lease_token != "",
                Delivery.not_before > now)
    went = unsettled = 0
    for start in range(0, len(ids), SETTLING_CHUNK):
        sent, holding = (await session.execute(
            select(func.coalesce(func.sum(case((Delivery.status == DeliveryStatus.SENT, 1),
                                               else_=0)), 0),
                   func.coalesce(func.sum(case((held, 1), else_=0)), 0))
            .where(Delivery.id.in_(ids[start:start + SETTLING_CHUNK]))
        )).one()
        went, unsettled = went + sent, unsettled + holding
    return Settling(went, unsettled)


async def expire_waiting(session: AsyncSession, draft_id: int, reason: str) -> int:
    """The draft's messages waiting to be sent (due, or held for a window) expire now; those
    being sent are stopped by their worker's recheck (see recheck). Returns how many."""
    result = await session.execute(
        update(Delivery)
        .where(*broadcast_rows(draft_id), Delivery.status.in_(WAITING))
        .values(status=DeliveryStatus.EXPIRED, error=reason)
        .execution_options(synchronize_session=False)
    )
    return affected(result)


async def expire_texts(session: AsyncSession, draft_id: int, key_prefix: str,
                       reason: str) -> int:
    """The draft's ready messages whose key starts so (its reminders), waiting to be sent,
    expire now (the draft closed early); returns how many."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.draft_id == draft_id, Delivery.kind == DeliveryKind.TEXT,
               Delivery.dedup_key.startswith(key_prefix, autoescape=True),
               Delivery.status.in_(WAITING))
        .values(status=DeliveryStatus.EXPIRED, error=reason)
        .execution_options(synchronize_session=False)
    )
    return affected(result)


async def keyed_counts(session: AsyncSession, key_prefix: str) -> dict[DeliveryStatus, int]:
    """The ready messages whose key starts so (a draft's reminders, its response), by
    status."""
    rows = await session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.dedup_key.startswith(key_prefix, autoescape=True))
        .group_by(Delivery.status))
    return {DeliveryStatus(status): count for status, count in rows.all()}


async def _requeue(
    session: AsyncSession, draft_id: int, status: DeliveryStatus, now: datetime
) -> int:
    result = await session.execute(
        update(Delivery)
        .where(*broadcast_rows(draft_id), Delivery.status == status)
        .values(status=DeliveryStatus.PENDING, attempts=0, not_before=now, error="",
                lease_token="")
        .execution_options(synchronize_session=False)
    )
    return affected(result)


async def retry_failed(session: AsyncSession, draft_id: int, now: datetime) -> int:
    """Queue the draft's failed messages again, with their attempts reset; returns how many."""
    return await _requeue(session, draft_id, DeliveryStatus.FAILED, now)


async def requeue_cancelled(session: AsyncSession, draft_id: int, now: datetime) -> int:
    """Queue the draft's cancelled messages again; returns how many."""
    return await _requeue(session, draft_id, DeliveryStatus.CANCELLED, now)


async def purge(session: AsyncSession, before: datetime) -> int:
    """Delete finished rows queued before `before`; returns how many."""
    result = await session.execute(
        delete(Delivery).where(Delivery.status.in_(FINISHED), Delivery.created_at < before)
    )
    return affected(result)


# ---- channel holds ------------------------------------------------------------------------


class HoldReason(StrEnum):
    """Why a worker stopped sending on a whole channel for a while."""

    OUTAGE = "outage"  # sends kept failing: the platform seems down
    THROTTLED = "throttled"  # the platform asked to wait (429)
    DISABLED = "disabled"  # the channel cannot send (its configuration, its authorisation)


@dataclass(frozen=True)
class ChannelHold:
    until: datetime
    reason: HoldReason
    detail: str = ""  # the platform's or the channel's words


HOLD_DETAIL_LENGTH = 200
_HOLD_KEY = "hold:"


async def note_hold(session: AsyncSession, channel: str, hold: ChannelHold) -> None:
    """Tell everyone (`ykien draft status`) that a worker holds the channel until then.

    Kept in app_settings, one row per channel, the latest hold winning: it ends by itself.
    """
    value = json.dumps({"until": hold.until.astimezone(UTC).isoformat(),
                        "reason": hold.reason.value,
                        "detail": hold.detail[:HOLD_DETAIL_LENGTH]}, ensure_ascii=False)
    key = _HOLD_KEY + channel
    if not await insert_unless_present(session, AppSetting, key=key, value=value):
        await session.execute(update(AppSetting).where(AppSetting.key == key).values(value=value)
                              .execution_options(synchronize_session=False))


async def channel_holds(
    session: AsyncSession, channels: Sequence[str], now: datetime
) -> dict[str, ChannelHold]:
    """The holds in force now on these channels."""
    rows = await session.execute(select(AppSetting.key, AppSetting.value).where(
        AppSetting.key.in_([_HOLD_KEY + channel for channel in channels])))
    holds = {}
    for key, value in rows.all():
        try:
            stored = json.loads(value)
            hold = ChannelHold(datetime.fromisoformat(stored["until"]),
                               HoldReason(stored["reason"]), str(stored.get("detail", "")))
        except (ValueError, KeyError, TypeError):
            continue  # written by another version: no hold known
        if hold.until > now:
            holds[key.removeprefix(_HOLD_KEY)] = hold
    return holds


# ---- progress -----------------------------------------------------------------------------


@dataclass
class QueueState:
    """Where a draft's broadcast stands."""

    counts: dict[str, int] = field(default_factory=dict)  # rows by status
    remaining_by_channel: dict[str, int] = field(default_factory=dict)  # pending or sending
    due: int = 0  # could be claimed now
    leased: int = 0  # held by a live worker's lease
    next_due: datetime | None = None  # earliest time a remaining row may be tried
    sent_last_minute: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, status: DeliveryStatus) -> int:
        return self.counts.get(status, 0)

    @property
    def remaining(self) -> int:
        return sum(self.remaining_by_channel.values())

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def draft_queue(session: AsyncSession, draft_id: int, now: datetime,
                      communes: Collection[int] | None = None) -> QueueState:
    """Counts of a draft's broadcast rows, in one query; only those to residents of
    `communes` (now) when given (an official's scope)."""

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    queued = Delivery.status.in_(QUEUED)
    rows = await session.execute(
        select(
            Delivery.status,
            Delivery.channel,
            func.count(),
            total(_due(now)),
            total(and_(Delivery.status == DeliveryStatus.SENDING, Delivery.not_before > now)),
            func.min(case((queued, Delivery.not_before))),
            total(Delivery.sent_at >= now - timedelta(minutes=1)),
        )
        .where(*broadcast_rows(draft_id), *_to_communes(communes))
        .group_by(Delivery.status, Delivery.channel)
    )
    state = QueueState()
    for status, channel, count, due, leased, next_due, recent in rows.all():
        state.counts[status] = state.counts.get(status, 0) + count
        if status in QUEUED:
            state.remaining_by_channel[channel] = (
                state.remaining_by_channel.get(channel, 0) + count
            )
        state.due += due
        state.leased += leased
        if next_due is not None:
            next_due = _aware(next_due)
            state.next_due = next_due if state.next_due is None else min(state.next_due, next_due)
        if recent:
            state.sent_last_minute[channel] = state.sent_last_minute.get(channel, 0) + recent
    return state


def _to_communes(communes: Collection[int] | None) -> tuple[Any, ...]:
    if communes is None:
        return ()
    residents = select(Resident.id).where(Resident.commune_code.in_(sorted(communes)))
    return (Delivery.resident_id.in_(residents),)


async def any_leased(session: AsyncSession, now: datetime) -> bool:
    """Whether some worker holds a live lease on any row: a sign that a worker is running."""
    leased = select(Delivery.id).where(
        Delivery.status == DeliveryStatus.SENDING, Delivery.not_before > now
    )
    return bool(await session.scalar(select(leased.exists())))


def _aware(value: datetime | str) -> datetime:
    """MIN() may come back untyped from SQLite: a naive UTC text or datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
