"""The drafts pages: the list with each draft's state and progress, one draft (what it says,
how residents see it, how far its broadcast is), and the controls of its broadcast:
broadcast now or at a time, pause, resume, cancel, close.

Progress is the broadcast's outbox rows counted as `ykien draft status` counts them
(storage.outbox.draft_queue), limited to the residents of the official's communes; a JSON
endpoint gives the same numbers to the page's small script, which refreshes them without
reloading while anything remains to send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.draftfile import MESSAGES, DraftFileError, check_draft
from bot.web.auth import page_translator, signed_in
from bot.web.draft_form import FORM_MESSAGES, problems_by_field, stored_table, typed_moment
from bot.web.offline import offline_form
from bot.web.pages import (
    InScope,
    draft_in_scope,
    local_input,
    page_number,
    record,
    refusal,
    render,
    see_other,
    session_of,
)
from bot.web.preview import previews
from handlers.i18n import LANGUAGES, N_, Translator, translator
from handlers.officials import ADMIN_PATH
from storage import communes, outbox, roles
from storage.audit import AuditAction
from storage.drafts import (
    LEVEL_WORDS,
    STATE_WORDS,
    DraftState,
    broadcast,
    close_draft,
    commune_code_text,
    draft_state,
)
from storage.models import Comment, DeliveryStatus, Draft, DraftStatus, utcnow
from storage.moderation import SHOWN
from storage.outbox import QueueState
from storage.roles import Permission

DRAFTS_PER_PAGE = 20
COMMUNES_LISTED = 30  # a draft page names this many of its communes, then counts the rest
NO_SECRETS = "no_secrets"  # the checkbox confirming the text holds no state secret

# What the page says after an action (the draft page's ?done=…).
DONE_WORDS = {
    "created": N_("The draft is saved. Check how residents will see it, then broadcast it."),
    "edited": N_("Your changes are saved."),
    "deadline": N_("The deadline is changed. Messages not sent yet now expire at the new "
                   "deadline."),
    "paused": N_("The broadcast is paused: its messages wait until you resume it."),
    "resumed": N_("The broadcast is resumed."),
    "closed": N_("The draft is closed: comments and votes are no longer accepted, and "
                 "messages not sent yet will not be sent."),
}


@dataclass(frozen=True)
class Progress:
    """A broadcast's messages by what became of them (`ykien draft status`'s numbers)."""

    sent: int
    held: int  # waiting for the resident's messaging window (Zalo OA)
    failed: int
    unreachable: int
    skipped: int
    expired: int
    cancelled: int
    remaining: int  # still to send
    total: int

    @classmethod
    def of(cls, state: QueueState) -> Progress:
        return cls(state[DeliveryStatus.SENT], state[DeliveryStatus.HELD],
                   state[DeliveryStatus.FAILED], state[DeliveryStatus.UNREACHABLE],
                   state[DeliveryStatus.SKIPPED], state[DeliveryStatus.EXPIRED],
                   state[DeliveryStatus.CANCELLED], state.remaining, state.total)

    @property
    def done(self) -> int:
        """Messages whose fate is settled (not remaining, not held)."""
        return self.total - self.remaining - self.held


async def progress_of(session: AsyncSession, found: InScope, now: datetime) -> Progress:
    return Progress.of(await outbox.draft_queue(session, found.draft.id, now, found.scope))


def state_words(draft: Draft, now: datetime, t: Translator) -> str:
    words = t(STATE_WORDS[draft_state(draft, now)])
    return words + ", " + t("paused") if draft.paused else words


# ---- the list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    id: int
    title: str
    state: str
    deadline: datetime
    communes: int  # target communes the official sees
    comments: int  # from those communes
    progress: Progress


async def drafts_page(request: web.Request) -> web.Response:
    """The drafts with a commune the person sees, newest first, a page at a time."""
    t = page_translator(request)
    authority = signed_in(request).authority
    page = page_number(request)
    scope = authority.communes(Permission.READ)
    now = utcnow()
    async with session_of(request) as session:
        visible = Draft.id.in_(roles.visible_drafts(authority))
        total = await session.scalar(select(func.count()).select_from(Draft).where(visible)) or 0
        drafts = (await session.scalars(
            select(Draft).where(visible).order_by(Draft.id.desc())
            .offset((page - 1) * DRAFTS_PER_PAGE).limit(DRAFTS_PER_PAGE))).all()
        listed = []
        for draft in drafts:
            targets = await roles.draft_communes(session, draft.id) or frozenset()
            seen = targets if scope is None else targets & scope
            comments = select(func.count()).select_from(Comment).where(
                Comment.draft_id == draft.id, SHOWN, *_from(scope))
            listed.append(Listed(
                draft.id, draft.title, state_words(draft, now, t), draft.deadline, len(seen),
                await session.scalar(comments) or 0,
                Progress.of(await outbox.draft_queue(session, draft.id, now, scope))))
    return render(request, "drafts.html", {
        "drafts": listed, "page": page, "pages": max(1, -(-total // DRAFTS_PER_PAGE)),
        "may_create": authority.may(Permission.EDIT),
    })


def _from(scope: frozenset[int] | None) -> tuple[Any, ...]:
    return () if scope is None else (Comment.commune_code.in_(sorted(scope)),)


# ---- one draft ---------------------------------------------------------------------------


def _notice(request: web.Request, t: Translator) -> str:
    done = request.query.get("done", "")
    count_text = request.query.get("count", "0")
    count = int(count_text) if count_text.isascii() and count_text.isdigit() else 0
    if done == "broadcast":
        return t.plural("Broadcast: {count} message queued. The progress below follows it.",
                        "Broadcast: {count} messages queued. The progress below follows it.",
                        count)
    if done == "scheduled":
        return t.plural("Scheduled: {count} message queued, to go at the opening time.",
                        "Scheduled: {count} messages queued, to go at the opening time.",
                        count)
    if done == "cancelled":
        return t.plural("Cancelled: {count} message not sent yet will not be sent.",
                        "Cancelled: {count} messages not sent yet will not be sent.", count)
    return t(DONE_WORDS[done]) if done in DONE_WORDS else ""


async def _draft_view(request: web.Request, session: AsyncSession, found: InScope,
                      problems: dict[str, list[str]] | None = None,
                      schedule_at: str = "", status: int = 200) -> web.Response:
    t = page_translator(request)
    draft = found.draft
    now = utcnow()
    state = draft_state(draft, now)
    authority = signed_in(request).authority
    targets = await roles.draft_communes(session, draft.id) or frozenset()
    language = request.query.get("preview", "vi")
    language = language if language in LANGUAGES else "vi"
    named = sorted(found.communes)[:COMMUNES_LISTED]
    return render(request, "draft.html", {
        "draft": draft, "state": state.value, "state_words": state_words(draft, now, t),
        "level_words": t(LEVEL_WORDS.get(draft.issuer_level, LEVEL_WORDS[""])),
        "progress": await progress_of(session, found, now),
        "communes": [(commune_code_text(code), _label(code)) for code in named],
        "communes_more": len(found.communes) - len(named),
        "partial": len(found.communes) < len(targets),
        "preview": previews(draft, translator(language)), "preview_language": language,
        "may_edit": state is not DraftState.CLOSED and authority.may(Permission.EDIT, targets),
        "may_broadcast": authority.may(Permission.BROADCAST, targets),
        "may_export": authority.may(Permission.EXPORT, targets),
        "first_broadcast": draft.status == DraftStatus.DRAFT,
        "opens_later": draft.opens_at > now,
        "schedule_at": schedule_at or (local_input(draft.opens_at) if draft.opens_at > now
                                       else ""),
        "notice": _notice(request, t), "problems": problems or {},
        "offline": offline_form(request, found),
    }, status)


def _label(code: int) -> str:
    commune = communes.get_commune(code)
    return commune.label if commune else ""


async def draft_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        return await _draft_view(request, session, found)


async def progress(request: web.Request) -> web.Response:
    """The progress as JSON, for the page's script (the numbers the page shows)."""
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        now = utcnow()
        shown = await progress_of(session, found, now)
        t = page_translator(request)
        return web.json_response({
            **asdict(shown), "done": shown.done,
            "state": draft_state(found.draft, now).value,
            "state_words": state_words(found.draft, now, t),
            "paused": found.draft.paused,
        })


