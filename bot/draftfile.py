"""Reading a draft from a TOML file (see examples/draft.toml) into a checked DraftSpec.

The file is validated with a pydantic schema, so every problem is found in one pass and
reported with its key ("poll.options: …"); the messages are ours, translated, because the
people who write these files are commune officials, not programmers. `check_draft` is that
check on its own, for fields from anywhere: the workspace's draft form (bot/web) uses it too,
so a draft is held to one set of rules however it is written.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from bot.reasons import os_reason, toml_reason
from handlers.drafts import render_draft
from handlers.i18n import LANGUAGES, N_, VIETNAM, Translator, translator
from handlers.turn import MESSAGE_LIMIT
from storage import communes
from storage.drafts import DraftSpec, commune_code_text
from storage.models import IssuerLevel, utcnow
from storage.text import fold

TITLE_LIMIT = 200
OPTION_LIMIT = 100
QUESTION_LIMIT = 300
LINK_LIMIT = 500
SCOPE_LIMIT = 200
MIN_OPTIONS = 2
MAX_OPTIONS = 10
# A draft file is a page of text; anything bigger is the wrong file.
FILE_SIZE_LIMIT = 1_000_000
CANDIDATES_SHOWN = 10

UNKNOWN_KEY = N_("unknown key")
# What each kind of problem means, in the words of the catalogue. Pydantic's own error types
# (string_type, list_type…) and ours (raised below) share this table; placeholders come from
# the error's context.
MESSAGES = {
    "missing": N_("missing (see examples/draft.toml)"),
    "extra_forbidden": UNKNOWN_KEY,
    "string_type": N_("must be text in quotes"),
    "string_too_short": N_("is empty"),
    "string_too_long": N_("has {length} characters; the limit is {limit}"),
    "list_type": N_("must be a list in square brackets, for example [\"…\", \"…\"]"),
    "bool_type": N_("must be true or false"),
    "model_type": N_("must be a table (see examples/draft.toml)"),
    "moment_type": N_("must be a date and time, for example 2026-12-15T17:00:00"),
    "moment_range": N_("{value} is out of the range of dates that can be stored"),
    "deadline_past": N_("must be in the future"),
    "deadline_order": N_("must be after the opening time (opens_at)"),
    "link_scheme": N_("must be a web address starting with http:// or https://"),
    "commune_type": N_(
        "a commune is given by its code (15148 or \"00004\") or by its name (\"Xã Cẩm Tú\")"
    ),
    "commune_code_format": N_(
        "“{value}” is not a commune code: codes are written with 5 digits, such as "
        "\"00004\", or as a plain number such as 4"
    ),
    "commune_unknown": N_("there is no commune with code {code}"),
    "commune_ambiguous": N_(
        "“{name}” does not name exactly one commune ({candidates}). "
        "Give its code or add the province."
    ),
    "province_unknown": N_("there is no province called “{name}”"),
    "no_target": N_(
        "the draft has no target: give communes, provinces or all = true under [targets]"
    ),
    "options_count": N_("a poll needs {least} to {most} options; this one has {count}"),
    "option_duplicate": N_("“{option}” is given twice"),
    "issuer_level": N_("“{value}” is not a level: write national, provincial or commune"),
    "issuer_level_close": N_("“{value}” is not a level: write national, provincial or "
                             "commune (did you mean {suggestion}?)"),
}
UNKNOWN_KEY_SUGGESTION = N_("unknown key (did you mean {suggestion}?)")
FALLBACK = N_("is not valid: {reason}")


@dataclass(frozen=True)
class DraftProblem:
    """One mistake in a draft: where it is, and what is wrong, translated.

    `key` is the field as the file names it ("title", "poll.options", "targets.communes"; ""
    for the file or the message as a whole), `item` the list item (from 0) when the problem is
    one item's, `message` what is wrong, and `line` the whole as the command line prints it
    ("poll.options (item 2): is empty").
    """

    key: str
    item: int | None
    message: str
    line: str


class DraftFileError(Exception):
    """Mistakes in a draft, each already translated for the person who wrote it: `problems`
    as lines, `details` with where each one is (for a form to show it beside its field)."""

    def __init__(self, problems: list[str] | list[DraftProblem]) -> None:
        self.details = [problem if isinstance(problem, DraftProblem)
                        else DraftProblem("", None, problem, problem) for problem in problems]
        self.problems = [problem.line for problem in self.details]
        super().__init__("\n".join(self.problems))


def _problem(kind: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, MESSAGES[kind], context)


# --- field types -------------------------------------------------------------------------


def _moment(value: object) -> datetime:
    """TOML dates without an offset are Vietnam time; a bare date means the end of that day."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=VIETNAM)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(23, 59), VIETNAM)
    else:
        raise _problem("moment_type")
    try:
        # Stored in UTC and shown in Vietnam time: both must exist (year 1, year 9999…).
        return moment.astimezone(UTC).astimezone(VIETNAM)
    except OverflowError:
        raise _problem("moment_range", value=value.isoformat()) from None


