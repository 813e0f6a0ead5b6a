"""Answering every comment on the web ("tiếp thu, giải trình"): the answering page (filters:
unanswered, by commune, by comment group; one answer for the comments ticked, or for a whole
group), the synthesis table (a printable page, and as XLSX), and publishing the response (a
preview, then a confirmation).

Reading needs the draft in the official's scope (storage.roles); answering, the right to
edit drafts in the commune each comment came from (a commune official answers their own
commune's comments on a draft shared with others); publishing, the right to broadcast the
whole draft, as a broadcast does. Every change writes its audit row.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import page_translator, signed_in
from bot.web.pages import (
    InScope,
    draft_in_scope,
    forbidden,
    page_number,
    record,
    refusal,
    render,
    see_other,
    session_of,
)
from handlers.breakdown import source_words
from handlers.i18n import N_, Translator
from handlers.officials import ADMIN_PATH
from handlers.publication import (
    PublishRefusal,
    PublishRefused,
    Recipient,
    checked_response,
    may_publish,
    publish,
    response_message,
    response_progress,
)
from storage.answers import (
    HANDLING_WORDS,
    Answer,
    AnswerError,
    AnswerProblem,
    answer_comments,
    answer_counts,
    answered_comments,
    publication_of,
    synthesis_of,
)
from storage.audit import AuditAction
from storage.charts import commune_name
from storage.drafts import commune_code_text
from storage.groups import GroupError, GroupProblem, find_group, groups_of_draft
from storage.models import (
    CommentSource,
    DeliveryStatus,
    Handling,
    Publication,
    Resident,
    utcnow,
)
from storage.roles import Permission
from storage.synthesis_xlsx import (
    answer_cells,
    communes_text,
    respondents_text,
    write_synthesis_table,
)

COMMENTS_PER_PAGE = 50
SHOW_UNANSWERED = "unanswered"
COMMENT_FIELD = "comment"
GROUP_FIELD = "group"
GROUPS_LISTED = 200  # in the filter's list, the largest first

ANSWER_PROBLEMS = {
    AnswerProblem.NO_COMMENTS: N_("Tick the comments to answer."),
    AnswerProblem.NO_EXPLANATION: N_("A comment not accepted, or accepted in part, needs an "
                                     "explanation: say why."),
    AnswerProblem.TOO_LONG: N_("The explanation is too long."),
}
PUBLISH_PROBLEMS = {
    PublishRefusal.NOT_CLOSED: N_("The draft is still open for comments: publish its response "
                                  "once it is closed."),
    PublishRefusal.UNANSWERED: N_("Some comments have no answer yet: answer every comment "
                                  "before publishing."),
    PublishRefusal.NO_SUMMARY: N_("Write the overall response."),
    PublishRefusal.TOO_LONG: N_("The overall response or its link is too long."),
    PublishRefusal.BAD_LINK: N_("The link must be an address starting with https:// or "
                                "http://."),
}
DONE_WORDS = {
    "answered": N_("Your answer is saved for {count} comments."),
    "group": N_("Your answer is saved for the {count} comments of the group from your "
                "communes; its other comments are left to their communes' officials."),
    "published": N_("The response is published: {count} messages are queued for the "
                    "participants."),
}


def edit_scope(request: web.Request, found: InScope) -> frozenset[int] | None:
    """The communes whose comments on this draft the person may answer or hide (None: all);
    403 when none."""
    authority = signed_in(request).authority
    editable = authority.communes(Permission.EDIT)
    if editable is None:
        return None
    if editable.isdisjoint(found.communes):
        raise forbidden(request, Permission.EDIT)
    return editable


def may_edit_comments(request: web.Request, found: InScope) -> bool:
    try:
        edit_scope(request, found)
    except web.HTTPForbidden:
        return False
    return True


def _commune_filter(request: web.Request, found: InScope) -> int | None:
    text = request.query.get("commune", "")
    if text.isascii() and text.isdigit() and int(text) in found.communes:
        return int(text)
    return None


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


async def _group_filter(request: web.Request, session: AsyncSession, found: InScope
                        ) -> int | None:
    """The group asked for, if it is one of the draft's (any other number shows them all)."""
    group = _number(request.query.get(GROUP_FIELD, ""))
    if group is None:
        return None
    try:
        return (await find_group(session, found.draft.id, group)).id
    except GroupError:
        return None


