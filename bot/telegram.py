"""The Telegram channel: python-telegram-bot long polling in, neutral replies out.

This is the only module that imports `telegram`; the conversation sees neutral events only.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import os
from typing import Any, Protocol

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channel import (
    PermanentFailure,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
)
from handlers.commands import command_menu
from handlers.events import Document, Incoming, Kind, Outgoing, Picture, Reply

log = logging.getLogger(__name__)

# Opt in to PTB's future time type (timedelta): with the default, PTB 22 emits a deprecation
# warning each time it raises RetryAfter. Only this module uses PTB, and it handles both.
os.environ.setdefault("PTB_TIMEDELTA", "true")

CHANNEL = "telegram"
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096
MAX_CAPTION = MessageLimit.CAPTION_LENGTH  # 1024

# Message content -> neutral kind, checked in this order: a venue also carries a location, and
# an animation also carries a document, so the more specific field comes first.
_MEDIA_KINDS: tuple[tuple[str, Kind], ...] = (
    ("photo", Kind.PHOTO),
    ("sticker", Kind.STICKER),
    ("voice", Kind.VOICE),
    ("audio", Kind.VOICE),
    ("location", Kind.LOCATION),
    ("animation", Kind.OTHER),
    ("document", Kind.FILE),
    ("video", Kind.OTHER),
    ("video_note", Kind.OTHER),
    ("contact", Kind.OTHER),
    ("poll", Kind.OTHER),
    ("dice", Kind.OTHER),
    ("story", Kind.OTHER),
)


class Service(Protocol):
    """What the adapter needs from `bot.service.ChatService`."""

    async def handle(self, event: Incoming) -> list[Outgoing]:
        """The replies to one event."""
        ...

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        """Called after each message sent in answer to an event."""
        ...


class TelegramChannel:
    """Telegram through python-telegram-bot: long polling, inline keyboards, typed send errors."""

    name = CHANNEL
    # Telegram allows about 30 messages/s per bot; stay a little under it.
    messages_per_second = 25.0
    # A conversation reply throttled for at most this long is retried once; longer waits would
    # hold up every chat, since updates are handled one at a time to keep each chat in order.
    reply_retry_cap = 3.0
    # Upper bound on stop(), so a stuck handler or network cannot hang shutdown.
    stop_timeout = 15.0

    def __init__(
        self, token: str, api_url: str, service: Service, *, poll_timeout: int = 10
    ) -> None:
        self.service = service
        self.poll_timeout = poll_timeout
        self._token = token
        api_url = api_url.rstrip("/")
        self.application: Application = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{api_url}/bot")
            .base_file_url(f"{api_url}/file/bot")
            # Bounded requests: PTB adds the long-poll timeout to get_updates' read timeout.
            .connect_timeout(5.0)
            .read_timeout(10.0)
            .write_timeout(10.0)
            .media_write_timeout(30.0)
            .pool_timeout(5.0)
            .get_updates_connect_timeout(5.0)
            .get_updates_read_timeout(5.0)
            .get_updates_write_timeout(5.0)
            .get_updates_pool_timeout(5.0)
            # One update at a time keeps each chat's messages in order.
            .concurrent_updates(False)
            # No scheduled jobs here: the delivery worker does its own pacing.
            .job_queue(None)
            .build()
        )
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._started = False

    @property
    def bot(self) -> Any:
        """The python-telegram-bot `Bot` (for diagnostics; callers should use `send`)."""
        return self.application.bot

    async def start(self) -> None:
        """Connect (getMe), set the command menu, and start long polling in the background."""
        # httpx logs every request URL at INFO, and Bot API URLs contain the token.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)
        app = self.application
        try:
            await app.initialize()
            await self._set_commands()
            await app.start()
            assert app.updater is not None  # built by ApplicationBuilder by default
            await app.updater.start_polling(
                timeout=self.poll_timeout,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
                error_callback=self._on_polling_error,
            )
        except BaseException as exc:
            await self._teardown()
            if isinstance(exc, TelegramError):
                # Configuration trouble: say so without a PTB type (or the token) in the message.
                detail = str(exc).replace(self._token, "<token>")
                raise RuntimeError(f"Telegram could not start: {detail}") from exc
            raise
        self._started = True
        log.info("Telegram: polling as @%s", app.bot.username)

    async def stop(self) -> None:
        """Stop polling, finish the update being handled, and close connections (bounded)."""
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

    # ---- sending -------------------------------------------------------------------------

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message; return its Telegram message id. Raises a `SendError`."""
        ids = await self._send_all(user_id, message)
        return ids[-1]

    async def _send_all(self, user_id: str, message: Outgoing) -> list[str]:
        """Send a message, split if needed; the ids of every part, the one with buttons last."""
        try:
            chat_id = int(user_id)
        except ValueError as exc:
            raise PermanentFailure(f"not a Telegram chat id: {user_id!r}") from exc
        bot = self.application.bot
        try:
            if isinstance(message, Reply):
                parts = split_text(message.text)
                ids = []
                for number, part in enumerate(parts, 1):
                    markup = keyboard(message) if number == len(parts) else None
                    sent = await bot.send_message(chat_id, part, reply_markup=markup)
                    ids.append(str(sent.message_id))
                return ids
            if isinstance(message, Document):
                caption, rest = _fit_caption(message.caption)
                sent = await bot.send_document(
                    chat_id, InputFile(message.data, filename=message.filename), caption=caption
                )
            elif isinstance(message, Picture):
                caption, rest = _fit_caption(message.caption)
                sent = await bot.send_photo(
                    chat_id, InputFile(message.data, filename="picture.png"), caption=caption
                )
            else:
                raise TypeError(f"cannot send {type(message).__name__} to Telegram")
            # A caption over Telegram's limit follows the file as text rather than being cut.
            for part in split_text(rest) if rest else []:
                await bot.send_message(chat_id, part)
            return [str(sent.message_id)]
        except TelegramError as exc:
            raise send_error(exc) from exc

    async def _edit(self, chat_id: int, message_id: int, reply: Reply) -> bool:
        """Replace the text and keyboard of a message the bot sent; False if it cannot."""
        if _utf16_len(reply.text) > MAX_TEXT or not reply.text.strip():
            return False
        try:
            await self.application.bot.edit_message_text(
                reply.text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard(reply)
            )
        except BadRequest as exc:
            # Pressing the same button twice asks for the same content: already shown.
            if "not modified" in exc.message.lower():
                return True
            log.info("Telegram: could not edit message %s: %s", message_id, exc)
            return False
        except TelegramError as exc:
            log.info("Telegram: could not edit message %s: %s", message_id, exc)
            return False
        return True

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
            replies = await self.service.handle(event)
        except Exception:
            log.exception("Telegram: handling update %s failed", update.update_id)
            return
        # A button press may update the message the button was on instead of adding one.
        editable = None
        if query is not None and isinstance(query.message, Message):
            editable = query.message.message_id
        for message in replies:
            try:
                if editable is not None and isinstance(message, Reply) and message.edit:
                    target, editable = editable, None
                    if await self._edit(int(event.user_id), target, message):
                        await self._record(event.user_id, [str(target)], message)
                        continue
                ids = await self._send_reply(event.user_id, message)
            except SendError as exc:
                # Later replies would read out of order without this one: stop here.
                log.warning("Telegram: reply to %s not sent: %r", event.user_id, exc)
                return
            await self._record(event.user_id, ids, message)

    async def _send_reply(self, user_id: str, message: Outgoing) -> list[str]:
        try:
            return await self._send_all(user_id, message)
        except Throttled as exc:
            if exc.retry_after > self.reply_retry_cap:
                raise
            await asyncio.sleep(exc.retry_after)
            return await self._send_all(user_id, message)

    async def _record(self, user_id: str, ids: list[str], message: Outgoing) -> None:
        # Every part of a split draft message counts, so a reply to any part is a comment.
        for message_id in ids:
            try:
                await self.service.sent(CHANNEL, user_id, message_id, message)
            except Exception:
                log.exception("Telegram: recording sent message %s failed", message_id)

    async def _answer(self, query: CallbackQuery) -> None:
        # Always answer, so the button's spinner stops even when the press is ignored.
        try:
            await query.answer()
        except TelegramError as exc:
            log.info("Telegram: answerCallbackQuery failed: %s", exc)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram: error on update %r", update, exc_info=context.error)

    def _on_polling_error(self, exc: TelegramError) -> None:
        # PTB retries polling with backoff; one line per failure is enough.
        log.warning("Telegram: polling failed, retrying: %s", exc)


