"""Creating drafts, listing them and queueing their broadcast in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Comment,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftCommune,
    DraftStatus,
    PollOption,
    Resident,
)


@dataclass
class DraftSpec:
    """Everything needed to create a draft; communes already resolved to codes."""

    title: str
    issuer: str
    summary: str
    link: str
    scope: str
    commune_codes: list[int]
    opens_at: datetime
    deadline: datetime
    poll_question: str = ""
    poll_options: list[str] = field(default_factory=list)

    def to_draft(self) -> Draft:
        return Draft(
            title=self.title,
            issuer=self.issuer,
            summary=self.summary,
            link=self.link,
            scope=self.scope,
            opens_at=self.opens_at,
            deadline=self.deadline,
            status=DraftStatus.DRAFT,
            poll_question=self.poll_question,
            options=[
                PollOption(position=i, label=label) for i, label in enumerate(self.poll_options)
            ],
        )


async def create_draft(session: AsyncSession, spec: DraftSpec) -> Draft:
    draft = spec.to_draft()
    session.add(draft)
    await session.flush()
    codes = sorted(set(spec.commune_codes))
    session.add_all(DraftCommune(draft_id=draft.id, commune_code=code) for code in codes)
    await session.commit()
    return draft


@dataclass
class DraftRow:
    draft: Draft
    communes: int
    queued: int
    sent: int
    comments: int


async def list_drafts(session: AsyncSession) -> list[DraftRow]:
    """Every draft with its numbers, newest first."""
    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    rows = await session.execute(
        select(
            Draft,
            count(DraftCommune, DraftCommune.draft_id == Draft.id),
            count(Delivery, Delivery.draft_id == Draft.id),
            count(Delivery, Delivery.draft_id == Draft.id, Delivery.status == DeliveryStatus.SENT),
            count(Comment, Comment.draft_id == Draft.id),
        ).order_by(Draft.id.desc())
    )
    return [DraftRow(*row) for row in rows.all()]


async def broadcast(session: AsyncSession, draft: Draft, now: datetime) -> int:
    """Open the draft and queue one delivery per subscribed, reachable resident it targets.

    Rows already queued are left alone, so broadcasting again only adds new subscribers.
    Returns how many deliveries were added.
    """
    if draft.status == DraftStatus.DRAFT:
        draft.status = DraftStatus.OPEN
        draft.broadcast_at = now
    send_from = max(draft.opens_at, now)
    already = exists().where(
        and_(Delivery.draft_id == draft.id, Delivery.resident_id == Resident.id)
    )
    recipients = (
        select(
            literal(draft.id),
            Resident.id,
            Resident.channel,
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            literal(send_from, type_=Delivery.not_before.type),
            literal(""),
        )
        .join(DraftCommune, DraftCommune.commune_code == Resident.commune_code)
        .where(
            DraftCommune.draft_id == draft.id,
            Resident.subscribed.is_(True),
            Resident.reachable.is_(True),
            ~already,
        )
    )
    result = await session.execute(
        insert(Delivery).from_select(
            ["draft_id", "resident_id", "channel", "status", "attempts", "not_before", "error"],
            recipients,
        )
    )
    await session.commit()
    return result.rowcount or 0


async def drafts_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Draft]:
    rows = await session.scalars(select(Draft).where(Draft.id.in_(ids)))
    return {draft.id: draft for draft in rows}
