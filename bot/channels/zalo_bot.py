"""The Zalo Bot platform channel: a Telegram-like Bot API, without buttons and without edits.

Methods are called at `{api_url}/bot{token}/{method}` (JSON in, `{"ok", "result"}` out).
Updates arrive by long polling (`getUpdates`, `ykien run`) or by webhook (`setWebhook`,
`ykien serve`, with the secret in the `X-Bot-Api-Secret-Token` header); the two are
exclusive, so polling refuses to start while a webhook is registered. An update names its
event (`message.text.received`, `message.image.received`, ...) and carries one message; it
may come wrapped in `{"ok": true, "result": ...}` or bare, and a result may be one update or
a list. Its id is event name + message id, so an update delivered twice is handled once.

Every choice is a numbered line (the conversation stores the numbers, so a typed "2" is read
back on any process); texts are sent in parts of at most 2,000 characters. The platform's
sendPhoto takes only a URL: a results chart goes as a signed address of ours that the
platform fetches (LinkedPicture, PictureWay.LINK); other pictures and files as their caption.
Logs name chats by `chat_ref` only, never quote what was written, and never show the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.channels.channel import (
    ChannelDisabled,
    PermanentFailure,
    ReadUpdate,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
    Verdict,
    WebhookRegistered,
)
from bot.channels.chatorder import ChatLanes
from bot.channels.pacing import ChannelLimiter, Priority, SharedBudget
from handlers import layout
from handlers.capabilities import Capabilities, PictureWay
from handlers.events import (
    Document,
    Incoming,
    Kind,
    LinkedPicture,
    Outgoing,
    Picture,
    flat_buttons,
)
from handlers.logref import chat_ref

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import ChatService

log = logging.getLogger(__name__)

CHANNEL = "zalobot"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_LIMIT = 2000  # sendMessage accepts 1 to 2,000 characters
SECRET_LENGTHS = range(8, 257)  # what setWebhook accepts as secret_token
# The platform publishes no rate limit: the cautious pace of our Zalo OA channel, for the
# whole bot (the limiter adds 1 message/s per chat with a burst of 3).
MESSAGES_PER_SECOND = 10.0
DEFAULT_RETRY_AFTER = 5.0  # a 429 that does not say how long to wait
UPDATE_ID_LIMIT = 64  # storage keeps update ids in 64 characters

# Event name -> neutral kind. Other message events (a new type) count as unsupported.
EVENT_KINDS = {
    "message.text.received": Kind.TEXT,
    "message.image.received": Kind.PHOTO,
    "message.sticker.received": Kind.STICKER,
    "message.voice.received": Kind.VOICE,
    "message.unsupported.received": Kind.OTHER,
}
# Answers to getUpdates that only mean "nothing came in during the wait".
_NO_UPDATES = {408}


def _utf16_len(text: str) -> int:
    # Whether the platform counts code points or UTF-16 units is not documented: the stricter.
    return len(text.encode("utf-16-le")) // 2


def zalo_bot_path(secret: str) -> str:
    """The webhook path, derived from the secret so it is unguessable without naming it."""
    digest = hashlib.sha256(b"ykien zalobot webhook\0" + secret.encode()).hexdigest()
    return f"/zalobot/{digest[:32]}"


# ---- the Bot API ---------------------------------------------------------------------------


class ApiError(Exception):
    """The Bot API answered `ok: false` (or an HTTP error): its code and description."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code} {description}".strip())
        self.code, self.description, self.retry_after = code, description, retry_after


class NetworkTrouble(Exception):
    """No answer from the Bot API (connection refused, timeout, not JSON); token redacted."""


