"""The Decision 407 annual report: what was put to consultation in a period, and what came of it.

Which rows count (the same definitions in README.md, "The annual report"):

- **The period** is a span of calendar days in Vietnam time, both ends included (a year by
  default: reports are due by 31 October, so a report may be made for part of a year).
- **Drafts communicated**: drafts first broadcast (`broadcast_at`) within the period and
  targeting at least one commune of the scope, counted by the level of the issuing body
  (`issuer_level`: national, provincial, commune, or not stated). A draft targeting several
  communes counts once in the total, and once in each of its communes' rows.
- Every other figure is about **those drafts only**, and about the rows of the scope's
  communes (a comment or vote by the commune it was sent from, a reach by the resident's
  commune then): a comment that arrived in January on a draft broadcast in December counts
  in December's year. So each figure is reproducible from `ykien export` filtered on the
  report's list of drafts (Draft no.) and on the Commune code:
  - **Comments received**: every comment row (Kind = comment), hidden ones included; hidden
    ones are also given separately (the export's Hidden column is not empty). Broken down by
    channel (Channel; offline comments have none), by respondent category (Respondent
    category, "not said" when empty) and, for comments gathered offline, by source (Source:
    meeting, phone, paper, other). Comments with no commune (a resident who had not chosen
    one) count only in the total of the scope "all".
  - **Votes received**: every vote row (Kind = vote), one per person and poll (a changed
    vote counts once), with the same breakdowns.
  - **Comments answered**: comments shown (not hidden) that have a handling (the synthesis
    table's Handling column, `ykien synthesis export`); hidden comments are not answered.
  - **Residents reached**: persons a draft reached (its broadcast message sent, or shown in
    the chat), once per draft and person (storage.reach; `ykien results` per draft); summed
    over the drafts, so a resident reached by two drafts counts twice.
  - **Responses published**: drafts whose response was published (`ykien synthesis
    publish`); **closed drafts** those closed now; the **share** is published / closed.

The figures come from a few GROUP BY queries over those drafts (one per table), whose small
results are summed here per commune and in total. Nothing here commits.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.drafts import LEVEL_WORDS, NOT_STATED
from storage.models import (
    OFFLINE_SOURCES,
    VIETNAM,
    Comment,
    CommentAnswer,
    CommentSource,
    Draft,
    DraftCommune,
    DraftStatus,
    Publication,
    Reach,
    RespondentCategory,
    Vote,
)
from storage.text import N_

CATEGORY_WORDS = {
    RespondentCategory.INDIVIDUAL: N_("individuals"),
    RespondentCategory.ORGANISATION: N_("organisations"),
    RespondentCategory.BUSINESS: N_("businesses"),
    NOT_STATED: N_("category not said"),
}
SOURCE_WORDS = {
    CommentSource.MEETING: N_("village meetings"),
    CommentSource.PHONE: N_("by phone"),
    CommentSource.PAPER: N_("on paper"),
    CommentSource.OTHER: N_("other offline"),
}
# The chat apps every report lists, even at nought (so that yearly reports line up).
PLATFORMS = ("telegram", "zalo", "zalobot")


def parse_day(text: str) -> date | None:
    """A day as officials write it, 2026-10-31 or 31/10/2026; None for anything else."""
    stripped = text.strip()
    try:
        if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", stripped):
            day, month, year = map(int, stripped.split("/"))
            return date(year, month, day)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
            return date.fromisoformat(stripped)
    except ValueError:
        pass
    return None


@dataclass(frozen=True)
class Period:
    """Calendar days in Vietnam time, `first` to `last` included."""

    first: date
    last: date

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first, time(), VIETNAM)

    @property
    def ends(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), VIETNAM)


@dataclass
class Received:
    """Comments or votes received: the total and its breakdowns (each sums to the total,
    but `by_channel`, which leaves the offline ones to `offline`)."""

    total: int = 0
    hidden: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)  # chat rows only
    by_category: Counter[str] = field(default_factory=Counter)
    offline: Counter[str] = field(default_factory=Counter)  # by source

    def add(self, source: str, channel: str, category: str, count: int,
            hidden: bool = False) -> None:
        self.total += count
        self.hidden += count if hidden else 0
        if source in OFFLINE_SOURCES:
            self.offline[source] += count
        else:
            self.by_channel[channel] += count
        self.by_category[category if category in CATEGORY_WORDS else NOT_STATED] += count

    @property
    def offline_total(self) -> int:
        return sum(self.offline.values())


@dataclass
class Figures:
    """The report's figures for one commune, or for the whole scope."""

    drafts: Counter[str] = field(default_factory=Counter)  # by issuer level
    reached: int = 0
    comments: Received = field(default_factory=Received)
    votes: Received = field(default_factory=Received)
    answered: int = 0
    published: int = 0
    closed: int = 0
    closed_published: int = 0

    @property
    def drafts_total(self) -> int:
        return sum(self.drafts.values())

    @property
    def published_share(self) -> float | None:
        """Of the closed drafts, the share with a published response (None: none closed)."""
        return self.closed_published / self.closed if self.closed else None

    @property
    def active(self) -> bool:
        """Anyone was reached, or commented or voted."""
        return bool(self.reached or self.comments.total or self.votes.total)


@dataclass(frozen=True)
class ReportDraft:
    """A draft the report counts, as its list shows it."""

    id: int
    title: str
    issuer: str
    level: str
    broadcast_at: datetime
    status: str
    published: bool


