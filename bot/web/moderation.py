"""Hiding a comment on the web (its draft's comments page) with a reason from a short list and
a note, and showing it again: by an official who may answer that comment's commune, written
to the audit log. The resident is not told (storage.moderation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bot.web.answers import edit_scope, may_edit_comments
from bot.web.auth import page_translator, signed_in
from bot.web.pages import InScope, draft_in_scope, path_id, record, refusal, see_other, session_of
from handlers.i18n import Translator
from handlers.officials import ADMIN_PATH
from storage.audit import AuditAction
from storage.comments import CommentRow
from storage.export import receipt_number
from storage.models import utcnow
from storage.moderation import (
    REASON_WORDS,
    ModerationReason,
    find_comment,
    hide_comment,
    show_comment,
)
from storage.roles import Permission


def moderation_context(request: web.Request, found: InScope, rows: Sequence[CommentRow],
                       t: Translator) -> dict[str, Any]:
    """What the comments page adds: each comment's id and hidden reason, the reasons, and
    whether the person may hide and show."""
    return {
        "may_moderate": may_edit_comments(request, found),
        "moderation": [(row.id, t(REASON_WORDS[ModerationReason(row.hidden_reason)])
                        if row.hidden_reason else "", row.hidden_note) for row in rows],
        "reasons": [(reason.value, t(words)) for reason, words in REASON_WORDS.items()],
    }


async def _moderate(request: web.Request, hide: bool) -> web.Response:
    t = page_translator(request)
    post = await request.post()
    comment_id = path_id(request, "comment")
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session)
        scope = edit_scope(request, found)
        comment = await find_comment(session, found.draft.id, comment_id, scope)
        if comment is None:
            raise refusal(request, 404, t("There is no such comment among those you may "
                                          "hide or show."))
        receipt = receipt_number(found.draft.id, comment.number)
        role = signed_in(request).authority.role_for(Permission.EDIT, scope)
        if hide:
            try:
                reason = ModerationReason(str(post.get("reason", "")))
            except ValueError:
                raise refusal(request, 400, t("Choose why the comment is hidden.")) from None
            if await hide_comment(session, found.draft.id, comment_id, reason,
                                  str(post.get("note", "")), utcnow(), scope):
                await record(request, session, role, AuditAction.COMMENT_HIDDEN,
                             found.draft.id, detail=f"{receipt}; {reason}")
        elif await show_comment(session, found.draft.id, comment_id, scope):
            await record(request, session, role, AuditAction.COMMENT_SHOWN, found.draft.id,
                         detail=receipt)
    return see_other(f"{ADMIN_PATH}/drafts/{found.draft.id}/comments?q={receipt}")


async def hide(request: web.Request) -> web.Response:
    return await _moderate(request, hide=True)


async def show(request: web.Request) -> web.Response:
    return await _moderate(request, hide=False)


ROUTES = [
    web.post(r"/drafts/{id:\d+}/comments/{comment:\d+}/hide", hide),
    web.post(r"/drafts/{id:\d+}/comments/{comment:\d+}/show", show),
]
