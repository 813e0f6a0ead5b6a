"""How fast a channel may send: one limiter per channel, shared by broadcasts and replies.

`ChannelLimiter.acquire(chat_id, priority)` returns when one message to that chat may go out:

- globally at most `rate` messages in any second (0 = no global limit: paid broadcasts, a
  local Bot API server; the per-chat pace below still holds). A token bucket with burst
  b = max(1, ⌈3 % of rate⌉) (holding up to b + 0.1, so that a waiter woken late loses
  nothing) refilled at rate − b − 0.1 per second lets through at most rate in any one-second
  window, and over a long run ≥ 95 % of a rate of 30.
- per chat 1 message/s on average with a burst of 3, so a reply of a few messages goes out
  at once (a bounded LRU of chats: one idle for 3 s is as good as forgotten); only a channel
  with no platform behind it (a terminal, a benchmark's null channel) turns it off with
  `per_chat=False`;
- a REPLY waiting for the global bucket goes before BROADCAST waiters, but at most
  `replies_per_broadcast` replies in a row pass a waiting broadcast, so none starves;
- `pause(seconds)` (a 429's retry_after) stops the whole channel, replies and broadcasts.

With a `budget` (storage.budget.DatabaseBudget) the global slots come from the database, so
the limit holds for the bot across processes: the waiter at the head reserves a few slots at
a time (about 100 ms' worth), each with the time it may be used. A slot not used within
`slot_tolerance` of its time is dropped (another process's slots follow it), so any second
holds slots scheduled in 1 + tolerance seconds: the shared pace is (rate − b) / (1 + tolerance).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

log = logging.getLogger(__name__)

# A bucket this close to a whole token has it: float sums of refills must not stall a wait.
_EPSILON = 1e-9


class Priority(IntEnum):
    """Who goes first when both wait: a resident waiting for an answer, then broadcasts."""

    REPLY = 0
    BROADCAST = 1


class SharedBudget(Protocol):
    """Send slots shared by every process (storage.budget.DatabaseBudget)."""

    async def reserve(self, count: int, pace: float, capacity: float) -> list[float]:
        """Take `count` slots; the delay from now after which each may be used."""
        ...


def global_burst(rate: float) -> int:
    """The burst that keeps every one-second window within `rate` (see the module)."""
    return max(1, math.ceil(0.03 * rate))


class _Bucket:
    """A token bucket: `capacity` tokens at most, refilled at `pace` per second."""

    __slots__ = ("at", "capacity", "pace", "tokens")

    def __init__(self, pace: float, capacity: float) -> None:
        self.pace, self.capacity = pace, capacity
        self.tokens = capacity
        self.at: float | None = None

    def _refill(self, now: float) -> None:
        if self.at is not None and now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.pace)
        self.at = now if self.at is None else max(self.at, now)

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0.0 when one is)."""
        self._refill(now)
        missing = 1.0 - self.tokens
        return 0.0 if missing <= _EPSILON else missing / self.pace

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


@dataclass(eq=False)
class _Chat:
    bucket: _Bucket
    users: int = 0  # acquisitions under way for this chat: it is not evicted meanwhile
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    turn: asyncio.Event = field(default_factory=asyncio.Event)
    queued: bool = True


