"""The bridge between adapters and the conversation: one transaction per event."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.capabilities import Capabilities
from handlers.conversation import apology, language_of, remember_draft_message, respond
from handlers.events import Incoming, Outgoing, Reply
from handlers.logref import chat_ref
from handlers.state import DEFAULT_TIMEOUT
from storage.models import utcnow

log = logging.getLogger(__name__)


class ChatService:
    """Handles neutral events for every channel adapter."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        conversation_timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.conversation_timeout = conversation_timeout

    async def handle(self, event: Incoming) -> list[Outgoing]:
        """The replies to one event; never raises for a person's input.

        Everything the event changes is committed together, or nothing is: a failure rolls
        the whole update back (so a retried update is processed again) and apologises.
        """
        try:
            async with self.sessionmaker() as session, session.begin():
                return await respond(session, event, utcnow(), self.conversation_timeout)
        except Exception:
            log.exception(
                "failed to handle a %s event from %s", event.kind,
                chat_ref(event.channel, event.user_id),
            )
        return apology(await self._language(event))

    async def _language(self, event: Incoming) -> str | None:
        try:
            async with self.sessionmaker() as session:
                return await language_of(session, event.channel, event.user_id)
        except Exception:  # the database itself may be what failed
            return None

    async def lay_out(
        self, channel: str, capabilities: Capabilities, user_id: str, message: Outgoing
    ) -> list[Outgoing]:
        """The message as the channel can show it: within its button and text limits.

        Choices beyond the channel's buttons become numbered lines; the numbers are stored
        for the chat, so a typed "2" is read back by `handle` on any process.
        """
        return [message]

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        """Record a sent message that shows a draft, so a reply to it becomes a comment."""
        if not isinstance(message, Reply) or message.draft_id is None or not message_id:
            return
        async with self.sessionmaker() as session, session.begin():
            await remember_draft_message(session, channel, user_id, message_id, message.draft_id)
