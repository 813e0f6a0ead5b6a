"""Grouping a draft's comments in the database, incrementally: the comments not in a group
yet join the existing groups or form new ones (storage.grouping.near); nothing already
grouped moves. `rebuild` first lets go of every membership an official did not set by hand,
so the draft is grouped again from scratch around the hand corrections.

Memory stays bounded: the grouped comments are read as fingerprints (80 bytes of band keys
and a hash each), their texts only when one is a candidate; the new comments as normalised
keys. The computation runs in a worker thread, so a server keeps answering meanwhile;
everything is written in one transaction at the end (a run that fails writes nothing).
Suggestions of similar points are computed afterwards, when the optional extra is there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.grouping import near, similar
from storage.grouping.normalise import Normalised, normalise
from storage.grouping.signatures import from_bytes, to_bytes
from storage.models import (
    Comment,
    CommentGroup,
    GroupMembership,
    GroupSuggestion,
    utcnow,
)

log = logging.getLogger(__name__)

READ_AT_ONCE = 10_000  # rows streamed from the database at a time
WRITTEN_AT_ONCE = 5_000  # rows inserted in one statement
GROUPING_LOCK = 0x67726F75  # "grou": the advisory lock class of grouping runs (PostgreSQL)
RUNS = 3  # a run that lost to another one (SQLite) is run again, this many times in all

# (stage, done, total): "reading", near's stages, "writing", "suggestions"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GroupingResult:
    grouped: int  # comments placed by this run
    joined: int  # of which joined a group that existed before
    new_groups: int
    groups: int  # the draft's groups now
    # Suggestions of similar points stored; None when the optional extra is missing.
    suggestions: int | None
    missing_module: str = ""  # that extra's missing module


async def _rebuild(session: AsyncSession, draft_id: int) -> None:
    await session.execute(delete(GroupMembership).where(
        GroupMembership.draft_id == draft_id, ~GroupMembership.manual))
    await session.execute(delete(CommentGroup).where(
        CommentGroup.draft_id == draft_id,
        ~exists().where(GroupMembership.group_id == CommentGroup.id)))


async def _anchors(session: AsyncSession, draft_id: int) -> tuple[near.Anchors, np.ndarray]:
    """The draft's grouped comments as fingerprints, and their comment ids."""
    ids, groups, hashes, blobs = [], [], [], []
    stream = await session.stream(
        select(GroupMembership.comment_id, GroupMembership.group_id, GroupMembership.key_hash,
               GroupMembership.band_keys)
        .where(GroupMembership.draft_id == draft_id).order_by(GroupMembership.comment_id)
        .execution_options(yield_per=READ_AT_ONCE))
    async for comment_id, group_id, hashed, blob in stream:
        ids.append(comment_id)
        groups.append(group_id)
        hashes.append(hashed)
        blobs.append(blob)
    anchors = near.Anchors(np.array(groups, np.int64), np.array(hashes, np.int64),
                           from_bytes(blobs))
    return anchors, np.array(ids, np.int64)


async def _newcomers(session: AsyncSession, draft_id: int
                     ) -> tuple[list[Normalised], np.ndarray]:
    texts, ids = [], []
    stream = await session.stream(
        select(Comment.id, Comment.text)
        .where(Comment.draft_id == draft_id,
               ~exists().where(GroupMembership.comment_id == Comment.id))
        .order_by(Comment.id).execution_options(yield_per=READ_AT_ONCE))
    async for comment_id, text in stream:
        ids.append(comment_id)
        texts.append(normalise(text))
    return texts, np.array(ids, np.int64)


async def group_draft(sessionmaker: async_sessionmaker[AsyncSession], draft_id: int, *,
                      rebuild: bool = False, progress: Progress | None = None
                      ) -> GroupingResult:
    """Group the draft's new comments (all of them but the hand-set ones with `rebuild`)."""
    report = progress or (lambda stage, done, total: None)
    for run in range(1, RUNS + 1):
        try:
            return await _group_once(sessionmaker, draft_id, rebuild, report)
        except (IntegrityError, OperationalError):
            if sessionmaker.kw["bind"].dialect.name == "postgresql" or run == RUNS:
                raise
            log.info("grouping draft %d: another run wrote first; grouping again", draft_id)
    raise AssertionError("unreachable")


