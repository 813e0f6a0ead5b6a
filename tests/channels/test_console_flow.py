"""The resident flow through the console channel, driven through its standard input."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from handlers.i18n import translator
from storage.export import export_csv
from storage.models import Comment, Delivery, DeliveryStatus, PollOption, Resident, Vote
from tests.channels.test_console_numbers import buttons_printed
from tests.conftest import add_draft

EN = translator("en")
VI = translator("vi")
# The buttons of the English greeting, once the visitor switched language.
ENGLISH_GREETING = [(1, "I agree"), (2, "No, thanks"), (3, "Tiếng Việt")]


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def voted(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return list(await session.scalars(
            select(PollOption.label).join(Vote, Vote.option_id == PollOption.id)
        ))


def draft_buttons(t, first: int = 1) -> list[tuple[int, str]]:
    """The example draft's buttons as the console numbers them, from `first` on."""
    labels = ["💬 " + t("Comment"), "🗳 Đồng ý", "🗳 Không đồng ý", "🗳 Ý kiến khác"]
    return list(enumerate(labels, start=first))


async def test_subscribe_receive_comment_vote_and_export(sessionmaker, console):
    resident = console("lan")
    # Start, agree (button 1), search the commune without accents, pick the first result.
    out = await resident.say("/start", "1", "cam tu", "1")
    assert (1, "Xã Cẩm Tú — Tỉnh Thanh Hóa") in buttons_printed(out)
    async with sessionmaker() as session:
        stored = await session.scalar(select(Resident))
    assert stored.commune_code == 15148 and stored.consent_version and stored.consent_at

    draft = await add_draft(sessionmaker)
    # The next console session first delivers the broadcast, then reads the lines:
    # 1 = Comment, then the comment; the poll buttons are 2..4 on the draft message.
    out = await resident.say("1", "Nên thu gom rác lúc 18:00 thay vì 17:00.")
    assert out.startswith(f"📢 {draft.title}\n")
    assert buttons_printed(out)[:4] == draft_buttons(VI)
    # /drafts: a header without buttons, then the draft numbered from 1.
    assert buttons_printed(await resident.say("/drafts")) == draft_buttons(VI)
    await resident.say("/drafts", "3")  # vote "Không đồng ý" on the draft just shown
    assert await voted(sessionmaker) == ["Không đồng ý"]
    await resident.say("/drafts", "2")  # change to "Đồng ý"
    assert await voted(sessionmaker) == ["Đồng ý"]

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
    # Columns by their (untranslated) header, so added columns do not matter here.
    comment, vote = csv.DictReader(io.StringIO(buffer.getvalue()))
    assert rows == 2
    assert comment["Kind"] == "comment" and comment["Comment"] == comments[0].text
    assert vote["Kind"] == "vote" and vote["Vote"] == "Đồng ý"
    assert comment["Commune code"] == "15148" and comment["Commune"] == "Xã Cẩm Tú"
    assert comment["Resident"] == vote["Resident"] and "lan" not in comment["Resident"]
    assert comment["Time"].endswith("+07:00")


async def test_nothing_is_stored_before_consent(sessionmaker, console):
    visitor = console("guest")
    out = await visitor.say("/start", "hello", "3", "2")  # text, English, then "No, thanks"
    assert buttons_printed(out)[-3:] == ENGLISH_GREETING
    assert out.endswith(
        EN("Understood: nothing was stored. Type /start if you change your mind.") + "\n\n"
    )
    assert await count(sessionmaker, Resident) == 0


async def test_english_switch_before_consent_is_remembered_at_consent(sessionmaker, console):
    visitor = console("en-user")
    out = await visitor.say("/start", "3", "1", "ba dinh")
    shown = buttons_printed(out)
    assert shown[3:6] == ENGLISH_GREETING  # after the Vietnamese greeting's three
    assert shown[6] == (1, "Phường Ba Đình — Thành phố Hà Nội")  # the search, in its own turn
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).language == "en"


async def test_old_commune_name_leads_to_new_commune(sessionmaker, console):
    out = await console("old").say("/start", "3", "1", "cam luong")
    assert buttons_printed(out)[6:] == [
        (1, "Xã Cẩm Tú — Tỉnh Thanh Hóa (includes former Xã Cẩm Lương)")
    ]


async def test_stop_and_start_words_typed_as_text(sessionmaker, console):
    resident = console("stopper")
    await resident.say("/start", "3", "1", "cam tu", "1")
    draft = await add_draft(sessionmaker)
    # The draft arrives; DỪNG typed instead of pressing one of its buttons: unsubscribed.
    out = await resident.say("DỪNG")
    assert out.startswith(f"📢 {draft.title}\n")
    stopped = EN(
        "Stopped: you will receive no more drafts. Your comments are kept. "
        "Type START or BẮT ĐẦU to subscribe again, or /delete to delete your data."
    )
    buttons = f"1. {EN('Subscribe again')}   2. {EN('Delete my data')}"
    assert out.endswith(f"{stopped}\n\n{buttons}\n\n")
    async with sessionmaker() as session:
        assert not (await session.scalar(select(Resident))).subscribed
    out = await resident.say("hello")
    assert out == EN(
        "You have stopped receiving drafts. Type START or BẮT ĐẦU to subscribe again."
    ) + "\n\n"
    await resident.say("bat dau")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).subscribed
    assert await count(sessionmaker, Comment) == 0


async def test_a_button_can_be_typed_by_its_label_without_accents(sessionmaker, console):
    out = await console("typist").say("/start", "english", "i agree", "phuong ba dinh")
    shown = buttons_printed(out)
    assert shown[3:6] == ENGLISH_GREETING
    assert shown[6] == (1, "Phường Ba Đình — Thành phố Hà Nội")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).language == "en"


async def test_a_misspelt_commune_or_a_province_typed_for_it_is_answered(sessionmaker, console):
    resident = console("lan")
    await resident.say("/start", "3", "1")  # English, then agree: the commune is asked
    # A province: said so, with an example, and no list to pick a wrong commune from.
    out = await resident.say("ha noi")
    assert "“ha noi” is a province or city (Thành phố Hà Nội)" in out
    assert "for example: Phuong Ba Dinh." in out and buttons_printed(out) == []
    # A name that is also a province's: its communes, and the hint below them.
    out = await resident.say("thanh hoa")
    assert "Choose your commune:" in out and "(Tỉnh Thanh Hóa). Type the name" in out
    # A slip: the closest names offered, and the one chosen subscribes.
    out = await resident.say("cam tuu")
    assert "I found no commune called “cam tuu”. Did you mean one of these?" in out
    assert buttons_printed(out)[0] == (1, "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    await resident.say("cam tuu", "1")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).commune_code == 15148
    # Nothing near: asked to check the spelling, as before.
    out = await console("minh").say("/start", "3", "1", "xyzzy qwerty")
    assert "I found no commune called “xyzzy qwerty”. Check the spelling" in out
