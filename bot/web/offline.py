"""Entering a comment received offline (a village meeting, a phone call, a letter) on the web:
a form on the draft's page (and on a page of its own, where it comes back with its problems
and after recording), for staff and above (storage.roles: Permission.RECORD),
for the draft's communes within their scope only (another commune is refused: 403).

Each form carries a one-time key: the audit row of the comment it recorded names it, so the
same form sent again (a double click, the browser resending it) records nothing more and
shows the receipt of the first (storage.offline.recorded_by_form).
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import page_translator, signed_in
from bot.web.pages import InScope, draft_in_scope, record, refusal, render, see_other, session_of
from handlers.breakdown import category_words, source_words
from handlers.i18n import N_, Translator
from handlers.officials import ADMIN_PATH
from storage.audit import AuditAction
from storage.charts import commune_name
from storage.drafts import commune_code_text
from storage.models import OFFLINE_SOURCES, DraftStatus, RespondentCategory, utcnow
from storage.offline import (
    FORM_KEY,
    OfflineProblem,
    OfflineRefused,
    audit_detail,
    check_offline_comment,
    closing_time,
    hold_draft,
    record_offline_comment,
    recorded_by_form,
)
from storage.queries import COMMENT_LIMIT
from storage.roles import Permission, draft_communes

KEY_FIELD = "form_key"
FIELDS = ("commune", "source", "category", "received", "text")
# Each problem, and the form field it is shown beside.
PROBLEM_WORDS = {
    OfflineProblem.NOT_BROADCAST: ("form", N_("This draft was never broadcast: comments are "
                                              "taken on a draft once it is open.")),
    OfflineProblem.COMMUNE: ("commune", N_("Choose one of the draft's communes.")),
    OfflineProblem.SOURCE: ("source", N_("Choose how the comment was received.")),
    OfflineProblem.CATEGORY: ("category", N_("Choose whom the person answered for, or “not "
                                             "known”.")),
    OfflineProblem.EMPTY: ("text", N_("Write the comment's words.")),
    OfflineProblem.TOO_LONG: ("text", N_("The comment is too long: at most {limit} "
                                         "characters.")),
    OfflineProblem.BEFORE_OPENING: ("received", N_("The draft opened on {opens}: a comment "
                                                   "received before is not one of its "
                                                   "comments.")),
    OfflineProblem.AFTER_CLOSING: ("received", N_("The draft took comments until {closes}: "
                                                  "give the day the comment was received, "
                                                  "if it was on time.")),
    OfflineProblem.FUTURE: ("received", N_("That day has not come yet.")),
}


def _recordable(request: web.Request, found: InScope) -> list[int]:
    """The draft's communes whose comments the person may enter."""
    allowed = signed_in(request).authority.communes(Permission.RECORD)
    return sorted(found.communes if allowed is None else found.communes & allowed)


def offline_form(request: web.Request, found: InScope, *,
                 problems: dict[str, list[str]] | None = None,
                 kept: dict[str, str] | None = None) -> dict[str, Any]:
    """What the form needs (templates/offline_form.html, under `offline`), with a fresh
    one-time key; no communes when the person may enter none, or the draft takes none."""
    t = page_translator(request)
    draft = found.draft
    broadcast = draft.status != DraftStatus.DRAFT
    return {
        "draft_id": draft.id, "key": secrets.token_urlsafe(16),
        "communes": [(code, commune_code_text(code), commune_name(code, t))
                     for code in _recordable(request, found)] if broadcast else [],
        "sources": [(source.value, t(source_words()[source.value]))
                    for source in OFFLINE_SOURCES],
        "categories": [(category.value, t(category_words()[category.value]))
                       for category in RespondentCategory],
        "problems": problems or {}, "form": kept or dict.fromkeys(FIELDS, ""),
        "closes": closing_time(draft), "limit": COMMENT_LIMIT,
    }


async def _form_view(request: web.Request, found: InScope, *,
                     problems: dict[str, list[str]] | None = None,
                     kept: dict[str, str] | None = None, status: int = 200) -> web.Response:
    receipt = request.query.get("done", "")
    return render(request, "offline.html", {
        "draft": found.draft,
        "offline": offline_form(request, found, problems=problems, kept=kept),
        "done": receipt if receipt.replace("-", "").isdigit() else "",
    }, status)


async def offline_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session, Permission.RECORD)
        return await _form_view(request, found)


def _problems(refused: OfflineRefused, found: InScope, t: Translator
              ) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for problem in refused.problems:
        field, words = PROBLEM_WORDS[problem]
        problems.setdefault(field, []).append(t(
            words, limit=t.number(COMMENT_LIMIT), opens=t.datetime(found.draft.opens_at),
            closes=t.datetime(closing_time(found.draft))))
    return problems


def _commune(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


async def _record(request: web.Request, session: AsyncSession, found: InScope,
                  kept: dict[str, str], key: str) -> web.Response:
    t = page_translator(request)
    done = f"{ADMIN_PATH}/drafts/{found.draft.id}/comments/new?done="
    await hold_draft(session, found.draft.id)  # a second sending of this form waits here
    if (receipt := await recorded_by_form(session, found.draft.id, key)) is not None:
        return see_other(done + receipt)  # sent again: recorded once, the first receipt
    commune = _commune(kept["commune"])
    # One of the draft's communes, but not theirs: refused, whatever else the form says.
    if commune is not None and commune in (await draft_communes(session, found.draft.id)
                                           or ()) and commune not in _recordable(request, found):
        raise refusal(request, 403, t(
            "You may not enter comments for {commune}: it is outside your scope.",
            commune=commune_name(commune, t)))
    received = None
    if kept["received"]:
        try:
            received = date.fromisoformat(kept["received"])
        except ValueError:
            return await _form_view(request, found, problems={"received": [t(
                "Write the day it was received as 2026-11-27.")]}, kept=kept, status=422)
    try:
        comment = await check_offline_comment(
            session, found.draft, commune, kept["source"], kept["text"], kept["category"],
            received, now=utcnow())
    except OfflineRefused as refused:
        return await _form_view(request, found, problems=_problems(refused, found, t),
                                kept=kept, status=422)
    receipt = await record_offline_comment(session, comment)
    role = signed_in(request).authority.role_for(Permission.RECORD, {comment.commune_code})
    await record(request, session, role, AuditAction.COMMENT_ADDED, found.draft.id,
                 detail=audit_detail(comment, receipt, key))
    return see_other(done + receipt)


async def record_offline(request: web.Request) -> web.Response:
    t = page_translator(request)
    post = await request.post()
    kept = {name: str(post.get(name, "")) for name in FIELDS}
    key = str(post.get(KEY_FIELD, ""))
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.RECORD)
        if not FORM_KEY.fullmatch(key):
            raise refusal(request, 400, t("The form was not understood. Reload the page and "
                                          "try again."))
        return await _record(request, session, found, kept, key)


ROUTES = [
    web.get(r"/drafts/{id:\d+}/comments/new", offline_page),
    web.post(r"/drafts/{id:\d+}/comments/new", record_offline),
]
