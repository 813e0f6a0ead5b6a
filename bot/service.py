"""The bridge between adapters and the conversation: one database session per event."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.conversation import handle, remember_draft_message
from handlers.events import Incoming, Outgoing, Reply

log = logging.getLogger(__name__)


class ChatService:
    """Handles neutral events for every channel adapter."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def handle(self, event: Incoming) -> list[Outgoing]:
        """The replies to one event (never raises for a person's input)."""
        async with self.sessionmaker() as session:
            return await handle(session, event)

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        """Record a sent message that shows a draft, so a reply to it becomes a comment."""
        if not isinstance(message, Reply) or message.draft_id is None or not message_id:
            return
        async with self.sessionmaker() as session:
            await remember_draft_message(session, channel, user_id, message_id, message.draft_id)
