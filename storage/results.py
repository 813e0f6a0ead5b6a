"""A draft's results: who it reached, who took part, comments and votes, by commune and in total.

The one source of the figures that `ykien results`, the officials' web page, `/results` in
chat, the chart and the XLSX summary show. Persons are counted from the reaches table
(storage.reach), which outlives the outbox's purge and the persons' erasure: reached = rows,
participants = rows marked as taking part, each in the commune the person was in when the
draft reached them. Comments and votes are counted in the commune they were sent from; held
and unreachable messages (the outbox, until purged) in the resident's current commune.

Comments gathered offline (storage.offline) count in the comments of their commune, and adds
no person reached and no participant (they are nobody's). The breakdown says where the
comments came from (the chat or each offline source), by which chat app, and whom the
respondents answered for; votes by chat app and by whom.

`communes` restricts everything to a set of commune codes (an official's scope): the total
is then the sum of those communes only, and figures from an unknown commune are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import communes as commune_list
from storage.drafts import DraftState, commune_code_text, draft_state
from storage.models import (
    OFFLINE_SOURCES,
    VIETNAM,
    Comment,
    CommentSource,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Draft,
    DraftCommune,
    Reach,
    ReachWay,
    Resident,
    RespondentCategory,
    Vote,
    utcnow,
)
from storage.moderation import SHOWN


@dataclass(frozen=True)
class Option:
    """A poll option as the results show it."""

    id: int
    position: int
    label: str


@dataclass(frozen=True)
class Figures:
    """The figures of one commune, or of all of them."""

    reached: int = 0  # persons the draft reached, however it did
    held: int = 0  # messages waiting for the resident's messaging window (Zalo OA)
    unreachable: int = 0  # messages that found the resident had blocked the bot
    comments: int = 0
    votes: tuple[int, ...] = ()  # per poll option, in `DraftResults.options` order
    participants: int = 0  # persons reached who commented or voted
    reached_by_way: Mapping[ReachWay, int] = field(default_factory=dict)

    @property
    def voters(self) -> int:
        return sum(self.votes)

    @property
    def participation(self) -> float | None:
        """Participants ÷ persons reached; None while nobody was reached."""
        return self.participants / self.reached if self.reached else None

    @property
    def empty(self) -> bool:
        return not (self.reached or self.held or self.unreachable or self.comments
                    or self.voters or self.participants)

    def __add__(self, other: Figures) -> Figures:
        ways: dict[ReachWay, int] = dict(self.reached_by_way)
        for way, count in other.reached_by_way.items():
            ways[way] = ways.get(way, 0) + count
        width = max(len(self.votes), len(other.votes))
        votes = tuple(a + b for a, b in zip(_pad(self.votes, width), _pad(other.votes, width),
                                            strict=True))
        return Figures(
            self.reached + other.reached, self.held + other.held,
            self.unreachable + other.unreachable, self.comments + other.comments, votes,
            self.participants + other.participants, ways,
        )


def _merged(first: Mapping[str, int], second: Mapping[str, int]) -> dict[str, int]:
    total = dict(first)
    for key, count in second.items():
        total[key] = total.get(key, 0) + count
    return total


@dataclass(frozen=True)
class Breakdown:
    """Where the comments and votes of a commune (or of all of them) came from.

    Keys are the stored values: a CommentSource; a chat app ("" for a comment gathered
    offline, or one from before channels were recorded); a RespondentCategory ("" not said).
    """

    comments_by_source: Mapping[str, int] = field(default_factory=dict)
    comments_by_channel: Mapping[str, int] = field(default_factory=dict)
    comments_by_category: Mapping[str, int] = field(default_factory=dict)
    votes_by_channel: Mapping[str, int] = field(default_factory=dict)
    votes_by_category: Mapping[str, int] = field(default_factory=dict)

    @property
    def offline_comments(self) -> int:
        return sum(self.comments_by_source.get(source, 0) for source in OFFLINE_SOURCES)

    @property
    def chat_comments(self) -> int:
        return self.comments_by_source.get(CommentSource.CHAT, 0)

    def __add__(self, other: Breakdown) -> Breakdown:
        return Breakdown(*(_merged(getattr(self, name), getattr(other, name))
                           for name in BREAKDOWN_FIELDS))


BREAKDOWN_FIELDS = ("comments_by_source", "comments_by_channel", "comments_by_category",
                    "votes_by_channel", "votes_by_category")


def _pad(votes: tuple[int, ...], width: int) -> tuple[int, ...]:
    return votes + (0,) * (width - len(votes))


@dataclass(frozen=True)
class CommuneFigures:
    """One commune's figures; `code` None for figures of no known commune."""

    code: int | None
    figures: Figures
    targeted: bool  # among the draft's target communes
    breakdown: Breakdown = Breakdown()


