"""A draft's comment groups: what the answering page, the synthesis and the publication of
answers read (`groups_of_draft`, `group_members`, `group_of_comments` — from which
`storage.answers.synthesis_rows` makes one row of each group — and `answer_recipients`), and
the corrections an official makes by hand (`rename`, `merge`, `move`, `split`).

A comment is in one group at most (its membership row is keyed by the comment), and a group
is never left empty (it goes), so no comment is ever hidden: the synthesis lists the comments
not grouped yet apart. A correction pins the memberships of the groups it touches
(`manual`): grouping the draft again from scratch keeps them (storage.grouping.job).

Comments are named by their number within the draft (the receipt "3-17" is draft 3's 17th),
never by a database id. None of these functions commits: the caller owns the transaction.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.charts import commune_name
from storage.models import Comment, CommentGroup, GroupMembership, GroupSuggestion
from storage.text import N_, clean_text

LABEL_LENGTH = 300  # CommentGroup.label
SHOWN_LABEL = 120  # characters of a representative comment shown as a group's name
SAMPLE = 3  # comments shown under a group in a list
COMMUNES_NAMED = 3  # communes named beside a group in a list, before "and N more"


class GroupProblem(StrEnum):
    NO_GROUP = "no_group"  # not a group of this draft
    NO_COMMENT = "no_comment"  # not a comment of this draft, or not in the group named
    SAME_GROUP = "same_group"  # merged or moved into the group it is in
    WHOLE_GROUP = "whole_group"  # a split taking every comment, or none
    EMPTY_NAME = "empty_name"
    NOT_GROUPED = "not_grouped"  # the comment has no group yet: group the draft first


# What each refusal says (translated by the caller; {detail} is the group or comment).
PROBLEM_WORDS = {
    GroupProblem.NO_GROUP: N_("There is no group no. {detail} in this draft."),
    GroupProblem.NO_COMMENT: N_("Comment no. {detail} is not in this draft, or not in that "
                                "group."),
    GroupProblem.SAME_GROUP: N_("Choose another group than no. {detail}: the comments are in "
                                "it already."),
    GroupProblem.WHOLE_GROUP: N_("A split takes some of the group's comments, not none or all "
                                 "of them: choose which ones go to the new group."),
    GroupProblem.EMPTY_NAME: N_("Write a name for the group."),
    GroupProblem.NOT_GROUPED: N_("Comment no. {detail} is not in a group yet: group the new "
                                 "comments first."),
}


class GroupError(ValueError):
    def __init__(self, problem: GroupProblem, detail: str = "") -> None:
        super().__init__(f"{problem}: {detail}" if detail else str(problem))
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class GroupRef:
    """A group as another feature refers to it (the answering page, the synthesis)."""

    id: int
    label: str


@dataclass(frozen=True)
class GroupSummary:
    """A group as a list shows it, counted within the communes asked for."""

    id: int
    label: str
    named_by_hand: bool
    size: int
    communes: tuple[int | None, ...]  # the members' communes (None: unknown), each once
    sample: tuple[tuple[int, str], ...]  # (comment number, text), the first few


@dataclass(frozen=True)
class Member:
    number: int  # within the draft
    commune_code: int | None
    text: str
    manual: bool


def shown_label(group_label: str, representative: str | None) -> str:
    """A group's name: the one an official gave, or its representative comment, cut."""
    if group_label:
        return group_label
    return textwrap.shorten(representative or "", SHOWN_LABEL, placeholder="…")


def places_text(codes: Sequence[int | None], t: Callable[..., str],
                shown: int = COMMUNES_NAMED) -> str:
    """A group's communes as a list shows them: the first few by name, then how many more."""
    names = ", ".join(commune_name(code, t) for code in codes[:shown])
    more = len(codes) - shown
    return names + (t(" and {count} more", count=more) if more > 0 else "")


def _in(communes: Collection[int] | None) -> ColumnElement[bool]:
    return true() if communes is None else Comment.commune_code.in_(sorted(communes))


async def find_group(session: AsyncSession, draft_id: int, group_id: int) -> CommentGroup:
    """The draft's group, or GroupError (another draft's, or none: both alike)."""
    group = await session.get(CommentGroup, group_id)
    if group is None or group.draft_id != draft_id:
        raise GroupError(GroupProblem.NO_GROUP, str(group_id))
    return group


async def _label(session: AsyncSession, group: CommentGroup) -> str:
    text = (await session.scalar(select(Comment.text).where(
        Comment.id == group.representative_id)) if group.representative_id else None)
    return shown_label(group.label, text)


async def group_ref(session: AsyncSession, group: CommentGroup) -> GroupRef:
    return GroupRef(group.id, await _label(session, group))


# ---- reading ---------------------------------------------------------------------------------


async def count_groups(session: AsyncSession, draft_id: int,
                       communes: Collection[int] | None = None) -> int:
    query = (select(func.count(func.distinct(GroupMembership.group_id)))
             .join(Comment, Comment.id == GroupMembership.comment_id)
             .where(GroupMembership.draft_id == draft_id, _in(communes)))
    return await session.scalar(query) or 0


