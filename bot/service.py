"""The bridge between adapters and the conversation: one transaction per event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from handlers.capabilities import Capabilities, PictureWay
from handlers.conversation import (
    UpdateHandledBefore,
    apology,
    language_of,
    remember_draft_message,
    respond,
)
from handlers.events import Incoming, Kind, Outgoing, Reply
from handlers.layout import lay_out, needs_numbers
from handlers.logref import chat_ref
from handlers.numbering import Numbering, typed_number
from handlers.state import DEFAULT_TIMEOUT
from handlers.turn import Periods, Workspace
from storage import choices, queries
from storage.flood import CommentLimits
from storage.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")


def _chosen(event: Incoming, numbering: Numbering) -> Incoming:
    """A typed number or label of a choice shown as a numbered line is that choice."""
    if event.kind is not Kind.TEXT:
        return event
    button = numbering.resolve(event.text)
    if button is None:
        return replace(event, unknown_choice=typed_number(event.text))
    return replace(event, kind=Kind.CHOICE, choice=button.id, text="")


class ChatService:
    """Handles neutral events for every channel adapter."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        conversation_timeout: timedelta = DEFAULT_TIMEOUT,
        workspace: Workspace | None = None,
        comment_limits: CommentLimits | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.conversation_timeout = conversation_timeout
        self.workspace = workspace or Workspace()
        # Handlers queue here rather than for a connection, so the webhook's writes of what
        # arrives are not served after every waiting handler (storage.db.conversation_slots).
        from storage.db import conversation_slots  # (Alembic: not for every import)

        bind = sessionmaker.kw.get("bind")
        self._transactions = asyncio.Semaphore(
            conversation_slots(bind) if isinstance(bind, AsyncEngine) else 1)
        self.comment_limits = comment_limits or CommentLimits()

    @classmethod
    def for_settings(
        cls, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> ChatService:
        """The service as the settings make it: conversation timeout, the workspace's address
        and the administrators of YKIEN_ADMIN_IDS."""
        return cls(sessionmaker, settings.conversation_timeout,
                   Workspace(settings.public_url, settings.admin_chats,
                             settings.pseudonym_key,
                             Periods(settings.retention_months,
                                     settings.outbox_retention_days)),
                   CommentLimits(settings.comments_per_minute, settings.comments_per_hour))

    async def handle(
        self, event: Incoming, capabilities: Capabilities | None = None
    ) -> list[Outgoing]:
        """The replies to one event; never raises for a person's input.

        Everything the event changes is committed together, or nothing is: a failure rolls
        the whole update back (so a retried update is processed again) and apologises.
        Given the channel's `capabilities`, the replies come laid out within them, and a
        typed number or label of a choice shown as a numbered line counts as choosing it.
        An update handled before gets the replies it was given (handlers.conversation.respond),
        also when handling it again failed.
        """
        try:
            return await self._turn(event, capabilities)
        except UpdateHandledBefore:
            pass
        except Exception:
            if not await self._handled_before(event):
                log.exception(
                    "failed to handle a %s event from %s", event.kind,
                    chat_ref(event.channel, event.user_id),
                )
                return apology(await self._language(event))
        try:
            return await self._turn(event, capabilities, again=True)
        except Exception:
            log.exception(
                "failed to give again the replies to a %s event from %s", event.kind,
                chat_ref(event.channel, event.user_id),
            )
        return apology(await self._language(event))

    async def _turn(
        self, event: Incoming, capabilities: Capabilities | None, *, again: bool = False
    ) -> list[Outgoing]:
        """One transaction of `handle` (`again`: the update was handled before)."""
        async with self._transactions, self.sessionmaker() as session, session.begin():
            now = utcnow()
            can_reply = capabilities is not None and capabilities.replies_to_messages
            files = capabilities is not None and capabilities.sends_files
            pictures = capabilities.pictures if capabilities else PictureWay.NONE
            numbering = None
            if capabilities is not None and capabilities.numbers_choices:
                numbering = await self._numbering(session, event.channel, event.user_id, now)
                event = _chosen(event, numbering)
                numbering.new_turn()
            replies = await respond(session, event, now, self.conversation_timeout,
                                    replies_to_messages=can_reply, workspace=self.workspace,
                                    sends_files=files, pictures=pictures,
                                    comment_limits=self.comment_limits, again=again)
            if capabilities is None or numbering is None:
                return replies
            if await queries.get_resident(session, event.channel, event.user_id) is None:
                numbering.forget_earlier_turns()  # declined, erased, or not yet agreed
            laid_out = [part for reply in replies
                        for part in lay_out(reply, capabilities, numbering)]
            await self._keep(session, event.channel, event.user_id, numbering, now)
            return laid_out

    async def _handled_before(self, event: Incoming) -> bool:
        """Whether a failed update had been handled before (its second handling failed)."""
        return bool(event.update_id) and await self._read_aside(
            lambda session: queries.handled_before(session, event.channel, event.update_id),
            failed=False)

    async def _language(self, event: Incoming) -> str | None:
        return await self._read_aside(
            lambda session: language_of(session, event.channel, event.user_id), failed=None)

    async def _read_aside(self, read: Callable[[AsyncSession], Awaitable[T]], *, failed: T) -> T:
        """A read after a turn failed, in a session of its own; `failed` when the database
        itself is what failed."""
        try:
            async with self.sessionmaker() as session:
                return await read(session)
        except Exception:
            return failed

    async def lay_out(
        self, channel: str, capabilities: Capabilities, user_id: str, message: Outgoing
    ) -> list[Outgoing]:
        """The message as the channel can show it: within its button and text limits.

        Choices beyond the channel's buttons become numbered lines; the numbers are stored
        for the chat, so a typed "2" is read back by `handle` on any process.
        """
        if not needs_numbers(message, capabilities):
            return lay_out(message, capabilities, Numbering())
        async with self.sessionmaker() as session, session.begin():
            now = utcnow()
            numbering = await self._numbering(session, channel, user_id, now)
            laid_out = lay_out(message, capabilities, numbering)
            await self._keep(session, channel, user_id, numbering, now)
        return laid_out

    async def forget_choices(self, channel: str, user_id: str) -> None:
        """Old numbers are no longer on screen (a new console session): they choose nothing."""
        async with self.sessionmaker() as session, session.begin():
            await choices.forget(session, channel, user_id)

    async def _numbering(
        self, session: AsyncSession, channel: str, user_id: str, now: datetime
    ) -> Numbering:
        stored = await choices.load(session, channel, user_id)
        if stored is None:
            return Numbering()
        numbering = Numbering.from_json(stored[0])
        if now - stored[1] > self.conversation_timeout:
            # A message long after the last one starts its own numbering from 1; older
            # numbers still choose what they stood for until reused.
            numbering.new_turn()
        return numbering

    @staticmethod
    async def _keep(
        session: AsyncSession, channel: str, user_id: str, numbering: Numbering, now: datetime
    ) -> None:
        if not numbering.changed:
            return
        if numbering.shown:
            await choices.save(session, channel, user_id, numbering.to_json(), now)
        else:  # nothing to read back (a stranger who declined, an erased chat): no row
            await choices.forget(session, channel, user_id)

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        """Record a sent message that shows a draft, so a reply to it becomes a comment."""
        if not isinstance(message, Reply) or message.draft_id is None or not message_id:
            return
        async with self.sessionmaker() as session, session.begin():
            await remember_draft_message(session, channel, user_id, message_id, message.draft_id)
