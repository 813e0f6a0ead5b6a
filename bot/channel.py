"""What every channel adapter provides, and the send errors it maps platform answers onto."""

from __future__ import annotations

from typing import Protocol

from bot.pacing import ChannelLimiter
from handlers.events import Outgoing


class SendError(Exception):
    """A message could not be sent; subclasses say what the sender should do next."""


class Throttled(SendError):
    """The platform asked us to slow down (HTTP 429): retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, detail: str = "") -> None:
        super().__init__(detail or f"throttled for {retry_after}s")
        self.retry_after = retry_after


class Unreachable(SendError):
    """The person blocked the bot or left: stop sending to them."""


class TemporaryFailure(SendError):
    """Network trouble or a platform error worth retrying later."""


class PermanentFailure(SendError):
    """The platform refused this message for good (bad request)."""


class Channel(Protocol):
    """A chat platform: it runs (receiving updates) and it sends neutral messages."""

    name: str
    # Paces everything this channel sends, replies and broadcasts alike (bot.pacing).
    limiter: ChannelLimiter

    async def start(self) -> None:
        """Begin receiving updates; returns once receiving is under way."""

    async def stop(self) -> None:
        """Stop receiving and release connections."""

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message; return the platform's message id. Raises SendError."""
