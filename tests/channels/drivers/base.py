"""What the conformance scenarios ask of a channel driver."""

from __future__ import annotations

import re
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

WAIT = 30.0  # seconds: an upper bound for a reply that should come at once


class ChatDriver(Protocol):
    """Residents on one channel. `user` is a resident's id on the platform, as a string."""

    channel: str
    sessionmaker: async_sessionmaker[AsyncSession]
    # A resident can answer a draft by replying to its message (Telegram's reply).
    can_reply: bool

    async def first_contact(self, user: str) -> None:
        """/start, a follow, or a first message: whatever begins a chat on the platform."""

    async def text(self, user: str, text: str) -> None:
        """The resident sends a text message."""

    async def press(self, user: str, label: str) -> None:
        """The resident chooses the latest choice labelled so (a button, or its number)."""

    async def reply(self, user: str, text: str, to: str) -> None:
        """The resident replies to the latest message containing `to`."""

    async def photo(self, user: str) -> None:
        """The resident sends a picture (not accepted)."""

    async def send_again(self, user: str) -> None:
        """The platform delivers the resident's last update once more (a retry)."""

    async def expect(self, user: str, contains: str) -> str:
        """What the bot sent the resident since their last action, once it contains
        `contains` (text or choice labels); fails after `WAIT` seconds."""

    async def deliver(self, user: str) -> None:
        """Let the delivery worker send what is queued for the resident (some channels'
        workers run by themselves; the console's runs between lines)."""


def numbered_choice(text: str, label: str) -> str:
    """The number printed next to `label` last in a transcript ("3. Yes" → "3")."""
    found = re.findall(rf"(?:^|\s)(\d+)\. {re.escape(label)}(?=\s{{3}}|\n|$)", text, re.M)
    assert found, f"no numbered choice {label!r} in:\n{text[-1500:]}"
    return found[-1]
