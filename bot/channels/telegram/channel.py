"""The Telegram channel: python-telegram-bot long polling or webhook in, neutral replies out.

Only this package imports `telegram`; the conversation sees neutral events only. Updates
become events in receiving.py, replies become Bot API calls in rendering.py, and broadcasts
go out through the lean aiohttp sender (sender.py).

Each chat's updates are handled in order, different chats concurrently (`PerChatProcessor`).
An update's replies are sent within its handling, waiting for the chat's pace (1 message/s
after a burst of 3) and for flood control (a 429 pauses the channel as Telegram asked): so an
update counts as handled (`ykien serve` marks its stored row) only once its replies are sent
or have failed for good, and a stop or a crash never loses replies that were only queued.
Logs name chats by `chat_ref` pseudonyms, never by chat id, and never quote what was written.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hmac
import inspect
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from bot.channels.channel import (
    PermanentFailure,
    ReadUpdate,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
    Verdict,
    WebhookRegistered,
)
from bot.channels.pacing import ChannelLimiter, Priority, SharedBudget
from bot.channels.telegram.receiving import (
    ALLOWED_UPDATES,
    CHANNEL,
    SECRET_HEADER,
    PerChatProcessor,
    ReadingBot,
    chat_id_of,
    ref,
    telegram_path,
    to_incoming,
    update_kind,
)
from bot.channels.telegram.rendering import (
    MAX_TEXT,
    fit_caption,
    keyboard,
    keyboard_json,
    split_text,
    utf16_len,
)
from bot.channels.telegram.sender import TelegramSender
from handlers.capabilities import Capabilities, PictureWay
from handlers.commands import command_menu
from handlers.events import Document, Incoming, Outgoing, Picture, Reply

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import ChatService

log = logging.getLogger(__name__)

# Opt in to PTB's future time type (timedelta): with the default, PTB 22 emits a deprecation
# warning each time it raises RetryAfter. Only this module uses PTB, and it handles both.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# PTB loggers that write whole updates and request parameters (chat ids, what people wrote)
# at DEBUG, and httpx, which writes request URLs (they contain the token) at INFO.
_CHATTY_LOGGERS = {
    "telegram.Bot": logging.INFO,
    "telegram.ext.ExtBot": logging.INFO,
    "telegram.ext.Application": logging.INFO,
    "telegram.ext.Updater": logging.INFO,
    "httpx": logging.WARNING,
}

class Service(Protocol):
    """What the adapter needs from `bot.service.ChatService`."""

    async def handle(
        self, event: Incoming, capabilities: Capabilities | None = None
    ) -> list[Outgoing]:
        """The replies to one event, within the channel's `capabilities`."""
        ...

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        """Called after each message sent in answer to an event."""
        ...


# One Bot API call that sends (part of) a message, giving the new message's id.
Step = Callable[[], Awaitable[str]]


@dataclass
class _Answer:
    """The replies to one update that are still to be sent, in order."""

    user_id: str
    replies: deque[Outgoing] = field(default_factory=deque)
    # The message whose button was pressed: the first reply marked `edit` may replace it.
    edit_target: int | None = None
    # Ids of the parts of `replies[0]` already sent, so a retry goes on from the next part.
    sent_parts: list[str] = field(default_factory=list)