async def _answers_view(request: web.Request, session: AsyncSession, found: InScope,
                        problem: str = "", status: int = 200,
                        kept: dict[str, Any] | None = None) -> web.Response:
    t = page_translator(request)
    unanswered = request.query.get("show") == SHOW_UNANSWERED
    commune = _commune_filter(request, found)
    group = await _group_filter(request, session, found)
    page = page_number(request)
    comments, total = await answered_comments(
        session, found.draft.id, found.scope, unanswered=unanswered, commune=commune,
        group=group, offset=(page - 1) * COMMENTS_PER_PAGE, limit=COMMENTS_PER_PAGE)
    counts = await answer_counts(session, found.draft.id, found.scope)
    groups = await groups_of_draft(session, found.draft.id, found.scope, limit=GROUPS_LISTED)
    query = "&".join(part for part in (
        f"show={SHOW_UNANSWERED}" if unanswered else "",
        f"commune={commune}" if commune is not None else "",
        f"{GROUP_FIELD}={group}" if group is not None else "") if part)
    done = request.query.get("done", "")
    count = request.query.get("count", "0")
    notice = t(DONE_WORDS[done], count=t.number(int(count))) if (
        done in DONE_WORDS and count.isascii() and count.isdigit()) else ""
    return render(request, "answers.html", {
        "draft": found.draft, "counts": counts, "total": total, "page": page,
        "pages": max(1, -(-total // COMMENTS_PER_PAGE)), "query": query,
        "unanswered": unanswered, "commune": commune, "group": group,
        "groups": [(listed.id, listed.label, listed.size) for listed in groups],
        "communes": [(code, commune_code_text(code), commune_name(code, t))
                     for code in sorted(found.communes)],
        "comments": [{
            "id": comment.id, "receipt": comment.receipt,
            "commune": commune_name(comment.commune_code, t), "at": comment.created_at,
            "text": comment.text,
            "handling": t(HANDLING_WORDS[comment.handling]) if comment.handling else "",
            "explanation": comment.explanation,
            "offline": "" if comment.source == CommentSource.CHAT else t(
                source_words().get(comment.source, comment.source)),
        } for comment in comments],
        "handlings": [(handling.value, t(words)) for handling, words in HANDLING_WORDS.items()],
        "may_answer": may_edit_comments(request, found), "problem": problem, "notice": notice,
        "kept": kept or {"handling": "", "explanation": "", "chosen": set()},
    }, status)


async def answers_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        return await _answers_view(request, session, found)


def _ids(values: Collection[Any]) -> set[int] | None:
    """The comment ids ticked; None when one is not a number (a forged form)."""
    chosen = set()
    for value in values:
        text = str(value)
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            return None
        chosen.add(int(text))
    return chosen


async def _group_in_scope(request: web.Request, session: AsyncSession, found: InScope,
                          text: str, scope: frozenset[int] | None) -> tuple[set[int], bool]:
    """A whole group's comments the official may answer (those of their communes), and
    whether the group has others; 404 for a group not of this draft, 403 for one with none
    of theirs."""
    t = page_translator(request)
    group = _number(text)
    try:
        if group is None:
            raise GroupError(GroupProblem.NO_GROUP, text)
        group = (await find_group(session, found.draft.id, group)).id
    except GroupError as error:
        raise refusal(request, 404, t("There is no such group in this draft. Reload the page "
                                      "and try again.")) from error
    mine, _ = await answered_comments(session, found.draft.id, scope, group=group)
    _, everyone = await answered_comments(session, found.draft.id, group=group, limit=0)
    if not mine:
        raise refusal(request, 403, t("None of this group's comments come from your communes: "
                                      "their officials answer them."))
    return {comment.id for comment in mine}, everyone > len(mine)


async def answer(request: web.Request) -> web.Response:
    """One answer for the comments ticked, or for a whole group (`group`: those of it the
    official may answer); the page again with the problem if it is wrong."""
    t = page_translator(request)
    post = await request.post()
    chosen = _ids(post.getall(COMMENT_FIELD, []))
    whole_group = str(post.get(GROUP_FIELD, ""))
    partial = False
    handling_text = str(post.get("handling", ""))
    explanation = str(post.get("explanation", ""))
    back = str(post.get("back", ""))
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session)
        scope = edit_scope(request, found)
        kept = {"handling": handling_text, "explanation": explanation, "chosen": chosen or set()}
        if chosen is None:
            raise refusal(request, 400, t("The form was not understood. Reload the page and "
                                          "try again."))
        if whole_group:
            chosen, partial = await _group_in_scope(request, session, found, whole_group,
                                                    scope)
            whole_group = str(int(whole_group))  # as it names the group ("007" is 7)
            kept["chosen"] = chosen
        try:
            handling = Handling(handling_text)
        except ValueError:
            return await _answers_view(request, session, found,
                                       t("Choose how the comments were received."), 422, kept)
        try:
            given = Answer.checked(handling, explanation)
            changed = await answer_comments(session, found.draft.id, chosen, given, utcnow(),
                                            scope)
        except AnswerError as error:
            if error.problem is AnswerProblem.NOT_FOUND:
                raise refusal(request, 404, t(
                    "Some of the comments chosen are not among those you may answer. Reload "
                    "the page and try again.")) from error
            return await _answers_view(request, session, found,
                                       t(ANSWER_PROBLEMS[error.problem]), 422, kept)
        role = signed_in(request).authority.role_for(Permission.EDIT, scope)
        if changed:
            await record(request, session, role, AuditAction.ANSWERED, found.draft.id,
                         detail=f"comments: {len(chosen)}; changed: {changed}; {handling}"
                         + (f"; group: {whole_group}" if whole_group else ""))
    query = (back if back.startswith(("show=", "commune=", f"{GROUP_FIELD}="))
             and "\n" not in back else "")
    done = "group" if partial else "answered"
    query = "&".join(part for part in (query, f"done={done}&count={len(chosen)}") if part)
    return see_other(f"{ADMIN_PATH}/drafts/{found.draft.id}/answers?{query}")


# ---- the synthesis table -------------------------------------------------------------------


async def synthesis_page(request: web.Request) -> web.Response:
    """The table as drafting bodies publish it: printable (print CSS hides the rest)."""
    t = page_translator(request)
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        rows = await synthesis_of(session, found.draft.id, found.scope)
        counts = await answer_counts(session, found.draft.id, found.scope)
    return render(request, "synthesis.html", {
        "draft": found.draft, "counts": counts,
        "rows": [(row.number, communes_text(row, t), respondents_text(row, t), row.text,
                  row.count, *answer_cells(row, t)) for row in rows],
    })


async def synthesis_xlsx(request: web.Request) -> web.Response:
    t = page_translator(request)
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.EXPORT)
        rows = await synthesis_of(session, found.draft.id, found.scope)
        await record(request, session, found.role, AuditAction.EXPORTED, found.draft.id,
                     detail="synthesis xlsx" + ("" if found.scope is None else
                                                " communes: " + ",".join(
                                                    map(str, sorted(found.communes)))))
    out = io.BytesIO()
    write_synthesis_table(out, found.draft.title, rows, t)
    return web.Response(body=out.getvalue(), headers={
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": f'attachment; filename="synthesis-{found.draft.id}.xlsx"',
    })