def _web_link(value: str) -> str:
    if not value:
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a malformed address, such as an unclosed [IPv6 bracket
        raise _problem("link_scheme") from None
    if parts.scheme.lower() not in ("http", "https") or not host or re.search(r"\s", value):
        raise _problem("link_scheme")
    return value


def _commune(value: object) -> int:
    """A commune code from an integer, a 5-digit string ("00004") or a name."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _problem("commune_type")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise _problem("string_too_short")
        if re.fullmatch(r"[0-9]{5}", text):
            value = int(text)
        elif any(c.isdigit() for c in text) and not any(c.isalpha() for c in text):
            raise _problem("commune_code_format", value=text)  # "4", "0004", "15 148"…
        else:
            return _commune_by_name(text)
    if communes.get_commune(value) is None:
        raise _problem("commune_unknown", code=commune_code_text(value))
    return value


def _commune_by_name(name: str) -> int:
    matches = [m for m in communes.search(name, limit=20) if m.former is None]
    wanted = fold(name)
    # The full name, optionally followed by the province: "Xã Cẩm Tú, Thanh Hóa".
    exact = [m for m in matches
             if wanted == fold(m.commune.name) or wanted.startswith(fold(m.commune.name) + " ")]
    chosen = exact or matches
    if len(chosen) != 1:
        candidates = "; ".join(
            f"{commune_code_text(m.commune.code)} {m.commune.label}"
            for m in chosen[:CANDIDATES_SHOWN]
        )
        raise _problem("commune_ambiguous", name=name, candidates=candidates or "—")
    return chosen[0].commune.code


def _province(value: object) -> int:
    if not isinstance(value, str):
        raise _problem("string_type")
    province = communes.find_province(value)
    if province is None:
        raise _problem("province_unknown", name=value)
    return province.code


# The level's words a commune official may write, folded: the codes, and in Vietnamese.
LEVEL_ALIASES = {
    "national": IssuerLevel.NATIONAL, "trung uong": IssuerLevel.NATIONAL,
    "provincial": IssuerLevel.PROVINCIAL, "tinh": IssuerLevel.PROVINCIAL,
    "commune": IssuerLevel.COMMUNE, "xa": IssuerLevel.COMMUNE,
}


def _issuer_level(value: object) -> str:
    """An IssuerLevel's code from its code or Vietnamese word (any case and diacritics)."""
    if not isinstance(value, str):
        raise _problem("string_type")
    wanted = fold(value)
    if not wanted:
        return ""
    if wanted in LEVEL_ALIASES:
        return LEVEL_ALIASES[wanted].value
    close = difflib.get_close_matches(wanted, list(LEVEL_ALIASES), n=1)
    if close:
        raise _problem("issuer_level_close", value=value.strip(),
                       suggestion=LEVEL_ALIASES[close[0]].value)
    raise _problem("issuer_level", value=value.strip())


Moment = Annotated[datetime, BeforeValidator(_moment)]
IssuerLevelCode = Annotated[str, BeforeValidator(_issuer_level)]
CommuneCode = Annotated[int, BeforeValidator(_commune)]
ProvinceCode = Annotated[int, BeforeValidator(_province)]


def _text(most: int | None = None, least: int = 1) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=least, max_length=most)


# --- the schema --------------------------------------------------------------------------


class _Strict(BaseModel):
    # strict: a number is not text, true is not 1; forbid: a misspelt key is an error.
    model_config = ConfigDict(extra="forbid", strict=True)