@dataclass(frozen=True)
class DraftResults:
    draft_id: int
    title: str
    state: DraftState
    deadline: datetime
    options: tuple[Option, ...]
    total: Figures
    # Every target commune (within the scope), then any other commune something came from;
    # in code order, the unknown commune last.
    communes: tuple[CommuneFigures, ...]
    scope: frozenset[int] | None  # the communes the figures were restricted to (None: all)
    at: datetime  # when they were counted
    breakdown: Breakdown = Breakdown()  # of the total

    @property
    def active_communes(self) -> tuple[CommuneFigures, ...]:
        """The communes where anything happened."""
        return tuple(commune for commune in self.communes if not commune.figures.empty)


class _Tally:
    """Figures being counted for one commune."""

    def __init__(self, options: int) -> None:
        self.reached = self.held = self.unreachable = self.comments = self.participants = 0
        self.votes = [0] * options
        self.ways: dict[ReachWay, int] = {}
        self.split: dict[str, dict[str, int]] = {name: {} for name in BREAKDOWN_FIELDS}

    def add(self, name: str, key: str, count: int) -> None:
        counts = self.split[name]
        counts[key] = counts.get(key, 0) + count

    def breakdown(self) -> Breakdown:
        return Breakdown(**self.split)

    def figures(self) -> Figures:
        return Figures(self.reached, self.held, self.unreachable, self.comments,
                       tuple(self.votes), self.participants, dict(self.ways))


async def draft_results(
    session: AsyncSession, draft_id: int, communes: frozenset[int] | None = None,
    now: datetime | None = None,
) -> DraftResults | None:
    """The draft's figures (None when there is no such draft), within `communes` if given."""
    draft = await session.get(Draft, draft_id)
    if draft is None:
        return None
    now = now or utcnow()
    options = tuple(Option(option.id, option.position, option.label) for option in draft.options)
    column = {option.id: index for index, option in enumerate(options)}
    tallies: defaultdict[int | None, _Tally] = defaultdict(lambda: _Tally(len(options)))

    def within(code: int | None) -> bool:
        return communes is None or (code is not None and code in communes)

    def rows(*found: Iterable[Any]) -> Iterable[Any]:
        return (row for rows in found for row in rows if within(row[0]))

    targets = set((await session.scalars(
        select(DraftCommune.commune_code).where(DraftCommune.draft_id == draft_id))).all())
    for code in sorted(targets):
        if within(code):
            tallies[code]

    reached = await session.execute(
        select(Reach.commune_code, Reach.way, func.count(), func.count(Reach.took_part_at))
        .where(Reach.draft_id == draft_id)
        .group_by(Reach.commune_code, Reach.way)
    )
    for code, way, count, took_part in rows(reached):
        tally = tallies[code]
        tally.reached += count
        tally.participants += took_part
        tally.ways[ReachWay(way)] = tally.ways.get(ReachWay(way), 0) + count

    waiting = await session.execute(
        select(Resident.commune_code, Delivery.status, func.count())
        .join(Resident, Resident.id == Delivery.resident_id)
        .where(Delivery.draft_id == draft_id, Delivery.kind == DeliveryKind.DRAFT,
               Delivery.status.in_((DeliveryStatus.HELD, DeliveryStatus.UNREACHABLE)))
        .group_by(Resident.commune_code, Delivery.status)
    )
    for code, status, count in rows(waiting):
        if status == DeliveryStatus.HELD:
            tallies[code].held += count
        else:
            tallies[code].unreachable += count

    commented = await session.execute(
        select(Comment.commune_code, Comment.source, Comment.channel,
               Comment.respondent_category, func.count())
        .where(Comment.draft_id == draft_id, SHOWN)
        .group_by(Comment.commune_code, Comment.source, Comment.channel,
                  Comment.respondent_category)
    )
    for code, source, channel, category, count in rows(commented):
        tally = tallies[code]
        tally.comments += count
        tally.add("comments_by_source", source, count)
        tally.add("comments_by_channel", channel, count)
        tally.add("comments_by_category", category, count)

    voted = await session.execute(
        select(Vote.commune_code, Vote.option_id, Vote.channel, Vote.respondent_category,
               func.count())
        .where(Vote.draft_id == draft_id)
        .group_by(Vote.commune_code, Vote.option_id, Vote.channel, Vote.respondent_category)
    )
    for code, option_id, channel, category, count in rows(voted):
        if option_id in column:
            tally = tallies[code]
            tally.votes[column[option_id]] += count
            tally.add("votes_by_channel", channel, count)
            tally.add("votes_by_category", category, count)

    by_commune = tuple(
        CommuneFigures(code, tallies[code].figures(), code in targets, tallies[code].breakdown())
        for code in sorted(tallies, key=lambda code: (code is None, code or 0))
    )
    total = Figures(votes=(0,) * len(options))
    split = Breakdown()
    for commune in by_commune:
        total += commune.figures
        split += commune.breakdown
    return DraftResults(
        draft.id, draft.title, draft_state(draft, now), draft.deadline, options, total,
        by_commune, communes, now, split,
    )


