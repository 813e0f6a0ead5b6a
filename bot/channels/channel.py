"""The channel contract: what every adapter provides, and the send errors it maps onto.

A channel declares its `capabilities` (handlers.capabilities) and renders every reply within
them through `ChatService.lay_out`; it paces all it sends through one `limiter`; `send`
raises one of the `SendError` subclasses below for each platform failure. A channel that
receives by webhook on `ykien serve` also implements `WebhookChannel`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from bot.channels.pacing import ChannelLimiter
from handlers.capabilities import Capabilities
from handlers.events import Outgoing
from handlers.i18n import Translator

if TYPE_CHECKING:
    from aiohttp import web


class StartRefused(RuntimeError):
    """A channel will not start as configured; `explain` tells the admin what to do."""

    def explain(self, t: Translator) -> str:
        return str(self)


class WebhookRegistered(StartRefused):
    """`ykien run` would poll while the platform delivers the bot's updates to a webhook
    (polling would remove it, or is refused)."""

    def __init__(self, platform: str, url: str) -> None:
        super().__init__(
            f"a webhook is registered for this {platform} bot ({url}), so it cannot poll; "
            "run `ykien serve` instead, or remove the webhook with `ykien webhook delete`"
        )
        self.platform = platform
        self.url = url

    def explain(self, t: Translator) -> str:
        """The explanation in the person's language."""
        return t(
            "{platform} delivers this bot's updates to a webhook ({url}), and polling would "
            "remove it. Run the webhook server with: ykien serve --host H --port P. To poll "
            "instead, remove the webhook first with: ykien webhook delete",
            platform=self.platform, url=self.url,
        )


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
    """Network trouble or a platform error worth retrying later.

    With `retry_at` the platform said when (Zalo: not before 06:00): the row waits until
    then without using up an attempt.
    """

    def __init__(self, detail: str = "", retry_at: datetime | None = None) -> None:
        super().__init__(detail)
        self.retry_at = retry_at


class PermanentFailure(SendError):
    """The platform refused this message for good (bad request)."""


class OutsideWindow(SendError):
    """The resident is outside the channel's messaging window: hold the message until they
    write again (the outbox row becomes `held`), unless it expires first."""


class ChannelDisabled(SendError):
    """The channel's configuration is wrong (bad secret, revoked app, expired authorisation):
    stop sending on it until an admin fixes it; `ykien … status` shows why."""


class Channel(Protocol):
    """A chat platform: it runs (receiving updates) and it sends neutral messages."""

    name: str
    # What the platform can show: replies are laid out within it (handlers.layout).
    capabilities: Capabilities
    # Paces everything this channel sends, replies and broadcasts alike (bot.channels.pacing).
    limiter: ChannelLimiter

    async def start(self) -> None:
        """Begin receiving updates; returns once receiving is under way."""

    async def stop(self) -> None:
        """Stop receiving and release connections."""

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message; return the platform's message id. Raises SendError."""


# What a webhook route answers a request `verify` refuses (403, 400), or None when it is genuine.
Verdict = int | None


class ReadUpdate(NamedTuple):
    """A posted update as a webhook channel read it, once: where it is stored (its update id,
    its chat's key, "" for none) and what `process_webhook_update` takes."""

    update_id: str
    chat_key: str
    update: object


@runtime_checkable
class WebhookChannel(Channel, Protocol):
    """A channel that receives updates by webhook on `ykien serve` (bot.web.webhook).

    The server reads the body once (at most 1 MB, nesting bounded), asks `verify`, has the
    channel read it once (`read_webhook_update`), stores it under its update id (a retried
    delivery is then a no-op), answers 200 and hands what the channel read to
    `process_webhook_update` in the background. Headers reach `verify` only when their values
    are ASCII, as every platform's are.
    """

    # Where the platform posts updates, under YKIEN_PUBLIC_URL (unguessable where possible).
    webhook_path: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        """None when the request really comes from the platform; else the refusal: 403
        (wrong secret or signature, replay) or 400 (logged)."""
        ...

    def read_webhook_update(self, payload: object) -> ReadUpdate | None:
        """A posted update read (its update id, chat key, and the update as the channel
        takes it); None for a genuine one the bot ignores (not a resident's: a group's, a
        bot's, the platform's own echo; or one that cannot be read, logged once),
        acknowledged and not stored; ValueError if it is no update."""
        ...

    async def process_webhook_update(
        self, update: object, handle: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        """Run `handle(process)` for an update `read_webhook_update` read, in order with the
        earlier ones of its chat; `process` returns once the update's replies are sent (or
        failed for good)."""
        ...

    async def start_webhook(self) -> None:
        """Get ready to send and to process posted updates (no polling)."""
        ...

    async def register_webhook(self, url: str) -> None:
        """Tell the platform to post to `url` (or log where to set it, if only a person can)."""
        ...


@runtime_checkable
class ServesRoutes(Protocol):
    """A channel with more pages on `ykien serve` than its webhook (an OAuth callback)."""

    def extra_routes(self) -> list[web.RouteDef]:
        ...