class ChannelLimiter:
    """Paces everything one channel sends (see the module)."""

    chat_rate = 1.0  # messages/s to one chat, on average
    chat_burst = 3  # messages to one chat at once
    replies_per_broadcast = 3  # replies that may pass a waiting broadcast in a row
    slot_tolerance = 0.01  # s: how late a shared slot may still be used
    batch_seconds = 0.1  # shared slots reserved at a time, in seconds of sending
    wake_headroom = 0.1  # tokens the bucket holds beyond its burst (see __init__)

    def __init__(
        self,
        rate: float,
        *,
        budget: SharedBudget | None = None,
        max_chats: int = 10_000,
        per_chat: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._budget = budget if rate else None
        self._max_chats = max_chats
        self.per_chat = per_chat
        self._paused_until = 0.0
        burst = global_burst(rate)
        # A sleeper wakes a little late (event loop, OS): a bucket full at that moment would
        # drop what it refilled meanwhile, a few % of the rate at 30/s. The headroom keeps it,
        # and is taken off the pace so that no second holds more than `rate`.
        capacity = burst + self.wake_headroom
        # Below 2/s the burst of 1 would leave nothing to refill with: pace at half.
        pace = rate - capacity if rate - capacity >= rate / 2 else rate / 2
        if budget is not None:
            pace /= 1 + self.slot_tolerance
        self.pace, self.burst, self.capacity = pace, burst, capacity
        self._bucket = _Bucket(pace, capacity) if rate else None
        self._batch = max(1, math.ceil(pace * self.batch_seconds))
        self._slots: deque[float] = deque()  # reserved shared slots, on our clock
        self._chats: OrderedDict[str, _Chat] = OrderedDict()
        self._replies: deque[_Waiter] = deque()
        self._broadcasts: deque[_Waiter] = deque()
        self._replies_in_a_row = 0
        self._reserving = asyncio.Lock()  # one reservation at a time per process

    # ---- public --------------------------------------------------------------------------

    async def acquire(self, chat_id: str, priority: Priority = Priority.BROADCAST) -> None:
        """Return when one message to `chat_id` may be sent now."""
        if not self.per_chat:
            await self._unpaced_slot()
            return
        chat = self._chat(chat_id)
        chat.users += 1
        try:
            async with chat.lock:  # one acquisition per chat at a time: its bucket is exact
                while (wait := chat.bucket.wait(self._clock())) > 0:
                    await self._sleep(wait)
                if self.rate:
                    await self._global_slot(priority)
                else:
                    await self._unpaced_slot()
                chat.bucket.take(self._clock())
        finally:
            chat.users -= 1

    def try_acquire(self, chat_id: str, priority: Priority = Priority.REPLY) -> bool:
        """Take a slot for one message to `chat_id` if one is free now; False if it would wait
        (a handler hands its reply to a task that may wait with `acquire`)."""
        now = self._clock()
        if not self.per_chat:
            return self._paused_until <= now
        chat = self._chat(chat_id)
        if not self.rate:  # no global limit: the chat's pace and a pause only
            if chat.users or chat.bucket.wait(now) > 0 or self._paused_until > now:
                return False
            chat.bucket.take(now)
            return True
        queued = self._replies or (priority is Priority.BROADCAST and self._broadcasts)
        if chat.users or queued or chat.bucket.wait(now) > 0 or self._slot_wait() != 0.0:
            return False
        if priority is Priority.REPLY and self._broadcasts:
            self._replies_in_a_row += 1
        self._take_slot()
        chat.bucket.take(now)
        return True

    def pause(self, seconds: float) -> None:
        """Stop the whole channel for `seconds` (Telegram's retry_after)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        """Seconds left of the pause (0.0 when sending may go on)."""
        return max(0.0, self._paused_until - self._clock())

    async def _unpaced_slot(self) -> None:
        """No global limit: only a pause (a 429's retry_after) holds the message."""
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)

    # ---- per chat ------------------------------------------------------------------------

    def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(_Bucket(self.chat_rate, self.chat_burst))
            self._evict()
        else:
            self._chats.move_to_end(chat_id)
        return chat

    def _evict(self) -> None:
        # The least recently used first; a chat being acquired for stays (briefly over).
        excess = len(self._chats) - self._max_chats
        if excess <= 0:
            return  # the usual case: no copy of every chat's key for each new chat
        for chat_id in list(itertools.islice(self._chats, excess)):
            if self._chats[chat_id].users == 0:
                del self._chats[chat_id]

    # ---- global, with priorities ---------------------------------------------------------

    async def _global_slot(self, priority: Priority) -> None:
        if not self._replies and not self._broadcasts and self._slot_wait() == 0.0:
            self._take_slot()
            return
        waiter = _Waiter(priority)
        queue = self._replies if priority is Priority.REPLY else self._broadcasts
        queue.append(waiter)
        try:
            while True:
                if self._head() is not waiter:
                    waiter.turn.clear()
                    await waiter.turn.wait()
                    continue
                wait = self._slot_wait()
                if wait is None:
                    await self._reserve()
                elif wait > 0:
                    await self._sleep(wait)
                else:
                    self._served(waiter)
                    self._take_slot()
                    return
        finally:
            if waiter.queued:  # cancelled while waiting
                queue.remove(waiter)
            head = self._head()
            if head is not None:
                head.turn.set()

    def _head(self) -> _Waiter | None:
        replies, broadcasts = self._replies, self._broadcasts
        if replies and (not broadcasts or self._replies_in_a_row < self.replies_per_broadcast):
            return replies[0]
        return broadcasts[0] if broadcasts else None

    def _served(self, waiter: _Waiter) -> None:
        waiter.queued = False
        if waiter.priority is Priority.REPLY:
            self._replies.popleft()
            passed_broadcast = bool(self._broadcasts)
            self._replies_in_a_row = self._replies_in_a_row + 1 if passed_broadcast else 0
        else:
            self._broadcasts.popleft()
            self._replies_in_a_row = 0

    def _slot_wait(self) -> float | None:
        """Seconds until the next global slot; None when shared slots must be reserved."""
        now = self._clock()
        paused = self._paused_until - now
        if self._budget is None:
            assert self._bucket is not None
            return max(paused, self._bucket.wait(now), 0.0)
        slots = self._slots
        while slots and slots[0] + self.slot_tolerance < now:
            slots.popleft()  # too late: another process's slots come right after it
        if not slots:
            return None
        wait = max(paused, slots[0] - now)
        return wait if wait > _EPSILON else 0.0

    def _take_slot(self) -> None:
        if self._budget is None:
            assert self._bucket is not None
            self._bucket.take(self._clock())
        else:
            self._slots.popleft()

    async def _reserve(self) -> None:
        async with self._reserving:
            if self._slot_wait() is None:  # not filled while this waited for the lock
                await self._reserve_now()

    async def _reserve_now(self) -> None:
        assert self._budget is not None
        waiting = len(self._replies) + len(self._broadcasts)
        count = max(1, min(self._batch, waiting))
        asked_at = self._clock()
        try:
            delays = await self._budget.reserve(count, self.pace, self.capacity)
        except Exception as exc:
            # Without the database, pace as if this process were alone rather than stop.
            log.warning("send budget unavailable, pacing locally: %s", type(exc).__name__)
            assert self._bucket is not None
            wait = self._bucket.wait(self._clock())
            if wait > 0:
                await self._sleep(wait)
            self._bucket.take(self._clock())
            self._slots.append(self._clock())
            return
        self._slots.extend(asked_at + delay for delay in delays)


__all__ = ["ChannelLimiter", "Priority", "SharedBudget", "global_burst"]
