"""Webhook updates across processes: each chat in order, each update once, a dead process's
claims taken over. Two `WebhookReceiver`s on two engines over one database play two
`ykien serve` processes behind a load balancer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta

from sqlalchemy import select

from bot.channels.channel import ReadUpdate
from bot.channels.chatorder import ChatLanes
from bot.web.webhook import WebhookReceiver
from storage import inbound
from storage.db import open_database
from storage.models import InboundUpdate
from tests.sending.test_delivery import Clock

LEASE = timedelta(seconds=10)
BOUND = 30.0  # seconds any wait in these tests may take at most


class LaneChannel:
    """A webhook channel whose processing the test watches and can hold, per update."""

    name = "telegram"
    webhook_path = "/hook"

    def __init__(self, label: str, log: list[tuple[str, int]], changed: asyncio.Condition):
        self.label = label
        self.log = log  # (process, update) for every update processed, in the order begun
        self.changed = changed
        self.lanes = ChatLanes()
        self.gates: dict[int, asyncio.Event] = {}  # update -> released when set
        self.returned: list[tuple[int, bool]] = []  # (update, processed?) as handle returns
        # update -> released when set: it waits before its lane (for a place to run, say)
        self.queued: dict[int, asyncio.Event] = {}

    def verify(self, headers: Mapping[str, str], body: bytes) -> int | None:
        return None

    def read_webhook_update(self, payload: object) -> ReadUpdate:
        assert isinstance(payload, dict)
        return ReadUpdate(str(payload["update_id"]), str(payload["chat"]), payload)

    async def process_webhook_update(
        self, payload: dict, handle: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        number = payload["update_id"]
        processed = False

        async def process() -> None:
            nonlocal processed
            processed = True
            await self._note(lambda: self.log.append((self.label, number)))
            gate = self.gates.get(number)
            if gate is not None:
                await gate.wait()
            for _ in range(payload.get("turns", 0)):
                await asyncio.sleep(0)  # let the other process interleave

        waiting = self.queued.get(number)
        if waiting is not None:
            await waiting.wait()
        await self.lanes.run(str(payload["chat"]), lambda: handle(process))
        await self._note(lambda: self.returned.append((number, processed)))

    async def start_webhook(self) -> None: ...

    async def register_webhook(self, url: str) -> None: ...

    async def _note(self, change: Callable[[], None]) -> None:
        async with self.changed:
            change()
            self.changed.notify_all()


class Cluster:
    """Two processes' receivers on one database, and what their channels did."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.changed = asyncio.Condition()
        self.channels: dict[str, LaneChannel] = {}
        self.receivers: dict[str, WebhookReceiver] = {}

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(BOUND), self.changed:
            await self.changed.wait_for(condition)

    async def post(self, process: str, number: int, chat: int, **extra: object) -> None:
        """Telegram posts an update to `process` (through the load balancer)."""
        payload = {"update_id": number, "chat": chat, **extra}
        assert await self.receivers[process].accept(json.dumps(payload), payload) == "stored"

    def processed(self, chat_updates: set[int] | None = None) -> list[int]:
        return [n for _, n in self.log if chat_updates is None or n in chat_updates]


@contextlib.asynccontextmanager
async def cluster(database_url: str, clock: Clock | None = None, **options) -> AsyncIterator[
    Cluster
]:
    found = Cluster()
    async with contextlib.AsyncExitStack() as stack:
        for label in ("A", "B"):
            sessionmaker = await stack.enter_async_context(open_database(database_url))
            channel = found.channels[label] = LaneChannel(label, found.log, found.changed)
            receiver = found.receivers[label] = WebhookReceiver(
                sessionmaker, channel, lease=LEASE, retry_seconds=0.01,
                **({"clock": clock} if clock else {}), **options,
            )
            await receiver.start()
            stack.push_async_callback(receiver.close)
        yield found


async def rows(database_url: str) -> list[InboundUpdate]:
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        return list(await session.scalars(select(InboundUpdate).order_by(InboundUpdate.id)))


