"""Webhook updates kept in the database from receipt until handled (`InboundUpdate`).

A row is stored (and committed) before the platform gets its 200, so an acknowledged update
is never lost. Before handling, a process claims the row with one conditional UPDATE that
takes a lease (`claimed_until = now + lease`) and bumps `attempts` (the fencing token that
`finish` and `renew` check). A row is claimable when it is not handled, nobody holds a live
lease on it, and no earlier update of its chat (same channel and chat key, lower id) is still
unhandled: so when several `ykien serve` share one database, exactly one of them handles each
row at a time, and one chat's updates are handled in the order they were stored even when
the load balancer spreads them over processes. A process that dies holding rows lets their
leases run out; another one takes them over (at least once). `handled_at` is set once the
update has been handled, its replies sent (`finish`), or once it is given up as `failed`
(`give_up`: it could not be understood, or it crashed every process that took it).

A row keeps its body only as long as it is needed: finished or given up, it keeps its
identity (a retry is then recognised) and its times, not its body or chat; after two days
it goes (`forget_before`). Updates with no chat (chat key "") are not ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import InboundUpdate, utcnow
from storage.queries import affected, table_of

# A row whose handling crashed this often is left alone (it would crash every process).
MAX_ATTEMPTS = 5
# How long a claim holds a row unless renewed (a live process renews well before).
LEASE = timedelta(seconds=10)

Sessionmaker = async_sessionmaker[AsyncSession]
# The time leases are reckoned in (UTC, timezone-aware); tests inject their own.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class StoredUpdate:
    """A stored update, with the `attempts` value seen when it was read."""

    id: int
    channel: str
    chat_key: str
    payload: str
    attempts: int = 0


@dataclass(frozen=True)
class Received:
    """An update as it arrived, to be stored (`store_many`)."""

    channel: str
    update_id: str
    chat_key: str
    payload: str
    received_at: datetime


async def store(
    sessionmaker: Sessionmaker, channel: str, update_id: str, chat_key: str, payload: str,
    *, now: datetime | None = None,
) -> StoredUpdate | None:
    """Record an update and commit; None when this update was stored before (a retry).

    `now` is the receipt time, on the clock the leases are reckoned in (a row never claimed
    is taken over once it is older than a lease)."""
    async with sessionmaker() as session, session.begin():
        [stored] = await store_many(
            session, [Received(channel, update_id, chat_key, payload, now or utcnow())])
    return stored


async def store_many(
    session: AsyncSession, received: Sequence[Received]
) -> list[StoredUpdate | None]:
    """Record updates that arrived together, in one INSERT (the caller commits); for each,
    its row, or None when it was stored before (a retry, also one arriving twice in this
    batch). Their ids follow the order given, so each chat's updates keep the order they
    came in."""
    firsts: dict[tuple[str, str], Received] = {}
    for arrived in received:
        firsts.setdefault((arrived.channel, arrived.update_id), arrived)
    if not firsts:
        return []
    stored = await session.execute(_STORE[session.get_bind().dialect.name], [
        {"channel": arrived.channel, "update_id": arrived.update_id,
         "chat_key": arrived.chat_key, "payload": arrived.payload,
         "received_at": arrived.received_at, "attempts": 0}
        for arrived in firsts.values()
    ])
    ids = {(channel, update_id): row_id for row_id, channel, update_id in stored}
    rows: list[StoredUpdate | None] = []
    for arrived in received:
        key = (arrived.channel, arrived.update_id)
        row_id = ids.pop(key, None)  # popped: the same update a second time is a retry
        rows.append(None if row_id is None else
                    StoredUpdate(row_id, arrived.channel, arrived.chat_key, arrived.payload))
    return rows


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds a live lease on the row."""
    return or_(InboundUpdate.claimed_until.is_(None), InboundUpdate.claimed_until <= now)