@dataclass
class Report:
    period: Period
    communes: frozenset[int] | None  # the scope (None: all)
    drafts: list[ReportDraft]
    total: Figures
    # By commune code (None: the rows without a commune, scope "all" only): in the scope
    # "all", the communes where anyone was reached, commented or voted (a national draft
    # targets every commune of the country); in a province's or a commune's, each commune
    # targeted by a counted draft too (and a commune's own row always).
    per_commune: dict[int | None, Figures]

    @property
    def channels(self) -> list[str]:
        """The chat apps of the columns: the platforms always (so every report has the same
        columns), any other with a comment or a vote (the console, in a trial)."""
        return sorted(set(PLATFORMS) | set(self.total.comments.by_channel)
                      | set(self.total.votes.by_channel))


def _level(value: str) -> str:
    return value if value in LEVEL_WORDS else NOT_STATED


def _drafts_query(period: Period, communes: Collection[int] | None) -> Select[Any]:
    """The ids of the drafts the report counts."""
    query = select(Draft.id).where(Draft.broadcast_at >= period.starts,
                                   Draft.broadcast_at < period.ends)
    if communes is not None:
        query = query.where(exists().where(DraftCommune.draft_id == Draft.id,
                                           DraftCommune.commune_code.in_(sorted(communes))))
    return query


def _in(column: Any, communes: Collection[int] | None
        ) -> list[ColumnElement[bool]]:
    return [] if communes is None else [column.in_(sorted(communes))]


async def build_report(session: AsyncSession, period: Period,
                       communes: Collection[int] | None = None) -> Report:
    """The report of `period` for `communes` (None: all of them)."""
    scope = None if communes is None else frozenset(communes)
    counted = _drafts_query(period, scope)
    published = Publication.draft_id.is_not(None)
    drafts = [
        ReportDraft(id_, title, issuer, _level(level), at or period.starts, status, bool(done))
        for id_, title, issuer, level, at, status, done in (await session.execute(
            select(Draft.id, Draft.title, Draft.issuer, Draft.issuer_level,
                   Draft.broadcast_at, Draft.status, published)
            .outerjoin(Publication, Publication.draft_id == Draft.id)
            .where(Draft.id.in_(counted)).order_by(Draft.broadcast_at, Draft.id))).all()
    ]
    total = Figures()
    for found in drafts:
        _count_draft(total, found.level, found.status, found.published, 1)
    per_commune: dict[int | None, Figures] = {}

    def of(code: int | None) -> Figures:
        return per_commune.setdefault(code, Figures())

    # Each draft in each of its (in-scope) communes, grouped by what the rows count.
    for target, level, status, done, count in (await session.execute(
            select(DraftCommune.commune_code, Draft.issuer_level, Draft.status,
                   published.label("published"), func.count())
            .join(Draft, Draft.id == DraftCommune.draft_id)
            .outerjoin(Publication, Publication.draft_id == Draft.id)
            .where(Draft.id.in_(counted), *_in(DraftCommune.commune_code, scope))
            .group_by(DraftCommune.commune_code, Draft.issuer_level, Draft.status,
                      published))).all():
        _count_draft(of(target), _level(level), status, bool(done), count)

    for code, count in (await session.execute(
            select(Reach.commune_code, func.count())
            .where(Reach.draft_id.in_(counted), *_in(Reach.commune_code, scope))
            .group_by(Reach.commune_code))).all():
        total.reached += count
        of(code).reached += count

    hidden = Comment.hidden_at.is_not(None)
    answered = CommentAnswer.comment_id.is_not(None)
    for code, source, channel, category, is_hidden, is_answered, count in (
            await session.execute(
                select(Comment.commune_code, Comment.source, Comment.channel,
                       Comment.respondent_category, hidden.label("hidden"),
                       answered.label("answered"), func.count())
                .outerjoin(CommentAnswer, CommentAnswer.comment_id == Comment.id)
                .where(Comment.draft_id.in_(counted), *_in(Comment.commune_code, scope))
                .group_by(Comment.commune_code, Comment.source, Comment.channel,
                          Comment.respondent_category, hidden, answered))).all():
        for figures in (total, of(code)):
            figures.comments.add(source, channel, category, count, bool(is_hidden))
            if is_answered and not is_hidden:
                figures.answered += count

    for code, source, channel, category, count in (await session.execute(
            select(Vote.commune_code, Vote.source, Vote.channel, Vote.respondent_category,
                   func.count())
            .where(Vote.draft_id.in_(counted), *_in(Vote.commune_code, scope))
            .group_by(Vote.commune_code, Vote.source, Vote.channel,
                      Vote.respondent_category))).all():
        for figures in (total, of(code)):
            figures.votes.add(source, channel, category, count)

    if scope is not None and len(scope) == 1:
        of(next(iter(scope)))  # a commune's own report always has its row
    shown = {code: figures for code, figures in per_commune.items()
             if scope is not None or figures.active}
    return Report(period, scope, drafts, total,
                  dict(sorted(shown.items(), key=lambda item: (item[0] is None, item[0] or 0))))


def _count_draft(figures: Figures, level: str, status: str, published: bool,
                 count: int) -> None:
    figures.drafts[level] += count
    if published:
        figures.published += count
    if status == DraftStatus.CLOSED:
        figures.closed += count
        if published:
            figures.closed_published += count
