"""A channel's send rate shared by every process: a token bucket in its `send_budgets` row.

Each process reserves a few send slots at a time with one atomic UPDATE … RETURNING (a row
lock on PostgreSQL, the write lock on SQLite): the row's tokens are refilled by the time since
`refreshed_at` at the shared pace, capped at the burst, and the reserved count is taken off.
Tokens may go below zero: a debt is a queue of future slots, so the slots handed to all
processes together follow one schedule (slot n of a reservation is when the bucket would
have held n tokens). The debt is bounded because a process reserves again only once it has
used (or let expire) its previous slots.

Times are seconds on `clock` (the wall clock by default): processes on different hosts must
keep their clocks in step (NTP), as a skew between them counts as lateness of the slots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import SendBudget, UtcDateTime
from storage.queries import insert_unless_present

_TAKE = {
    "postgresql": """
        UPDATE send_budgets SET
            tokens = LEAST(:capacity, tokens + :pace * GREATEST(0.0,
                CAST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - refreshed_at)) AS float8)
            )) - :count,
            refreshed_at = GREATEST(refreshed_at, CAST(:now AS timestamptz))
        WHERE channel = :channel
        RETURNING tokens
    """,
    "sqlite": """
        UPDATE send_budgets SET
            tokens = min(:capacity, tokens + :pace * max(0.0,
                (julianday(:now) - julianday(refreshed_at)) * 86400.0
            )) - :count,
            refreshed_at = max(refreshed_at, :now)
        WHERE channel = :channel
        RETURNING tokens
    """,
}


class DatabaseBudget:
    """The send budget of one channel, shared through the database (see the module)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channel: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.channel = channel
        self._clock = clock
        self._row_ready = False

    async def reserve(self, count: int, pace: float, capacity: float) -> list[float]:
        """Take `count` slots from a bucket refilled at `pace`/s holding at most `capacity`.

        Returns, for each slot in order, the delay in seconds from the call after which it
        may be used (0.0 for a slot usable at once).
        """
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        async with self._sessionmaker() as session, session.begin():
            if not self._row_ready:
                await insert_unless_present(
                    session, SendBudget, channel=self.channel, tokens=capacity, refreshed_at=at
                )
            statement = text(_TAKE[session.get_bind().dialect.name]).bindparams(
                bindparam("now", type_=UtcDateTime())
            )
            left = (
                await session.execute(
                    statement,
                    {
                        "capacity": capacity,
                        "pace": pace,
                        "count": count,
                        "now": at,
                        "channel": self.channel,
                    },
                )
            ).scalar_one()
        self._row_ready = True
        before = float(left) + count  # the tokens the bucket held once refilled
        return [max(0.0, (n - before) / pace) for n in range(1, count + 1)]