# The statements of every batch of updates, built once (see storage.queries._FIRST_TIME).
_TABLE = table_of(InboundUpdate)
_STORE = {
    name: dialect.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["channel", "update_id"])
    .returning(_TABLE.c.id, _TABLE.c.channel, _TABLE.c.update_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_EARLIER = _TABLE.alias("earlier")
_CLAIM = (
    update(_TABLE)
    .where(
        _TABLE.c.id.in_(bindparam("rows", expanding=True)),
        _TABLE.c.handled_at.is_(None),
        _TABLE.c.attempts < MAX_ATTEMPTS,
        or_(_TABLE.c.claimed_until.is_(None), _TABLE.c.claimed_until <= bindparam("now")),
        # Updates with no chat are not ordered; the others wait for the earlier of their chat.
        or_(_TABLE.c.chat_key == "", ~exists().where(
            _EARLIER.c.channel == _TABLE.c.channel,
            _EARLIER.c.chat_key == _TABLE.c.chat_key,
            _EARLIER.c.handled_at.is_(None),
            _EARLIER.c.id < _TABLE.c.id,
            or_(_EARLIER.c.attempts < MAX_ATTEMPTS, _EARLIER.c.claimed_until > bindparam("now")),
        )),
    )
    .values(attempts=_TABLE.c.attempts + 1, claimed_until=bindparam("until"))
    .returning(_TABLE.c.id, _TABLE.c.attempts)
)


async def claim(
    sessionmaker: Sessionmaker,
    row: StoredUpdate,
    *,
    lease: timedelta = LEASE,
    now: datetime | None = None,
) -> int | None:
    """Take the row for handling until `now + lease`; the new attempt count (the fencing
    token for `finish` and `renew`), or None when it is not this process's to handle now:
    handled, held by another process, given up, or waiting for an earlier update of its chat
    (`awaits_turn` tells which)."""
    async with sessionmaker() as session, session.begin():
        [attempt] = await claim_many(session, [row], lease=lease, now=now or utcnow())
    return attempt


async def claim_many(
    session: AsyncSession, rows: Sequence[StoredUpdate], *, lease: timedelta, now: datetime,
) -> list[int | None]:
    """`claim` for several rows in one UPDATE (each row checked on its own; the caller
    commits); for each, the new attempt count or None."""
    if not rows:
        return []
    claimed = await session.execute(_CLAIM, {
        "rows": sorted({row.id for row in rows}), "now": now, "until": now + lease})
    attempts: dict[int, int] = {row_id: attempt for row_id, attempt in claimed}
    # A row asked for twice is claimed once: the first asking gets it.
    return [attempts.pop(row.id, None) for row in rows]


async def awaits_turn(
    sessionmaker: Sessionmaker, row: StoredUpdate, *, now: datetime | None = None
) -> bool:
    """Whether a row that could not be claimed is still to be handled by someone: it is
    neither handled, nor held by a live lease, nor given up (then it waits for an earlier
    update of its chat, or for a lease to run out)."""
    now = now or utcnow()
    async with sessionmaker() as session:
        found = await session.scalar(
            select(InboundUpdate.id).where(
                InboundUpdate.id == row.id,
                InboundUpdate.handled_at.is_(None),
                InboundUpdate.attempts < MAX_ATTEMPTS,
                _free(now),
            )
        )
    return found is not None


async def renew(
    sessionmaker: Sessionmaker,
    claims: dict[int, int],
    *,
    lease: timedelta = LEASE,
    now: datetime | None = None,
) -> int:
    """Extend the leases of the rows this process is handling ({row id: attempt}); how many
    were still ours (a row taken over since is left to its new holder)."""
    if not claims:
        return 0
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            update(InboundUpdate)
            .where(
                tuple_(InboundUpdate.id, InboundUpdate.attempts).in_(list(claims.items())),
                InboundUpdate.handled_at.is_(None),
            )
            .values(claimed_until=now + lease)
        )
    return affected(result)


async def unclaim_many(session: AsyncSession, claims: Sequence[tuple[int, int]]) -> None:
    """Give back rows claimed ((row id, attempt) each) whose handling never began (a stop):
    free at once, and the attempt not counted (it crashed nothing), unless another process
    claimed them since (the caller commits)."""
    if not claims:
        return
    await session.execute(
        update(InboundUpdate)
        .where(tuple_(InboundUpdate.id, InboundUpdate.attempts).in_(list(claims)),
               InboundUpdate.handled_at.is_(None))
        .values(claimed_until=None, attempts=InboundUpdate.attempts - 1)
    )


# What a finished row keeps: its identity and times, not what the person sent, nor who.
_EMPTIED = {"payload": "", "chat_key": ""}


async def finish(sessionmaker: Sessionmaker, row_id: int, attempt: int) -> None:
    """Record that the claimed row was handled (unless another process claimed it since)."""
    async with sessionmaker() as session, session.begin():
        await finish_many(session, [(row_id, attempt)])


