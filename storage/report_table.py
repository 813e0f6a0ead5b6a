"""The annual report (storage.report) as labelled figures, one list for every medium: the
command line's Markdown, the printable HTML page and the XLSX workbook show the same columns
in the same order, so a figure has one name wherever it is read.

Labels are catalogue words translated by the caller's `translate`; values are whole numbers,
but the share of closed drafts with a published response (a fraction, None when no draft is
closed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from storage.charts import commune_name
from storage.drafts import commune_code_text
from storage.models import OFFLINE_SOURCES, VIETNAM
from storage.report import (
    CATEGORY_WORDS,
    LEVEL_WORDS,
    SOURCE_WORDS,
    Figures,
    Received,
    Report,
    ReportDraft,
)
from storage.respondents import CHANNEL_NAMES
from storage.text import N_

DRAFTS = N_("Drafts communicated")
REACHED = N_("Residents reached (per draft)")
COMMENTS = N_("Comments received")
VOTES = N_("Votes received")
HIDDEN = N_("of which hidden")
OFFLINE = N_("of which gathered offline")
ANSWERED = N_("Comments answered")
PUBLISHED = N_("Responses published")
CLOSED = N_("Drafts closed")
SHARE = N_("Closed drafts with a published response")
PART = N_("{figure}: {part}")  # "Comments received: Telegram"
UNKNOWN_CHANNEL = N_("unknown app")

Value = int | float | None


@dataclass(frozen=True)
class Column:
    label: str  # translated
    value: Callable[[Figures], Value]
    share: bool = False  # a fraction, shown as a percentage


def columns(report: Report, translate: Callable[[str], str]) -> list[Column]:
    """The figures of a commune's row (and of the total), in order."""
    def part(figure: str, words: str) -> str:
        return translate(PART).format(figure=translate(figure), part=words)

    found = [Column(translate(DRAFTS), lambda f: f.drafts_total)]
    found += [Column(part(DRAFTS, translate(words)), _count(lambda f: f.drafts, level))
              for level, words in LEVEL_WORDS.items()]
    found.append(Column(translate(REACHED), lambda f: f.reached))
    for figure, received in ((COMMENTS, _comments), (VOTES, _votes)):
        found += _received_columns(report, figure, received, translate, part)
    found += [
        Column(translate(ANSWERED), lambda f: f.answered),
        Column(translate(PUBLISHED), lambda f: f.published),
        Column(translate(CLOSED), lambda f: f.closed),
        Column(translate(SHARE), lambda f: f.published_share, share=True),
    ]
    return found


def _count(counter: Callable[[Figures], Counter[str]], key: str) -> Callable[[Figures], Value]:
    """A figure read from one of a row's counters."""
    def value(figures: Figures) -> Value:
        return counter(figures)[key]

    return value


def _comments(figures: Figures) -> Received:
    return figures.comments


def _votes(figures: Figures) -> Received:
    return figures.votes


def _received_columns(report: Report, figure: str, received: Callable[[Figures], Received],
                      translate: Callable[[str], str],
                      part: Callable[[str, str], str]) -> list[Column]:
    found = [Column(translate(figure), lambda f: received(f).total)]
    if figure == COMMENTS:
        found.append(Column(part(figure, translate(HIDDEN)), lambda f: received(f).hidden))
    found += [Column(part(figure, channel_name(channel, translate)),
                     _count(lambda f: received(f).by_channel, channel))
              for channel in report.channels]
    found.append(Column(part(figure, translate(OFFLINE)), lambda f: received(f).offline_total))
    found += [Column(part(figure, translate(SOURCE_WORDS[source])),
                     _count(lambda f: received(f).offline, source))
              for source in OFFLINE_SOURCES]
    found += [Column(part(figure, translate(words)),
                     _count(lambda f: received(f).by_category, category))
              for category, words in CATEGORY_WORDS.items()]
    return found