async def ungrouped_count(session: AsyncSession, draft_id: int,
                          communes: Collection[int] | None = None) -> int:
    """The draft's comments not in a group yet (they came after the last grouping)."""
    return await session.scalar(
        select(func.count()).select_from(Comment).where(
            Comment.draft_id == draft_id, _in(communes), ~_grouped())) or 0


def _grouped() -> ColumnElement[bool]:
    return exists().where(GroupMembership.comment_id == Comment.id)


async def groups_of_draft(session: AsyncSession, draft_id: int,
                          communes: Collection[int] | None = None, offset: int = 0,
                          limit: int | None = None) -> list[GroupSummary]:
    """The draft's groups with a member in `communes` (None: all), the largest first,
    each counted and sampled within those communes."""
    size = func.count(GroupMembership.comment_id).label("size")
    query = (select(GroupMembership.group_id, size)
             .join(Comment, Comment.id == GroupMembership.comment_id)
             .where(GroupMembership.draft_id == draft_id, _in(communes))
             .group_by(GroupMembership.group_id)
             .order_by(size.desc(), GroupMembership.group_id).offset(offset).limit(limit))
    listed = []
    for group_id, count in (await session.execute(query)).all():
        group = await session.get(CommentGroup, group_id)
        assert group is not None  # its memberships were just read
        where = (GroupMembership.group_id == group_id, _in(communes))
        codes = (await session.scalars(
            select(Comment.commune_code).distinct()
            .join(GroupMembership, GroupMembership.comment_id == Comment.id).where(*where)
            .order_by(Comment.commune_code))).all()
        sample = (await session.execute(
            select(Comment.number, Comment.text)
            .join(GroupMembership, GroupMembership.comment_id == Comment.id).where(*where)
            .order_by(Comment.number).limit(SAMPLE))).all()
        listed.append(GroupSummary(group.id, await _label(session, group), group.named_by_hand,
                                   count, tuple(codes), tuple((n, text) for n, text in sample)))
    return listed


async def group_members(session: AsyncSession, group_id: int) -> list[int]:
    """The ids of the group's comments, each once, in the order they came."""
    return list((await session.scalars(
        select(GroupMembership.comment_id).where(GroupMembership.group_id == group_id)
        .order_by(GroupMembership.comment_id))).all())


async def answer_recipients(session: AsyncSession, group_id: int) -> list[int]:
    """The comments an answer given to the group answers: every member, once (the
    publication of answers sends each comment's author the answer of its group)."""
    return await group_members(session, group_id)


async def members_of(session: AsyncSession, group_id: int,
                     communes: Collection[int] | None = None) -> list[Member]:
    """The group's comments from `communes` (None: all), as a page shows them."""
    rows = await session.execute(
        select(Comment.number, Comment.commune_code, Comment.text, GroupMembership.manual)
        .join(GroupMembership, GroupMembership.comment_id == Comment.id)
        .where(GroupMembership.group_id == group_id, _in(communes)).order_by(Comment.number))
    return [Member(*row) for row in rows.all()]


async def _refs(session: AsyncSession, draft_id: int) -> dict[int, GroupRef]:
    """Every group of the draft and its name, in one query (a draft may have many)."""
    representative = aliased(Comment)
    rows = await session.execute(
        select(CommentGroup.id, CommentGroup.label, representative.text)
        .outerjoin(representative, representative.id == CommentGroup.representative_id)
        .where(CommentGroup.draft_id == draft_id))
    return {group_id: GroupRef(group_id, shown_label(label, text))
            for group_id, label, text in rows.all()}


async def group_of_comments(session: AsyncSession, draft_id: int) -> dict[int, GroupRef]:
    """Every grouped comment of the draft (by id) and its group."""
    refs = await _refs(session, draft_id)
    rows = await session.execute(select(GroupMembership.comment_id, GroupMembership.group_id)
                                 .where(GroupMembership.draft_id == draft_id))
    return {comment_id: refs[group_id] for comment_id, group_id in rows.all()}


# ---- hand corrections ------------------------------------------------------------------------


def comment_number(text: str, draft_id: int) -> int | None:
    """A comment's number as typed: "17", or its receipt "3-17" when it is draft 3's (ASCII
    digits only); None for anything else."""
    draft, dash, number = text.strip().rpartition("-")
    if dash and draft.strip() != str(draft_id):
        return None
    number = number.strip()
    if not (number.isascii() and number.isdigit()) or len(number) > 9:
        return None
    return int(number)


async def comment_ids(session: AsyncSession, draft_id: int, numbers: Sequence[int]
                      ) -> list[int]:
    """The ids of the draft's comments numbered so, in that order; GroupError naming the
    first number that is not one of them."""
    found = dict((await session.execute(
        select(Comment.number, Comment.id)
        .where(Comment.draft_id == draft_id, Comment.number.in_(sorted(set(numbers)))))).all())
    for number in numbers:
        if number not in found:
            raise GroupError(GroupProblem.NO_COMMENT, str(number))
    return [found[number] for number in numbers]