async def test_a_chat_spread_over_two_processes_is_handled_in_order(database_url):
    async with cluster(database_url) as c:
        c.channels["A"].gates[1] = first = asyncio.Event()
        await c.post("A", 1, chat=7)
        await c.until(lambda: c.log == [("A", 1)])  # A is handling update 1
        await c.post("B", 2, chat=7)  # the next message of the chat reaches B
        await c.post("A", 3, chat=7)
        await c.post("B", 4, chat=7)
        await c.post("B", 5, chat=8)  # another chat is not held back
        # B tried update 2 and left it for later: its chat's update 1 is not handled yet.
        await c.until(lambda: (2, False) in c.channels["B"].returned)
        await c.until(lambda: ("B", 5) in c.log)
        assert c.processed({1, 2, 3, 4}) == [1]
        first.set()
        await c.until(lambda: len(c.log) == 5)
        assert c.processed({1, 2, 3, 4}) == [1, 2, 3, 4]
        assert [label for label, n in c.log if n != 5] == ["A", "B", "A", "B"]
    assert all(row.handled_at is not None and row.attempts == 1
               for row in await rows(database_url))


async def test_many_updates_of_a_few_chats_over_two_processes_each_once_in_order(
    database_url,
):
    chance = random.Random(8)
    chats = {number: chance.choice([1, 2, 3]) for number in range(1, 61)}
    async with cluster(database_url) as c:
        for number, chat in chats.items():
            await c.post(chance.choice("AB"), number, chat=chat, turns=chance.randrange(20))
        await c.until(lambda: len(c.log) >= len(chats))
        for chat in (1, 2, 3):
            mine = {number for number, of in chats.items() if of == chat}
            assert c.processed(mine) == sorted(mine)
    assert sorted(c.processed()) == list(chats)  # each once
    assert {label for label, _ in c.log} == {"A", "B"}  # both took part


async def test_the_claims_of_a_process_that_died_are_taken_over_once_their_lease_ends(
    database_url,
):
    clock = Clock()
    # The receivers' clock runs behind the wall clock (as when starting the cluster took
    # seconds on a loaded machine): every time they reckon with, receipt included, is theirs,
    # or an update never claimed would look younger than a lease and never be taken over.
    clock.advance(seconds=-LEASE.total_seconds() / 2)
    async with cluster(database_url, clock, sweep_seconds=0.01) as c:
        c.channels["A"].gates[1] = asyncio.Event()  # never released: A dies handling it
        await c.post("A", 1, chat=7)
        await c.post("A", 2, chat=7)
        await c.until(lambda: c.log == [("A", 1)])
        await c.receivers["A"].close(timeout=0)  # kill -9: nothing more is written
        # B sweeps: update 1 is still A's (its lease runs), update 2 must wait for it.
        await c.post("B", 3, chat=7)
        await c.until(lambda: (3, False) in c.channels["B"].returned)
        assert c.log == [("A", 1)]
        clock.advance(seconds=LEASE.total_seconds() + 1)
        await c.until(lambda: len(c.log) == 4)
        assert c.log[1:] == [("B", 1), ("B", 2), ("B", 3)]
    first, *later = await rows(database_url)
    assert first.attempts == 2 and all(row.attempts == 1 for row in later)
    assert all(row.handled_at is not None for row in (first, *later))


async def test_a_claim_waits_for_the_earlier_updates_of_its_chat_only(database_url):
    async with open_database(database_url) as sessionmaker:
        first = await inbound.store(sessionmaker, "telegram", "1", "7", "{}")
        second = await inbound.store(sessionmaker, "telegram", "2", "7", "{}")
        other = await inbound.store(sessionmaker, "telegram", "3", "8", "{}")
        chatless = await inbound.store(sessionmaker, "telegram", "4", "", "{}")
        assert first and second and other and chatless
        assert await inbound.claim(sessionmaker, second) is None
        assert await inbound.awaits_turn(sessionmaker, second)  # to try again later
        assert await inbound.claim(sessionmaker, other) == 1
        assert await inbound.claim(sessionmaker, chatless) == 1
        attempt = await inbound.claim(sessionmaker, first)
        assert attempt == 1
        assert await inbound.claim(sessionmaker, first) is None  # held: not twice
        assert not await inbound.awaits_turn(sessionmaker, first)
        assert await inbound.claim(sessionmaker, second) is None  # claimed is not handled
        await inbound.finish(sessionmaker, first.id, attempt)
        assert await inbound.claim(sessionmaker, second) == 1