class Targets(_Strict):
    communes: list[CommuneCode] = []
    provinces: list[ProvinceCode] = []
    all: bool = False

    @model_validator(mode="after")
    def _has_a_target(self) -> Targets:
        if not (self.all or self.communes or self.provinces):
            raise _problem("no_target")
        return self

    def codes_and_scope(self) -> tuple[list[int], str]:
        """Commune codes and a readable scope ("all", or the names given)."""
        if self.all:
            return [c.code for c in communes.communes()], "all"
        codes: list[int] = []
        scope: list[str] = []
        for province_code in self.provinces:
            province_communes = communes.communes_in_province(province_code)
            codes += [c.code for c in province_communes]
            scope.append(province_communes[0].province.name)
        for code in self.communes:
            commune = communes.get_commune(code)
            if commune is not None:  # validated above; the check keeps the type honest
                codes.append(code)
                scope.append(commune.label)
        return codes, "; ".join(scope)[:SCOPE_LIMIT]


class Poll(_Strict):
    question: Annotated[str, _text(QUESTION_LIMIT)]
    options: list[Annotated[str, _text(OPTION_LIMIT)]]

    @field_validator("options")
    @classmethod
    def _sensible_options(cls, options: list[str]) -> list[str]:
        if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise _problem("options_count", least=MIN_OPTIONS, most=MAX_OPTIONS,
                           count=len(options))
        # Folded, as a resident typing an option's label without accents would match it.
        seen: set[str] = set()
        for option in options:
            if fold(option) in seen:
                raise _problem("option_duplicate", option=option)
            seen.add(fold(option))
        return options


class DraftFile(_Strict):
    title: Annotated[str, _text(TITLE_LIMIT)]
    issuer: Annotated[str, _text(TITLE_LIMIT)]
    issuer_level: IssuerLevelCode = ""
    summary: Annotated[str, _text()]
    link: Annotated[str, _text(LINK_LIMIT, least=0), AfterValidator(_web_link)] = ""
    opens_at: Moment | None = None
    deadline: Moment
    targets: Targets
    poll: Poll | None = None

    @field_validator("deadline")
    @classmethod
    def _deadline_ahead(cls, deadline: datetime, info: ValidationInfo) -> datetime:
        now: datetime = (info.context or {}).get("now") or utcnow()
        if deadline <= now:
            raise _problem("deadline_past")
        opens_at = info.data.get("opens_at")  # absent when opens_at itself was wrong
        if opens_at is not None and deadline <= opens_at:
            raise _problem("deadline_order")
        return deadline

    def to_spec(self, now: datetime) -> DraftSpec:
        codes, scope = self.targets.codes_and_scope()
        return DraftSpec(
            title=self.title,
            issuer=self.issuer,
            issuer_level=self.issuer_level,
            summary=self.summary,
            link=self.link,
            scope=scope,
            commune_codes=codes,
            opens_at=self.opens_at or now,
            deadline=self.deadline,
            poll_question=self.poll.question if self.poll else "",
            poll_options=self.poll.options if self.poll else [],
        )


# Where an unknown key sits, to suggest the key that was probably meant.
_TABLES: dict[tuple[str, ...], type[BaseModel]] = {
    (): DraftFile, ("targets",): Targets, ("poll",): Poll,
}


# --- reading and explaining ----------------------------------------------------------------


def load_draft_file(path: Path, t: Translator) -> DraftSpec:
    """Parse and check a draft file; raises DraftFileError listing every problem, translated."""
    return check_draft(_read_toml(path, t), t, utcnow())


def check_draft(data: dict[str, Any], t: Translator, now: datetime,
                messages: Mapping[str, str] = MESSAGES) -> DraftSpec:
    """Check a draft's fields, shaped as a draft file's table; raises DraftFileError listing
    every problem, translated. `messages` may reword kinds of problem for another medium (a
    form has no [targets] table to name)."""
    try:
        fields = DraftFile.model_validate(data, context={"now": now})
    except ValidationError as error:
        problems = [_explain(problem, t, messages) for problem in error.errors()]
        # Every problem at once: the length too, measured on what can be read of the fields.
        too_long = _too_long(_rough_spec(data, now), t)
        raise DraftFileError(problems + ([too_long] if too_long else [])) from None
    spec = fields.to_spec(now)
    too_long = _too_long(spec, t)
    if too_long:
        raise DraftFileError([too_long])
    return spec


