"""A ready message stored in the outbox (a TEXT row's payload), and queuing one.

The outbox in storage keeps the payload as text; what it means is the conversation's
business, so the encoding lives here (storage never imports handlers).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.events import Button, Reply
from storage import outbox
from storage.models import Resident


class PayloadError(ValueError):
    """A TEXT row's payload is not a message this version can read."""


def encode_reply(reply: Reply) -> str:
    """A ready message as a TEXT row's payload (JSON: text, button rows, draft id)."""
    return json.dumps(
        {
            "text": reply.text,
            "buttons": [[[button.id, button.label] for button in row] for row in reply.buttons],
            "draft_id": reply.draft_id,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_reply(payload: str) -> Reply:
    """The message `encode_reply` stored; PayloadError for anything else."""
    try:
        data = json.loads(payload)
        text, rows, draft_id = data["text"], data["buttons"], data.get("draft_id")
        if not isinstance(text, str) or not (draft_id is None or type(draft_id) is int):
            raise TypeError("text or draft_id")
        buttons = [[_button(pair) for pair in row] for row in rows]
    except (ValueError, TypeError, KeyError) as error:
        raise PayloadError(f"unreadable message payload: {error}") from error
    return Reply(text, buttons, draft_id=draft_id)


def _button(pair: Any) -> Button:
    data, label = pair
    if not (isinstance(data, str) and isinstance(label, str)):
        raise TypeError("button")
    return Button(data, label)


async def queue_reply(
    session: AsyncSession,
    resident: Resident,
    key: str,
    reply: Reply,
    expires_at: datetime | None,
    **timing: datetime | None,
) -> bool:
    """Queue a ready message for one resident, once per `key` (see storage.outbox)."""
    return await outbox.enqueue_text(
        session, resident, key, encode_reply(reply), expires_at, draft_id=reply.draft_id,
        **timing,
    )
