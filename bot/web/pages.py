"""What every page of the workspace shares: rendering a template with the person's language
and session, refusing a request with a page, finding the draft a URL names within the
signed-in person's scope, and writing the audit row of an action.

A page handler reads, asks `draft_in_scope` (which asks storage.roles.draft_access, the one
check of scope), and calls `render` with plain data; refusals are raised (`refusal`) so a
forgotten branch cannot fall through to someone else's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import (
    csrf_token,
    page_translator,
    sessionmaker_of,
    signed_in,
)
from handlers.i18n import N_, VIETNAM, Translator
from handlers.officials import ADMIN_PATH, grant_words
from storage import audit, roles
from storage.audit import Actor, AuditAction, Via
from storage.models import Draft, utcnow
from storage.roles import Authority, Permission

STATIC_PATH = ADMIN_PATH + "/static/"
# Draft ids beyond the database's integers are nobody's draft (and PostgreSQL would refuse
# to compare them with one).
LARGEST_ID = 2**31 - 1


def local_input(value: datetime | None) -> str:
    """A time as an <input type="datetime-local"> shows it: Vietnam time to the minute."""
    return value.astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M") if value else ""


def _navigation(authority: Authority, t: Translator) -> list[tuple[str, str]]:
    links = [(ADMIN_PATH + "/", t("Drafts"))]
    if authority.may(Permission.EDIT):
        links.append((ADMIN_PATH + "/drafts/new", t("New draft")))
    if authority.may(Permission.EXPORT):
        links.append((ADMIN_PATH + "/downloads", t("Downloads")))
    links.append((ADMIN_PATH + "/report", t("Annual report")))
    if authority.may(Permission.MANAGE):
        links.append((ADMIN_PATH + "/audit", t("Audit log")))
    return links


def _common(request: web.Request) -> dict[str, Any]:
    """What the base layout needs on every page."""
    t = page_translator(request)
    context: dict[str, Any] = {
        "t": t, "plural": t.plural, "number": t.number, "datetime": t.datetime,
        "admin": ADMIN_PATH, "static": STATIC_PATH, "here": request.path_qs,  # already %-encoded
        "other_language": "en" if t.language == "vi" else "vi",
        "navigation": [], "signed_in_as": [], "csrf_token": "",
    }
    try:
        who = signed_in(request)
    except KeyError:  # a public page (signing in)
        return context
    context["navigation"] = _navigation(who.authority, t)
    context["signed_in_as"] = [grant_words(grant, t) for grant in sorted(who.authority.grants)]
    context["csrf_token"] = csrf_token(request)
    return context


def render(request: web.Request, template: str, data: Mapping[str, Any] | None = None,
           status: int = 200) -> web.Response:
    """One template, with the layout's context and `data`."""
    return aiohttp_jinja2.render_template(template, request, {**_common(request), **(data or {})},
                                          status=status)


def see_other(location: str) -> web.Response:
    """After a POST, the page to look at (returned, not raised: a raised response would roll
    the handler's transaction back)."""
    return web.Response(status=303, headers={"Location": location})


def refusal(request: web.Request, status: int, message: str) -> web.HTTPException:
    """An error page to raise: 403, 404 or 400 with `message` (already translated)."""
    text = aiohttp_jinja2.render_string("refused.html", request,
                                        {**_common(request), "message": message})
    error = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
             409: web.HTTPConflict}[status]
    return error(text=text, content_type="text/html")


def not_found(request: web.Request) -> web.HTTPException:
    t = page_translator(request)
    return refusal(request, 404, t(
        "There is no such draft among those you may see. Check the address, or go back to "
        "the list of drafts."))


def path_id(request: web.Request, name: str = "id") -> int:
    """A number from the URL; a page that is not found for anything else."""
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit()) or int(text) > LARGEST_ID:
        raise not_found(request)
    return int(text)


def page_number(request: web.Request) -> int:
    """The ?page= of a paged list, from 1 (anything else is the first page)."""
    text = request.query.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 1_000_000 else 1


@dataclass(frozen=True)
class InScope:
    """A draft the signed-in person may act on, and the part of it they see."""

    draft: Draft
    communes: frozenset[int]  # its target communes the person sees
    scope: frozenset[int] | None  # every commune the person sees (None: all)
    role: roles.Role  # the role they act under


async def draft_in_scope(request: web.Request, session: AsyncSession,
                         permission: Permission = Permission.READ) -> InScope:
    """The draft of the URL, if the person may read it (else 404, as if it did not exist:
    a guessed id learns nothing) and do `permission` to it (else 403)."""
    draft_id = path_id(request)
    authority = signed_in(request).authority
    seen = await roles.draft_access(session, authority, Permission.READ, draft_id)
    if seen is None:
        raise not_found(request)
    role = authority.role_for(permission, await roles.draft_communes(session, draft_id))
    if role is None:
        raise forbidden(request, permission)
    draft = await session.get(Draft, draft_id)
    assert draft is not None  # draft_access found it in this transaction
    return InScope(draft, seen, authority.communes(Permission.READ), role)


FORBIDDEN_WORDS = {
    Permission.READ: N_("Your role does not read drafts."),
    Permission.EDIT: N_("You may read this draft, but not change it: it is for communes "
                        "outside your scope, or your role does not edit drafts."),
    Permission.BROADCAST: N_("You may read this draft, but not broadcast it or steer its "
                             "broadcast: it is for communes outside your scope, or your role "
                             "does not broadcast."),
    Permission.EXPORT: N_("Your role does not download comments and votes."),
    Permission.MANAGE: N_("Only administrators see this page."),
    Permission.RECORD: N_("Your role does not enter comments received offline."),
}


def forbidden(request: web.Request, permission: Permission) -> web.HTTPException:
    return refusal(request, 403, page_translator(request)(FORBIDDEN_WORDS[permission]))


async def record(request: web.Request, session: AsyncSession, role: roles.Role | None,
                 action: AuditAction, draft_id: int | None = None, detail: str = "") -> None:
    """The audit row of an action done on the web by the signed-in person."""
    who = signed_in(request)
    await audit.record(session, Actor(Via.WEB, who.person_id, role), action,
                       utcnow(), draft_id=draft_id, detail=detail)


def session_of(request: web.Request) -> AsyncSession:
    """A new database session for one handler (it owns the transaction)."""
    return sessionmaker_of(request)()
