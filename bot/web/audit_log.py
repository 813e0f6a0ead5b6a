"""The audit log page (administrators): every official action, newest first, a page at a
time, persons by their pseudonyms (storage.audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.web.auth import page_translator, signed_in
from bot.web.pages import forbidden, page_number, render, session_of
from handlers.officials import ROLE_WORDS
from storage import audit
from storage.audit import ACTION_WORDS, AuditAction
from storage.models import Role
from storage.roles import Permission

ROWS_PER_PAGE = 50


@dataclass(frozen=True)
class Line:
    at: datetime
    where: str  # chat (and which app), web or cli
    who: str  # a pseudonym, or the server's user name for the command line
    role: str
    action: str
    draft_id: int | None
    subject: str
    detail: str


async def audit_page(request: web.Request) -> web.Response:
    if not signed_in(request).authority.may(Permission.MANAGE):
        raise forbidden(request, Permission.MANAGE)
    t = page_translator(request)
    page = page_number(request)
    async with session_of(request) as session:
        rows, total = await audit.newest_entries(session, (page - 1) * ROWS_PER_PAGE,
                                                 ROWS_PER_PAGE)
    lines = [Line(
        row.at, f"{row.via} · {row.channel}" if row.channel else row.via, row.actor,
        t(ROLE_WORDS[Role(row.role)]) if row.role in Role.__members__.values() else row.role,
        t(ACTION_WORDS[AuditAction(row.action)])
        if row.action in AuditAction.__members__.values() else row.action,
        row.draft_id, row.subject, row.detail) for row in rows]
    return render(request, "audit.html", {
        "lines": lines, "page": page, "pages": max(1, -(-total // ROWS_PER_PAGE)),
        "total": total,
    })


ROUTES = [web.get("/audit", audit_page)]
