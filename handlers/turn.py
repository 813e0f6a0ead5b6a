"""What every step of the conversation gets: the event, the resident, the translator, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.events import Button, Incoming, Reply
from handlers.i18n import Translator
from storage.models import Resident

# Limits a person is told about when they exceed them.
COMMENT_LIMIT = 1000
# Zalo's text limit is the smallest of our channels; a draft must fit one message everywhere.
MESSAGE_LIMIT = 2000


@dataclass
class Turn:
    session: AsyncSession
    event: Incoming
    resident: Resident | None
    t: Translator
    now: datetime


def menu(t: Translator) -> list[list[Button]]:
    """The resident's everyday buttons, so nobody has to remember a command."""
    other_language = Button("lang:en", "English") if t.language == "vi" else Button(
        "lang:vi", "Tiếng Việt"
    )
    return [
        [Button("menu:drafts", t("Open drafts")), Button("menu:mine", t("My comments"))],
        [Button("menu:commune", t("Change commune")), other_language],
        [Button("menu:help", t("Help")), Button("menu:stop", t("Stop"))],
    ]


def with_menu(turn: Turn, text: str) -> Reply:
    return Reply(text, menu(turn.t))