def to_incoming(update: Update) -> Incoming | None:
    """The neutral event for an update, or None for what the bot ignores."""
    if update.callback_query is not None:
        return _choice(update)
    message = update.message
    if message is None:  # edited messages, channel posts and the like
        return None
    if message.chat.type != ChatType.PRIVATE:
        log.info("Telegram: ignoring a message in %s chat %s", message.chat.type, message.chat.id)
        return None
    if message.text is not None:
        kind, text = Kind.TEXT, _strip_bot_name(message.text)
    else:
        found = next((kind for field, kind in _MEDIA_KINDS if getattr(message, field, None)), None)
        if found is None:  # service messages (pinned, write access allowed, ...)
            return None
        kind, text = found, message.caption or ""
    reply_to = message.reply_to_message
    return Incoming(
        channel=CHANNEL,
        user_id=str(message.chat.id),
        kind=kind,
        text=text,
        reply_to=str(reply_to.message_id) if reply_to else "",
        update_id=str(update.update_id),
        language_hint=_language(message.from_user),
    )


def _choice(update: Update) -> Incoming | None:
    query = update.callback_query
    assert query is not None
    if query.message is not None:
        if query.message.chat.type != ChatType.PRIVATE:
            log.info("Telegram: ignoring a button in chat %s", query.message.chat.id)
            return None
        chat_id = query.message.chat.id
    else:  # a button on an inline-mode message: private by nature
        chat_id = query.from_user.id
    if not query.data:
        return None
    return Incoming(
        channel=CHANNEL,
        user_id=str(chat_id),
        kind=Kind.CHOICE,
        choice=query.data,
        update_id=str(update.update_id),
        language_hint=_language(query.from_user),
    )