class BotApi:
    """Calls `{api_url}/bot{token}/{method}` with JSON; raises ApiError or NetworkTrouble."""

    def __init__(self, token: str, api_url: str, *, request_timeout: float = 15.0) -> None:
        self._token = token
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    def redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    async def call(self, method: str, params: dict[str, Any], *, timeout: float | None = None
                   ) -> Any:
        """The `result` of one method call."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        limit = aiohttp.ClientTimeout(total=timeout or self.request_timeout)
        try:
            async with self._session.post(self._base + method, json=params,
                                          timeout=limit) as response:
                status = response.status
                retry_header = response.headers.get("Retry-After", "")
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NetworkTrouble(self.redact(f"{type(exc).__name__}: {exc}")) from None
        try:
            body = json.loads(raw)
        except ValueError:
            if status >= 400:
                raise ApiError(status, f"HTTP {status}") from None
            raise NetworkTrouble(f"{method}: the answer is not JSON (HTTP {status})") from None
        if isinstance(body, dict) and body.get("ok") is True and status < 400:
            return body.get("result")
        body = body if isinstance(body, dict) else {}
        code = body.get("error_code")
        code = code if isinstance(code, int) and code > 0 else (status if status >= 400 else 400)
        raise ApiError(code, self.redact(str(body.get("description") or "")),
                       _retry_after(body, retry_header))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(body: dict, header: str) -> float | None:
    parameters = body.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    for candidate in (value, header):
        if isinstance(candidate, int | float | str) and candidate != "":
            try:
                return max(0.0, float(candidate))
            except ValueError:
                continue
    return None


def send_error(error: ApiError | NetworkTrouble) -> SendError:
    """The neutral send error for a failed Bot API call."""
    if isinstance(error, NetworkTrouble):
        return TemporaryFailure(str(error))
    detail = str(error)
    if error.code == 429:
        return Throttled(error.retry_after if error.retry_after is not None
                         else DEFAULT_RETRY_AFTER, detail)
    if error.code == 401:  # the token is wrong or was reset: nothing will go through
        return ChannelDisabled(detail)
    if error.code == 403:  # the person blocked the bot
        return Unreachable(detail)
    description = error.description.lower()
    if error.code in (400, 404) and any(
        words in description for words in ("chat not found", "user not found")
    ):
        return Unreachable(detail)
    if error.code == 408 or error.code >= 500:
        return TemporaryFailure(detail)
    return PermanentFailure(detail)


# ---- updates --------------------------------------------------------------------------------


def updates_of(payload: object) -> list[dict]:
    """The updates in a posted or polled payload, wrapped in {"ok", "result"} or bare.

    Raises ValueError when it holds no update at all.
    """
    if isinstance(payload, dict) and "result" in payload and "event_name" not in payload:
        if payload.get("ok") is False:
            raise ValueError("an error answer, not an update")
        payload = payload["result"]
    items = payload if isinstance(payload, list) else [payload]
    updates = [item for item in items if isinstance(item, dict) and item.get("event_name")]
    if not updates or len(updates) != len(items):
        raise ValueError("not a Zalo Bot update")
    return updates


def update_key(event_name: str, message_id: str) -> str:
    """The update's id (event name + message id), within storage's 64 characters."""
    key = f"{event_name}:{message_id}"
    if len(key) <= UPDATE_ID_LIMIT:
        return key
    return "h:" + hashlib.sha256(key.encode()).hexdigest()[:UPDATE_ID_LIMIT - 2]


def to_incoming(update: dict) -> Incoming | None:
    """The neutral event of one update; None for what the bot ignores (groups, bots' messages,
    non-messages).

    Raises ValueError for a message event without its chat or message id.
    """
    name = str(update.get("event_name") or "")
    message = update.get("message")
    if not name.startswith("message."):
        return None
    if not isinstance(message, dict):
        raise ValueError("a message event without a message")
    chat = message.get("chat")
    chat_id = _id(chat.get("id")) if isinstance(chat, dict) else ""
    message_id = _id(message.get("message_id"))
    if not chat_id or not message_id:
        raise ValueError("a message event without chat or message id")
    chat_type = str(chat.get("chat_type") or "PRIVATE").upper() if isinstance(chat, dict) else ""
    if chat_type != "PRIVATE":
        log.info("Zalo Bot: ignoring a message in a %s chat %s", chat_type.lower(),
                 chat_ref(CHANNEL, chat_id))
        return None
    sender = message.get("from")
    if isinstance(sender, dict) and sender.get("is_bot") is True:
        log.info("Zalo Bot: ignoring a message sent by a bot in %s", chat_ref(CHANNEL, chat_id))
        return None
    kind = EVENT_KINDS.get(name, Kind.OTHER)
    text = message.get("text") if kind is Kind.TEXT else message.get("caption")
    return Incoming(
        channel=CHANNEL,
        user_id=chat_id,
        kind=kind,
        text=text if isinstance(text, str) else "",
        update_id=update_key(name, message_id),
    )


def _id(value: object) -> str:
    # Ids are strings on this platform; a number is accepted as its digits, never as a float.
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def events_of(payload: object) -> list[Incoming]:
    """The resident events of a payload (possibly none); ValueError if it is no update."""
    return [event for update in updates_of(payload) if (event := to_incoming(update))]


# ---- what is sent ---------------------------------------------------------------------------


def render(message: Outgoing) -> list[str]:
    """The texts to send for one (laid out) message, each within the platform's limit.

    Choices still on a reply become numbered lines (the layout normally did this already);
    a picture or file goes as its caption, since sendPhoto only takes a URL.
    """
    if isinstance(message, Document | Picture | LinkedPicture):
        if not message.caption.strip():
            raise PermanentFailure("files and pictures without a caption cannot be sent here")
        text = message.caption
    else:
        text = message.text
        buttons = flat_buttons(message)
        if buttons:
            lines = "\n".join(f"{number}. {button.label}"
                              for number, button in enumerate(buttons, start=1))
            text = f"{text}\n\n{lines}" if text.strip() else lines
    parts = [part for part in layout.split_text(text, TEXT_LIMIT, _utf16_len) if part.strip()]
    if not parts:
        raise PermanentFailure("an empty message cannot be sent")
    return parts


# A Bot API call that sends one message: its method and parameters.
ApiCall = tuple[str, dict[str, Any]]


def sending_calls(user_id: str, message: Outgoing) -> list[ApiCall]:
    """The calls that send one (laid out) message: sendPhoto with the address of a linked
    picture (the platform fetches it), sendMessage for each text part of anything else."""
    if isinstance(message, LinkedPicture):
        # A caption longer than a message follows the picture as text, rather than cut.
        caption, *rest = [part for part in layout.split_text(message.caption, TEXT_LIMIT,
                                                             _utf16_len) if part.strip()] or [""]
        photo = {"chat_id": user_id, "photo": message.url}
        return [("sendPhoto", {**photo, "caption": caption} if caption else photo),
                *(("sendMessage", {"chat_id": user_id, "text": text}) for text in rest)]
    return [("sendMessage", {"chat_id": user_id, "text": text}) for text in render(message)]


# ---- the channel ---------------------------------------------------------------------------


class ZaloBotChannel:
    """A bot on the Zalo Bot platform: polling or webhook in, text messages out."""

    name = CHANNEL
    capabilities = Capabilities(
        buttons_per_message=0, button_label_limit=200, text_limit=TEXT_LIMIT, can_edit=False,
        measure=_utf16_len, pictures=PictureWay.LINK,
    )
    # A reply throttled this many times in a row is dropped (the resident can write again).
    reply_max_waits = 3
    # The wait after a first failed poll, doubling up to the longest; and the bound on stop().
    first_backoff = 1.0
    max_backoff = 30.0
    stop_timeout = 15.0

    def __init__(
        self,
        token: str,
        api_url: str,
        service: ChatService,
        *,
        webhook_secret: str = "",
        poll_timeout: int = 30,
        messages_per_second: float = MESSAGES_PER_SECOND,
        budget: SharedBudget | None = None,
        max_pending: int = 1000,
    ) -> None:
        self.service = service
        self.webhook_secret = webhook_secret
        self.poll_timeout = poll_timeout
        self.max_pending = max_pending  # updates handled at once before polling waits
        self.api = BotApi(token, api_url)
        self.limiter = ChannelLimiter(messages_per_second, budget=budget)
        self.lanes = ChatLanes()
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # ---- Channel ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token, refuse if a webhook is set, and start long polling."""
        await self._connect()
        try:
            info = await self.api.call("getWebhookInfo", {})
        except ApiError as exc:  # not every deployment answers it: getUpdates will tell
            log.warning("Zalo Bot: getWebhookInfo failed: %s", exc)
            info = None
        except NetworkTrouble as exc:
            await self.api.close()
            raise RuntimeError(f"Zalo Bot could not be reached: {exc}") from None
        url = info.get("url") if isinstance(info, dict) else None
        if isinstance(url, str) and url:
            await self.api.close()
            raise WebhookRegistered("Zalo", url)
        self._stopping.clear()
        self._poller = asyncio.create_task(self._poll())
        log.info("Zalo Bot: polling")

    async def stop(self) -> None:
        """Stop polling at once; let the updates under way finish (bounded); disconnect."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._handlers:
            _, pending = await asyncio.wait(self._handlers, timeout=self.stop_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.api.close()

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message (the caller took a limiter slot for it); the last part's id."""
        ids: list[str] = []
        for laid_out in await self.service.lay_out(self.name, self.capabilities, user_id,
                                                   message):
            ids += await self._send_parts(user_id, sending_calls(user_id, laid_out),
                                          first_paced=not ids)
        return ids[-1] if ids else ""

    async def _send_parts(self, user_id: str, parts: list[ApiCall], *, first_paced: bool,
                          priority: Priority = Priority.BROADCAST) -> list[str]:
        """Make each call; every call after a paced one takes its own limiter slot."""
        ids: list[str] = []
        for index, part in enumerate(parts):
            if index or not first_paced:
                await self.limiter.acquire(user_id, priority)
            ids.append(await self._send_part(part))
        return ids

    async def _send_part(self, part: ApiCall) -> str:
        method, params = part
        try:
            result = await self.api.call(method, params)
        except (ApiError, NetworkTrouble) as exc:
            raise send_error(exc) from None
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return _id(message_id)

    # ---- polling -----------------------------------------------------------------------------

    async def _connect(self) -> None:
        """getMe: the token works (else a clear RuntimeError, without the token)."""
        try:
            await self.api.call("getMe", {})
        except ApiError as exc:
            await self.api.close()
            reason = "the token was refused" if exc.code in (401, 403, 404) else str(exc)
            raise RuntimeError(f"Zalo Bot could not start: {reason}") from None
        except NetworkTrouble as exc:
            await self.api.close()
            raise RuntimeError(f"Zalo Bot could not be reached: {exc}") from None

    async def _poll(self) -> None:
        """Long-poll until stopped; each update is handled in its chat's lane, in order."""
        failures = 0
        while not self._stopping.is_set():
            try:
                result = await self.api.call(
                    "getUpdates", {"timeout": self.poll_timeout},
                    timeout=self.poll_timeout + 15,
                )
            except ApiError as exc:
                if exc.code in _NO_UPDATES:
                    failures = 0
                    continue
                if exc.code == 401:
                    log.error("Zalo Bot: the token was refused; polling stopped. Set a valid "
                              "YKIEN_ZALO_BOT_TOKEN and restart.")
                    return
                failures += 1
                log.warning("Zalo Bot: getUpdates failed (%s); retrying", exc)
                await self._back_off(failures)
                continue
            except NetworkTrouble as exc:
                failures += 1
                log.warning("Zalo Bot: getUpdates failed (%s); retrying", exc)
                await self._back_off(failures)
                continue
            failures = 0
            if result in (None, [], {}):
                continue
            try:
                events = events_of(result)
            except ValueError:
                log.warning("Zalo Bot: getUpdates gave something that is not an update")
                continue
            for event in events:
                await self._dispatch(event)

    async def _back_off(self, failures: int) -> None:
        delay = min(self.max_backoff, self.first_backoff * 2.0 ** (failures - 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _dispatch(self, event: Incoming) -> None:
        """Handle an update in its chat's lane, without holding up other chats' updates."""
        while len(self._handlers) >= self.max_pending:
            await asyncio.wait(self._handlers, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self.lanes.run(event.user_id, lambda: self._answer(event)))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    # ---- answering -----------------------------------------------------------------------------

    async def _answer(self, event: Incoming) -> None:
        """Ask the conversation, send its replies in order; failures are logged, not raised."""
        try:
            replies = await self.service.handle(event, self.capabilities)
        except Exception:
            log.exception("Zalo Bot: handling an update from %s failed", _ref(event.user_id))
            return
        for reply in replies:
            try:
                ids = await self._send_reply(event.user_id, reply)
            except SendError as error:
                # Later replies would read out of order: drop them; the resident can write again.
                log.warning("Zalo Bot: a reply to %s was not sent: %s: %s",
                            _ref(event.user_id), type(error).__name__, error)
                return
            for message_id in ids:  # every part of a draft counts, should a reply point at it
                try:
                    await self.service.sent(CHANNEL, event.user_id, message_id, reply)
                except Exception:
                    log.exception("Zalo Bot: recording a message sent to %s failed",
                                  _ref(event.user_id))

    async def _send_reply(self, user_id: str, reply: Outgoing) -> list[str]:
        """Send a reply's parts paced as replies; a 429 pauses the channel, then it goes on."""
        # `handle` laid the reply out for this channel already.
        parts = sending_calls(user_id, reply)
        ids: list[str] = []
        waits = 0
        while len(ids) < len(parts):
            await self.limiter.acquire(user_id, Priority.REPLY)
            try:
                ids.append(await self._send_part(parts[len(ids)]))
            except Throttled as exc:
                waits += 1
                self.limiter.pause(exc.retry_after)  # the next acquire waits it out
                if waits > self.reply_max_waits:
                    raise
        return ids

    # ---- webhook (`ykien serve`) ---------------------------------------------------------------

    @property
    def webhook_path(self) -> str:
        return zalo_bot_path(self.webhook_secret)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Only the platform knows the secret given with setWebhook (none set: none passes)."""
        given = headers.get(SECRET_HEADER, "").encode()
        if not self.webhook_secret or not hmac.compare_digest(
            given, self.webhook_secret.encode()
        ):
            return 403
        return None

    def read_webhook_update(self, payload: object) -> ReadUpdate | None:
        """A posted update read into its events, under its update id and chat id; None when
        it holds no resident's (a group message, a bot's): acknowledged, not stored;
        ValueError if it is no update."""
        events = events_of(payload)
        if not events:
            return None
        if len(events) == 1:
            return ReadUpdate(events[0].update_id, events[0].user_id, events)
        joined = "\n".join(event.update_id for event in events)
        return ReadUpdate(update_key("batch", hashlib.sha256(joined.encode()).hexdigest()),
                          events[0].user_id, events)

    async def process_webhook_update(
        self, update: object, handle: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        """Run `handle(process)` in the chat's lane, after its earlier updates."""
        if not isinstance(update, list) or not update:
            raise ValueError("not a Zalo Bot update")
        events: list[Incoming] = update

        async def process() -> None:
            for event in events:
                await self._answer(event)

        await self.lanes.run(events[0].user_id, lambda: handle(process))

    async def start_webhook(self) -> None:
        """Check the token; updates will come to `process_webhook_update`."""
        await self._connect()
        log.info("Zalo Bot: receiving by webhook at %s", self.webhook_path)

    async def register_webhook(self, url: str) -> None:
        """setWebhook with our secret, which the platform sends back on every POST."""
        if len(self.webhook_secret) not in SECRET_LENGTHS:
            raise RuntimeError("YKIEN_ZALO_BOT_WEBHOOK_SECRET must be 8 to 256 characters long")
        try:
            await self.api.call("setWebhook", {"url": url, "secret_token": self.webhook_secret})
        except (ApiError, NetworkTrouble) as exc:
            raise RuntimeError(f"Zalo Bot refused the webhook: {exc}") from None
        log.info("Zalo Bot: webhook registered")


def _ref(user_id: str) -> str:
    return chat_ref(CHANNEL, user_id)


async def remove_webhook(settings: Settings) -> str:
    """`ykien webhook delete` (bot.channels.registry)."""
    return await delete_webhook(settings.zalo_bot_token, settings.zalo_bot_api_url)


async def delete_webhook(token: str, api_url: str) -> str:
    """Remove the bot's webhook so that `ykien run` can poll; the URL it had, or ""."""
    api = BotApi(token, api_url)
    try:
        info = await api.call("getWebhookInfo", {})
        url = info.get("url") if isinstance(info, dict) else ""
        if url:
            await api.call("deleteWebhook", {})
    except (ApiError, NetworkTrouble) as exc:
        raise RuntimeError(f"Zalo Bot could not be reached: {exc}") from None
    finally:
        await api.close()
    return url if isinstance(url, str) else ""


def from_settings(settings: Settings, service: ChatService) -> ZaloBotChannel:
    """The Zalo Bot channel as configured (bot.channels.registry)."""
    from storage.budget import DatabaseBudget

    return ZaloBotChannel(
        settings.zalo_bot_token, settings.zalo_bot_api_url, service,
        webhook_secret=settings.zalo_bot_webhook_secret,
        # The pace holds for the bot however many processes send.
        budget=DatabaseBudget(service.sessionmaker, CHANNEL),
    )


__all__ = [
    "CHANNEL",
    "SECRET_HEADER",
    "TEXT_LIMIT",
    "ApiError",
    "BotApi",
    "NetworkTrouble",
    "WebhookRegistered",
    "ZaloBotChannel",
    "delete_webhook",
    "events_of",
    "from_settings",
    "render",
    "send_error",
    "sending_calls",
    "to_incoming",
    "update_key",
    "updates_of",
    "zalo_bot_path",
]
