"""Group commit: many callers' small writes made as one transaction, without a timer.

A caller submits an item and waits for its own result, given once the transaction holding
it is committed. The first item starts a write at once; a write takes its items only once it
holds a database connection, so items submitted while it waited for one (behind other work,
on SQLite's one connection) or while the previous write was under way go together. So a
write never waits for company, and under load each carries whatever arrived meanwhile: one
transaction for many updates instead of one each. A write that fails fails every caller in
it (none of their items was written).

Unless told to `linger`: then a write waits that long for company first. For records
nobody hurries for (an update handled: only its chat's next update waits for it), which on
SQLite would otherwise alternate with the conversations on the one connection, one record a
write.

A write that is one statement (`one_statement`) is atomic by itself: on PostgreSQL it runs
without BEGIN and COMMIT around it, one round trip instead of three (what an update's 200
waits for). SQLite has no round trips to spare, and switching its one connection to
autocommit and back would cost two trips to aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500  # items in one write: bounded statements (and SQLite's variables)


class GroupCommit(Generic[Item, Result]):
    """Writes submitted items in batches through `write` (in a transaction it does not
    commit), which returns one result per item, in order; at most one write at a time."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        write: Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Result]]],
        max_batch: int = MAX_BATCH,
        linger: float = 0.0,
        one_statement: bool = False,
    ) -> None:
        self.sessionmaker = sessionmaker
        self._write = write
        self.max_batch = max_batch
        self.linger = linger  # seconds a write waits for more items before it starts
        self.one_statement = one_statement  # `write` runs one statement (module docstring)
        self._go = asyncio.Event()  # ends the lingering: a full batch, or closing
        self._closing = False
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # writes so far, and the items they held (a log line at stop)
        self.items = 0

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            self._go.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await future

    def _options(self, session: AsyncSession) -> dict[str, str]:
        if self.one_statement and session.get_bind().dialect.name == "postgresql":
            return {"isolation_level": "AUTOCOMMIT"}
        return {}

    async def close(self) -> None:
        """Wait for the writes under way and waiting (nothing submitted is dropped), at once."""
        self._closing = True
        self._go.set()
        try:
            while self._writer is not None:
                await asyncio.shield(self._writer)
        finally:
            self._closing = False

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._pending:
                if self.linger and not self._closing and len(self._pending) < self.max_batch:
                    self._go.clear()
                    with contextlib.suppress(TimeoutError):  # or until a batch is full
                        await asyncio.wait_for(self._go.wait(), self.linger)
                try:
                    async with self.sessionmaker() as session, session.begin():
                        # First the connection, then the items.
                        await session.connection(execution_options=self._options(session))
                        # Every item is written, also one whose caller stopped waiting (a
                        # stop): it may record what was done, such as an update handled.
                        batch = self._pending[: self.max_batch]
                        del self._pending[: len(batch)]
                        self.writes += 1
                        self.items += len(batch)
                        results = await self._write(session, [item for item, _ in batch])
                except Exception as exc:
                    if not batch:  # failed before it took its items (no connection): theirs
                        batch = self._pending[: self.max_batch]
                        del self._pending[: len(batch)]
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    batch = []
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                batch = []
        finally:
            self._writer = None
            # Reached with callers still waiting only when cancelled (the process stops).
            for _, future in (*batch, *self._pending):
                if not future.done():
                    future.cancel()
            self._pending.clear()
