"""Grouping comments (storage.grouping, storage.groups) on the real databases: exact and
near-duplicates on a labelled set, incremental runs, hand corrections kept across a
regrouping, the interface the answering page and the synthesis call, and the refusals."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import func, select

from storage import groups
from storage.answers import synthesis_of
from storage.grouping import near
from storage.grouping.job import group_draft
from storage.grouping.normalise import normalise
from storage.grouping.signatures import BANDS, band_keys, from_bytes, to_bytes
from storage.groups import GroupError, GroupProblem
from storage.models import CommentGroup, GroupMembership
from tests.chat import BA_DINH, CAM_TU
from tests.conftest import add_draft
from tests.grouping_data import LABELLED, add_comments, numbers_of, points_of


def placed(texts: list[str]) -> list[int]:
    found = near.place(near.Anchors.none(), [normalise(text) for text in texts], lambda i: [])
    assert (found.groups == near.NO_GROUP).all()
    return found.clusters.tolist()


def test_normalising_folds_diacritics_case_punctuation_spacing_and_order():
    one, two = normalise("Nên thu gom  RÁC, buổi sáng!"), normalise("buoi sang nen thu gom rac")
    assert one.key == two.key == "buoi gom nen rac sang thu"
    assert normalise("Đường đi\u200b").key == "di duong"  # đ, and an invisible character
    assert normalise("không nên").guard == ("khong",) and normalise("phí 10k").guard == ("10k",)
    assert normalise("").key == "" and normalise("!!!").key == ""


def test_band_keys_are_stable_and_round_trip():
    keys = band_keys(["thu gom rac", "", "x", "thu gom rac"])
    assert keys.shape == (4, BANDS) and keys.dtype == np.uint64
    assert (keys[0] == keys[3]).all() and not (keys[0] == keys[1]).all()
    assert (from_bytes([to_bytes(row) for row in keys]) == keys).all()
    assert from_bytes([]).shape == (0, BANDS)


def test_the_labelled_set_groups_each_point_and_never_two():
    clusters = placed([text for _point, text in LABELLED])
    by_group = points_of(clusters)
    assert all(len(points) == 1 for points in by_group.values()), by_group
    # every point is one group: duplicates with and without diacritics, reordered, typos
    assert len(by_group) == len({point for point, _text in LABELLED})


@pytest.mark.parametrize(("first", "second"), [
    ("Nên thu gom rác vào buổi sáng", "Không nên thu gom rác vào buổi sáng"),
    ("Phí 10 nghìn", "Phí 20 nghìn"),
    ("Nên thu gom rác vào buổi sáng", "Nên thu gom rác vào buổi tối"),
    ("Nên thu gom rác vào buổi sáng", "Nên thu gom rác vào buổi sáng sớm ở chợ"),
])
def test_two_different_points_are_never_merged(first, second):
    assert not near.same_point(normalise(first), normalise(second))
    one, two = placed([first, second])
    assert one != two


async def _grouped(sessionmaker, draft_id):
    async with sessionmaker() as session:
        rows = (await session.execute(select(GroupMembership.comment_id, GroupMembership.group_id)
                                      .where(GroupMembership.draft_id == draft_id))).all()
    return dict(rows)


async def test_every_comment_is_in_exactly_one_group(sessionmaker):
    draft = await add_draft(sessionmaker)
    ids = await add_comments(sessionmaker, draft, [text for _point, text in LABELLED])
    done = await group_draft(sessionmaker, draft.id)
    assert (done.grouped, done.joined) == (len(ids), 0)
    grouped = await _grouped(sessionmaker, draft.id)
    assert sorted(grouped) == sorted(ids)
    assert all(len(points) == 1 for points in points_of([grouped[i] for i in ids]).values())
    assert done.groups == done.new_groups == len({point for point, _text in LABELLED})
    again = await group_draft(sessionmaker, draft.id)  # nothing new: nothing moves
    assert (again.grouped, again.new_groups) == (0, 0)
    assert await _grouped(sessionmaker, draft.id) == grouped


async def test_two_runs_at_once_group_each_comment_once(sessionmaker):
    """Two officials (or a server and the command line) start grouping one draft together:
    both finish, each comment in one group, as one run would have grouped them."""
    draft = await add_draft(sessionmaker)
    ids = await add_comments(sessionmaker, draft, [text for _point, text in LABELLED])
    first, second = await asyncio.gather(group_draft(sessionmaker, draft.id),
                                         group_draft(sessionmaker, draft.id))
    assert first.grouped + second.grouped == len(ids)
    grouped = await _grouped(sessionmaker, draft.id)
    assert sorted(grouped) == sorted(ids)
    assert all(len(points) == 1 for points in points_of([grouped[i] for i in ids]).values())
    assert second.groups == first.groups == len({point for point, _text in LABELLED})


async def test_new_comments_join_existing_groups(sessionmaker):
    draft = await add_draft(sessionmaker)
    first = await add_comments(sessionmaker, draft, ["Nên thu gom rác vào buổi sáng",
                                                      "Đường làng cần sửa gấp"])
    await group_draft(sessionmaker, draft.id)
    later = await add_comments(sessionmaker, draft, ["buoi sang nen thu gom rac nhe",
                                                      "duong lang can sua gap",
                                                      "Cần thêm thùng rác ở chợ"])
    messages = []
    done = await group_draft(sessionmaker, draft.id,
                             progress=lambda stage, n, total: messages.append(stage))
    assert (done.grouped, done.joined, done.new_groups) == (3, 2, 1)
    grouped = await _grouped(sessionmaker, draft.id)
    assert grouped[later[0]] == grouped[first[0]] and grouped[later[1]] == grouped[first[1]]
    assert grouped[later[2]] not in (grouped[first[0]], grouped[first[1]])
    assert "fingerprints" in messages and "writing" in messages


async def test_hand_corrections_survive_regrouping(sessionmaker):
    draft = await add_draft(sessionmaker)
    ids = await add_comments(sessionmaker, draft, [
        "Nên thu gom rác vào buổi sáng", "nen thu gom rac buoi sang", "Buổi sáng nên thu gom rác",
        "Chợ xã nên mở cửa sớm hơn", "Cần lắp thêm đèn đường ở thôn 3"])
    await group_draft(sessionmaker, draft.id)
    grouped = await _grouped(sessionmaker, draft.id)
    async with sessionmaker() as session, session.begin():
        morning, market, lights = grouped[ids[0]], grouped[ids[3]], grouped[ids[4]]
        numbers = await numbers_of(session, ids)
        # an official splits the third comment off, moves the market one in, names the group
        split_off = await groups.split(session, draft.id, morning, [numbers[2]])
        await groups.move(session, draft.id, numbers[3], morning)
        await groups.rename(session, draft.id, morning, "  Thu gom rác   buổi sáng ")
    assert await _grouped(sessionmaker, draft.id) != grouped
    corrected = await _grouped(sessionmaker, draft.id)
    for rebuild in (False, True):
        await add_comments(sessionmaker, draft, ["Nên thu gom rác vào buổi sáng!"])
        await group_draft(sessionmaker, draft.id, rebuild=rebuild)
        now = await _grouped(sessionmaker, draft.id)
        # the corrected groups keep their members; the untouched comment stays alone
        assert {i: now[i] for i in ids[:4]} == {i: corrected[i] for i in ids[:4]}, rebuild
        assert [now[i] for i in now].count(now[ids[4]]) == 1
    assert corrected[ids[2]] == split_off.id and corrected[ids[3]] == morning
    assert corrected[ids[4]] == lights
    async with sessionmaker() as session:
        assert await session.get(CommentGroup, market) is None  # left empty, so it went
        named = await session.get(CommentGroup, morning)
        assert named is not None and named.label == "Thu gom rác buổi sáng"
        assert (await groups.group_ref(session, named)).label == "Thu gom rác buổi sáng"
        assert len(await groups.group_members(session, morning)) == 5  # with both newcomers


async def test_the_interface_for_answers_and_the_synthesis(sessionmaker):
    draft = await add_draft(sessionmaker)
    texts = [text for _point, text in LABELLED]
    ids = await add_comments(sessionmaker, draft, texts)
    await group_draft(sessionmaker, draft.id)
    late = await add_comments(sessionmaker, draft, ["Một ý kiến đến sau khi nhóm"])
    async with sessionmaker() as session:
        listed = await groups.groups_of_draft(session, draft.id)
        assert [summary.size for summary in listed] == sorted(
            (summary.size for summary in listed), reverse=True)
        assert listed[0].size == 5 and listed[0].label == "Nên thu gom rác vào buổi sáng!"
        assert set(listed[0].communes) == {CAM_TU, BA_DINH} and len(listed[0].sample) == 3
        # an answer to a group reaches each member once, and no one else
        reached = [comment for summary in listed
                   for comment in await groups.answer_recipients(session, summary.id)]
        assert sorted(reached) == sorted(ids) and len(set(reached)) == len(reached)
        of_comments = await groups.group_of_comments(session, draft.id)
        assert set(of_comments) == set(ids)
        assert of_comments[ids[0]] == groups.GroupRef(listed[0].id, listed[0].label)
        # the synthesis: one row per group, then the comment not grouped yet, each counted
        rows = await synthesis_of(session, draft.id)
        assert len(rows) == len(listed) + 1 == await groups.count_groups(session, draft.id) + 1
        assert sum(row.count for row in rows) == len(ids) + len(late)
        assert rows[-1].group is None and rows[-1].text == "Một ý kiến đến sau khi nhóm"
        assert await groups.ungrouped_count(session, draft.id) == 1
        # within one commune: counted there only
        mine = await synthesis_of(session, draft.id, {BA_DINH})
        assert sum(row.count for row in mine) == len(ids[1::2])


async def test_corrections_refuse_what_is_not_theirs(sessionmaker):
    draft = await add_draft(sessionmaker)
    other = await add_draft(sessionmaker, send=False)
    ids = await add_comments(sessionmaker, draft, ["Nên thu gom rác", "Đường làng hỏng"])
    await add_comments(sessionmaker, other, ["Chợ xã", "Đèn đường"])
    await group_draft(sessionmaker, draft.id)
    await group_draft(sessionmaker, other.id)
    grouped = await _grouped(sessionmaker, draft.id)
    theirs = next(iter((await _grouped(sessionmaker, other.id)).values()))
    one, two = grouped[ids[0]], grouped[ids[1]]

    async def refused(problem, attempt):
        async with sessionmaker() as session, session.begin():
            with pytest.raises(GroupError) as error:
                await attempt(session)
            assert error.value.problem is problem

    await refused(GroupProblem.NO_GROUP, lambda s: groups.rename(s, draft.id, theirs, "x"))
    await refused(GroupProblem.NO_GROUP, lambda s: groups.merge(s, draft.id, one, [theirs]))
    await refused(GroupProblem.NO_GROUP, lambda s: groups.move(s, draft.id, 1, 2**31 - 1))
    await refused(GroupProblem.NO_COMMENT, lambda s: groups.move(s, draft.id, 99, two))
    await refused(GroupProblem.SAME_GROUP, lambda s: groups.move(s, draft.id, 1, one))
    await refused(GroupProblem.SAME_GROUP, lambda s: groups.merge(s, draft.id, one, [one]))
    await refused(GroupProblem.SAME_GROUP, lambda s: groups.merge(s, draft.id, one, []))
    await refused(GroupProblem.WHOLE_GROUP, lambda s: groups.split(s, draft.id, one, [1]))
    await refused(GroupProblem.WHOLE_GROUP, lambda s: groups.split(s, draft.id, one, []))
    await refused(GroupProblem.NO_COMMENT, lambda s: groups.split(s, draft.id, one, [2]))
    await refused(GroupProblem.EMPTY_NAME, lambda s: groups.rename(s, draft.id, one, " \u3000 "))
    assert await _grouped(sessionmaker, draft.id) == grouped  # nothing changed
    async with sessionmaker() as session, session.begin():
        assert await groups.merge(session, draft.id, one, [two, two]) == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CommentGroup).where(
            CommentGroup.draft_id == draft.id)) == 1