# ---- the controls ------------------------------------------------------------------------


def _draft_url(draft_id: int, done: str, count: int | None = None) -> str:
    counted = "" if count is None else f"&count={count}"
    return f"{ADMIN_PATH}/drafts/{draft_id}?done={done}{counted}"


def _closed(request: web.Request, draft: Draft, t: Translator) -> web.HTTPException:
    return refusal(request, 409, t("Draft no. {id} is closed: none of its messages are sent "
                                   "any more.", id=draft.id))


async def broadcast_draft(request: web.Request) -> web.Response:
    """Broadcast now, or at the time given (the draft's opening time). The first broadcast
    needs the official to confirm that the text holds no state secret."""
    t = page_translator(request)
    post = await request.post()
    when = post.get("when", "now")
    schedule_at = str(post.get("opens_at", "")).strip()
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.BROADCAST)
        draft = found.draft
        now = utcnow()
        if draft_state(draft, now) is DraftState.CLOSED:
            raise _closed(request, draft, t)
        first = draft.status == DraftStatus.DRAFT
        problems: dict[str, list[str]] = {}
        if first and post.get(NO_SECRETS) != "yes":
            problems[NO_SECRETS] = [t("Confirm that the text holds no state secret before the "
                                      "first broadcast.")]
        opens_at = draft.opens_at if draft.opens_at > now else now
        if first and when == "schedule":
            opens_at, wrong = await _scheduled_time(session, draft, schedule_at, t)
            problems.update(wrong)
        if problems:
            return await _draft_view(request, session, found, problems, schedule_at, 422)
        if first:
            draft.opens_at = opens_at
            await record(request, session, found.role, AuditAction.NO_SECRETS_CONFIRMED,
                         draft.id)
        queued = await broadcast(session, draft, now)
        scheduled = draft.opens_at > now
        await record(request, session, found.role,
                     AuditAction.SCHEDULED if scheduled else AuditAction.BROADCAST, draft.id,
                     detail=f"messages: {queued}" + (
                         f"; at {draft.opens_at.isoformat(timespec='minutes')}"
                         if scheduled else ""))
    return see_other(_draft_url(draft.id, "scheduled" if scheduled else "broadcast", queued))