async def _pin(session: AsyncSession, *group_ids: int) -> None:
    """An official corrected these groups: their memberships are theirs now."""
    await session.execute(update(GroupMembership).where(GroupMembership.group_id.in_(group_ids))
                          .values(manual=True).execution_options(synchronize_session=False))


async def _tidy(session: AsyncSession, group: CommentGroup) -> None:
    """After members left: an empty group goes; one whose representative left gets its
    first member as representative."""
    first = await session.scalar(
        select(GroupMembership.comment_id).where(GroupMembership.group_id == group.id)
        .order_by(GroupMembership.comment_id).limit(1))
    if first is None:
        await session.delete(group)
        return
    still = await session.scalar(select(GroupMembership.comment_id).where(
        GroupMembership.group_id == group.id,
        GroupMembership.comment_id == group.representative_id))
    if still is None:
        group.representative_id = first
    await session.flush()


async def rename(session: AsyncSession, draft_id: int, group_id: int, label: str
                 ) -> CommentGroup:
    """Name the group (an empty name is refused; the name is cut to LABEL_LENGTH)."""
    label = " ".join(clean_text(label).replace("\u200d", "").split())
    if not label:
        raise GroupError(GroupProblem.EMPTY_NAME)
    group = await find_group(session, draft_id, group_id)
    group.label = label[:LABEL_LENGTH]
    group.named_by_hand = True
    await _pin(session, group.id)
    await session.flush()
    return group


async def merge(session: AsyncSession, draft_id: int, target_id: int,
                other_ids: Sequence[int]) -> int:
    """Move every comment of the other groups into the target; the others go. How many
    comments moved."""
    target = await find_group(session, draft_id, target_id)
    others = [await find_group(session, draft_id, other) for other in dict.fromkeys(other_ids)]
    if not others or any(other.id == target.id for other in others):
        raise GroupError(GroupProblem.SAME_GROUP, str(target_id))
    moved = await session.execute(
        update(GroupMembership)
        .where(GroupMembership.group_id.in_([other.id for other in others]))
        .values(group_id=target.id).execution_options(synchronize_session=False))
    await _pin(session, target.id)
    for other in others:
        await session.delete(other)
    await session.flush()
    return int(moved.rowcount or 0)  # type: ignore[attr-defined]


async def move(session: AsyncSession, draft_id: int, number: int, target_id: int
               ) -> CommentGroup:
    """Move one comment (by its number) into the target group; the group it left."""
    target = await find_group(session, draft_id, target_id)
    [comment_id] = await comment_ids(session, draft_id, [number])
    membership = await session.get(GroupMembership, comment_id)
    if membership is None:
        raise GroupError(GroupProblem.NOT_GROUPED, str(number))
    if membership.group_id == target.id:
        raise GroupError(GroupProblem.SAME_GROUP, str(target_id))
    source = await find_group(session, draft_id, membership.group_id)
    await _pin(session, source.id, target.id)
    membership.group_id = target.id
    membership.manual = True
    await session.flush()
    await _tidy(session, source)
    return source


async def split(session: AsyncSession, draft_id: int, group_id: int,
                numbers: Sequence[int]) -> CommentGroup:
    """Take these comments (by number) out of the group into a new group of their own:
    the new group. Both keep their members when the draft is grouped again."""
    group = await find_group(session, draft_id, group_id)
    ids = await comment_ids(session, draft_id, numbers)
    members = set(await group_members(session, group.id))
    for number, comment_id in zip(numbers, ids, strict=True):
        if comment_id not in members:
            raise GroupError(GroupProblem.NO_COMMENT, str(number))
    taken = set(ids)
    if not taken or taken == members:
        raise GroupError(GroupProblem.WHOLE_GROUP, str(group_id))
    await _pin(session, group.id)
    new = CommentGroup(draft_id=draft_id, representative_id=min(taken))
    session.add(new)
    await session.flush()
    await session.execute(
        update(GroupMembership).where(GroupMembership.comment_id.in_(sorted(taken)))
        .values(group_id=new.id, manual=True).execution_options(synchronize_session=False))
    await _tidy(session, group)
    return new


# ---- suggestions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggested:
    """Groups that seem to make one point in other words: an official may merge them."""

    label: str  # the most representative comment
    terms: str
    groups: tuple[GroupRef, ...]


async def suggestions_of(session: AsyncSession, draft_id: int) -> list[Suggested]:
    """The draft's stored suggestions, each with the groups still there (two at least)."""
    found = []
    for row in (await session.scalars(select(GroupSuggestion).where(
            GroupSuggestion.draft_id == draft_id).order_by(GroupSuggestion.id))).all():
        refs = []
        for text in row.group_ids.split():
            group = await session.get(CommentGroup, int(text))
            if group is not None and group.draft_id == draft_id:
                refs.append(await group_ref(session, group))
        if len(refs) > 1:
            found.append(Suggested(row.label, row.terms, tuple(refs)))
    return found
