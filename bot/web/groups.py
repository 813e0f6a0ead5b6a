"""A draft's comment groups in the workspace: the list (size, communes, a sample, the
suggestions of similar points), one group's comments, and the corrections: merge, split,
move a comment, rename. Grouping the new comments runs in the background (storage.grouping.job)
and the list shows its progress, reloading itself until it is done.

Reading needs the draft in the official's scope (each sees the comments of their communes);
a correction changes the draft's groups for everyone, so it needs the right to edit the whole
draft (storage.roles.WHOLE_DRAFT), like changing the draft itself. Ids typed into an address
or a form that are not this draft's are refused as not found; nothing is changed by a refusal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.web.auth import page_translator, sessionmaker_of, signed_in
from bot.web.pages import (
    InScope,
    draft_in_scope,
    page_number,
    path_id,
    record,
    refusal,
    render,
    see_other,
    session_of,
)
from handlers.i18n import N_
from handlers.officials import ADMIN_PATH
from storage import groups
from storage.audit import AuditAction
from storage.charts import commune_name
from storage.export import receipt_number
from storage.grouping import similar
from storage.grouping.job import GroupingResult, group_draft
from storage.roles import Permission

log = logging.getLogger(__name__)

GROUPS_PER_PAGE = 30
LARGEST_ID = 2**31 - 1
STAGE_WORDS = {
    "starting": N_("starting"),
    "reading": N_("reading the new comments"),
    "fingerprints": N_("fingerprinting the comments"),
    "candidates": N_("finding comments alike"),
    "verified": N_("comparing comments alike"),
    "writing": N_("saving the groups"),
    "suggestions": N_("looking for similar points"),
}
DONE_WORDS = {
    "renamed": N_("The group is renamed."),
    "merged": N_("The groups are merged."),
    "split": N_("The comments chosen are now a group of their own."),
    "moved": N_("The comment is moved."),
    "started": N_("Grouping the new comments has started."),
}


@dataclass
class Job:
    """A grouping running in this process, and how far it is."""

    stage: str = "starting"
    done: int = 0
    total: int = 0
    task: asyncio.Task[GroupingResult] | None = field(default=None, repr=False)


# (the database's sessionmaker, draft id) -> its grouping under way in this process.
_JOBS: dict[tuple[int, int], Job] = {}


def job_of(sessionmaker: async_sessionmaker[AsyncSession], draft_id: int) -> Job | None:
    """The grouping of the draft under way (or just finished) in this process, if any."""
    return _JOBS.get((id(sessionmaker), draft_id))


def _start(sessionmaker: async_sessionmaker[AsyncSession], draft_id: int) -> Job:
    key = (id(sessionmaker), draft_id)
    running = _JOBS.get(key)
    if running is not None and running.task is not None and not running.task.done():
        return running
    job = Job()

    def progress(stage: str, done: int, total: int) -> None:
        job.stage, job.done, job.total = stage, done, total

    async def run() -> GroupingResult:
        try:
            return await group_draft(sessionmaker, draft_id, progress=progress)
        except Exception:
            log.exception("grouping draft %s failed", draft_id)
            raise

    job.task = asyncio.create_task(run())
    _JOBS[key] = job
    return job


def _groups_url(draft_id: int, done: str = "") -> str:
    return f"{ADMIN_PATH}/drafts/{draft_id}/groups" + (f"?done={done}" if done else "")


def _group_url(draft_id: int, group_id: int, done: str = "") -> str:
    return (f"{ADMIN_PATH}/drafts/{draft_id}/groups/{group_id}"
            + (f"?done={done}" if done else ""))


def _notice(request: web.Request) -> str:
    done = request.query.get("done", "")
    return page_translator(request)(DONE_WORDS[done]) if done in DONE_WORDS else ""


async def groups_page(request: web.Request) -> web.Response:
    t = page_translator(request)
    page = page_number(request)
    authority = signed_in(request).authority
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        draft_id = found.draft.id
        scope = found.scope
        listed = await groups.groups_of_draft(session, draft_id, scope,
                                              (page - 1) * GROUPS_PER_PAGE, GROUPS_PER_PAGE)
        total = await groups.count_groups(session, draft_id, scope)
        loose = await groups.ungrouped_count(session, draft_id, scope)
        suggestions = await groups.suggestions_of(session, draft_id)
        targets = await _targets(session, found)
    job = job_of(sessionmaker_of(request), draft_id)
    running = job is not None and job.task is not None and not job.task.done()
    failed = (job is not None and job.task is not None and job.task.done()
              and not job.task.cancelled() and job.task.exception() is not None)
    missing = similar.available()
    return render(request, "groups.html", {
        "draft": found.draft, "groups": [
            (summary, groups.places_text(summary.communes, t),
             [(receipt_number(draft_id, number), text) for number, text in summary.sample])
            for summary in listed],
        "total": total, "loose": loose, "page": page,
        "pages": max(1, -(-total // GROUPS_PER_PAGE)),
        "suggestions": suggestions, "missing_extra": missing or "",
        "may_correct": authority.may(Permission.EDIT, targets),
        "running": running, "failed": failed,
        "stage": t(STAGE_WORDS.get(job.stage, "starting")) if job else "",
        "done_count": job.done if job else 0, "total_count": job.total if job else 0,
        "notice": _notice(request),
    })


async def _targets(session: AsyncSession, found: InScope) -> frozenset[int]:
    from storage import roles

    return await roles.draft_communes(session, found.draft.id) or frozenset()


async def group_page(request: web.Request) -> web.Response:
    t = page_translator(request)
    group_id = path_id(request, "group")
    authority = signed_in(request).authority
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        try:
            group = await groups.find_group(session, found.draft.id, group_id)
        except groups.GroupError as error:
            raise _refused(request, error, 404) from None
        ref = await groups.group_ref(session, group)
        members = await groups.members_of(session, group.id, found.scope)
        targets = await _targets(session, found)
    if not members:  # a group with none of the official's communes is none of theirs
        raise _refused(request, groups.GroupError(groups.GroupProblem.NO_GROUP, str(group_id)),
                       404)
    return render(request, "group.html", {
        "draft": found.draft, "group": ref, "named_by_hand": group.named_by_hand,
        "members": [(member.number, receipt_number(found.draft.id, member.number),
                     commune_name(member.commune_code, t), member.text, member.manual)
                    for member in members],
        "may_correct": authority.may(Permission.EDIT, targets),
        "notice": _notice(request),
    })


def _refused(request: web.Request, error: groups.GroupError, status: int = 400
             ) -> web.HTTPException:
    t = page_translator(request)
    return refusal(request, status, t(groups.PROBLEM_WORDS[error.problem], detail=error.detail))


def _form_id(text: object) -> int | None:
    """A group's number from a form field (ASCII digits, within the database's integers)."""
    value = str(text).strip()
    if not (value.isascii() and value.isdigit()) or int(value) > LARGEST_ID:
        return None
    return int(value)


async def compute(request: web.Request) -> web.Response:
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.EDIT)
        await record(request, session, found.role, AuditAction.GROUPS_COMPUTED, found.draft.id,
                     detail="started on the web")
    _start(sessionmaker_of(request), found.draft.id)
    return see_other(_groups_url(found.draft.id, "started"))


# A correction: (session, the draft in scope) -> (audit action, audit detail, where to go).
Correction = Callable[[AsyncSession, InScope], Awaitable[tuple[AuditAction, str, str]]]


async def _corrected(request: web.Request, correct: Correction) -> web.Response:
    """Do a correction with its audit row in one transaction; a refusal changes nothing."""
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.EDIT)
        try:
            action, detail, location = await correct(session, found)
        except groups.GroupError as error:
            raise _refused(request, error) from None
        await record(request, session, found.role, action, found.draft.id, detail=detail)
    return see_other(location)


async def rename(request: web.Request) -> web.Response:
    name = str((await request.post()).get("name", ""))
    group_id = path_id(request, "group")

    async def correct(session: AsyncSession, found: InScope) -> tuple[AuditAction, str, str]:
        await groups.rename(session, found.draft.id, group_id, name)
        return (AuditAction.GROUP_RENAMED, f"group {group_id}",
                _group_url(found.draft.id, group_id, "renamed"))

    return await _corrected(request, correct)


async def split(request: web.Request) -> web.Response:
    numbers = [_form_id(value) for value in (await request.post()).getall("comment", [])]
    group_id = path_id(request, "group")

    async def correct(session: AsyncSession, found: InScope) -> tuple[AuditAction, str, str]:
        if None in numbers:
            raise groups.GroupError(groups.GroupProblem.NO_COMMENT, "?")
        new = await groups.split(session, found.draft.id, group_id,
                                 [number for number in numbers if number is not None])
        return (AuditAction.GROUP_SPLIT,
                f"group {group_id}: comments {' '.join(map(str, numbers))} to {new.id}",
                _group_url(found.draft.id, new.id, "split"))

    return await _corrected(request, correct)


async def move(request: web.Request) -> web.Response:
    post = await request.post()
    group_id = path_id(request, "group")
    number, target = _form_id(post.get("comment", "")), _form_id(post.get("to", ""))

    async def correct(session: AsyncSession, found: InScope) -> tuple[AuditAction, str, str]:
        if number is None:
            raise groups.GroupError(groups.GroupProblem.NO_COMMENT, "?")
        if target is None:
            raise groups.GroupError(groups.GroupProblem.NO_GROUP, str(post.get("to", "")))
        [comment_id] = await groups.comment_ids(session, found.draft.id, [number])
        if comment_id not in await groups.group_members(session, group_id):
            raise groups.GroupError(groups.GroupProblem.NO_COMMENT, str(number))
        await groups.move(session, found.draft.id, number, target)
        return (AuditAction.COMMENT_MOVED, f"comment {number}: group {group_id} to {target}",
                _group_url(found.draft.id, target, "moved"))

    return await _corrected(request, correct)


async def merge(request: web.Request) -> web.Response:
    post = await request.post()
    target = _form_id(post.get("into", ""))
    others = [_form_id(value) for value in post.getall("group", [])]

    async def correct(session: AsyncSession, found: InScope) -> tuple[AuditAction, str, str]:
        if target is None or None in others:
            raise groups.GroupError(groups.GroupProblem.NO_GROUP, "?")
        chosen = [other for other in others if other is not None and other != target]
        await groups.merge(session, found.draft.id, target, chosen)
        return (AuditAction.GROUPS_MERGED,
                f"groups {' '.join(map(str, chosen))} into {target}",
                _group_url(found.draft.id, target, "merged"))

    return await _corrected(request, correct)


ROUTES = [
    web.get(r"/drafts/{id:\d+}/groups", groups_page),
    web.get(r"/drafts/{id:\d+}/groups/{group:\d+}", group_page),
    web.post(r"/drafts/{id:\d+}/groups/compute", compute),
    web.post(r"/drafts/{id:\d+}/groups/merge", merge),
    web.post(r"/drafts/{id:\d+}/groups/{group:\d+}/rename", rename),
    web.post(r"/drafts/{id:\d+}/groups/{group:\d+}/split", split),
    web.post(r"/drafts/{id:\d+}/groups/{group:\d+}/move", move),
]
