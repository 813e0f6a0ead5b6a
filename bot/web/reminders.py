"""A draft's reminders on the web: whether they are on, how many were sent, and the switch
(for who may steer the draft's broadcast; audited)."""

from __future__ import annotations

from aiohttp import web

from bot.web.auth import WORKSPACE, signed_in
from bot.web.pages import draft_in_scope, record, render, see_other, session_of
from handlers.i18n import N_
from handlers.officials import ADMIN_PATH
from handlers.reminders import reminder_counts, set_reminders
from storage import roles
from storage.audit import AuditAction
from storage.models import DeliveryStatus, utcnow
from storage.roles import Permission

COUNTED = ((DeliveryStatus.SENT, N_("sent")), (DeliveryStatus.PENDING, N_("waiting")),
           (DeliveryStatus.HELD, N_("waiting for Zalo's window")),
           (DeliveryStatus.SKIPPED, N_("not sent: stopped")),
           (DeliveryStatus.EXPIRED, N_("expired")))


async def reminders_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        counts = await reminder_counts(session, found.draft.id)
        may_steer = signed_in(request).authority.may(
            Permission.BROADCAST, await roles.draft_communes(session, found.draft.id))
    return render(request, "reminders.html", {
        "draft": found.draft, "may_steer": may_steer,
        "counts": [(words, counts.get(status, 0)) for status, words in COUNTED],
        "days": request.app[WORKSPACE].settings.reminder_days,
    })


async def switch(request: web.Request) -> web.Response:
    post = await request.post()
    wanted = post.get("reminders") == "on"
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.BROADCAST)
        if await set_reminders(session, found.draft, wanted, utcnow()):
            await record(request, session, found.role, AuditAction.REMINDERS, found.draft.id,
                         detail="on" if wanted else "off")
    return see_other(f"{ADMIN_PATH}/drafts/{found.draft.id}/reminders")


ROUTES = [
    web.get(r"/drafts/{id:\d+}/reminders", reminders_page),
    web.post(r"/drafts/{id:\d+}/reminders", switch),
]
