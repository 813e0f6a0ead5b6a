"""Reading a draft from a TOML file (see examples/draft.toml) into a checked DraftSpec."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time
from pathlib import Path

from handlers.drafts import render_draft
from handlers.i18n import LANGUAGES, VIETNAM, Translator, translator
from handlers.turn import MESSAGE_LIMIT
from storage import communes
from storage.drafts import DraftSpec
from storage.models import utcnow
from storage.text import fold

TITLE_LIMIT = 200
OPTION_LIMIT = 100
MAX_OPTIONS = 10


class DraftFileError(Exception):
    """A mistake in a draft file, already translated for the person who wrote it."""


def _when(value: object, t: Translator, key: str) -> datetime:
    """TOML dates without an offset are Vietnam time; stored as aware UTC."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=VIETNAM)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(23, 59), VIETNAM)  # a bare date: end of that day
    else:
        raise DraftFileError(t(
            "“{key}” must be a date and time, for example 2026-12-15T17:00:00.", key=key
        ))
    return moment.astimezone(VIETNAM)


def _text(data: dict, key: str, t: Translator, limit: int | None = None,
          required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise DraftFileError(t("“{key}” must be text.", key=key))
    value = value.strip()
    if required and not value:
        raise DraftFileError(t("“{key}” is missing or empty.", key=key))
    if limit and len(value) > limit:
        raise DraftFileError(t(
            "“{key}” has {length} characters; the limit is {limit}.",
            key=key, length=t.number(len(value)), limit=t.number(limit),
        ))
    return value


def _commune_code(item: object, t: Translator) -> int:
    if isinstance(item, int):
        if communes.get_commune(item) is None:
            raise DraftFileError(t("There is no commune with code {code}.", code=item))
        return item
    if not isinstance(item, str):
        raise DraftFileError(t("Communes are given by code or by name."))
    matches = [m for m in communes.search(item, limit=20) if m.former is None]
    wanted = fold(item)
    # The full name, optionally followed by the province: "Xã Cẩm Tú, Thanh Hóa".
    exact = [m for m in matches
             if wanted == fold(m.commune.name) or wanted.startswith(fold(m.commune.name) + " ")]
    chosen = exact or matches
    if len(chosen) != 1:
        candidates = "; ".join(f"{m.commune.code} {m.commune.label}" for m in chosen[:10])
        raise DraftFileError(t(
            "“{name}” does not name exactly one commune ({candidates}). "
            "Give its code or add the province.",
            name=item, candidates=candidates or "—",
        ))
    return chosen[0].commune.code


def _targets(data: dict, t: Translator) -> tuple[list[int], str]:
    """Commune codes and a readable scope from `communes`, `provinces` or `all = true`."""
    targets = data.get("targets", {})
    if not isinstance(targets, dict):
        raise DraftFileError(t("“targets” must be a table, see examples/draft.toml."))
    if targets.get("all") is True:
        return [c.code for c in communes.communes()], "all"
    codes: list[int] = []
    scope: list[str] = []
    for name in targets.get("provinces", []):
        province = communes.find_province(str(name))
        if province is None:
            raise DraftFileError(t("There is no province called “{name}”.", name=name))
        codes += [c.code for c in communes.communes_in_province(province.code)]
        scope.append(province.name)
    for item in targets.get("communes", []):
        code = _commune_code(item, t)
        codes.append(code)
        scope.append(communes.get_commune(code).label)
    if not codes:
        raise DraftFileError(t(
            "The draft has no target: give communes, provinces or all = true under [targets]."
        ))
    return codes, "; ".join(scope)[:200]


def load_draft_file(path: Path, t: Translator) -> DraftSpec:
    """Parse and check a draft file; raises DraftFileError with a translated message."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DraftFileError(t("File not found: {path}", path=str(path))) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DraftFileError(t("The file is not valid TOML: {error}", error=str(error))) from error
    codes, scope = _targets(data, t)
    opens_at = _when(data["opens_at"], t, "opens_at") if "opens_at" in data else utcnow()
    deadline = _when(data.get("deadline"), t, "deadline")
    if deadline <= opens_at or deadline <= utcnow():
        raise DraftFileError(t("The deadline must be in the future and after the opening time."))
    poll = data.get("poll", {})
    options = poll.get("options", []) if isinstance(poll, dict) else []
    if poll and (len(options) < 2 or len(options) > MAX_OPTIONS
                 or not all(isinstance(o, str) and 0 < len(o.strip()) <= OPTION_LIMIT
                            for o in options)):
        raise DraftFileError(t(
            "A poll needs 2 to {most} options, each at most {limit} characters.",
            most=MAX_OPTIONS, limit=OPTION_LIMIT,
        ))
    spec = DraftSpec(
        title=_text(data, "title", t, TITLE_LIMIT),
        issuer=_text(data, "issuer", t, TITLE_LIMIT),
        summary=_text(data, "summary", t),
        link=_text(data, "link", t, 500, required=False),
        scope=scope,
        commune_codes=codes,
        opens_at=opens_at,
        deadline=deadline,
        poll_question=_text(poll, "question", t, 300, required=bool(options)) if poll else "",
        poll_options=[o.strip() for o in options],
    )
    _check_fits_one_message(spec, t)
    return spec


def _check_fits_one_message(spec: DraftSpec, t: Translator) -> None:
    """The draft message must fit in one message on every channel, in every language."""
    longest = max(len(render_draft(spec.to_draft(), translator(lang)).text) for lang in LANGUAGES)
    if longest > MESSAGE_LIMIT:
        raise DraftFileError(t(
            "The draft message would have {length} characters, but a chat message holds at "
            "most {limit} (Zalo's limit). Shorten the summary by {excess} characters.",
            length=t.number(longest), limit=t.number(MESSAGE_LIMIT),
            excess=t.number(longest - MESSAGE_LIMIT),
        ))
