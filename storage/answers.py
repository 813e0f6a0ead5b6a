"""Answering every comment ("tiếp thu, giải trình"): each comment's handling and explanation,
the comments of a draft as the answering page lists them, and the synthesis table's rows.

`answer_comments` is the one way an answer is stored, for one comment or several at once (a
page's ticked comments, a group of near-duplicates, a spreadsheet's rows): all of them, or
none when one is not the draft's or not in the official's communes. The synthesis table has
one row per comment group of storage.groups (with its count), then the comments not grouped
yet, identical ones together (`group_identical`).

None of these functions commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.export import receipt_number
from storage.groups import GroupRef, group_of_comments, shown_label
from storage.models import (
    Comment,
    CommentAnswer,
    CommentSource,
    GroupMembership,
    Handling,
    Publication,
)
from storage.moderation import SHOWN
from storage.text import N_, clean_text, fold

HANDLING_WORDS = {
    Handling.ACCEPTED: N_("accepted"),
    Handling.PARTLY_ACCEPTED: N_("partly accepted"),
    Handling.NOT_ACCEPTED: N_("not accepted"),
    Handling.NOTED: N_("noted / outside the draft's scope"),
}
# Saying no, even in part, is explained: the resident is owed the reason.
NEEDS_EXPLANATION = frozenset({Handling.PARTLY_ACCEPTED, Handling.NOT_ACCEPTED})
EXPLANATION_LIMIT = 2000  # characters


class AnswerProblem(StrEnum):
    NO_COMMENTS = "no_comments"  # nothing chosen
    NOT_FOUND = "not_found"  # a comment not of the draft, or outside the official's communes
    NO_EXPLANATION = "no_explanation"  # not (or partly) accepted without saying why
    TOO_LONG = "too_long"


class AnswerError(ValueError):
    def __init__(self, problem: AnswerProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class Answer:
    handling: Handling
    explanation: str = ""

    @classmethod
    def checked(cls, handling: Handling, explanation: str) -> Answer:
        """The answer as it is stored (the explanation cleaned), or AnswerError."""
        text = clean_text(explanation)
        if len(text) > EXPLANATION_LIMIT:
            raise AnswerError(AnswerProblem.TOO_LONG)
        if handling in NEEDS_EXPLANATION and not text:
            raise AnswerError(AnswerProblem.NO_EXPLANATION)
        return cls(handling, text)


def parse_handling(text: str, translations: Sequence[Callable[[str], str]] = (str,)
                   ) -> Handling | None:
    """A handling from its code ("accepted") or its words in any of the languages (English
    always), whatever the case and diacritics; None for anything else."""
    wanted = fold(text)
    if not wanted:
        return None
    for handling, words in HANDLING_WORDS.items():
        if wanted in (fold(handling.value), fold(words),
                      *(fold(translate(words)) for translate in translations)):
            return handling
    return None


def _scoped(where: list, communes: Collection[int] | None) -> list:
    """Hidden comments are not answered (storage.moderation); those of `communes` only."""
    where.append(SHOWN)
    if communes is not None:
        where.append(Comment.commune_code.in_(sorted(communes)))
    return where


async def answer_comments(
    session: AsyncSession, draft_id: int, comment_ids: Collection[int], answer: Answer,
    now: datetime, communes: Collection[int] | None = None,
) -> int:
    """Give these comments of the draft one answer; how many answers changed (an answer given
    again as it was changes nothing). AnswerError, changing nothing, when no comment is
    given or one is not the draft's or outside `communes` (None: all)."""
    wanted = set(comment_ids)
    if not wanted:
        raise AnswerError(AnswerProblem.NO_COMMENTS)
    found = set((await session.scalars(select(Comment.id).where(*_scoped(
        [Comment.draft_id == draft_id, Comment.id.in_(sorted(wanted))], communes)))).all())
    if found != wanted:
        raise AnswerError(AnswerProblem.NOT_FOUND)
    given = {row.comment_id: row for row in (await session.execute(
        select(CommentAnswer.comment_id, CommentAnswer.handling, CommentAnswer.explanation)
        .where(CommentAnswer.comment_id.in_(sorted(wanted))))).all()}
    changed = 0
    for comment_id in sorted(wanted):
        before = given.get(comment_id)
        if before is None:
            session.add(CommentAnswer(comment_id=comment_id, handling=answer.handling.value,
                                      explanation=answer.explanation, answered_at=now))
        elif (before.handling, before.explanation) != (answer.handling, answer.explanation):
            await session.execute(
                update(CommentAnswer).where(CommentAnswer.comment_id == comment_id)
                .values(handling=answer.handling.value, explanation=answer.explanation,
                        answered_at=now)
                .execution_options(synchronize_session=False))
        else:
            continue
        changed += 1
    await session.flush()
    return changed


@dataclass(frozen=True)
class AnsweredComment:
    """A comment with its answer (handling None while unanswered)."""

    id: int
    draft_id: int
    number: int
    commune_code: int | None
    text: str
    created_at: datetime
    handling: Handling | None
    explanation: str
    source: str = CommentSource.CHAT  # a CommentSource: chat, or gathered offline
    respondent_category: str = ""  # whom the person commented for (RespondentCategory)

    @property
    def receipt(self) -> str:
        return receipt_number(self.draft_id, self.number)


def _answered_query(draft_id: int, communes: Collection[int] | None) -> tuple:
    return (
        select(Comment.id, Comment.draft_id, Comment.number, Comment.commune_code, Comment.text,
               Comment.created_at, CommentAnswer.handling, CommentAnswer.explanation,
               Comment.source, Comment.respondent_category)
        .outerjoin(CommentAnswer, CommentAnswer.comment_id == Comment.id),
        _scoped([Comment.draft_id == draft_id], communes),
    )


