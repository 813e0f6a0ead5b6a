"""The resident flow through the console channel, driven through its standard input."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from storage.export import export_csv
from storage.models import Comment, Delivery, DeliveryStatus, Resident, Vote
from tests.conftest import add_draft


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_subscribe_receive_comment_vote_and_export(sessionmaker, console):
    resident = console("lan")
    # Start, agree (button 1), search the commune without accents, pick the first result.
    out = await resident.say("/start", "1", "cam tu", "1")
    assert "Xã Cẩm Tú — Tỉnh Thanh Hóa" in out
    async with sessionmaker() as session:
        stored = await session.scalar(select(Resident))
    assert stored.commune_code == 15148 and stored.consent_version and stored.consent_at

    draft = await add_draft(sessionmaker)
    # The next console session first delivers the broadcast, then reads the lines:
    # 1 = Comment, then the comment; the poll buttons are 2..4 on the draft message.
    out = await resident.say("1", "Nên thu gom rác lúc 18:00 thay vì 17:00.")
    assert draft.title in out and "Đồng ý" in out
    assert "1" in out.split(draft.title)[-1]
    out = await resident.say("/drafts")
    assert draft.title in out
    out = await resident.say("/drafts", "3")  # vote "Không đồng ý" on the draft just shown
    out = await resident.say("/drafts", "2")  # change to "Đồng ý"

    async with sessionmaker() as session:
        comments = (await session.scalars(select(Comment))).all()
        votes = (await session.scalars(select(Vote))).all()
        delivery = await session.scalar(select(Delivery))
    assert [c.text for c in comments] == ["Nên thu gom rác lúc 18:00 thay vì 17:00."]
    assert len(votes) == 1
    assert delivery.status == DeliveryStatus.SENT

    async with sessionmaker() as session:
        buffer = io.StringIO()
        rows = await export_csv(session, buffer, draft.id, key=b"k", translate=str)
    table = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == 2
    assert table[1][2] == "comment" and table[1][8] == comments[0].text
    assert table[2][2] == "vote" and table[2][9] == "Đồng ý"
    assert table[1][3] == "15148" and table[1][4] == "Xã Cẩm Tú"
    assert table[1][6] == table[2][6] and "lan" not in table[1][6]
    assert table[1][7].endswith("+07:00")


async def test_nothing_is_stored_before_consent(sessionmaker, console):
    visitor = console("guest")
    out = await visitor.say("/start", "hello", "3", "2")  # text, English, then "No, thanks"
    assert "Nothing is stored until you agree." in out
    assert "nothing was stored" in out
    assert await count(sessionmaker, Resident) == 0


async def test_english_switch_before_consent_is_remembered_at_consent(sessionmaker, console):
    visitor = console("en-user")
    out = await visitor.say("/start", "3", "1", "ba dinh")
    assert "Privacy notice" in out and "Choose your commune" in out
    assert "Phường Ba Đình — Thành phố Hà Nội" in out
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).language == "en"


async def test_old_commune_name_leads_to_new_commune(sessionmaker, console):
    out = await console("old").say("/start", "3", "1", "cam luong")
    assert "Xã Cẩm Tú — Tỉnh Thanh Hóa (includes former Xã Cẩm Lương)" in out


async def test_stop_and_start_words_at_any_step(sessionmaker, console):
    resident = console("stopper")
    await resident.say("/start", "3", "1", "cam tu", "1")
    await add_draft(sessionmaker)
    # Tap Comment, then type DỪNG instead of a comment: unsubscribed at once.
    out = await resident.say("1", "DỪNG")
    assert "Stopped" in out
    async with sessionmaker() as session:
        stored = await session.scalar(select(Resident))
        assert not stored.subscribed and stored.awaiting == ""
    out = await resident.say("hello")
    assert "START" in out
    out = await resident.say("bat dau")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).subscribed
    assert await count(sessionmaker, Comment) == 0


async def test_a_button_can_be_typed_by_its_label_without_accents(sessionmaker, console):
    out = await console("typist").say("/start", "english", "i agree", "phuong ba dinh")
    assert "Privacy notice" in out and "Phường Ba Đình — Thành phố Hà Nội" in out
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).language == "en"
