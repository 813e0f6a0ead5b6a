"""A draft's results: who it reached, who took part, comments and votes, by commune and in total.

The one source of the figures that `ykien results`, the officials' web page, `/results` in
chat, the chart and the XLSX summary show. Persons are counted from the reaches table
(storage.reach), which outlives the outbox's purge and the persons' erasure: reached = rows,
participants = rows marked as taking part, each in the commune the person was in when the
draft reached them. Comments and votes are counted in the commune they were sent from; held
and unreachable messages (the outbox, until purged) in the resident's current commune.

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
    VIETNAM,
    Comment,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Draft,
    DraftCommune,
    Reach,
    ReachWay,
    Resident,
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


def _pad(votes: tuple[int, ...], width: int) -> tuple[int, ...]:
    return votes + (0,) * (width - len(votes))


@dataclass(frozen=True)
class CommuneFigures:
    """One commune's figures; `code` None for figures of no known commune."""

    code: int | None
    figures: Figures
    targeted: bool  # among the draft's target communes


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
        select(Comment.commune_code, func.count())
        .where(Comment.draft_id == draft_id, SHOWN).group_by(Comment.commune_code)
    )
    for code, count in rows(commented):
        tallies[code].comments += count

    voted = await session.execute(
        select(Vote.commune_code, Vote.option_id, func.count())
        .where(Vote.draft_id == draft_id).group_by(Vote.commune_code, Vote.option_id)
    )
    for code, option_id, count in rows(voted):
        if option_id in column:
            tallies[code].votes[column[option_id]] += count

    by_commune = tuple(
        CommuneFigures(code, tallies[code].figures(), code in targets)
        for code in sorted(tallies, key=lambda code: (code is None, code or 0))
    )
    total = Figures(votes=(0,) * len(options))
    for commune in by_commune:
        total += commune.figures
    return DraftResults(
        draft.id, draft.title, draft_state(draft, now), draft.deadline, options, total,
        by_commune, communes, now,
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
        "total": figures_dict(results.total),
        "communes": [commune(entry) for entry in results.communes],
    }
