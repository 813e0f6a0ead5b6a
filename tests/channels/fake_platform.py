"""What the fake platform servers share: the calls they received, and waiting for them.

A fake (fake_telegram.py, fake_zalo_bot.py beside this file) mixes in `RecordsCalls`: its HTTP
handler notes each request as it arrives (`_arrived`) and again once answered (`_record`);
tests read `calls`, `requests`, `calls_to(...)` and wait with `wait_for(...)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One request a fake received, and what it answered."""

    method: str
    params: dict[str, Any]
    result: Any = None
    error: dict[str, Any] | None = None
    # When the request arrived (time.monotonic()), before any hold or failure.
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether the fake answered with success."""
        return self.error is None

    @property
    def chat_id(self) -> Any:
        """The `chat_id` parameter, if any, as the bot sent it."""
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")


class RecordsCalls:
    """Requests as they arrive (`requests`) and as they were answered (`calls`)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []  # answered requests, in the order they were answered
        self.requests: list[Call] = []  # every request as it arrives (a long poll at once)
        self._calls_changed = asyncio.Condition()

    async def wait_for(
        self,
        predicate: Callable[[Call], bool] | str,
        timeout: float = 10.0,
        *,
        since: int = 0,
        arrived: bool = False,
    ) -> Call:
        """The first recorded call (from index `since`) matching; waits for it if need be.

        `predicate` may be a method name. With `arrived`, requests count as they arrive
        (index into `requests`): a long poll is seen before it is answered. Raises
        AssertionError after `timeout` seconds.
        """
        match = matcher(predicate)
        found: list[Call] = []
        seen = self.requests if arrived else self.calls

        def check() -> bool:
            found[:] = [call for call in seen[since:] if match(call)][:1]
            return bool(found)

        try:
            async with asyncio.timeout(timeout), self._calls_changed:
                await self._calls_changed.wait_for(check)
        except TimeoutError:
            recent = [f"{c.method}({c.params.get('chat_id', '')})" for c in self.calls[-10:]]
            raise AssertionError(f"no matching call within {timeout}s; last: {recent}") from None
        return found[0]

    def calls_to(self, method: str, chat_id: Any = None) -> list[Call]:
        """Recorded calls of `method` (to `chat_id`, if given), failed ones included."""
        name = method.lower()
        return [
            call
            for call in self.calls
            if call.method.lower() == name and (chat_id is None or call.chat_id == chat_id)
        ]

    async def _arrived(self, call: Call) -> None:
        async with self._calls_changed:
            self.requests.append(call)
            self._calls_changed.notify_all()

    async def _record(self, call: Call) -> None:
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()


def matcher(predicate: Callable[[Call], bool] | str) -> Callable[[Call], bool]:
    """A predicate on calls; a string matches the method name (any case)."""
    if callable(predicate):
        return predicate
    name = predicate.lower()
    return lambda call: call.method.lower() == name