def figures_dict(figures: Figures) -> dict[str, Any]:
    """The figures as JSON-ready values."""
    return {
        "reached": figures.reached,
        "reached_by_way": {way.value: figures.reached_by_way.get(way, 0) for way in ReachWay},
        "held": figures.held,
        "unreachable": figures.unreachable,
        "comments": figures.comments,
        "votes": list(figures.votes),
        "voters": figures.voters,
        "participants": figures.participants,
        "participation": figures.participation,
    }


def breakdown_dict(breakdown: Breakdown) -> dict[str, Any]:
    """The breakdown as JSON-ready values: every source and category, even at 0; the chat
    apps that appear ("" for offline or unknown)."""
    return {
        "comments_by_source": {source.value: breakdown.comments_by_source.get(source, 0)
                               for source in CommentSource},
        "offline_comments": breakdown.offline_comments,
        "comments_by_channel": dict(sorted(breakdown.comments_by_channel.items())),
        "comments_by_category": _categories(breakdown.comments_by_category),
        "votes_by_channel": dict(sorted(breakdown.votes_by_channel.items())),
        "votes_by_category": _categories(breakdown.votes_by_category),
    }


def _categories(counts: Mapping[str, int]) -> dict[str, int]:
    return {category: counts.get(category, 0)
            for category in (*(each.value for each in RespondentCategory), "")}


def results_dict(results: DraftResults) -> dict[str, Any]:
    """The results as JSON-ready values (`ykien results --format json`, the web page): times
    in Vietnam time, commune codes as the government's list writes them ("00004")."""
    def commune(entry: CommuneFigures) -> dict[str, Any]:
        known = commune_list.get_commune(entry.code) if entry.code is not None else None
        return {
            "code": commune_code_text(entry.code) if entry.code is not None else None,
            "name": known.name if known else None,
            "province": known.province.name if known else None,
            "targeted": entry.targeted,
            **figures_dict(entry.figures),
            **breakdown_dict(entry.breakdown),
        }

    return {
        "draft": {
            "id": results.draft_id, "title": results.title, "state": results.state.value,
            "deadline": results.deadline.astimezone(VIETNAM).isoformat(timespec="seconds"),
        },
        "counted_at": results.at.astimezone(VIETNAM).isoformat(timespec="seconds"),
        "scope": None if results.scope is None else sorted(results.scope),
        "options": [{"position": option.position + 1, "label": option.label}
                    for option in results.options],
        "total": {**figures_dict(results.total), **breakdown_dict(results.breakdown)},
        "communes": [commune(entry) for entry in results.communes],
    }
