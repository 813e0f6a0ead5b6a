"""Helpers to talk to the conversation through ChatService, as an adapter would."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.events import Incoming, Kind, Reply
from storage.drafts import DraftSpec, create_draft
from storage.models import Comment, Delivery, Draft, Resident, utcnow

CHANNEL = "test"
CAM_TU = 15148
BA_DINH = 4


def text(user: str, body: str, **extra) -> Incoming:
    return Incoming(CHANNEL, user, Kind.TEXT, text=body, **extra)


def press(user: str, choice: str, **extra) -> Incoming:
    return Incoming(CHANNEL, user, Kind.CHOICE, choice=choice, **extra)


def joined(replies) -> str:
    return "\n".join(r.text if isinstance(r, Reply) else r.caption for r in replies)


def labels(replies) -> list[str]:
    return [b.label for r in replies if isinstance(r, Reply) for row in r.buttons for b in row]


def button_for(replies, label_part: str) -> str:
    """The data of the (last) button whose label contains label_part."""
    found = [b.id for r in replies if isinstance(r, Reply) for row in r.buttons for b in row
             if label_part in b.label]
    assert found, f"no button with {label_part!r} in {labels(replies)}"
    return found[-1]


async def subscribe(service, user: str = "u1", commune: int = CAM_TU) -> None:
    """Consent in English and subscribe to a commune (Xã Cẩm Tú by default)."""
    await service.handle(press(user, "agree:en"))
    await service.handle(press(user, f"commune:{commune}"))


async def scalar_count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def stored_texts(sessionmaker) -> list[str]:
    """The comments' texts, in the order they were stored."""
    async with sessionmaker() as session:
        return list((await session.scalars(select(Comment.text).order_by(Comment.id))).all())


async def make_draft(
    sessionmaker: async_sessionmaker[AsyncSession],
    title: str = "Another draft",
    communes: tuple[int, ...] = (CAM_TU,),
    opens_at: datetime | None = None,
    deadline: datetime | None = None,
    options: tuple[str, ...] = ("Yes", "No"),
    open_now: bool = True,
) -> Draft:
    """A draft made directly (not from a file), opened as a broadcast would open it."""
    now = utcnow()
    spec = DraftSpec(
        title=title, issuer="UBND", summary="Summary.", link="", scope="test",
        commune_codes=list(communes), opens_at=opens_at or now - timedelta(hours=1),
        deadline=deadline or now + timedelta(days=7),
        poll_question="Agree?" if options else "", poll_options=list(options),
    )
    async with sessionmaker() as session:
        draft = await create_draft(session, spec)
        if open_now:
            draft.status = "open"
            draft.broadcast_at = now
        await session.commit()
    return draft


async def delivery_statuses(sessionmaker) -> dict[str, str]:
    """Each recipient's platform id and the state of their outbox row."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Resident.platform_id, Delivery.status).join(
                Resident, Resident.id == Delivery.resident_id
            )
        )
        return dict(rows.all())