async def test_an_update_given_up_on_no_longer_holds_its_chat_back(database_url):
    clock = Clock()
    async with open_database(database_url) as sessionmaker:
        poison = await inbound.store(sessionmaker, "telegram", "1", "7", "{}")
        after = await inbound.store(sessionmaker, "telegram", "2", "7", "{}")
        assert poison and after
        for _ in range(inbound.MAX_ATTEMPTS):  # it crashed every process that took it
            assert await inbound.claim(sessionmaker, poison, lease=LEASE, now=clock())
            assert await inbound.claim(sessionmaker, after, lease=LEASE, now=clock()) is None
            clock.advance(seconds=LEASE.total_seconds())
        assert await inbound.claim(sessionmaker, poison, now=clock()) is None
        assert not await inbound.awaits_turn(sessionmaker, poison, now=clock())
        assert await inbound.claim(sessionmaker, after, now=clock()) == 1


async def test_a_renewed_lease_is_not_taken_over_and_a_stale_holder_cannot_finish(
    database_url,
):
    clock = Clock()
    async with open_database(database_url) as sessionmaker:
        row = await inbound.store(sessionmaker, "telegram", "1", "7", "{}")
        assert row
        attempt = await inbound.claim(sessionmaker, row, lease=LEASE, now=clock())
        assert attempt == 1
        clock.advance(seconds=LEASE.total_seconds() - 1)
        assert await inbound.renew(sessionmaker, {row.id: attempt}, lease=LEASE,
                                   now=clock()) == 1
        clock.advance(seconds=2)  # past the first lease, within the renewed one
        assert await inbound.claim(sessionmaker, row, lease=LEASE, now=clock()) is None
        assert await inbound.unhandled(
            sessionmaker, "telegram", stale_after=LEASE, unclaimed=True, limit=9, now=clock()
        ) == []
        clock.advance(seconds=LEASE.total_seconds())  # the holder died: taken over
        [stale] = await inbound.unhandled(
            sessionmaker, "telegram", stale_after=LEASE, unclaimed=False, limit=9, now=clock()
        )
        assert await inbound.claim(sessionmaker, stale, lease=LEASE, now=clock()) == 2
        # The first holder wakes up: it can neither renew nor record over the new claim.
        assert await inbound.renew(sessionmaker, {row.id: attempt}, now=clock()) == 0
        await inbound.finish(sessionmaker, row.id, attempt)
        async with sessionmaker() as session:
            assert await session.scalar(select(InboundUpdate.handled_at)) is None


async def test_a_stop_gives_back_the_updates_claimed_on_arrival_and_not_begun(database_url):
    """An update is claimed as it arrives when its chat has nothing earlier to handle; one
    still waiting for its turn when the process stops is given back at once, its attempt
    not counted (so stops never use up the attempts that give up an update), while one
    being handled keeps its claim until its lease runs out (it may have done something)."""
    async with cluster(database_url) as c:
        channel = c.channels["A"]
        channel.queued[1] = asyncio.Event()  # never released: still waiting at the stop
        channel.gates[2] = asyncio.Event()  # begun, and hangs
        await c.post("A", 1, chat=7)
        await c.post("A", 2, chat=8)
        await c.until(lambda: c.log == [("A", 2)])

        async def claimed() -> list[int]:
            return [row.attempts for row in await rows(database_url)]

        async with asyncio.timeout(BOUND):
            while await claimed() != [1, 1]:  # both claimed as they arrived
                await asyncio.sleep(0.01)
        await c.receivers["A"].close(timeout=0)
        waiting, begun = await rows(database_url)
        assert (waiting.attempts, waiting.claimed_until) == (0, None)
        assert begun.attempts == 1 and begun.claimed_until is not None
        assert waiting.handled_at is None and begun.handled_at is None
        # A process starting now takes the one given back at once, not after a lease.
        async with open_database(database_url) as sessionmaker:
            restarted = WebhookReceiver(sessionmaker, c.channels["B"], lease=LEASE)
            await restarted.start()
            try:
                await c.until(lambda: ("B", 1) in c.log)
            finally:
                await restarted.close()