async def _group_once(sessionmaker: async_sessionmaker[AsyncSession], draft_id: int,
                      rebuild: bool, report: Progress) -> GroupingResult:
    loop = asyncio.get_running_loop()
    async with sessionmaker() as session, session.begin():
        await _one_run_at_a_time(session, draft_id)
        if rebuild:
            await _rebuild(session, draft_id)
        anchors, anchor_ids = await _anchors(session, draft_id)
        newcomers, new_ids = await _newcomers(session, draft_id)
        report("reading", len(newcomers), len(newcomers))

        def anchor_texts(indices: np.ndarray) -> list[Normalised]:
            # Called from the worker thread: the query runs on the event loop.
            return asyncio.run_coroutine_threadsafe(
                _texts(session, anchor_ids[indices]), loop).result()

        placed = await asyncio.to_thread(near.place, anchors, newcomers, anchor_texts, report)
        del newcomers
        joined, created = await _write(session, draft_id, new_ids, placed, report)
        groups = await session.scalar(select(func.count()).select_from(CommentGroup).where(
            CommentGroup.draft_id == draft_id)) or 0
    suggestions, missing = await _suggest(sessionmaker, draft_id, report)
    return GroupingResult(len(new_ids), joined, created, groups, suggestions, missing)


async def _one_run_at_a_time(session: AsyncSession, draft_id: int) -> None:
    """PostgreSQL: wait for another run on the draft to finish (two officials, or a server
    and the command line), so that this one finds its groups and adds only what is still
    new; a transaction-scoped advisory lock per draft, which comments do not wait for.

    SQLite has one writer at a time: of two runs that read the same snapshot, the second to
    write fails (its snapshot is stale, or the memberships exist), and group_draft runs it
    again. Not the write lock from the start: every resident's comment would wait for it.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(GROUPING_LOCK, draft_id)))


async def _texts(session: AsyncSession, ids: np.ndarray) -> list[Normalised]:
    wanted = ids.tolist()
    found = dict((await session.execute(
        select(Comment.id, Comment.text).where(Comment.id.in_(wanted)))).all())
    return [normalise(found[comment_id]) for comment_id in wanted]


async def _write(session: AsyncSession, draft_id: int, ids: np.ndarray, placed: near.Placement,
                 report: Progress) -> tuple[int, int]:
    """Store the placement: new groups for the new clusters, then every new membership."""
    new_clusters: dict[int, int] = {}  # cluster (an index among the new) -> first comment id
    for index, (group, cluster) in enumerate(zip(placed.groups.tolist(),
                                                 placed.clusters.tolist(), strict=True)):
        if group == near.NO_GROUP:
            new_clusters.setdefault(cluster, int(ids[index]))
    clusters = list(new_clusters)
    group_of_cluster: dict[int, int] = {}
    now = utcnow()
    for start in range(0, len(clusters), WRITTEN_AT_ONCE):
        chunk = clusters[start:start + WRITTEN_AT_ONCE]
        made = await session.scalars(
            insert(CommentGroup).returning(CommentGroup.id, sort_by_parameter_order=True),
            [{"draft_id": draft_id, "label": "", "named_by_hand": False,
              "representative_id": new_clusters[cluster], "created_at": now}
             for cluster in chunk])
        group_of_cluster.update(zip(chunk, made.all(), strict=True))
    rows = []
    for index, (group, cluster) in enumerate(zip(placed.groups.tolist(),
                                                 placed.clusters.tolist(), strict=True)):
        rows.append({
            "comment_id": int(ids[index]), "draft_id": draft_id, "manual": False,
            "group_id": group if group != near.NO_GROUP else group_of_cluster[cluster],
            "key_hash": int(placed.hashes[index]), "band_keys": to_bytes(placed.bands[index]),
            "joined_at": now,
        })
        if len(rows) == WRITTEN_AT_ONCE or index == len(ids) - 1:
            await session.execute(insert(GroupMembership), rows)
            report("writing", index + 1, len(ids))
            rows = []
    return int((placed.groups != near.NO_GROUP).sum()), len(clusters)


async def _suggest(sessionmaker: async_sessionmaker[AsyncSession], draft_id: int,
                   report: Progress) -> tuple[int | None, str]:
    """Replace the draft's suggestions; (None, the missing module) without the extra."""
    missing = similar.available()
    if missing is not None:
        return None, missing
    async with sessionmaker() as session, session.begin():
        size = func.count(GroupMembership.comment_id).label("size")
        largest = (await session.execute(
            select(CommentGroup.id, Comment.text, size)
            .join(GroupMembership, GroupMembership.group_id == CommentGroup.id)
            .join(Comment, Comment.id == CommentGroup.representative_id)
            .where(CommentGroup.draft_id == draft_id)
            .group_by(CommentGroup.id, Comment.text)
            .order_by(size.desc(), CommentGroup.id).limit(similar.MOST_GROUPS))).all()
        found = await asyncio.to_thread(
            similar.suggest, [similar.GroupText(*row) for row in largest])
        await session.execute(delete(GroupSuggestion).where(GroupSuggestion.draft_id == draft_id))
        session.add_all(GroupSuggestion(
            draft_id=draft_id, label=suggestion.label[:300],
            terms=", ".join(suggestion.terms)[:300],
            group_ids=" ".join(str(group_id) for group_id in suggestion.group_ids))
            for suggestion in found)
        report("suggestions", len(found), len(found))
    return len(found), ""