def _answered(row: tuple) -> AnsweredComment:
    (id_, draft_id, number, code, text, at, handling, explanation, source, category) = row
    return AnsweredComment(id_, draft_id, number, code, text, at,
                           Handling(handling) if handling else None, explanation or "", source,
                           category)


async def answered_comments(
    session: AsyncSession, draft_id: int, communes: Collection[int] | None = None, *,
    unanswered: bool = False, commune: int | None = None, group: int | None = None,
    offset: int = 0, limit: int | None = None,
) -> tuple[list[AnsweredComment], int]:
    """The draft's comments in receipt order with their answers, and how many match: those of
    `communes` (the official's, None: all), only unanswered ones, only one commune's, only
    one comment group's (storage.groups)."""
    query, where = _answered_query(draft_id, communes)
    if unanswered:
        where.append(CommentAnswer.comment_id.is_(None))
    if commune is not None:
        where.append(Comment.commune_code == commune)
    if group is not None:
        where.append(Comment.id.in_(select(GroupMembership.comment_id)
                                    .where(GroupMembership.group_id == group)))
    total = await session.scalar(
        select(func.count()).select_from(Comment)
        .outerjoin(CommentAnswer, CommentAnswer.comment_id == Comment.id).where(*where)) or 0
    query = query.where(*where).order_by(Comment.number).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_answered(row) for row in (await session.execute(query)).all()], total


@dataclass(frozen=True)
class AnswerCounts:
    comments: int
    answered: int

    @property
    def unanswered(self) -> int:
        return self.comments - self.answered


async def answer_counts(session: AsyncSession, draft_id: int,
                        communes: Collection[int] | None = None) -> AnswerCounts:
    comments, answered = (await session.execute(
        select(func.count(Comment.id), func.count(CommentAnswer.comment_id))
        .outerjoin(CommentAnswer, CommentAnswer.comment_id == Comment.id)
        .where(*_scoped([Comment.draft_id == draft_id], communes)))).one()
    return AnswerCounts(comments or 0, answered or 0)


# ---- the synthesis table -------------------------------------------------------------------


def group_identical(comments: Sequence[AnsweredComment]) -> list[list[AnsweredComment]]:
    """Comments saying the same words (whatever the case, diacritics and punctuation) in one
    group, in the order of each group's first comment."""
    groups: dict[str, list[AnsweredComment]] = {}
    for comment in comments:
        groups.setdefault(fold(comment.text) or comment.text, []).append(comment)
    return list(groups.values())


@dataclass(frozen=True)
class SynthesisRow:
    """One row of the table: a comment group (`group`), or identical comments not grouped
    yet, or one comment."""

    number: int  # from 1
    commune_codes: tuple[int | None, ...]  # the communes the comments came from
    text: str  # the group's name, or the first comment's words
    receipts: tuple[str, ...]
    # Every distinct answer given in the group, in the order first seen (one, normally);
    # empty while none of them is answered.
    answers: tuple[tuple[Handling, str], ...]
    unanswered: int
    group: GroupRef | None = None
    # Who said it, as the table's "who commented" cell counts them: by whom they commented
    # for ("" not said), and the comments gathered offline by source; most frequent first.
    respondents: tuple[tuple[str, int], ...] = ()
    offline: tuple[tuple[str, int], ...] = ()

    @property
    def count(self) -> int:
        return len(self.receipts)


def synthesis_rows(comments: Sequence[AnsweredComment],
                   groups: Mapping[int, GroupRef] | None = None) -> list[SynthesisRow]:
    """One row per comment group (`groups`: each grouped comment's, by id), the largest
    first, then the comments not grouped yet, identical ones on one row. Every comment is
    counted in exactly one row."""
    groups = groups or {}
    grouped: dict[int, list[AnsweredComment]] = {}
    loose = []
    for comment in comments:
        ref = groups.get(comment.id)
        if ref is None:
            loose.append(comment)
        else:
            grouped.setdefault(ref.id, []).append(comment)
    ordered: list[tuple[GroupRef | None, list[AnsweredComment]]] = [
        (groups[members[0].id], members)
        for members in sorted(grouped.values(), key=len, reverse=True)]
    ordered += [(None, members) for members in group_identical(loose)]
    rows = []
    for number, (ref, members) in enumerate(ordered, start=1):
        codes = tuple(dict.fromkeys(comment.commune_code for comment in members))
        answers = tuple(dict.fromkeys((comment.handling, comment.explanation)
                                      for comment in members if comment.handling is not None))
        rows.append(SynthesisRow(
            number, codes, _row_text(ref, members),
            tuple(comment.receipt for comment in members), answers,
            sum(comment.handling is None for comment in members), ref,
            tuple(Counter(comment.respondent_category for comment in members).most_common()),
            tuple(Counter(comment.source for comment in members
                          if comment.source != CommentSource.CHAT).most_common())))
    return rows


def _row_text(ref: GroupRef | None, members: Sequence[AnsweredComment]) -> str:
    """A row's words: the group's name an official gave, or else the whole of the comment it
    is named after (a name cut short from it does not belong in a published table)."""
    if ref is None:
        return members[0].text
    for comment in members:
        if shown_label("", comment.text) == ref.label:
            return comment.text
    return ref.label


async def synthesis_of(session: AsyncSession, draft_id: int,
                       communes: Collection[int] | None = None) -> list[SynthesisRow]:
    comments, _ = await answered_comments(session, draft_id, communes)
    return synthesis_rows(comments, await group_of_comments(session, draft_id))


async def publication_of(session: AsyncSession, draft_id: int) -> Publication | None:
    return await session.get(Publication, draft_id)