class TelegramChannel:
    """Telegram through python-telegram-bot: long polling, inline keyboards, typed send errors."""

    name = CHANNEL
    # Inline keyboards hold up to 100 buttons; texts count UTF-16 code units.
    capabilities = Capabilities(
        buttons_per_message=100, button_label_limit=64, text_limit=MAX_TEXT, can_edit=True,
        replies_to_messages=True, measure=utf16_len, sends_files=True,
        pictures=PictureWay.FILE,
    )
    # An update's replies are given up after this many flood-control waits (429) in a row.
    reply_max_waits = 5
    # Upper bound on stop(), so a stuck handler or network cannot hang shutdown.
    stop_timeout = 15.0

    def __init__(
        self,
        token: str,
        api_url: str,
        service: Service,
        *,
        poll_timeout: int = 10,
        concurrent_chats: int = 64,
        messages_per_second: float = 30.0,
        budget: SharedBudget | None = None,
        webhook_secret: str = "",
    ) -> None:
        # Before the bot is built: its constructor logs the token (at DEBUG).
        _quiet_chatty_loggers()
        self.service = service
        # Telegram echoes it in a header on every webhook POST (`ykien serve`).
        self.webhook_secret = webhook_secret
        # Replies and broadcasts share it; with a budget the pace holds across processes.
        self.limiter = ChannelLimiter(messages_per_second, budget=budget)
        # Broadcast text goes through plain aiohttp, faster than PTB (bot.channels.telegram.sender).
        self.sender = TelegramSender(token, api_url)
        self.poll_timeout = poll_timeout
        self._token = token
        api_url = api_url.rstrip("/")
        bot = ReadingBot(
            token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot",
            # Bounded requests: PTB adds the long-poll timeout to get_updates' read timeout.
            # (The pool sizes are ApplicationBuilder's.)
            request=HTTPXRequest(connection_pool_size=256, connect_timeout=5.0,
                                 read_timeout=10.0, write_timeout=10.0,
                                 media_write_timeout=30.0, pool_timeout=5.0),
            get_updates_request=HTTPXRequest(connection_pool_size=1, connect_timeout=5.0,
                                             read_timeout=5.0, write_timeout=5.0,
                                             pool_timeout=5.0),
        )
        self.application: Application = (
            ApplicationBuilder()
            .bot(bot)
            .concurrent_updates(PerChatProcessor(concurrent_chats))
            # No scheduled jobs here: the delivery worker does its own pacing.
            .job_queue(None)
            .build()
        )
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._started = False

    async def start(self) -> None:
        """Connect (getMe), set the command menu, and start long polling in the background.

        Raises `WebhookRegistered` if a webhook is set: PTB's polling would delete it.
        """
        await self._start(self._start_polling)
        log.info("Telegram: polling as @%s", self.application.bot.username)

    async def _start_polling(self) -> None:
        app = self.application
        webhook = (await app.bot.get_webhook_info()).url
        if webhook:
            raise WebhookRegistered("Telegram", webhook)
        assert app.updater is not None  # built by ApplicationBuilder by default
        await app.updater.start_polling(
            timeout=self.poll_timeout,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
            error_callback=self._on_polling_error,
        )

    async def start_webhook(self) -> None:
        """Connect (getMe), set the command menu, and get ready for `process_webhook_update`.

        Nothing is registered with Telegram yet: `set_webhook` does, once the server listens.
        """
        await self._start(None)
        log.info("Telegram: receiving by webhook as @%s", self.application.bot.username)

    async def _start(self, receive: Callable[[], Awaitable[None]] | None) -> None:
        _quiet_chatty_loggers()
        app = self.application
        try:
            await app.initialize()
            await self._set_commands()
            await app.start()
            if receive is not None:
                await receive()
        except BaseException as exc:
            await self._teardown()
            if isinstance(exc, TelegramError):
                # Configuration trouble: say so without a PTB type (or the token) in the message.
                raise RuntimeError(f"Telegram could not start: {self._redact(exc)}") from exc
            raise
        self._started = True

    # ---- webhook mode (`ykien serve`) ----------------------------------------------------

    @property
    def webhook_path(self) -> str:
        return telegram_path(self.webhook_secret)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Only Telegram knows the secret it was given with the webhook."""
        given = headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not self.webhook_secret or not hmac.compare_digest(
            given, self.webhook_secret.encode()
        ):
            return 403
        return None

    async def register_webhook(self, url: str) -> None:
        await self.set_webhook(url, self.webhook_secret)

    async def set_webhook(self, url: str, secret: str) -> None:
        """Ask Telegram to POST updates to `url` with `secret` in its secret-token header."""
        try:
            await self.application.bot.set_webhook(
                url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        except TelegramError as exc:
            raise RuntimeError(f"Telegram refused the webhook: {self._redact(exc)}") from exc
        log.info("Telegram: webhook registered")

    def read_webhook_update(self, payload: object) -> ReadUpdate | None:
        """An update as Telegram POSTs it, read by python-telegram-bot (once: what follows
        takes it as read); None for one that is not a resident's (groups, channels, bots,
        service messages) or that python-telegram-bot cannot read (logged once, with its
        kind); ValueError if it is no update at all."""
        if not isinstance(payload, dict) or type(payload.get("update_id")) is not int:
            raise ValueError("not a Telegram update")
        try:
            update = Update.de_json(payload, self.application.bot)
        except Exception as exc:  # PTB raises whatever fields it does not expect provoke
            log.warning("Telegram: a %s update could not be read (%s); acknowledged and "
                        "ignored", update_kind(payload), type(exc).__name__)
            return None
        if to_incoming(update) is None:
            return None
        chat_id = chat_id_of(update)
        return ReadUpdate(str(update.update_id), "" if chat_id is None else str(chat_id), update)

    async def process_webhook_update(
        self, update: object, handle: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        """Handle a webhook update through PTB's update processing, after the earlier updates
        of its chat (`PerChatProcessor`). `handle` gets the processing to run, and may wrap it
        (claim the stored row before, record it after) or skip it."""
        if not isinstance(update, Update):
            raise ValueError("not a Telegram update")
        app = self.application
        processing = handle(lambda: app.process_update(update))
        try:
            await app.update_processor.process_update(update, processing)
        finally:
            if inspect.iscoroutine(processing):
                processing.close()  # not begun if the processor refused the update

    async def stop(self) -> None:
        """Stop polling, finish the updates being handled, and close connections (bounded)."""
        if not self._started:
            return
        self._started = False
        await self._teardown()

    async def _teardown(self) -> None:
        app = self.application
        try:
            async with asyncio.timeout(self.stop_timeout):
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                if app.running:
                    await app.stop()
        except TimeoutError:
            log.warning("Telegram: stopping took over %ss; closing anyway", self.stop_timeout)
        except Exception:
            log.exception("Telegram: error while stopping")
        await self.sender.close()
        try:
            async with asyncio.timeout(self.stop_timeout):
                await app.shutdown()
                # After a failed initialize() the Application skips this: close HTTP clients.
                await app.bot.shutdown()
        except Exception:
            log.exception("Telegram: error while shutting down")

    async def _set_commands(self) -> None:
        # The menu is a convenience: a failure here must not keep the bot from running.
        # Vietnamese for everyone, English for apps set to English.
        for language, table in (("", command_menu("vi")), ("en", command_menu("en"))):
            commands = [BotCommand(name, text) for name, text in table.items()]
            try:
                await self.application.bot.set_my_commands(commands, language_code=language or None)
            except TelegramError as exc:
                log.warning("Telegram: could not set the %s command menu: %s", language, exc)

    def _redact(self, exc: BaseException) -> str:
        # PTB names the token in some errors ("The token `...` was rejected by the server").
        return str(exc).replace(self._token, "<token>")

    # ---- sending -------------------------------------------------------------------------

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message (a broadcast); return its Telegram message id. Raises a `SendError`.

        The delivery worker acquired the limiter for the first part; later parts of a long
        message acquire their own. Text goes through the aiohttp sender, files through PTB.
        """
        first = True

        async def pace() -> None:
            nonlocal first
            if not first:
                await self.limiter.acquire(user_id, Priority.BROADCAST)
            first = False

        ids = await self._send_all(user_id, message, pace, [], fast=True)
        return ids[-1] if isinstance(message, Reply) else ids[0]

    async def _send_all(
        self,
        user_id: str,
        message: Outgoing,
        pace: Callable[[], Awaitable[None]],
        sent: list[str],
        *,
        fast: bool = False,
    ) -> list[str]:
        """Send a message, split if needed; the ids of every part, the one with buttons last.

        `pace` runs before each API call. `sent` holds the ids of parts already sent (an
        earlier try that was throttled): those are skipped, and new ids are added to it.
        """
        try:
            chat_id = int(user_id)
        except ValueError as exc:
            raise PermanentFailure("not a Telegram chat id") from exc
        for step in self._steps(chat_id, message, fast)[len(sent):]:
            await pace()
            try:
                sent.append(await step())
            except TelegramError as exc:
                raise send_error(exc) from exc
        return list(sent)

    def _steps(self, chat_id: int, message: Outgoing, fast: bool) -> list[Step]:
        """The API calls that send a message, in order, each giving a message id."""
        bot = self.application.bot

        # A secret (a one-time link) goes without a preview, which Telegram would fetch.
        secret = isinstance(message, Reply) and message.secret
        no_preview = {"link_preview_options": LinkPreviewOptions(is_disabled=True)}

        def text(part: str, buttons: Reply | None = None) -> Step:
            async def call() -> str:
                if fast and not secret:
                    return await self.sender.send_message(
                        chat_id, part, keyboard_json(buttons) if buttons else None)
                sent = await bot.send_message(chat_id, part,
                                              reply_markup=keyboard(buttons) if buttons else None,
                                              **(no_preview if secret else {}))
                return str(sent.message_id)

            return call

        if isinstance(message, Reply):
            parts = split_text(message.text)
            last = len(parts)
            return [text(part, message if n == last else None)
                    for n, part in enumerate(parts, 1)]
        if isinstance(message, Document):
            caption, rest = fit_caption(message.caption)
            upload = InputFile(message.data, filename=message.filename)

            async def file() -> str:
                return str((await bot.send_document(chat_id, upload, caption=caption)).message_id)

        elif isinstance(message, Picture):
            caption, rest = fit_caption(message.caption)
            upload = InputFile(message.data, filename="picture.png")

            async def file() -> str:
                return str((await bot.send_photo(chat_id, upload, caption=caption)).message_id)

        else:
            raise TypeError(f"cannot send {type(message).__name__} to Telegram")
        # A caption over Telegram's limit follows the file as text rather than being cut.
        return [file, *(text(part) for part in (split_text(rest) if rest else []))]

    async def _edit(self, user_id: str, message_id: int, reply: Reply) -> bool:
        """Replace the text and keyboard of a message the bot sent; False if it cannot.

        Raises `Throttled` under flood control, so the edit is tried again later.
        """
        if utf16_len(reply.text) > MAX_TEXT or not reply.text.strip():
            return False
        try:
            await self.application.bot.edit_message_text(
                reply.text,
                chat_id=int(user_id),
                message_id=message_id,
                reply_markup=keyboard(reply),
            )
        except RetryAfter as exc:
            raise send_error(exc) from exc
        except BadRequest as exc:
            # Pressing the same button twice asks for the same content: already shown.
            if "not modified" in exc.message.lower():
                return True
            log.info("Telegram: could not edit a message in %s: %s", ref(user_id), exc)
            return False
        except TelegramError as exc:
            log.info("Telegram: could not edit a message in %s: %s", ref(user_id), exc)
            return False
        return True

    async def _deliver(self, answer: _Answer) -> None:
        """Send an update's replies, waiting here for the chat's pace and for flood control:
        the update is handled once they are sent (its chat's next update waits for them)."""
        for _ in range(self.reply_max_waits + 1):
            try:
                await self._send_answer(answer)
                return
            except Throttled:
                continue  # the limiter now holds the channel for Telegram's retry_after
        # Flood control that long means trouble; stale answers would confuse.
        log.warning("Telegram: replies to %s dropped after %d waits", ref(answer.user_id),
                    self.reply_max_waits)

    async def _send_answer(self, answer: _Answer) -> None:
        """Send and record replies until none is left; raises `Throttled`, keeping the rest.

        Each API call first takes a slot of the limiter (priority REPLY), waiting for it.
        Any other send error drops the rest: later replies would read out of order.
        """

        async def pace() -> None:
            await self.limiter.acquire(answer.user_id, Priority.REPLY)

        while answer.replies:
            message = answer.replies[0]
            try:
                ids = await self._edit_or_send(answer, message, pace)
            except Throttled as exc:
                if exc.retry_after > 0:  # flood control stops the whole channel
                    self.limiter.pause(exc.retry_after)
                raise
            except SendError as exc:
                log.warning(
                    "Telegram: reply to %s not sent: %s: %s",
                    ref(answer.user_id),
                    type(exc).__name__,
                    exc,
                )
                answer.replies.clear()
                return
            answer.replies.popleft()
            answer.sent_parts = []
            await self._record(answer.user_id, ids, message)

    async def _edit_or_send(
        self, answer: _Answer, message: Outgoing, pace: Callable[[], Awaitable[None]]
    ) -> list[str]:
        target = answer.edit_target
        if target is not None and isinstance(message, Reply) and message.edit:
            await pace()
            edited = await self._edit(answer.user_id, target, message)
            answer.edit_target = None  # one edit per press; a failed one becomes a message
            if edited:
                return [str(target)]
        # Text through the aiohttp sender, as broadcasts go: PTB's client costs several times
        # more per message (benchmarks/results/send.txt).
        return await self._send_all(answer.user_id, message, pace, answer.sent_parts,
                                    fast=True)

    async def _record(self, user_id: str, ids: list[str], message: Outgoing) -> None:
        # Every part of a split draft message counts, so a reply to any part is a comment.
        for message_id in ids:
            try:
                await self.service.sent(CHANNEL, user_id, message_id, message)
            except Exception:
                log.exception("Telegram: recording a message sent to %s failed", ref(user_id))

    # ---- receiving -----------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Translate one update, ask the service, deliver its replies; failures are logged."""
        query = update.callback_query
        if query is not None:
            await self._answer(query)
        event = to_incoming(update)
        if event is None:
            return
        try:
            replies = await self.service.handle(event, self.capabilities)
        except Exception:
            log.exception("Telegram: handling an update from %s failed", ref(event.user_id))
            return
        answer = _Answer(event.user_id, deque(replies))
        # A button press may update the message the button was on instead of adding one.
        if query is not None and isinstance(query.message, Message):
            answer.edit_target = query.message.message_id
        await self._deliver(answer)

    async def _answer(self, query: CallbackQuery) -> None:
        # Always answer, so the button's spinner stops even when the press is ignored.
        try:
            await query.answer()
        except TelegramError as exc:
            log.info("Telegram: answerCallbackQuery failed: %s", exc)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # The update itself holds a chat id and what was written: name the chat by reference.
        error = context.error
        chat_id = chat_id_of(update)
        source = ref(str(chat_id)) if chat_id is not None else "no chat"
        log.error(
            "Telegram: %s while handling an update from %s",
            type(error).__name__,
            source,
            exc_info=error,
        )

    def _on_polling_error(self, exc: TelegramError) -> None:
        # PTB retries polling with backoff; one line per failure is enough.
        log.warning("Telegram: polling failed, retrying: %s", self._redact(exc))