def _language(user: Any) -> str:
    return (user.language_code or "") if user is not None else ""


def _strip_bot_name(text: str) -> str:
    """'/start@ykien_bot payload' -> '/start payload' (Telegram adds the name in menus)."""
    if not text.startswith("/"):
        return text
    command, space, rest = text.partition(" ")
    return command.split("@", 1)[0] + space + rest


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Inline keyboard rows for a reply's buttons (callback data is the button id)."""
    rows = [
        [InlineKeyboardButton(button.label, callback_data=button.id) for button in row]
        for row in reply.buttons
        if row
    ]
    return InlineKeyboardMarkup(rows) if rows else None


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


def _fit_caption(caption: str) -> tuple[str | None, str]:
    """A caption Telegram accepts, and what has to follow as a message instead."""
    if not caption:
        return None, ""
    if _utf16_len(caption) <= MAX_CAPTION:
        return caption, ""
    return None, caption


def _utf16_len(text: str) -> int:
    # Telegram measures lengths in UTF-16 code units: an emoji counts twice.
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split text into parts Telegram accepts, on paragraph, then line, then word boundaries."""
    parts = [part for part in _split(text, limit, ("\n\n", "\n", " ")) if part.strip()]
    return parts or [text]


def _split(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if _utf16_len(text) <= limit:
        return [text]
    if not separators:
        return _hard_cut(text, limit)
    separator, finer = separators[0], separators[1:]
    parts: list[str] = []
    current: str | None = None
    for piece in text.split(separator):
        for chunk in _split(piece, limit, finer):
            candidate = chunk if current is None else current + separator + chunk
            if _utf16_len(candidate) <= limit:
                current = candidate
            else:
                if current is not None:
                    parts.append(current)
                current = chunk
    if current is not None:
        parts.append(current)
    return parts


def _hard_cut(text: str, limit: int) -> list[str]:
    parts, current, size = [], [], 0
    for char in text:
        width = _utf16_len(char)
        if size + width > limit:
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        parts.append("".join(current))
    return parts


__all__ = [
    "Service",
    "TelegramChannel",
    "keyboard",
    "send_error",
    "split_text",
    "to_incoming",
]