# ---- publishing --------------------------------------------------------------------------


def _sample(found: InScope, publication: Publication, t: Translator,
            comments: list[tuple[int, Handling | None, str]]) -> str:
    """The message as a participant of the first commune would read it, in the page's
    language."""
    code = min(found.communes) if found.communes else None
    resident = Resident(language=t.language, commune_code=code)
    return response_message(found.draft, publication, Recipient(0, resident, comments), None,
                            t).text


async def _publish_view(request: web.Request, session: AsyncSession, found: InScope,
                        summary: str = "", link: str = "", problem: str = "",
                        preview: str = "", status: int = 200) -> web.Response:
    t = page_translator(request)
    publication = await publication_of(session, found.draft.id)
    progress = await response_progress(session, found.draft.id) if publication else {}
    blocked = ""
    try:
        await may_publish(session, found.draft, utcnow())
    except PublishRefused as refused:
        blocked = t(PUBLISH_PROBLEMS[refused.refusal])
    return render(request, "publish.html", {
        "draft": found.draft, "publication": publication, "blocked": blocked,
        "summary": summary, "link": link, "problem": problem, "preview": preview,
        "progress": [(t(words), progress.get(state, 0)) for state, words in (
            (DeliveryStatus.SENT, N_("sent")), (DeliveryStatus.PENDING, N_("waiting")),
            (DeliveryStatus.HELD, N_("waiting for Zalo's window")),
            (DeliveryStatus.SKIPPED, N_("not sent: stopped")),
            (DeliveryStatus.FAILED, N_("failed")),
            (DeliveryStatus.EXPIRED, N_("expired")))],
    }, status)


async def publish_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session, Permission.BROADCAST)
        return await _publish_view(request, session, found)


async def publish_action(request: web.Request) -> web.Response:
    """`step=preview` shows the message and asks to confirm; `step=confirm` publishes (or,
    published already, queues whoever was missed)."""
    t = page_translator(request)
    post = await request.post()
    summary, link = str(post.get("summary", "")), str(post.get("link", ""))
    step = post.get("step", "preview")
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.BROADCAST)
        publication = await publication_of(session, found.draft.id)
        try:
            await may_publish(session, found.draft, utcnow())
            if publication is None:
                summary, link = checked_response(summary, link)
        except PublishRefused as refused:
            return await _publish_view(request, session, found, summary, link,
                                       t(PUBLISH_PROBLEMS[refused.refusal]), status=422)
        if step == "edit":
            return await _publish_view(request, session, found, summary, link)
        if step != "confirm":
            sample = publication or Publication(summary=summary, link=link)
            comments, _ = await answered_comments(session, found.draft.id, found.scope,
                                                  limit=1)
            preview = _sample(found, sample, t, [(comment.number, comment.handling,
                                                  comment.explanation)
                                                 for comment in comments])
            return await _publish_view(request, session, found, summary, link,
                                       preview=preview)
        done = await publish(session, found.draft, summary, link, utcnow())
        await record(request, session, found.role, AuditAction.PUBLISHED, found.draft.id,
                     detail=f"queued: {done.queued}; participants: {done.recipients}")
    return see_other(f"{ADMIN_PATH}/drafts/{found.draft.id}/answers?done=published"
                     f"&count={done.queued}")


ROUTES = [
    web.get(r"/drafts/{id:\d+}/answers", answers_page),
    web.post(r"/drafts/{id:\d+}/answers", answer),
    web.get(r"/drafts/{id:\d+}/synthesis", synthesis_page),
    web.post(r"/drafts/{id:\d+}/synthesis.xlsx", synthesis_xlsx),
    web.get(r"/drafts/{id:\d+}/publish", publish_page),
    web.post(r"/drafts/{id:\d+}/publish", publish_action),
]
