"""Reminding residents before a draft's deadline: `YKIEN_REMINDER_DAYS` (2) before it, each
subscriber of the draft's communes who has neither commented nor voted gets one reminder,
through the outbox, with the draft's buttons.

The hourly housekeeping (bot.app) queues them: once per person (`reminder:<draft>:<person>`,
through whichever of their chats they last used), expiring at the deadline, held for Zalo's
messaging window like the draft itself. Not for persons who stopped, are unreachable or
erased themselves, nor for drafts whose reminders an official turned off, or paused ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.drafts import render_draft
from handlers.events import Reply
from handlers.i18n import translator
from handlers.payload import queue_reply
from storage import outbox
from storage.drafts import REMINDER_PREFIX
from storage.models import (
    DeliveryStatus,
    Draft,
    DraftCommune,
    DraftStatus,
    Reach,
    Resident,
)

NEVER = datetime.min.replace(tzinfo=UTC)


def reminder_key(draft_id: int, person_id: int) -> str:
    return f"{REMINDER_PREFIX}{draft_id}:{person_id}"


def reminder_message(draft: Draft, language: str) -> Reply:
    """A short reminder with the draft's buttons (replying to it is a comment on the draft)."""
    t = translator(language)
    shown = render_draft(draft, t)
    text = t("⏰ A reminder: comments on “{title}” close at {deadline}. Your opinion counts: "
             "tap Comment, or choose an answer below.", title=draft.title,
             deadline=t.datetime(draft.deadline))
    return Reply(text, shown.buttons, draft_id=draft.id)


async def queue_reminders(session: AsyncSession, now: datetime, days: int) -> int:
    """Queue the reminders due now (drafts open, reminders on, deadline within `days`);
    how many were queued (0 with `days` 0)."""
    if days <= 0:
        return 0
    drafts = (await session.scalars(select(Draft).where(
        Draft.status == DraftStatus.OPEN, Draft.reminders.is_(True), Draft.paused.is_(False),
        Draft.opens_at <= now, Draft.deadline > now,
        Draft.deadline <= now + timedelta(days=days)))).all()
    queued = 0
    for draft in drafts:
        took_part = select(Reach.person_id).where(
            Reach.draft_id == draft.id, Reach.took_part_at.is_not(None),
            Reach.person_id.is_not(None))
        targets = select(DraftCommune.commune_code).where(DraftCommune.draft_id == draft.id)
        residents = (await session.scalars(select(Resident).where(
            Resident.subscribed.is_(True), Resident.reachable.is_(True),
            Resident.commune_code.in_(targets), Resident.person_id.not_in(took_part)))).all()
        chats: dict[int, Resident] = {}
        for resident in residents:
            best = chats.get(resident.person_id)
            if best is None or (resident.last_seen_at or NEVER, resident.id) > (
                    best.last_seen_at or NEVER, best.id):
                chats[resident.person_id] = resident
        for person_id, resident in sorted(chats.items()):
            queued += await queue_reply(
                session, resident, reminder_key(draft.id, person_id),
                reminder_message(draft, resident.language), draft.deadline, now=now)
    return queued


async def set_reminders(session: AsyncSession, draft: Draft, on: bool, now: datetime
                        ) -> bool:
    """Turn the draft's reminders on or off; False when they already were. Turned off, the
    reminders not sent yet are not sent."""
    if draft.reminders == on:
        return False
    draft.reminders = on
    if not on:
        await outbox.expire_texts(session, draft.id, REMINDER_PREFIX, "reminders turned off")
    await session.flush()
    return True


async def reminder_counts(session: AsyncSession, draft_id: int) -> dict[DeliveryStatus, int]:
    """The draft's reminders by status (sent, waiting, held for the window…)."""
    return await outbox.keyed_counts(session, f"{REMINDER_PREFIX}{draft_id}:")
