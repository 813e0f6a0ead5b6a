"""Whom a resident comments for (individual, organisation, business): asked once after the
person's first comment, optional, changeable with /category, shared by linked chats, shown
in /mydata, stated by the privacy notice, and recorded with each comment and vote as it is
written (read back through `ykien export`)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import select, update

from handlers.buttons import SayCategory, decode, encode
from handlers.events import Incoming, Kind
from handlers.onboarding import CONSENT_VERSION, notice_version
from handlers.turn import Periods
from storage.models import (
    Comment,
    CommentSource,
    ConsentEvent,
    Person,
    Resident,
    RespondentCategory,
    utcnow,
)
from tests.chat import (
    BA_DINH,
    CAM_TU,
    button_for,
    joined,
    labels,
    make_draft,
    press,
    scalar_count,
    subscribe,
    text,
)
from tests.cli.test_cli import ykien  # noqa: F401 (the fixture)

QUESTION = "One more question, optional"
CHOICES = ["Individual", "Organisation", "Business"]
INVALID_BUTTON = "That button is no longer valid. Here is the menu."


async def comment(service, user: str, draft_id: int, words: str = "My opinion",
                  channel: str | None = None) -> str:
    """Comment through the button; the answer's text and its buttons' labels."""
    first = press(user, f"comment:{draft_id}")
    then = text(user, words)
    if channel is not None:
        first = Incoming(channel, user, Kind.CHOICE, choice=f"comment:{draft_id}")
        then = Incoming(channel, user, Kind.TEXT, text=words)
    await service.handle(first)
    return joined(replies := await service.handle(then)) + "\n" + " ".join(labels(replies))


async def person_of(sessionmaker, user: str = "u1") -> Person:
    async with sessionmaker() as session:
        found = await session.scalar(
            select(Person).join(Resident, Resident.person_id == Person.id)
            .where(Resident.platform_id == user))
    assert found is not None
    return found


@pytest.fixture
async def draft(sessionmaker, service):
    await subscribe(service)
    return await make_draft(sessionmaker, title="Rubbish collection")


# ---- asked once --------------------------------------------------------------------------


async def test_the_first_comment_asks_once_and_a_choice_is_recorded(service, sessionmaker,
                                                                    draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    replies = await service.handle(text("u1", "Collect it at night"))
    assert "Received: your comment no." in replies[0].text
    assert QUESTION in replies[-1].text  # after the receipt, in the same turn
    assert labels(replies[-1:]) == [*CHOICES, "Skip"]
    assert (await person_of(sessionmaker)).category_asked_at is not None

    answer = joined(await service.handle(press("u1", button_for(replies, "Business"))))
    assert "Recorded: you comment as: Business." in answer
    assert "change it at any time with /category" in answer
    assert (await person_of(sessionmaker)).respondent_category == RespondentCategory.BUSINESS

    assert QUESTION not in await comment(service, "u1", draft.id, "And another thing")


async def test_a_question_skipped_or_ignored_is_never_asked_again(service, sessionmaker,
                                                                  draft):
    await subscribe(service, "u2")
    asked = await service.handle(press("u1", f"comment:{draft.id}"))
    asked = await service.handle(text("u1", "First"))
    answer = joined(await service.handle(press("u1", button_for(asked, "Skip"))))
    assert "Skipped: I will not ask again." in answer and "/category" in answer
    assert QUESTION not in await comment(service, "u1", draft.id, "Second")
    # pressed again, Skip still changes nothing
    assert "Skipped" in joined(await service.handle(press("u1", "category:skip")))
    person = await person_of(sessionmaker)
    assert person.respondent_category == "" and person.category_asked_at is not None

    # ignored: the next comment does not ask again either
    assert QUESTION in await comment(service, "u2", draft.id, "First")
    assert QUESTION not in await comment(service, "u2", draft.id, "Second")
    assert (await person_of(sessionmaker, "u2")).respondent_category == ""


async def test_a_vote_alone_does_not_ask(service, sessionmaker, draft):
    answer = joined(await service.handle(press("u1", f"vote:{draft.options[0].id}")))
    assert "Recorded your vote" in answer and QUESTION not in answer
    assert (await person_of(sessionmaker)).category_asked_at is None


# ---- changeable --------------------------------------------------------------------------


async def test_changed_and_cleared_from_the_menu(service, sessionmaker, draft):
    shown = await service.handle(text("u1", "/category"))
    assert "You comment as: not said. Choose to change it:" in joined(shown)
    assert labels(shown) == [*CHOICES, "I prefer not to say"]
    answer = joined(await service.handle(press("u1", button_for(shown, "Organisation"))))
    assert "Recorded: you comment as: Organisation." in answer
    # answering from the menu counts as asked: the first comment does not ask then
    assert QUESTION not in await comment(service, "u1", draft.id)

    shown = await service.handle(press("u1", "menu:category"))  # the same, as a button
    assert "You comment as: Organisation." in joined(shown)
    answer = joined(await service.handle(press("u1", button_for(shown, "not to say"))))
    assert "Removed: whom you comment for is no longer recorded." in answer
    assert (await person_of(sessionmaker)).respondent_category == ""
    answer = joined(await service.handle(press("u1", "category:none")))
    assert "Nothing is recorded about whom you comment for." in answer
    assert "/category – say whom you comment for" in joined(
        await service.handle(text("u1", "/help")))


async def test_the_command_needs_consent(service, sessionmaker):
    answer = joined(await service.handle(text("stranger", "/category")))
    assert "Xin chào!" in answer  # the greeting: nothing to show or change
    assert await scalar_count(sessionmaker, Person) == 0


# ---- old and forged buttons --------------------------------------------------------------


async def test_old_and_forged_buttons(service, sessionmaker, draft):
    await service.handle(press("u1", "category:individual"))
    again = joined(await service.handle(press("u1", "category:individual")))
    assert "Already recorded: you comment as: Individual." in again
    skipped = joined(await service.handle(press("u1", "category:skip")))
    assert "You have already said that you comment as: Individual." in skipped
    assert (await person_of(sessionmaker)).respondent_category == "individual"

    for forged in ("category:king", "category:", "category:Business", "category:business:1",
                   "category:ｂusiness", "category:" + "x" * 80):
        assert INVALID_BUTTON in joined(await service.handle(press("u1", forged))), forged
    assert (await person_of(sessionmaker)).respondent_category == "individual"

    await service.handle(text("u1", "/delete"))
    await service.handle(press("u1", "erase:yes"))
    after = joined(await service.handle(press("u1", "category:business")))
    assert "Nút này không còn hiệu lực: hiện không có dữ liệu nào về bạn" in after
    assert "Xin chào!" in after  # and the greeting
    assert await scalar_count(sessionmaker, Person) == 0


def test_button_data_round_trips():
    for data in (*(SayCategory(choice) for choice in RespondentCategory), SayCategory(None),
                 SayCategory(None, skip=True)):
        assert decode(encode(data)) == data
        assert len(encode(data).encode()) <= 64
    assert encode(SayCategory(None, skip=True)) == "category:skip"


# ---- linked chats ------------------------------------------------------------------------


async def test_linked_chats_share_it_and_a_link_keeps_what_was_said(service, sessionmaker,
                                                                    draft):
    import re

    telegram, zalo = ("telegram", "t1"), ("zalo", "z1")

    def say(who, body):
        return service.handle(Incoming(who[0], who[1], Kind.TEXT, text=body))

    def tap(who, choice):
        return service.handle(Incoming(who[0], who[1], Kind.CHOICE, choice=choice))

    for who, commune in ((telegram, CAM_TU), (zalo, BA_DINH)):
        await tap(who, "agree:en")
        await tap(who, f"commune:{commune}")
    # Zalo said it before the chats were linked; Telegram was never asked
    await tap(zalo, "category:business")
    shown = joined(await say(telegram, "/link"))
    code = re.search(r"code: ([A-Z0-9]{6})\n", shown)
    assert code, shown
    assert "Linked" in joined(await say(zalo, code.group(1)))
    assert await scalar_count(sessionmaker, Person) == 2  # u1, and the two linked chats
    assert "You comment as: Business." in joined(await say(telegram, "/category"))
    # asked (answered) once for the person: no question on either chat
    assert QUESTION not in await comment(service, "t1", draft.id, channel="telegram")

    await tap(telegram, "category:organisation")
    assert "You comment as: Organisation." in joined(await say(zalo, "/category"))


async def test_a_question_asked_in_one_chat_is_not_asked_in_the_linked_one(service,
                                                                          sessionmaker, draft):
    import re

    shown = joined(await service.handle(text("u1", "/link")))
    await subscribe(service, "u2")
    assert QUESTION in await comment(service, "u2", draft.id)  # before the link: its own
    code = re.search(r"code: ([A-Z0-9]{6})\n", shown)
    assert code
    await service.handle(text("u2", code.group(1)))
    assert QUESTION not in await comment(service, "u1", draft.id)


# ---- shown and stated --------------------------------------------------------------------


async def test_mydata_shows_it(service, sessionmaker, draft):
    assert "You comment as: not said" in joined(await service.handle(text("u1", "/mydata")))
    await service.handle(press("u1", "category:organisation"))
    assert "You comment as: Organisation" in joined(await service.handle(text("u1", "/mydata")))


async def test_the_new_notice_says_it_and_is_shown_to_who_agreed_to_the_last(
        service, sessionmaker, draft):
    greeting = joined(await service.handle(text("newcomer", "/start")))
    assert "Nếu bạn chọn cho biết mình góp ý với tư cách nào" in greeting  # Vietnamese first
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Resident).values(consent_version="2026-12-05",
                                                      notice_version="2026-12-05"))
    shown = await service.handle(text("u1", "/help"))
    assert "Our privacy notice has changed." in joined(shown)
    assert "If you choose to say whom you comment for" in joined(shown)
    assert "privacy notice has changed" not in joined(await service.handle(text("u1", "/help")))
    answer = joined(await service.handle(press("u1", button_for(shown, "I agree"))))
    assert "Your consent to the updated notice is recorded." in answer
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident).where(Resident.platform_id == "u1"))
        agreed = (await session.scalars(select(ConsentEvent.notice_version)
                                        .order_by(ConsentEvent.id))).all()
    assert resident is not None and resident.consent_version == CONSENT_VERSION
    assert agreed[-1] == CONSENT_VERSION != "2026-12-05"
    # other periods make a version of their own that still fits the column
    assert len(notice_version(Periods(36, 120))) <= 16


# ---- recorded with each comment and vote -------------------------------------------------


def export_rows(ykien) -> list[dict[str, str]]:  # noqa: F811
    out = ykien("export", "--out", "-").stdout
    return list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"), newline="")))


async def test_each_comment_and_vote_records_its_channel_category_and_source(
        service, sessionmaker, ykien, tmp_path):  # noqa: F811
    draft = await make_draft(sessionmaker, title="Street lights")
    yes, no = draft.options
    who = ("telegram", "t1")

    def tap(choice):
        return service.handle(Incoming(*who, Kind.CHOICE, choice=choice))

    await tap("agree:en")
    await tap(f"commune:{CAM_TU}")
    await comment(service, "t1", draft.id, "Before saying", channel="telegram")
    await tap("category:business")
    await comment(service, "t1", draft.id, "After saying", channel="telegram")
    await tap(f"vote:{yes.id}")
    await tap("category:individual")
    # a vote changed later is counted as cast then: this chat, the category now
    await tap(f"vote:{no.id}")
    async with sessionmaker() as session, session.begin():
        session.add(Comment(draft_id=draft.id, number=99, resident_id=None,
                            commune_code=CAM_TU, text="=Said at the meeting",
                            created_at=utcnow(), channel="", source=CommentSource.MEETING))

    rows = export_rows(ykien)
    came = [(row["Kind"], row["Comment"] or row["Vote"], row["Chat app"],
             row["Commenting as"], row["Source"], bool(row["Resident"])) for row in rows]
    assert came == [
        ("comment", "Before saying", "Telegram", "", "Chat app", True),
        ("comment", "After saying", "Telegram", "Business", "Chat app", True),
        ("vote", "No", "Telegram", "Individual", "Chat app", True),
        ("comment", "'=Said at the meeting", "", "", "Village meeting", False),
    ]
    # the workbook says the same: the offline comment without a resident, with its source
    ykien("export", "--out", "out.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx")["Comments"]
    header, *comments = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header[-3:] == ["Chat app", "Commenting as", "Source"]
    resident = header.index("Resident")
    assert [(row[resident] is None, *row[-3:]) for row in comments] == [
        (False, "Telegram", None, "Chat app"), (False, "Telegram", "Business", "Chat app"),
        (True, None, None, "Village meeting")]

    # the figures outlive the person: erased, their rows keep how they came
    await service.handle(Incoming(*who, Kind.TEXT, text="/delete"))
    await tap("erase:yes")
    after = export_rows(ykien)
    assert [(row["Comment"], row["Commenting as"], row["Resident"]) for row in after] == [
        ("Before saying", "", "anonymous"), ("After saying", "Business", "anonymous"),
        ("'=Said at the meeting", "", ""),
    ]