# Built once (one a batch of updates handled; see storage.queries._FIRST_TIME), on the table:
# an UPDATE of the mapped class would go through the ORM's bulk update for nothing.
_FINISH = (
    update(_TABLE)
    .where(tuple_(_TABLE.c.id, _TABLE.c.attempts).in_(bindparam("claims", expanding=True)))
    .values(handled_at=bindparam("at"), **_EMPTIED)
)


async def finish_many(session: AsyncSession, claims: Sequence[tuple[int, int]]) -> None:
    """`finish` for several claimed rows ((row id, attempt) each) in one UPDATE (the caller
    commits)."""
    if not claims:
        return
    await session.execute(_FINISH, {"claims": list(claims), "at": utcnow()})


async def give_up(sessionmaker: Sessionmaker, row_id: int) -> bool:
    """Record a row that cannot be handled (not understood) as failed, whoever holds it; it
    no longer holds its chat back. False when it was finished already."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            update(InboundUpdate)
            .where(InboundUpdate.id == row_id, InboundUpdate.handled_at.is_(None))
            .values(handled_at=utcnow(), failed=True, claimed_until=None, **_EMPTIED)
        )
    return affected(result) == 1


async def give_up_exhausted(
    sessionmaker: Sessionmaker, channel: str, *, now: datetime | None = None
) -> int:
    """Record as failed the rows that used up their attempts (each crashed the process that
    held it) once the last lease has run out; how many."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            update(InboundUpdate)
            .where(
                InboundUpdate.handled_at.is_(None),
                InboundUpdate.channel == channel,
                InboundUpdate.attempts >= MAX_ATTEMPTS,
                _free(now),
            )
            .values(handled_at=now, failed=True, **_EMPTIED)
        )
    return affected(result)


async def forget_before(session: AsyncSession, before: datetime) -> int:
    """Delete the rows finished before `before` (housekeeping): a platform no longer retries
    them, so nothing needs recognising."""
    result = await session.execute(
        delete(InboundUpdate).where(InboundUpdate.handled_at < before)
    )
    return affected(result)


async def unhandled(
    sessionmaker: Sessionmaker,
    channel: str,
    *,
    stale_after: timedelta,
    unclaimed: bool,
    limit: int,
    now: datetime | None = None,
) -> list[StoredUpdate]:
    """Rows still to handle, oldest first: those whose lease ran out (a process died holding
    them), those never claimed and received longer than `stale_after` ago (a process died
    before claiming them) and, with `unclaimed`, every row nobody has claimed yet."""
    now = now or utcnow()
    never_claimed: ColumnElement[bool] = InboundUpdate.claimed_until.is_(None)
    if not unclaimed:
        never_claimed = and_(never_claimed, InboundUpdate.received_at < now - stale_after)
    return await _still_to_handle(
        sessionmaker, InboundUpdate.channel == channel,
        or_(never_claimed, InboundUpdate.claimed_until <= now), limit=limit)


async def unhandled_among(sessionmaker: Sessionmaker, ids: Sequence[int]) -> list[StoredUpdate]:
    """The rows of `ids` still to handle, oldest first (a process that stored them beyond its
    memory takes them up in their turn; the others were handled or given up meanwhile)."""
    if not ids:
        return []
    return await _still_to_handle(sessionmaker, InboundUpdate.id.in_(ids))


async def _still_to_handle(
    sessionmaker: Sessionmaker, *where: ColumnElement[bool], limit: int | None = None
) -> list[StoredUpdate]:
    """The rows not handled, nor given up as crashing every process, that match `where`,
    oldest first."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(InboundUpdate.id, InboundUpdate.channel, InboundUpdate.chat_key,
                   InboundUpdate.payload, InboundUpdate.attempts)
            .where(InboundUpdate.handled_at.is_(None), InboundUpdate.attempts < MAX_ATTEMPTS,
                   *where)
            .order_by(InboundUpdate.id)
            .limit(limit)
        )
        return [StoredUpdate(row_id, channel, chat_key, payload, attempts)
                for row_id, channel, chat_key, payload, attempts in rows]


async def database_reachable(sessionmaker: Sessionmaker) -> bool:
    """Whether a trivial query succeeds."""
    async with sessionmaker() as session:
        return await session.scalar(text("SELECT 1")) == 1