async def _scheduled_time(session: AsyncSession, draft: Draft, typed: str, t: Translator
                          ) -> tuple[datetime, dict[str, list[str]]]:
    """The opening time typed for a scheduled broadcast, checked with the rest of the draft
    by the draft file's check; it must also be ahead (a past one would be "now")."""
    codes = await roles.draft_communes(session, draft.id) or frozenset()
    try:
        spec = check_draft(stored_table(draft, codes, opens_at=typed_moment(typed)), t, utcnow(),
                           FORM_MESSAGES)
    except DraftFileError as error:
        found = problems_by_field(error)
        # The opening time is the field on this form: the deadline's "after the opening
        # time" is a problem of the time typed.
        return draft.opens_at, {"opens_at": found.get("opens_at", []) + found.get("deadline", [])
                                + found.get("form", [])}
    if spec.opens_at <= utcnow():
        return draft.opens_at, {"opens_at": [t(MESSAGES["deadline_past"])]}
    return spec.opens_at, {}


class Steer(StrEnum):
    """What the buttons under a broadcast do to it."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    CLOSE = "close"


async def _steered(session: AsyncSession, request: web.Request, found: InScope, step: Steer
                   ) -> int | None:
    """Do `step` to the draft, with its audit row when it changed anything; how many
    messages it cancelled (None for the other steps)."""
    draft = found.draft
    if step is Steer.PAUSE or step is Steer.RESUME:
        if step is Steer.PAUSE and draft_state(draft, utcnow()) is DraftState.CLOSED:
            raise _closed(request, draft, page_translator(request))
        if await outbox.set_paused(session, draft, step is Steer.PAUSE):
            await record(request, session, found.role, AuditAction.PAUSED
                         if step is Steer.PAUSE else AuditAction.RESUMED, draft.id)
        return None
    if step is Steer.CANCEL:
        cancelled = await outbox.cancel(session, draft.id, utcnow())
        await record(request, session, found.role, AuditAction.CANCELLED, draft.id,
                     detail=f"messages: {cancelled.waiting}; being sent: "
                            f"{len(cancelled.in_flight)}")
        return cancelled.waiting
    if await close_draft(session, draft, utcnow()):
        await record(request, session, found.role, AuditAction.CLOSED, draft.id)
    return None


DONE_OF = {Steer.PAUSE: "paused", Steer.RESUME: "resumed", Steer.CANCEL: "cancelled",
           Steer.CLOSE: "closed"}


def _steering(step: Steer) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def steer(request: web.Request) -> web.Response:
        async with session_of(request) as session, session.begin():
            found = await draft_in_scope(request, session, Permission.BROADCAST)
            count = await _steered(session, request, found, step)
        return see_other(_draft_url(found.draft.id, DONE_OF[step], count))

    return steer


ROUTES = [
    web.get("/", drafts_page),
    web.get(r"/drafts/{id:\d+}", draft_page),
    web.get(r"/drafts/{id:\d+}/progress", progress),
    web.post(r"/drafts/{id:\d+}/broadcast", broadcast_draft),
    *(web.post(rf"/drafts/{{id:\d+}}/{step.value}", _steering(step)) for step in Steer),
]
