"""A draft's reminders page in the workspace: the state and the counts, the switch for who may
steer the draft (audited), refused to staff and to another commune's official."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import AuditEntry, Draft
from storage.roles import Role
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.web.test_answers_pages import in_english, place  # noqa: F401 (a fixture)


async def reminders_on(sessionmaker, draft_id: int) -> bool:
    async with sessionmaker() as session:
        return bool(await session.scalar(select(Draft.reminders).where(Draft.id == draft_id)))


async def test_the_reminders_switch(sessionmaker, place):  # noqa: F811 (imported above)
    mine = await make_draft(sessionmaker, "Lịch họp thôn", (CAM_TU,))
    theirs = await make_draft(sessionmaker, "Chợ đêm", (BA_DINH,))
    official = await in_english(place.sign_in("cb"))
    page = await official.get(f"/drafts/{mine.id}/reminders")
    assert page.status == 200 and "Reminders are on." in page.text
    assert "2 days before the deadline" in page.text
    staff = await in_english(place.sign_in("st", Role.STAFF, "commune:15148"))
    assert 'value="off"' not in (await staff.get(f"/drafts/{mine.id}/reminders")).text
    assert (await staff.post(f"/drafts/{mine.id}/reminders", {"reminders": "off"})).status == 403
    assert (await official.get(f"/drafts/{theirs.id}/reminders")).status == 404
    assert (await official.post(f"/drafts/{theirs.id}/reminders",
                                {"reminders": "off"})).status == 404
    assert (await official.post(f"/drafts/{mine.id}/reminders", {"reminders": "off"},
                                csrf=False)).status == 403
    assert await reminders_on(sessionmaker, mine.id) and await reminders_on(sessionmaker,
                                                                            theirs.id)
    done = await official.post(f"/drafts/{mine.id}/reminders", {"reminders": "off"})
    assert done.status == 303
    assert "Reminders are off." in (await official.get(f"/drafts/{mine.id}/reminders")).text
    assert not await reminders_on(sessionmaker, mine.id)
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "reminders"))).all()
    assert [(row.draft_id, row.detail, row.via) for row in rows] == [(mine.id, "off", "web")]
