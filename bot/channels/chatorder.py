"""Each chat's updates in the order they came; different chats never wait for each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ChatLanes:
    """Runs work per chat key in call order, at most `max_running` pieces at once overall."""

    def __init__(self, max_running: int = 64) -> None:
        self._running = asyncio.Semaphore(max_running)
        self._tails: dict[str, asyncio.Future[None]] = {}

    async def run(self, chat_key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Wait for the chat's earlier work, then do `work` (its exceptions propagate)."""
        previous = self._tails.get(chat_key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[chat_key] = done  # set before any await: call order is lane order
        try:
            if previous is not None:
                await asyncio.shield(previous)
            async with self._running:
                await work()
        finally:
            done.set_result(None)
            if self._tails.get(chat_key) is done:
                del self._tails[chat_key]

    @property
    def busy(self) -> int:
        """Chats with work waiting or running."""
        return len(self._tails)
