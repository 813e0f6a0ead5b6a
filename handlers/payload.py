"""Ready messages stored as text: an outbox TEXT row's payload (and queuing one), and the
replies given to a chat's last update.

The outbox in storage keeps the payload as text; what it means is the conversation's
business, so the encoding lives here (storage never imports handlers).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.events import Button, Outgoing, Reply
from storage import outbox
from storage.models import Resident


class PayloadError(ValueError):
    """A TEXT row's payload is not a message this version can read."""


def _as_json(reply: Reply) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": reply.text,
        "buttons": [[[button.id, button.label] for button in row] for row in reply.buttons],
        "draft_id": reply.draft_id,
    }
    if reply.edit:
        data["edit"] = True
    return data


def _from_json(data: Any) -> Reply:
    text, rows, draft_id = data["text"], data["buttons"], data.get("draft_id")
    edit = data.get("edit", False)
    if not isinstance(text, str) or not (draft_id is None or type(draft_id) is int):
        raise TypeError("text or draft_id")
    if type(edit) is not bool:
        raise TypeError("edit")
    return Reply(text, [[_button(pair) for pair in row] for row in rows],
                 draft_id=draft_id, edit=edit)


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode_reply(reply: Reply) -> str:
    """A ready message as a TEXT row's payload (JSON: text, button rows, draft id)."""
    return _dumps(_as_json(reply))


def decode_reply(payload: str) -> Reply:
    """The message `encode_reply` stored; PayloadError for anything else."""
    try:
        return _from_json(json.loads(payload))
    except (ValueError, TypeError, KeyError) as error:
        raise PayloadError(f"unreadable message payload: {error}") from error


def encode_replies(replies: list[Outgoing]) -> str:
    """The text replies to an update, to give them again if they were lost on the way out.

    Files and pictures are left out: they are sent to staff on request, who can ask again;
    so are secrets (a sign-in link is not stored in the clear: the official asks again).
    """
    return _dumps([_as_json(reply) for reply in replies
                   if isinstance(reply, Reply) and not reply.secret])


def decode_replies(payload: str) -> list[Outgoing]:
    """The replies `encode_replies` stored; PayloadError for anything else."""
    try:
        return [_from_json(data) for data in json.loads(payload)]
    except (ValueError, TypeError, KeyError) as error:
        raise PayloadError(f"unreadable replies: {error}") from error


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