async def remove_webhook(settings: Settings) -> str:
    """`ykien webhook delete` (bot.channels.registry)."""
    return await delete_webhook(settings.telegram_token, settings.telegram_api_url)


async def delete_webhook(token: str, api_url: str) -> str:
    """Remove the bot's webhook (Telegram keeps updates for polling); the URL it had, or ""."""
    api_url = api_url.rstrip("/")
    _quiet_chatty_loggers()
    bot = Bot(token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot")
    try:
        async with bot:
            url = (await bot.get_webhook_info()).url
            if url:
                await bot.delete_webhook(drop_pending_updates=False)
    except TelegramError as exc:
        reason = str(exc).replace(token, "<token>")
        raise RuntimeError(f"Telegram could not be reached: {reason}") from exc
    return url or ""


def _quiet_chatty_loggers() -> None:
    """Keep personal data and the token out of library logs, unless a level was chosen."""
    for name, level in _CHATTY_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def send_error(exc: TelegramError) -> SendError:
    """The neutral send error for a python-telegram-bot exception."""
    if isinstance(exc, RetryAfter):
        return Throttled(_retry_seconds(exc), str(exc))
    if isinstance(exc, Forbidden):  # blocked by the user, or the account was deleted
        return Unreachable(str(exc))
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest subclasses it
        if "chat not found" in exc.message.lower():
            return Unreachable(str(exc))
        return PermanentFailure(str(exc))
    if isinstance(exc, TimedOut | NetworkError):
        return TemporaryFailure(str(exc))
    # InvalidToken, Conflict and the like: configuration trouble, not this message's fault.
    return TemporaryFailure(str(exc))


def _retry_seconds(exc: RetryAfter) -> float:
    # PTB 22 gives a timedelta with PTB_TIMEDELTA set (see the top), an int otherwise.
    value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def from_settings(settings: Settings, service: ChatService) -> TelegramChannel:
    """The Telegram channel as configured (bot.channels.registry)."""
    from storage.budget import DatabaseBudget

    return TelegramChannel(
        settings.telegram_token, settings.telegram_api_url, service,
        messages_per_second=settings.telegram_messages_per_second,
        # The pace holds per bot, however many processes send (see README, "Sending").
        budget=DatabaseBudget(service.sessionmaker, "telegram"),
        webhook_secret=settings.telegram_webhook_secret,
    )
