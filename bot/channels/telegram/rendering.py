"""Neutral replies laid out as Telegram takes them: inline keyboards, captions, text parts.

Telegram measures lengths in UTF-16 code units, so an emoji counts twice.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.constants import MessageLimit

from handlers import layout
from handlers.events import Reply

MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096
MAX_CAPTION = MessageLimit.CAPTION_LENGTH  # 1024


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def keyboard_json(reply: Reply) -> dict[str, Any] | None:
    """Inline keyboard rows for a reply's buttons (callback data is the button id), as the
    Bot API's JSON: what the aiohttp sender posts, without PTB objects built and converted
    for every reply."""
    rows = [[{"text": button.label, "callback_data": button.id} for button in row]
            for row in reply.buttons if row]
    return {"inline_keyboard": rows} if rows else None


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The same keyboard as python-telegram-bot's object, for its Bot's calls."""
    rows = keyboard_json(reply)
    return InlineKeyboardMarkup.de_json(rows, None) if rows else None


def fit_caption(caption: str) -> tuple[str | None, str]:
    """A caption Telegram accepts, and what has to follow as a message instead."""
    if not caption:
        return None, ""
    if utf16_len(caption) <= MAX_CAPTION:
        return caption, ""
    return None, caption


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split text into parts Telegram accepts, on paragraph, then line, then word boundaries."""
    return layout.split_text(text, limit, utf16_len)
