"""A known data set for the retention period, built through the conversation and then aged
by moving its times back (as 25 months of use would leave it).

| who      | state                          | took part                              |
|----------|--------------------------------|----------------------------------------|
| a        | subscribed, writes today       | comment + vote on OLD, comment on NEW  |
| b        | stopped, silent for 25 months  | comment + vote on OLD                  |
| c        | subscribed, silent 25 months   | —                                      |
| d        | stopped a month ago            | —                                      |
| official | stopped, silent 25 months, holds a role | —                             |

OLD's deadline passed 25 months ago; NEW was closed a month ago. With 24 months, a purge
makes OLD's 2 comments and 2 votes anonymous and erases b (one chat); nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update

from bot.service import ChatService
from storage import roles
from storage.models import Draft, DraftStatus, Resident, utcnow
from storage.retention import months_before
from storage.roles import Grant, Role, Scope
from tests.chat import CHANNEL, make_draft, press, subscribe, text

LONG_AGO = 25  # months


@dataclass(frozen=True)
class KnownSet:
    old: Draft
    new: Draft


async def _comment(service: ChatService, user: str, draft: Draft, body: str) -> None:
    await service.handle(press(user, f"comment:{draft.id}"))
    await service.handle(text(user, body))


async def known_retention_set(sessionmaker) -> KnownSet:
    service = ChatService(sessionmaker)
    old = await make_draft(sessionmaker, "Old draft")
    new = await make_draft(sessionmaker, "New draft")
    for user in ("a", "b", "c", "d", "official"):
        await subscribe(service, user)
    for user in ("a", "b"):
        await _comment(service, user, old, f"{user} on the old draft")
        await service.handle(press(user, f"vote:{old.options[0].id}"))
    await _comment(service, "a", new, "a on the new draft")
    for user in ("b", "d", "official"):
        await service.handle(text(user, "/stop"))
    now = utcnow()
    long_ago = months_before(now, LONG_AGO)
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, (CHANNEL, "official"))
        assert person is not None
        await roles.grant(session, person, Grant(Role.STAFF, Scope.parse("all")), now)
        await session.execute(update(Draft).where(Draft.id == old.id).values(
            opens_at=long_ago - timedelta(days=30), deadline=long_ago))
        await session.execute(update(Draft).where(Draft.id == new.id).values(
            status=DraftStatus.CLOSED, closed_at=now - timedelta(days=30)))
        await session.execute(update(Resident).where(
            Resident.platform_id.in_(("b", "c", "official"))).values(
            last_seen_at=long_ago, created_at=long_ago))
        await session.commit()
    return KnownSet(old, new)
