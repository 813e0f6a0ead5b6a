"""The new / edit draft pages: the draft file's fields in a form, checked by the draft file's
own check (bot.draftfile.check_draft), every problem beside its field; target communes found
by name (old names too) within the official's scope; a preview of the message on each chat
platform. After the first broadcast only the deadline changes, and the messages not sent yet
then expire at the new one.

Works without JavaScript: the form has three buttons (find communes, preview, save), and
every press comes back to the same page with what was typed, until the draft is saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.draftfile import MAX_OPTIONS, MESSAGES, DraftFileError, DraftProblem, check_draft
from bot.web.auth import page_translator, signed_in
from bot.web.pages import (
    InScope,
    draft_in_scope,
    forbidden,
    local_input,
    record,
    refusal,
    render,
    see_other,
    session_of,
)
from bot.web.preview import ChannelPreview, previews
from handlers.i18n import LANGUAGES, N_, Translator, translator
from handlers.officials import ADMIN_PATH
from storage import communes, roles
from storage.audit import AuditAction
from storage.drafts import (
    LEVEL_WORDS,
    DraftSpec,
    DraftState,
    change_deadline,
    commune_code_text,
    create_draft,
    draft_state,
    rewrite_draft,
)
from storage.models import Draft, DraftStatus, utcnow
from storage.roles import Permission

# A form has no [targets] table and no example file to point at.
FORM_MESSAGES = {
    **MESSAGES,
    "missing": N_("is required"),
    "moment_type": N_("must be a date and time"),
    "deadline_order": N_("must be after the opening time"),
    "no_target": N_("choose at least one commune"),
}
# Where each key of the draft file is shown on the form.
FIELD_OF_KEY = {"poll.question": "question", "poll.options": "options", "poll": "question",
                "targets.communes": "targets", "targets.provinces": "targets",
                "targets.all": "targets", "targets": "targets"}
FOUND_AT_MOST = 20  # communes listed for one search
SEARCHED = 200  # matches looked at, before those outside the scope are left out
TEXT_FIELDS = ("title", "issuer", "issuer_level", "summary", "link", "opens_at", "deadline",
               "question")


def _typed(post: MultiDictProxy[Any], name: str) -> str:
    value = post.get(name, "")
    # Browsers send a textarea's lines with CRLF; a draft's text has plain newlines.
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


@dataclass
class DraftForm:
    """The form's fields as typed (times as <input type="datetime-local"> sends them)."""

    title: str = ""
    issuer: str = ""
    summary: str = ""
    link: str = ""
    opens_at: str = ""
    deadline: str = ""
    question: str = ""
    options: list[str] = field(default_factory=lambda: [""] * MAX_OPTIONS)
    communes: list[int] = field(default_factory=list)  # chosen target communes
    search: str = ""
    preview_language: str = "vi"
    issuer_level: str = ""  # an IssuerLevel's code, "" not stated

    @classmethod
    def posted(cls, post: MultiDictProxy[Any]) -> DraftForm:
        options = [_typed_value(value) for value in post.getall("option", [])][:MAX_OPTIONS]
        codes: list[int] = []
        for value in post.getall("commune", []):
            text = _typed_value(value).strip()
            if text.isascii() and text.isdigit() and len(text) <= 9 and int(text) not in codes:
                codes.append(int(text))
        language = _typed(post, "preview_language")
        return cls(**{name: _typed(post, name) for name in TEXT_FIELDS},
                   options=options + [""] * (MAX_OPTIONS - len(options)), communes=codes,
                   search=_typed(post, "search").strip(),
                   preview_language=language if language in LANGUAGES else "vi")

    @classmethod
    def of(cls, draft: Draft, codes: Iterable[int]) -> DraftForm:
        options = [option.label for option in draft.options]
        return cls(draft.title, draft.issuer, draft.summary, draft.link,
                   local_input(draft.opens_at), local_input(draft.deadline),
                   draft.poll_question, options + [""] * (MAX_OPTIONS - len(options)),
                   sorted(codes), issuer_level=draft.issuer_level)

    def table(self) -> tuple[dict[str, Any], list[int]]:
        """The fields shaped as a draft file's table, and the input each option given came
        from (empty option inputs are not options)."""
        data: dict[str, Any] = {
            "title": self.title, "issuer": self.issuer, "issuer_level": self.issuer_level,
            "summary": self.summary.strip(),
            "link": self.link.strip(), "targets": {"communes": list(self.communes)},
        }
        if self.deadline.strip():  # else "is required"
            data["deadline"] = typed_moment(self.deadline)
        if self.opens_at.strip():
            data["opens_at"] = typed_moment(self.opens_at)
        inputs = [index for index, option in enumerate(self.options) if option.strip()]
        if self.question.strip() or inputs:
            data["poll"] = {"question": self.question,
                            "options": [self.options[index] for index in inputs]}
        return data, inputs