def _read_toml(path: Path, t: Translator) -> dict[str, Any]:
    """The file's TOML table; what goes wrong is said about the file, in plain words."""
    if path.is_dir():
        raise DraftFileError([t("{path} is a folder, not a file.", path=str(path))])
    try:
        with path.open("rb") as handle:
            raw = handle.read(FILE_SIZE_LIMIT + 1)
    except FileNotFoundError:
        raise DraftFileError([t("File not found: {path}", path=str(path))]) from None
    except OSError as error:
        raise DraftFileError([t(
            "Cannot read {path}: {reason}.", path=str(path), reason=os_reason(error, t)
        )]) from None
    if len(raw) > FILE_SIZE_LIMIT:
        raise DraftFileError([t(
            "{path} is larger than {limit} bytes; a draft file is a short text file.",
            path=str(path), limit=t.number(FILE_SIZE_LIMIT),
        )])
    try:
        # utf-8-sig: Notepad on Windows starts UTF-8 files with a byte order mark.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DraftFileError([t(
            "{path} is not UTF-8 text; save it as UTF-8 in your editor.", path=str(path)
        )]) from None
    except tomllib.TOMLDecodeError as error:
        raise DraftFileError([t(
            "The file is not valid TOML: {error}", error=toml_reason(str(error), t)
        )]) from None


def _key(location: tuple[int | str, ...], t: Translator) -> str:
    """'poll.options (item 2)': the key as written in the file, items counted from 1."""
    key = ".".join(part for part in location if isinstance(part, str))
    items = [part for part in location if isinstance(part, int)]
    return t("{key} (item {number})", key=key, number=items[-1] + 1) if items else key


def _explain(problem: ErrorDetails, t: Translator,
             messages: Mapping[str, str] = MESSAGES) -> DraftProblem:
    """One problem: its key, then what is wrong in the writer's language."""
    location = tuple(problem["loc"])
    kind = problem["type"]
    context = dict(problem.get("ctx") or {})
    if kind == "extra_forbidden":
        message = _unknown_key(location, t)
    elif kind == "string_too_long":
        given = problem["input"]
        length = len(given.strip()) if isinstance(given, str) else 0
        message = t(messages[kind], length=t.number(length),
                    limit=t.number(context.get("max_length", 0)))
    elif kind in messages:
        values = {name: t.number(value) if isinstance(value, int) else value
                  for name, value in context.items()}
        message = t(messages[kind], **values)
    else:
        message = t(FALLBACK, reason=problem["msg"])
    key = _key(location, t)
    items = [part for part in location if isinstance(part, int)]
    return DraftProblem(".".join(part for part in location if isinstance(part, str)),
                        items[-1] if items else None, message,
                        f"{key}: {message}" if key else message)


def _unknown_key(location: tuple[int | str, ...], t: Translator) -> str:
    table = _TABLES.get(tuple(str(part) for part in location[:-1]))
    known = list(table.model_fields) if table else []
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    if close:
        return t(UNKNOWN_KEY_SUGGESTION, suggestion=close[0])
    return t(UNKNOWN_KEY)


def _too_long(spec: DraftSpec, t: Translator) -> DraftProblem | None:
    """Why the draft message would not fit in one message on every channel and language (a
    problem of the summary: the only text without a limit of its own)."""
    longest = max(len(render_draft(spec.to_draft(), translator(lang), reply_hint=True).text)
                  for lang in LANGUAGES)
    if longest <= MESSAGE_LIMIT:
        return None
    message = t(
        "The draft message would have {length} characters, but a chat message holds at "
        "most {limit} (Zalo's limit). Shorten the summary by {excess} characters.",
        length=t.number(longest), limit=t.number(MESSAGE_LIMIT),
        excess=t.number(longest - MESSAGE_LIMIT),
    )
    return DraftProblem("summary", None, message, message)


def _rough_spec(data: dict[str, Any], now: datetime) -> DraftSpec:
    """The texts of a file that did not pass its checks, in a spec that can be rendered:
    what is not text (or missing) counts as empty, the deadline as the longest to write, and
    a text over its own limit (a problem of its own) as cut to it, so only the summary, which
    has no limit but the message's, can make the message too long."""

    def text(value: object, limit: int | None = None) -> str:
        return value[:limit] if isinstance(value, str) else ""

    poll = data.get("poll")
    poll = poll if isinstance(poll, dict) else {}
    options = poll.get("options")
    options = options if isinstance(options, list) else []
    longest_date = datetime(2099, 12, 31, 23, 59, tzinfo=now.tzinfo)
    return DraftSpec(
        title=text(data.get("title"), TITLE_LIMIT), issuer=text(data.get("issuer"), TITLE_LIMIT),
        summary=text(data.get("summary")), link=text(data.get("link"), LINK_LIMIT), scope="",
        commune_codes=[], opens_at=now, deadline=longest_date,
        poll_question=text(poll.get("question"), QUESTION_LIMIT),
        poll_options=[text(option, OPTION_LIMIT) for option in options[:MAX_OPTIONS]],
    )
