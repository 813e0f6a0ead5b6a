"""The channel limiter through its public API, on a fake clock (no real waiting anywhere)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections import Counter
from collections.abc import Iterator

import pytest

from bot.channels.pacing import ChannelLimiter, Priority
from storage.budget import DatabaseBudget

EPOCH = 1_800_000_000.0  # the fake wall clock's start, for the shared budget


class FakeTime:
    """A clock that moves only when someone sleeps: to the end of the earliest sleep.

    Sleepers wake in the order of their ends, as on a real clock: a sleep ends once no
    other sleep would end before it for a few turns of the event loop (so tasks woken at
    this time have settled into their own sleeps).
    """

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.late = late  # every sleep ends this much after it was asked to, as real ones do
        self._ends: list[list[float]] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        end = [self.now + max(0.0, seconds) + (self.late if seconds > 0 else 0.0)]
        self._ends.append(end)
        try:
            settled = 0  # loop turns in a row with no earlier sleep: the others have settled
            while settled < 20:
                await asyncio.sleep(0)  # others run at the time this sleep began
                earliest = end[0] <= min(other[0] for other in self._ends)
                settled = settled + 1 if earliest else 0
        finally:
            self._ends.remove(end)
        self.now = max(self.now, end[0])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """While inside, no sleep ends: the clock waits, say for a database call."""
        end = [self.now]
        self._ends.append(end)
        try:
            yield
        finally:
            self._ends.remove(end)

    def limiter(self, rate: float, **kw) -> ChannelLimiter:
        return ChannelLimiter(rate, clock=self.clock, sleep=self.sleep, **kw)


def most_in_a_second(stamps: list[float]) -> int:
    """The most acquisitions in any window [t, t + 1)."""
    times, most, first = sorted(stamps), 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def mixed_load(
    limiters: list[ChannelLimiter], time: FakeTime, total: int, workers: int = 16
) -> tuple[list[float], list[float]]:
    """`total` broadcast acquisitions by `workers` tasks per limiter (one chat each), and
    after every 50th a reply of 3 messages to a new chat; the times of (all, replies)."""
    stamps: list[float] = []
    reply_stamps: list[float] = []
    numbers = itertools.count()
    replies: list[asyncio.Task[None]] = []

    async def reply(limiter: ChannelLimiter, number: int) -> None:
        for _ in range(3):
            await limiter.acquire(f"reply-{number}", Priority.REPLY)
            stamps.append(time.now)
            reply_stamps.append(time.now)

    async def broadcast(limiter: ChannelLimiter) -> None:
        while (number := next(numbers)) < total:
            await limiter.acquire(f"resident-{number}", Priority.BROADCAST)
            stamps.append(time.now)
            if number % 50 == 0:
                replies.append(asyncio.create_task(reply(limiter, number)))

    await asyncio.gather(*(broadcast(lim) for lim in limiters for _ in range(workers)))
    await asyncio.gather(*replies)
    return stamps, reply_stamps


async def test_never_above_the_rate_in_any_second_and_near_it_over_a_long_run() -> None:
    time = FakeTime()
    limiter = time.limiter(30)
    stamps, replies = await mixed_load([limiter], time, 10_000)
    assert len(stamps) == 10_000 + 3 * 200
    assert len(replies) == 600
    assert most_in_a_second(stamps) <= 30
    assert max(Counter(math.floor(t) for t in stamps).values()) <= 30  # calendar seconds
    assert len(stamps) / (max(stamps) - min(stamps)) >= 0.95 * 30


async def test_waking_late_costs_no_rate() -> None:
    """Real sleeps end a little late; a bucket full at that moment must not drop the time."""
    time = FakeTime(late=0.003)
    limiter = time.limiter(30)
    stamps, _ = await mixed_load([limiter], time, 3_000)
    assert most_in_a_second(stamps) <= 30
    assert len(stamps) / (max(stamps) - min(stamps)) >= 0.95 * 30


async def test_a_higher_rate_keeps_its_limit_with_a_larger_burst() -> None:
    time = FakeTime()
    limiter = time.limiter(1000)
    assert limiter.burst == 30
    stamps, _ = await mixed_load([limiter], time, 10_000, workers=48)
    assert most_in_a_second(stamps) <= 1000
    assert len(stamps) / (max(stamps) - min(stamps)) >= 0.95 * 1000


async def test_a_reply_overtakes_queued_broadcasts() -> None:
    time = FakeTime()
    limiter = time.limiter(30)
    order: list[str] = []

    async def send(name: str, priority: Priority) -> None:
        await limiter.acquire(name, priority)
        order.append(name)

    broadcasts = [asyncio.create_task(send(f"b{i}", Priority.BROADCAST)) for i in range(10)]
    await asyncio.sleep(0)  # they are queued (the first took the free token)
    reply = asyncio.create_task(send("reply", Priority.REPLY))
    await asyncio.gather(*broadcasts, reply)
    assert order[:3] == ["b0", "b1", "reply"] or order[:2] == ["b0", "reply"]


async def test_replies_do_not_starve_broadcasts() -> None:
    time = FakeTime()
    limiter = time.limiter(30)
    order: list[Priority] = []

    async def send(name: str, priority: Priority) -> None:
        await limiter.acquire(name, priority)
        order.append(priority)

    await limiter.acquire("warm-up")  # the free token is gone: everyone below queues
    tasks = [asyncio.create_task(send(f"b{i}", Priority.BROADCAST)) for i in range(3)]
    tasks += [asyncio.create_task(send(f"r{i}", Priority.REPLY)) for i in range(20)]
    await asyncio.gather(*tasks)
    # Replies first, but a waiting broadcast gets every fourth slot.
    first_broadcasts = [n for n, p in enumerate(order) if p is Priority.BROADCAST]
    assert first_broadcasts == [3, 7, 11]


async def test_one_chat_gets_a_burst_of_three_then_one_a_second() -> None:
    time = FakeTime()
    limiter = time.limiter(1000)
    stamps = []
    for _ in range(8):
        await limiter.acquire("42", Priority.REPLY)
        stamps.append(time.now)
    assert stamps == pytest.approx([0, 0, 0, 1, 2, 3, 4, 5])
    # Another chat is not held back by that one.
    await limiter.acquire("43", Priority.REPLY)
    assert time.now == pytest.approx(5)


async def test_concurrent_acquisitions_for_one_chat_keep_its_pace() -> None:
    # At 30/s the global bucket makes them wait, so all six see the chat's burst unspent.
    time = FakeTime()
    limiter = time.limiter(30)
    stamps: list[float] = []

    async def send() -> None:
        await limiter.acquire("42", Priority.BROADCAST)
        stamps.append(time.now)

    await asyncio.gather(*(send() for _ in range(6)))
    # The bucket starts full (a token and its headroom): then one token per 1 / pace.
    spare = limiter.capacity - 1
    second, third = (1 - spare) / limiter.pace, (2 - spare) / limiter.pace
    assert sorted(stamps) == pytest.approx([0, second, third, 1, 2, 3])


async def test_a_forgotten_chat_may_burst_again_and_memory_stays_bounded() -> None:
    time = FakeTime()
    limiter = time.limiter(1000, max_chats=2)
    for _ in range(3):
        await limiter.acquire("42")
    await limiter.acquire("43")
    await limiter.acquire("44")  # "42" is the least recently used: forgotten
    await limiter.acquire("42")
    assert time.now == 0


async def test_a_pause_stops_replies_and_broadcasts() -> None:
    time = FakeTime()
    limiter = time.limiter(30)
    await limiter.acquire("1")
    limiter.pause(5)
    assert limiter.paused_for() == 5
    await limiter.acquire("2", Priority.REPLY)
    assert time.now == pytest.approx(5)
    assert limiter.paused_for() == 0
    limiter.pause(7)
    await limiter.acquire("3", Priority.BROADCAST)
    assert time.now == pytest.approx(12)


async def test_rate_zero_lifts_the_global_limit_but_keeps_each_chats_pace() -> None:
    time = FakeTime()
    limiter = time.limiter(0)
    for number in range(10_000):  # as many chats as it likes, all at once
        await limiter.acquire(str(number), Priority.REPLY if number % 2 else Priority.BROADCAST)
    assert time.now == 0 and time.sleeps == 0
    stamps = []
    for _ in range(6):  # one chat: a burst of three, then one a second
        await limiter.acquire("resident", Priority.BROADCAST)
        stamps.append(time.now)
    assert stamps == pytest.approx([0, 0, 0, 1, 2, 3])
    limiter.pause(5)  # a 429 still stops the channel
    await limiter.acquire("43")
    assert time.now == pytest.approx(8)


def test_telegram_at_zero_messages_per_second_still_paces_each_chat(
    sessionmaker, monkeypatch
) -> None:
    from bot.channels.telegram.channel import from_settings
    from bot.config import Settings
    from bot.service import ChatService

    monkeypatch.setenv("YKIEN_TELEGRAM_TOKEN", "123456:TEST-token")
    monkeypatch.setenv("YKIEN_TELEGRAM_MESSAGES_PER_SECOND", "0")
    settings = Settings.from_env()
    limiter = from_settings(settings, ChatService(sessionmaker)).limiter
    assert all(limiter.try_acquire(str(chat)) for chat in range(1_000))  # no global limit
    assert [limiter.try_acquire("resident") for _ in range(4)] == [True, True, True, False]


async def test_with_a_global_rate_a_reply_taken_at_once_keeps_each_chats_pace() -> None:
    """try_acquire (a handler's reply) under a global rate: the chat's burst of three, then
    one a second, whatever the global bucket has left; other chats are not held back."""
    time = FakeTime()
    limiter = time.limiter(1000)  # a global burst of 30: the chat's pace is what stops it
    assert [limiter.try_acquire("resident") for _ in range(4)] == [True, True, True, False]
    assert limiter.try_acquire("neighbour")
    time.now += 0.5
    assert not limiter.try_acquire("resident")
    time.now += 0.5
    assert [limiter.try_acquire("resident") for _ in range(2)] == [True, False]
    # A chat paced by acquire (a broadcast) has spent its burst for try_acquire too.
    for _ in range(3):
        await limiter.acquire("busy", Priority.BROADCAST)
    assert not limiter.try_acquire("busy")


async def test_a_channel_without_a_platform_may_turn_the_chat_pace_off() -> None:
    time = FakeTime()
    limiter = time.limiter(0, per_chat=False)
    for number in range(10_000):
        await limiter.acquire("42", Priority.REPLY if number % 2 else Priority.BROADCAST)
    assert time.now == 0 and time.sleeps == 0


class CountingBudget:
    """The database budget, counting the calls made to it; they take no fake time."""

    def __init__(self, budget: DatabaseBudget, time: FakeTime) -> None:
        self.budget, self.time, self.calls = budget, time, 0

    async def reserve(self, count: int, pace: float, capacity: float) -> list[float]:
        self.calls += 1
        with self.time.frozen():
            return await self.budget.reserve(count, pace, capacity)


async def test_two_processes_sharing_a_database_budget_stay_within_the_rate(
    sessionmaker,
) -> None:
    time = FakeTime()
    budgets = [
        CountingBudget(DatabaseBudget(sessionmaker, "telegram", clock=time.wall), time)
        for _ in range(2)
    ]
    limiters = [time.limiter(30, budget=budget) for budget in budgets]
    stamps, replies = await mixed_load(limiters, time, 2_000, workers=8)
    assert len(stamps) == 2_000 + 3 * 40 and len(replies) == 120
    assert most_in_a_second(stamps) <= 30
    seconds = max(stamps) - min(stamps)
    assert len(stamps) / seconds >= 0.95 * 30
    # Few database calls: slots are reserved a few at a time.
    assert sum(b.calls for b in budgets) <= len(stamps) / 2
