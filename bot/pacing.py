"""How fast a channel may send: one limiter per channel, shared by broadcasts and replies.

INTERFACE STUB (issue 8): the delivery worker and the adapters code against `ChannelLimiter`;
its implementation (shared budget across processes, per-chat buckets, priorities) is being
written. Until then it paces globally in this process only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import IntEnum


class Priority(IntEnum):
    """Who goes first when both wait: a resident waiting for an answer, then broadcasts."""

    REPLY = 0
    BROADCAST = 1


class ChannelLimiter:
    """Paces everything one channel sends (`rate` messages/s for the whole bot; 0 = no limit).

    `acquire(chat_id, priority)` returns when one message to that chat may go out now;
    `pause(seconds)` stops the whole channel (a 429's retry_after); `paused_for()` says how
    long that pause still lasts.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._interval = 1 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0
        self._paused_until = 0.0

    async def acquire(self, chat_id: str, priority: Priority = Priority.BROADCAST) -> None:
        while True:
            now = self._clock()
            wait = max(self._paused_until - now, self._next_at - now)
            if wait <= 0:
                self._next_at = max(self._next_at, now) + self._interval
                return
            await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())
