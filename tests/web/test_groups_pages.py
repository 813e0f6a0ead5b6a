"""The comment groups pages over HTTP: grouping in the background with its progress, the list
within the official's communes, and the corrections (rename, split, move, merge) with their
audit rows; every refusal (staff, another commune's draft, another draft's group, forged and
Unicode numbers, no CSRF token) changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.web.groups import job_of
from storage.models import AuditEntry, GroupMembership
from storage.roles import Role
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.grouping_data import LABELLED, add_comments
from tests.web.workspace import workspace


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened


async def _grouped(sessionmaker, draft_id) -> dict[int, int]:
    async with sessionmaker() as session:
        return dict((await session.execute(
            select(GroupMembership.comment_id, GroupMembership.group_id)
            .where(GroupMembership.draft_id == draft_id))).all())


async def _grouped_on_the_web(place, visitor, draft_id) -> None:
    started = await visitor.post(f"/drafts/{draft_id}/groups/compute")
    assert started.status == 303 and started.location.endswith("?done=started")
    job = job_of(place.sessionmaker, draft_id)
    assert job is not None and job.task is not None
    await job.task  # the background job, awaited rather than waited for


async def test_an_official_groups_and_corrects(place, sessionmaker):
    draft = await make_draft(sessionmaker, "Giờ thu gom rác", communes=(CAM_TU, BA_DINH))
    ids = await add_comments(sessionmaker, draft, [text for _point, text in LABELLED])
    admin = await place.sign_in("lead", Role.OFFICIAL, "all")
    page = await admin.get(f"/drafts/{draft.id}/groups")
    assert page.status == 200 and "15 ý kiến chưa được nhóm" in page.text
    await _grouped_on_the_web(place, admin, draft.id)
    page = await admin.get(f"/drafts/{draft.id}/groups")
    assert "8 nhóm" in page.text and "0 ý kiến chưa được nhóm" in page.text
    assert "Đang nhóm" not in page.text
    grouped = await _grouped(sessionmaker, draft.id)
    morning, road = grouped[ids[0]], grouped[ids[10]]
    assert page.text.index(f'id="group-{morning}"') < page.text.index(f'id="group-{road}"')
    assert "Phường Ba Đình, Xã Cẩm Tú" in page.text

    # a commune official sees their commune's comments only, and may not correct
    local = await place.sign_in("cam-tu", Role.OFFICIAL, f"commune:{CAM_TU}")
    theirs = await local.get(f"/drafts/{draft.id}/groups/{morning}")
    assert theirs.status == 200 and "Phường Ba Đình" not in theirs.text
    assert theirs.text.count('class="card comment"') == 3 and 'name="comment"' not in theirs.text
    refused = await local.post(f"/drafts/{draft.id}/groups/{morning}/rename", {"name": "x"})
    assert refused.status == 403

    renamed = await admin.post(f"/drafts/{draft.id}/groups/{road}/rename",
                               {"name": "Sửa đường làng"})
    assert renamed.status == 303
    moved = await admin.post(f"/drafts/{draft.id}/groups/{road}/move",
                             {"comment": "11", "to": str(morning)})
    assert moved.status == 303 and moved.location.endswith(f"/groups/{morning}?done=moved")
    split = await admin.post(f"/drafts/{draft.id}/groups/{morning}/split",
                             [("comment", "1"), ("comment", "11")])
    assert split.status == 303
    new = (await _grouped(sessionmaker, draft.id))[ids[0]]
    merged = await admin.post(f"/drafts/{draft.id}/groups/merge",
                              [("into", str(road)), ("group", str(new)), ("group", str(road))])
    assert merged.status == 303
    after = await _grouped(sessionmaker, draft.id)
    assert after[ids[0]] == after[ids[10]] == after[ids[11]] == road
    assert after[ids[1]] == morning
    page = await admin.get(f"/drafts/{draft.id}/groups/{road}")
    assert "Sửa đường làng" in page.text and "đặt bằng tay" in page.text
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.via == "web")
                                      .order_by(AuditEntry.id))).all()
    assert [row.action for row in rows if row.draft_id == draft.id] == [
        "groups_computed", "group_renamed", "comment_moved", "group_split", "groups_merged"]


async def test_refusals_change_nothing(place, sessionmaker):
    draft = await make_draft(sessionmaker, "Giờ thu gom rác", communes=(CAM_TU,))
    elsewhere = await make_draft(sessionmaker, "Ba Đình", communes=(BA_DINH,))
    ids = await add_comments(sessionmaker, draft, ["Nên thu gom rác", "Đường làng hỏng"],
                             communes=(CAM_TU,))
    await add_comments(sessionmaker, elsewhere, ["Chợ"], communes=(BA_DINH,))
    lead = await place.sign_in("lead", Role.OFFICIAL, "all")
    await _grouped_on_the_web(place, lead, draft.id)
    await _grouped_on_the_web(place, lead, elsewhere.id)
    official = await place.sign_in("cam-tu", Role.OFFICIAL, f"commune:{CAM_TU}")
    staff = await place.sign_in("staff", Role.STAFF, f"commune:{CAM_TU}")
    before = await _grouped(sessionmaker, draft.id)
    one, two = before[ids[0]], before[ids[1]]
    theirs = next(iter((await _grouped(sessionmaker, elsewhere.id)).values()))
    base = f"/drafts/{draft.id}/groups"
    for who, path, data, status in [
        (staff, f"{base}/{one}/rename", {"name": "x"}, 403),
        (staff, f"{base}/compute", {}, 403),
        (official, f"/drafts/{elsewhere.id}/groups/{theirs}/rename", {"name": "x"}, 404),
        (official, f"{base}/{theirs}/rename", {"name": "x"}, 400),
        (official, f"{base}/{one}/rename", {"name": "\u200b \u3000"}, 400),
        (official, f"{base}/{one}/move", {"comment": "2", "to": str(one)}, 400),
        (official, f"{base}/{one}/move", {"comment": "١", "to": str(two)}, 400),
        (official, f"{base}/{one}/move", {"comment": "1", "to": str(theirs)}, 400),
        (official, f"{base}/{one}/move", {"comment": "1", "to": "99999999999"}, 400),
        (official, f"{base}/{one}/split", [("comment", "1")], 400),
        (official, f"{base}/{one}/split", [], 400),
        (official, f"{base}/merge", [("into", str(one)), ("group", str(theirs))], 400),
        (official, f"{base}/merge", [("into", str(one))], 400),
        (official, f"{base}/{2**31}/rename", {"name": "x"}, 404),
    ]:
        page = await who.post(path, data)
        assert page.status == status, (path, data, page.text)
    assert (await official.post(f"{base}/{one}/rename", {"name": "x"}, csrf=False)).status == 403
    assert (await official.get(f"/drafts/{elsewhere.id}/groups")).status == 404
    assert (await official.get(f"{base}/{theirs}")).status == 404
    assert "nhóm số" in (await official.post(f"{base}/{theirs}/rename", {"name": "x"})).text
    assert await _grouped(sessionmaker, draft.id) == before
    async with sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("group%")))).all()
    assert actions == ["groups_computed", "groups_computed"]
