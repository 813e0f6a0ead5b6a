"""Telegram updates in: which are the bot's, as neutral events, each chat's in order.

Only private chats are a resident's; groups, channels, service messages and messages sent
by bots are ignored. A text forwarded from elsewhere, or sent through an inline bot, is the
resident's to send but someone else's words: it is marked `forwarded`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import ChatMemberUpdated, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import BaseUpdateProcessor, ExtBot

from handlers.events import Incoming, Kind
from handlers.logref import chat_ref

log = logging.getLogger(__name__)

CHANNEL = "telegram"
# What the bot asks Telegram for, by polling and by webhook.
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]

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


SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def telegram_path(secret: str) -> str:
    """The webhook path, derived from the secret so it is unguessable without naming it."""
    digest = hashlib.sha256(b"ykien telegram webhook\0" + secret.encode()).hexdigest()
    return f"/telegram/{digest[:32]}"


class PerChatProcessor(BaseUpdateProcessor):
    """Handles the updates of different chats concurrently, and those of one chat in order.

    PTB starts a task per update, in the order Telegram sent them, and each enters
    `do_process_update` in that order (PTB's semaphore wakes its waiters first in, first out).
    An update waits for the previous update of its chat, then for one of `max_running`
    places. PTB's own bound (`max_waiting`) counts the waiting updates too, so it is set far
    higher: a chat with many queued updates must not take the places of other chats.
    """

    def __init__(self, max_running: int, max_waiting: int = 10_000) -> None:
        super().__init__(max_waiting)
        self._running = asyncio.Semaphore(max_running)
        # Each chat's latest update: done once handled. Only chats with updates in flight.
        self._latest: dict[int, asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Handle one update after the earlier updates of its chat (see the class)."""
        chat_id = chat_id_of(update)
        if chat_id is None:  # nothing to keep in order with
            async with self._running:
                await coroutine
            return
        previous = self._latest.get(chat_id)
        handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._latest[chat_id] = handled
        try:
            if previous is not None:
                # Shielded: cancelling this update must not cancel the marker of the previous
                # one, which its own task resolves.
                await asyncio.shield(previous)
            async with self._running:
                await coroutine
        finally:
            handled.set_result(None)
            if self._latest.get(chat_id) is handled:
                del self._latest[chat_id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: PTB waits for the updates in flight before shutting down."""


def chat_id_of(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


def ref(user_id: str) -> str:
    return chat_ref(CHANNEL, user_id)


def update_kind(payload: dict) -> str:
    """What kind of update a raw one is ("message", "my_chat_member"...), for a log line."""
    kind = next((str(key) for key in payload if key != "update_id"), "empty")
    return kind[:40] if kind.isidentifier() else "unknown"


def readable(raw: object) -> object:
    """A raw update as polled, or an empty one in place of one python-telegram-bot cannot read
    (Telegram sends fields it does not expect, or lacks fields it requires): logged once with
    its kind, and passed by (its id confirms it), instead of stopping polling for everyone."""
    if not isinstance(raw, dict) or type(raw.get("update_id")) is not int:
        return raw
    try:
        Update.de_json(raw, None)
    except Exception as exc:
        log.warning("Telegram: a %s update could not be read (%s); acknowledged and ignored",
                    update_kind(raw), type(exc).__name__)
        return {"update_id": raw["update_id"]}
    return raw


class ReadingBot(ExtBot[None]):
    """python-telegram-bot's bot, but polled updates it cannot read are passed by (`readable`)
    instead of failing the whole batch again and again, logging every resident's words."""

    async def _do_post(self, endpoint: str, data: dict[str, Any], **kwargs: Any) -> Any:
        # PTB's documented place to wrap requests (ExtBot does its rate limiting here).
        result = await super()._do_post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            return [readable(raw) for raw in result]
        return result


def to_incoming(update: Update) -> Incoming | None:
    """The neutral event for an update, or None for what the bot ignores."""
    if update.callback_query is not None:
        return _choice(update)
    if update.my_chat_member is not None:
        return _membership(update, update.my_chat_member)
    if update.edited_message is not None:
        return _edited(update, update.edited_message)
    message = update.message
    if message is None:  # channel posts and the like
        return None
    if not _is_private(message.chat.type, message.chat.id, "message") or _from_bot(message):
        return None
    if message.text is not None:
        kind, text = Kind.TEXT, _strip_bot_name(message.text)
    else:
        found = next((kind for field, kind in _MEDIA_KINDS if getattr(message, field, None)), None)
        if found is None:  # service messages (pinned, write access allowed, ...)
            return None
        kind, text = found, message.caption or ""
    return _from_message(update, message, kind, text)


def _edited(update: Update, message: Message) -> Incoming | None:
    # Only text edits: a live location, for one, is "edited" every few seconds.
    if message.text is None or not _is_private(message.chat.type, message.chat.id, "edit"):
        return None
    if _from_bot(message):
        return None
    return _from_message(update, message, Kind.EDITED, message.text)


def _from_bot(message: Message) -> bool:
    """Whether a bot sent the message (never a resident, whatever the chat)."""
    if message.from_user is None or not message.from_user.is_bot:
        return False
    log.info("Telegram: ignoring a message sent by a bot in %s", ref(str(message.chat.id)))
    return True


def _from_message(update: Update, message: Message, kind: Kind, text: str) -> Incoming:
    reply_to = message.reply_to_message
    return Incoming(
        channel=CHANNEL,
        user_id=str(message.chat.id),
        kind=kind,
        text=text,
        reply_to=str(reply_to.message_id) if reply_to else "",
        update_id=str(update.update_id),
        language_hint=_language(message.from_user),
        forwarded=message.forward_origin is not None or message.via_bot is not None,
    )


def _membership(update: Update, change: ChatMemberUpdated) -> Incoming | None:
    """In a private chat the bot's membership changes when the person blocks or unblocks it."""
    if not _is_private(change.chat.type, change.chat.id, "membership change"):
        return None
    old, new = change.old_chat_member.status, change.new_chat_member.status
    if new == ChatMemberStatus.BANNED:  # "kicked": the person blocked the bot
        kind = Kind.BLOCKED
    elif new == ChatMemberStatus.MEMBER and old == ChatMemberStatus.BANNED:
        kind = Kind.UNBLOCKED
    else:
        return None
    return Incoming(
        channel=CHANNEL,
        user_id=str(change.chat.id),
        kind=kind,
        update_id=str(update.update_id),
        language_hint=_language(change.from_user),
    )


def _choice(update: Update) -> Incoming | None:
    query = update.callback_query
    assert query is not None
    if query.message is not None:
        chat = query.message.chat
        if not _is_private(chat.type, chat.id, "button"):
            return None
        chat_id = chat.id
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


def _is_private(chat_type: str, chat_id: int, what: str) -> bool:
    """Whether the chat is a private one; the bot ignores groups and channels (logged)."""
    if chat_type == ChatType.PRIVATE:
        return True
    log.info("Telegram: ignoring a %s in %s chat %s", what, chat_type, ref(str(chat_id)))
    return False


def _language(user: Any) -> str:
    return (user.language_code or "") if user is not None else ""


def _strip_bot_name(text: str) -> str:
    """'/start@ykien_bot payload' -> '/start payload' (Telegram adds the name in menus)."""
    if not text.startswith("/"):
        return text
    command, space, rest = text.partition(" ")
    return command.split("@", 1)[0] + space + rest