def _typed_value(value: object) -> str:
    return value if isinstance(value, str) else ""


def typed_moment(text: str) -> datetime | str:
    """A typed time as the draft file's check takes it: a datetime (Vietnam time when it has
    no offset), or the text itself, which the check then calls not a date and time."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return text


def stored_table(draft: Draft, codes: Iterable[int], **changed: Any) -> dict[str, Any]:
    """A saved draft's fields as a draft file's table, with `changed` ones replaced: a change
    to a broadcast draft (its deadline, its opening time) is checked with the rest as they
    are, by the same check as a new draft."""
    data: dict[str, Any] = {
        "title": draft.title, "issuer": draft.issuer, "issuer_level": draft.issuer_level,
        "summary": draft.summary,
        "link": draft.link, "opens_at": draft.opens_at, "deadline": draft.deadline,
        "targets": {"communes": sorted(codes)},
    }
    if draft.poll_question:
        data["poll"] = {"question": draft.poll_question,
                        "options": [option.label for option in draft.options]}
    return {**data, **changed}


def problems_by_field(error: DraftFileError, inputs: list[int] | None = None
                      ) -> dict[str, list[str]]:
    """Each problem under the form field it is about ("options.3" for the fourth option
    input; "summary" for a message too long)."""
    found: dict[str, list[str]] = {}
    for problem in error.details:
        found.setdefault(_field(problem, inputs), []).append(problem.message)
    return found


def _field(problem: DraftProblem, inputs: list[int] | None) -> str:
    name = FIELD_OF_KEY.get(problem.key, problem.key)
    if name == "options" and problem.item is not None and inputs is not None \
            and problem.item < len(inputs):
        return f"options.{inputs[problem.item]}"
    return name or "form"


def checked(form: DraftForm, t: Translator, scope: frozenset[int] | None
            ) -> tuple[DraftSpec | None, dict[str, list[str]]]:
    """The draft the form describes, or the problems beside each field (the draft file's
    check, then the communes the official may not publish to)."""
    data, inputs = form.table()
    spec, problems = None, {}
    try:
        spec = check_draft(data, t, utcnow(), FORM_MESSAGES)
    except DraftFileError as error:
        problems = problems_by_field(error, inputs)
    outside = [code for code in form.communes if scope is not None and code not in scope]
    if outside:
        problems.setdefault("targets", []).append(t(
            "outside the communes where you may publish: {communes}",
            communes=", ".join(commune_code_text(code) for code in outside)))
        spec = None
    return spec, problems


@dataclass(frozen=True)
class Found:
    """A commune offered by the search, or already chosen."""

    code: str
    label: str
    former: str = ""  # the old name it was found by


def _chosen(codes: Iterable[int]) -> list[Found]:
    listed = []
    for code in codes:
        commune = communes.get_commune(code)
        listed.append(Found(commune_code_text(code), commune.label if commune else "?"))
    return listed


def _found(search: str, scope: frozenset[int] | None, chosen: Iterable[int]) -> list[Found]:
    """Communes matching the search (current or former names) that the official may publish
    to and has not chosen yet."""
    if not search:
        return []
    skip = set(chosen)
    shown: list[Found] = []
    for match in communes.search(search, limit=SEARCHED):
        code = match.commune.code
        if code in skip or (scope is not None and code not in scope):
            continue
        skip.add(code)
        shown.append(Found(commune_code_text(code), match.commune.label,
                           match.former.name if match.former else ""))
        if len(shown) == FOUND_AT_MOST:
            break
    return shown


def _preview(spec: DraftSpec, language: str) -> list[ChannelPreview]:
    return previews(spec.to_draft(), translator(language))


def _page(request: web.Request, form: DraftForm, *, scope: frozenset[int] | None,
          problems: dict[str, list[str]] | None = None, shown: list[ChannelPreview] | None = None,
          found: list[Found] | None = None, draft: Draft | None = None,
          deadline_only: bool = False, status: int = 200) -> web.Response:
    t = page_translator(request)
    return render(request, "draft_form.html", {
        "form": form, "problems": problems or {}, "preview": shown, "found": found,
        "searched": form.search, "chosen": _chosen(form.communes), "draft": draft,
        "deadline_only": deadline_only, "languages": LANGUAGES,
        "action": request.path, "scope_all": scope is None,
        "levels": [(code, t(words)) for code, words in LEVEL_WORDS.items()],
        "title": t("Change draft no. {id}", id=draft.id) if draft else t("New draft"),
    }, status)


def _edit_scope(request: web.Request) -> frozenset[int] | None:
    return signed_in(request).authority.communes(Permission.EDIT)


async def new_draft_page(request: web.Request) -> web.Response:
    authority = signed_in(request).authority
    if not authority.may(Permission.EDIT):
        raise forbidden(request, Permission.EDIT)
    scope = _edit_scope(request)
    # A commune official publishes to their commune: it is chosen already.
    form = DraftForm(communes=sorted(scope) if scope is not None and len(scope) == 1 else [])
    return _page(request, form, scope=scope)


async def new_draft(request: web.Request) -> web.Response:
    authority = signed_in(request).authority
    if not authority.may(Permission.EDIT):
        raise forbidden(request, Permission.EDIT)
    t = page_translator(request)
    scope = _edit_scope(request)
    post = await request.post()
    form = DraftForm.posted(post)
    action = _typed(post, "action")
    if action == "search":
        return _page(request, form, scope=scope, found=_found(form.search, scope, form.communes))
    spec, problems = checked(form, t, scope)
    if spec is None:
        return _page(request, form, scope=scope, problems=problems, status=422)
    if action != "save":
        return _page(request, form, scope=scope, shown=_preview(spec, form.preview_language))
    role = authority.role_for(Permission.EDIT, spec.commune_codes)
    assert role is not None  # every commune is in the EDIT scope (checked)
    async with session_of(request) as session, session.begin():
        draft = await create_draft(session, spec)
        await record(request, session, role, AuditAction.DRAFT_CREATED, draft.id)
        draft_id = draft.id
    return see_other(f"{ADMIN_PATH}/drafts/{draft_id}?done=created")


async def edit_draft_page(request: web.Request) -> web.Response:
    async with session_of(request) as session:
        found = await draft_in_scope(request, session, Permission.EDIT)
        _refuse_closed(request, found)
        codes = await roles.draft_communes(session, found.draft.id) or frozenset()
        form = DraftForm.of(found.draft, codes)
        return _page(request, form, scope=_edit_scope(request), draft=found.draft,
                     deadline_only=found.draft.status != DraftStatus.DRAFT)


def _refuse_closed(request: web.Request, found: InScope) -> None:
    if draft_state(found.draft, utcnow()) is DraftState.CLOSED:
        raise refusal(request, 409, page_translator(request)(
            "This draft is closed: it can no longer be changed."))


async def edit_draft(request: web.Request) -> web.Response:
    t = page_translator(request)
    scope = _edit_scope(request)
    post = await request.post()
    form = DraftForm.posted(post)
    action = _typed(post, "action")
    async with session_of(request) as session, session.begin():
        found = await draft_in_scope(request, session, Permission.EDIT)
        draft = found.draft
        _refuse_closed(request, found)
        codes = await roles.draft_communes(session, draft.id) or frozenset()
        if draft.status != DraftStatus.DRAFT:
            return await _new_deadline(request, session, found, form, codes)
        if action == "search":
            return _page(request, form, scope=scope, draft=draft,
                         found=_found(form.search, scope, form.communes))
        spec, problems = checked(form, t, scope)
        if spec is None:
            return _page(request, form, scope=scope, draft=draft, problems=problems, status=422)
        if action != "save":
            return _page(request, form, scope=scope, draft=draft,
                         shown=_preview(spec, form.preview_language))
        await rewrite_draft(session, draft, spec)
        await record(request, session, found.role, AuditAction.DRAFT_EDITED, draft.id)
    return see_other(f"{ADMIN_PATH}/drafts/{draft.id}?done=edited")


async def _new_deadline(request: web.Request, session: Any, found: InScope, form: DraftForm,
                        codes: frozenset[int]) -> web.Response:
    """A broadcast draft: only its deadline changes, checked with the rest as stored."""
    t = page_translator(request)
    draft = found.draft
    try:
        spec = check_draft(stored_table(draft, codes, deadline=typed_moment(form.deadline)), t,
                           utcnow(), FORM_MESSAGES)
    except DraftFileError as error:
        shown = DraftForm.of(draft, codes)
        shown.deadline = form.deadline
        return _page(request, shown, scope=_edit_scope(request), draft=draft,
                     problems=problems_by_field(error), deadline_only=True, status=422)
    moved = await change_deadline(session, draft, spec.deadline)
    await record(request, session, found.role, AuditAction.DEADLINE_CHANGED, draft.id,
                 detail=f"{spec.deadline.isoformat(timespec='minutes')}; messages: {moved}")
    return see_other(f"{ADMIN_PATH}/drafts/{draft.id}?done=deadline")


ROUTES = [
    web.get("/drafts/new", new_draft_page),
    web.post("/drafts/new", new_draft),
    web.get(r"/drafts/{id:\d+}/edit", edit_draft_page),
    web.post(r"/drafts/{id:\d+}/edit", edit_draft),
]
