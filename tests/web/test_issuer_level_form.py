"""The level of a draft's issuing body on the workspace's draft form: chosen from a list,
stored, shown on the draft's page and kept when the draft is changed; a forged value is
refused beside its field, as the draft file's check says it."""

from __future__ import annotations

import re

import pytest

from storage.models import Draft
from tests.chat import CAM_TU
from tests.web.test_workspace_pages import FUTURE
from tests.web.workspace import workspace


@pytest.fixture
async def place(sessionmaker, database_url):
    async with workspace(sessionmaker, database_url) as opened:
        yield opened


def form(**fields: str) -> list[tuple[str, str]]:
    base = {"title": "Quy định giờ thu gom rác", "issuer": "UBND tỉnh Thanh Hóa",
            "summary": "Thu gom rác từ 17:00 đến 19:00.", "link": "", "opens_at": "",
            "deadline": FUTURE, "question": "", "commune": str(CAM_TU), "action": "save",
            **fields}
    return list(base.items())


async def test_the_level_is_chosen_stored_and_shown(place):
    official = await place.sign_in("cb")
    page = await official.get("/drafts/new")
    assert re.findall(r'<option value="([a-z]*)"', page.text)[:4] == [
        "national", "provincial", "commune", ""]
    saved = await official.post("/drafts/new", form(issuer_level="provincial"))
    assert saved.status == 303, saved.text
    draft_id = int(re.search(r"/drafts/(\d+)\?done=created", saved.location).group(1))
    async with place.sessionmaker() as session:
        assert (await session.get(Draft, draft_id)).issuer_level == "provincial"
    shown = await official.get(f"/drafts/{draft_id}")
    assert "Cấp cơ quan ban hành" in shown.text and "<dd>tỉnh</dd>" in shown.text
    edit = await official.get(f"/drafts/{draft_id}/edit")
    assert '<option value="provincial" selected>' in edit.text
    changed = await official.post(f"/drafts/{draft_id}/edit", form(issuer_level=""))
    assert changed.status == 303
    async with place.sessionmaker() as session:
        assert (await session.get(Draft, draft_id)).issuer_level == ""
    assert "<dd>chưa ghi cấp</dd>" in (await official.get(f"/drafts/{draft_id}")).text


async def test_a_forged_level_is_refused_beside_its_field(place):
    official = await place.sign_in("cb")
    page = await official.post("/drafts/new", form(issuer_level="provincal"))
    assert page.status == 422
    assert re.search(r'id="problem-issuer_level">“provincal” không phải là một cấp', page.text)