def channel_name(channel: str, translate: Callable[[str], str]) -> str:
    return translate(CHANNEL_NAMES[channel]) if channel in CHANNEL_NAMES else (
        channel or translate(UNKNOWN_CHANNEL))


def shown(value: Value, share: bool, number: Callable[[int], str] = str) -> str:
    """A figure as text: a share as a whole percentage ("—" when there is none)."""
    if value is None:
        return "—"
    if share:
        return f"{round(value * 100)}%"
    return number(int(value))


TITLE = N_("Report on the consultation of residents on draft policies (Decision 407)")
PERIOD = N_("Period: {first} to {last}")
PLACE = N_("Communes: {place}")
ALL_PLACES = N_("all communes")
TOTALS = N_("In total")
PER_COMMUNE = N_("Per commune")
DRAFTS_COUNTED = N_("Drafts counted")
FIGURE, VALUE = N_("Figure"), N_("Value")
COMMUNE, CODE = N_("Commune"), N_("Code")
DRAFT_COLUMNS = (N_("Draft no."), N_("Title"), N_("Issuing body"), N_("Level"),
                 N_("Broadcast on"), N_("Status"), N_("Response published"))
STATUS_WORDS = {"draft": N_("not broadcast"), "open": N_("open"), "closed": N_("closed")}
YES, NO = N_("yes"), N_("no")
NO_COMMUNE = N_("no commune given")
DEFINITIONS = N_("Every figure counts the drafts of the list below (first broadcast in the "
                 "period) and the rows of these communes; it can be recomputed from "
                 "`ykien export` (see README, \"The annual report\").")


def day(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def period_line(report: Report, translate: Callable[[str], str]) -> str:
    return translate(PERIOD).format(first=day(report.period.first), last=day(report.period.last))


def place_line(place: str, translate: Callable[[str], str]) -> str:
    return translate(PLACE).format(place=place or translate(ALL_PLACES))


def commune_cells(code: int | None, translate: Callable[[str], str]) -> tuple[str, str]:
    """A per-commune row's name and code ("" code for the rows without a commune)."""
    if code is None:
        return translate(NO_COMMUNE), ""
    return commune_name(code, translate), commune_code_text(code)


def draft_cells(draft: ReportDraft, translate: Callable[[str], str]) -> list[str | int]:
    return [draft.id, draft.title, draft.issuer, translate(LEVEL_WORDS[draft.level]),
            day(draft.broadcast_at.astimezone(VIETNAM).date()),
            translate(STATUS_WORDS.get(draft.status, draft.status)),
            translate(YES if draft.published else NO)]


@dataclass(frozen=True)
class ReportView:
    """The report as text cells, as the Markdown and HTML pages show it."""

    title: str
    period: str
    place: str
    definitions: str
    totals_header: list[str]
    totals: list[tuple[str, str]]
    communes_header: list[str]
    communes: list[list[str]]
    drafts_header: list[str]
    drafts: list[list[str]]
    headings: tuple[str, str, str]  # totals, per commune, drafts


def report_view(report: Report, place: str, translate: Callable[[str], str],
                number: Callable[[int], str] = str) -> ReportView:
    figures = columns(report, translate)
    return ReportView(
        title=translate(TITLE), period=period_line(report, translate),
        place=place_line(place, translate), definitions=translate(DEFINITIONS),
        totals_header=[translate(FIGURE), translate(VALUE)],
        totals=[(spec.label, shown(spec.value(report.total), spec.share, number))
                for spec in figures],
        communes_header=[translate(COMMUNE), translate(CODE),
                         *(spec.label for spec in figures)],
        communes=[[*commune_cells(code, translate),
                   *(shown(spec.value(found), spec.share, number) for spec in figures)]
                  for code, found in report.per_commune.items()],
        drafts_header=[translate(words) for words in DRAFT_COLUMNS],
        drafts=[[str(cell) for cell in draft_cells(draft, translate)]
                for draft in report.drafts],
        headings=(translate(TOTALS), translate(PER_COMMUNE), translate(DRAFTS_COUNTED)),
    )
