"""Conversation rules under careless and hostile use, through ChatService as adapters call it."""

from __future__ import annotations

import logging
import unicodedata
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from handlers.events import Incoming, Kind
from handlers.onboarding import CONSENT_VERSION
from handlers.turn import COMMENT_LIMIT
from storage.models import Comment, Draft, DraftStatus, Resident, Vote, utcnow
from tests.chat import (
    BA_DINH,
    CHANNEL,
    button_for,
    joined,
    labels,
    make_draft,
    press,
    scalar_count,
    stored_texts,
    subscribe,
    text,
)

INVALID_BUTTON = "That button is no longer valid. Here is the menu."


async def stored_resident(sessionmaker, user: str = "u1") -> Resident | None:
    async with sessionmaker() as session:
        return await session.scalar(select(Resident).where(Resident.platform_id == user))


async def set_rows(sessionmaker, statement) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(statement)


@pytest.fixture
async def draft(sessionmaker, service) -> Draft:
    await subscribe(service)
    return await make_draft(sessionmaker, title="Rubbish collection")


# ---- one person, one vote --------------------------------------------------------------


async def test_erase_and_come_back_counts_one_vote(service, sessionmaker, draft):
    await service.handle(press("u1", f"vote:{draft.options[0].id}"))
    await service.handle(text("u1", "/delete"))
    await service.handle(press("u1", "erase:yes"))
    await subscribe(service)
    answer = joined(await service.handle(press("u1", f"vote:{draft.options[1].id}")))
    assert "Recorded your vote on “Rubbish collection”: “No”." in answer
    async with sessionmaker() as session:
        votes = (await session.scalars(select(Vote).where(Vote.draft_id == draft.id))).all()
    assert [vote.option_id for vote in votes] == [draft.options[1].id]


async def test_erase_keeps_votes_on_closed_drafts_anonymously(service, sessionmaker, draft):
    await service.handle(press("u1", f"vote:{draft.options[0].id}"))
    await set_rows(sessionmaker, update(Draft).values(status=DraftStatus.CLOSED))
    await service.handle(press("u1", "erase:yes"))
    async with sessionmaker() as session:
        vote = await session.scalar(select(Vote))
    assert vote is not None and vote.resident_id is None
    assert vote.option_id == draft.options[0].id


async def test_a_vote_on_one_draft_leaves_the_other_drafts_vote(service, sessionmaker, draft):
    other = await make_draft(sessionmaker, title="Street lights", options=("Now", "Later"))
    await service.handle(press("u1", f"vote:{draft.options[0].id}"))
    answer = joined(await service.handle(press("u1", f"vote:{other.options[1].id}")))
    assert "Recorded your vote on “Street lights”: “Later”." in answer
    async with sessionmaker() as session:
        votes = {v.draft_id: v.option_id for v in await session.scalars(select(Vote))}
    assert votes == {draft.id: draft.options[0].id, other.id: other.options[1].id}


# ---- the privacy notice ----------------------------------------------------------------


async def test_a_changed_notice_is_shown_once_and_can_be_agreed(service, sessionmaker, draft):
    await set_rows(sessionmaker, update(Resident).values(
        consent_version="2026-11", notice_version=""))
    first = await service.handle(text("u1", "/help"))
    assert "Our privacy notice has changed." in joined(first)
    assert "your votes on drafts still open are removed" in joined(first)
    assert "How to take part" in joined(first)  # the message itself is still answered
    second = await service.handle(text("u1", "/help"))
    assert "privacy notice has changed" not in joined(second)
    answer = joined(await service.handle(press("u1", button_for(first, "I agree"))))
    assert "Your consent to the updated notice is recorded." in answer
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.consent_version == CONSENT_VERSION


# ---- old buttons answer from the current state ------------------------------------------


async def test_an_old_no_thanks_does_not_say_nothing_is_stored(service, sessionmaker, draft):
    answer = joined(await service.handle(press("u1", "decline:en")))
    assert "nothing was stored" not in answer
    assert "You agreed earlier, so your commune and your comments are stored." in answer
    assert await scalar_count(sessionmaker, Resident) == 1


async def test_an_old_agree_does_not_undo_a_stop(service, sessionmaker, draft):
    await service.handle(text("u1", "/stop"))
    answer = joined(await service.handle(press("u1", "agree:en")))
    assert "Your consent is already recorded." in answer and "START" in answer
    resident = await stored_resident(sessionmaker)
    assert resident is not None and not resident.subscribed


async def test_an_old_commune_button_does_not_undo_a_stop(service, sessionmaker, draft):
    await service.handle(text("u1", "/stop"))
    answer = joined(await service.handle(press("u1", f"commune:{BA_DINH}")))
    assert "Phường Ba Đình" in answer and "You have stopped receiving drafts" in answer
    resident = await stored_resident(sessionmaker)
    assert resident is not None and not resident.subscribed and resident.commune_code == BA_DINH


async def test_an_old_held_button_after_the_text_was_placed(service, sessionmaker, draft):
    asked = await service.handle(text("u1", "loose remark"))
    choice = button_for(asked, "Rubbish")
    assert "Received" in joined(await service.handle(press("u1", choice)))
    assert joined(await service.handle(press("u1", choice))) == INVALID_BUTTON
    assert await scalar_count(sessionmaker, Comment) == 1


# ---- the vote shown with the drafts ------------------------------------------------------


async def test_open_drafts_mark_the_option_voted_for(service, sessionmaker, draft):
    assert [label for label in labels(await service.handle(text("u1", "/drafts")))
            if "Yes" in label or "No" in label] == ["🗳 Yes", "🗳 No"]
    await service.handle(press("u1", f"vote:{draft.options[1].id}"))
    shown = labels(await service.handle(text("u1", "/drafts")))
    assert "✅ No" in shown and "🗳 Yes" in shown and "🗳 No" not in shown
    await service.handle(press("u1", f"vote:{draft.options[0].id}"))  # changed
    shown = labels(await service.handle(text("u1", "/drafts")))
    assert "✅ Yes" in shown and "🗳 No" in shown
    # Another person's vote marks nothing for them.
    await subscribe(service, "u2")
    assert "✅ Yes" not in labels(await service.handle(text("u2", "/drafts")))


# ---- a comment typed in several messages ------------------------------------------------

ASKED = "Which draft is your comment about?"
ADDED = "Added to your message before. " + ASKED


async def test_messages_sent_before_choosing_the_draft_make_one_comment(
        service, sessionmaker, draft):
    assert joined(await service.handle(text("u1", "The bins are full"))) == ASKED
    assert joined(await service.handle(text("u1", "every Monday"))) == ADDED
    asked = await service.handle(text("u1", "since March"))
    assert "Received" in joined(await service.handle(press("u1", button_for(asked, "Rubbish"))))
    assert await stored_texts(sessionmaker) == ["The bins are full\nevery Monday\nsince March"]
    # Placed: the next loose message starts a comment of its own.
    assert joined(await service.handle(text("u1", "Thanks"))) == ASKED


async def test_a_message_that_would_pass_the_limit_is_not_added(service, sessionmaker, draft):
    first = "a" * (COMMENT_LIMIT - 10)
    await service.handle(text("u1", first))
    refused = joined(await service.handle(text("u1", "b" * 10)))
    assert f"would have {COMMENT_LIMIT + 1:,} characters" in refused
    assert "this message was not added" in refused
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.held_text == first
    asked = await service.handle(text("u1", "b" * 9))  # exactly the limit fits
    await service.handle(press("u1", button_for(asked, "Rubbish")))
    assert await stored_texts(sessionmaker) == [first + "\n" + "b" * 9]


async def test_after_cancel_or_a_long_silence_a_message_is_not_added(
        service, sessionmaker, draft):
    asked = await service.handle(text("u1", "thrown away"))
    await service.handle(press("u1", button_for(asked, "Cancel")))
    assert joined(await service.handle(text("u1", "kept"))) == ASKED
    await set_rows(sessionmaker, update(Resident).values(
        awaiting_since=utcnow() - timedelta(minutes=31)))
    asked = await service.handle(text("u1", "much later"))
    assert joined(asked) == ASKED
    await service.handle(press("u1", button_for(asked, "Rubbish")))
    assert await stored_texts(sessionmaker) == ["much later"]


async def test_a_message_after_pressing_comment_is_the_comment_not_an_addition(
        service, sessionmaker, draft):
    asked = await service.handle(text("u1", "loose"))
    await service.handle(press("u1", f"comment:{draft.id}"))
    assert "Received" in joined(await service.handle(text("u1", "meant")))
    assert await stored_texts(sessionmaker) == ["meant"]
    # The question still on screen places what it asked about.
    assert "Received" in joined(await service.handle(press("u1", button_for(asked, "Rubbish"))))
    assert await stored_texts(sessionmaker) == ["meant", "loose"]


# ---- reachability ----------------------------------------------------------------------


async def test_any_message_makes_an_unreachable_resident_reachable(service, sessionmaker, draft):
    await set_rows(sessionmaker, update(Resident).values(reachable=False, last_seen_at=None))
    await service.handle(text("u1", "/help"))
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.reachable and resident.last_seen_at is not None


async def test_blocking_and_unblocking(service, sessionmaker, draft):
    assert await service.handle(Incoming(CHANNEL, "u1", Kind.BLOCKED)) == []
    resident = await stored_resident(sessionmaker)
    assert resident is not None and not resident.reachable
    assert await service.handle(Incoming(CHANNEL, "u1", Kind.UNBLOCKED)) == []
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.reachable


async def test_a_stranger_blocking_stores_nothing(service, sessionmaker):
    assert await service.handle(Incoming(CHANNEL, "stranger", Kind.BLOCKED)) == []
    assert await scalar_count(sessionmaker, Resident) == 0


# ---- a keyword typed where a comment was expected ---------------------------------------


@pytest.mark.parametrize("word", ["Menu", "hướng dẫn", "huong dan", "tro giup"])
async def test_the_help_and_its_menu_by_a_typed_word(service, sessionmaker, draft, word):
    answer = await service.handle(text("u1", word))
    assert joined(answer).startswith("How to take part:")
    assert "My comments" in labels(answer)
    assert await scalar_count(sessionmaker, Comment) == 0


@pytest.mark.parametrize("word", ["dung", "stop", "STOP", "dừng", "giúp", "help", "bat dau",
                                  "menu"])
async def test_a_keyword_while_commenting_is_asked_about(service, sessionmaker, draft, word):
    await service.handle(press("u1", f"comment:{draft.id}"))
    asked = await service.handle(text("u1", word))
    assert joined(asked) == f"Is “{word}” your comment, or did you mean the command?"
    answer = joined(await service.handle(press("u1", button_for(asked, "Send it as my comment"))))
    assert "Received: your comment no. " in answer
    async with sessionmaker() as session:
        assert (await session.scalar(select(Comment))).text == word
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.subscribed


async def test_stop_chosen_after_the_question_stops(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    asked = await service.handle(text("u1", "DỪNG"))
    answer = joined(await service.handle(press("u1", button_for(asked, "Stop receiving"))))
    assert answer.startswith("Stopped: you will receive no more drafts.")
    assert await scalar_count(sessionmaker, Comment) == 0


async def test_slash_stop_still_stops_at_once(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    assert joined(await service.handle(text("u1", "/stop"))).startswith("Stopped")
    resident = await stored_resident(sessionmaker)
    assert resident is not None and not resident.subscribed


# ---- waiting steps expire ---------------------------------------------------------------


async def test_an_abandoned_comment_step_expires(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    await set_rows(sessionmaker, update(Resident).values(
        awaiting_since=utcnow() - timedelta(minutes=31)))
    answer = joined(await service.handle(text("u1", "much later")))
    assert "Which draft is your comment about?" in answer
    assert await scalar_count(sessionmaker, Comment) == 0


async def test_an_abandoned_change_of_commune_does_not_swallow_text(service, sessionmaker, draft):
    await service.handle(text("u1", "/commune"))
    await set_rows(sessionmaker, update(Resident).values(
        awaiting_since=utcnow() - timedelta(minutes=31)))
    answer = joined(await service.handle(text("u1", "the bins are full")))
    assert "Which draft is your comment about?" in answer and "commune" not in answer


async def test_a_fresh_change_of_commune_searches(service, sessionmaker, draft):
    await service.handle(text("u1", "/commune"))
    found = await service.handle(text("u1", "ba dinh"))
    assert "Phường Ba Đình — Thành phố Hà Nội" in labels(found)


# ---- menu buttons -----------------------------------------------------------------------


async def test_every_menu_button_works(service, sessionmaker, draft):
    menu = await service.handle(text("u1", "/help"))
    expected = {
        "Open drafts": "Rubbish collection",
        "My comments": "You have not sent any comment yet.",
        "Change commune": "Which commune do you live in?",
        "Help": "How to take part",
        "Stop": "Stopped",
    }
    for label, reply in expected.items():
        answer = joined(await service.handle(press("u1", button_for(menu, label))))
        assert reply in answer, (label, answer)
        assert "I do not know the command" not in answer
    assert "Tiếng Việt" in labels(menu)


# ---- what a resident types --------------------------------------------------------------


@pytest.mark.parametrize("body", ["\u200b", "\u200e\u200f", "\ufeff", " \u2060 ", "\x1b[2J"])
async def test_invisible_text_is_refused(service, sessionmaker, draft, body):
    await service.handle(press("u1", f"comment:{draft.id}"))
    answer = joined(await service.handle(text("u1", body)))
    assert answer.startswith("Your message was empty or had only invisible characters")
    assert await scalar_count(sessionmaker, Comment) == 0


async def test_length_is_counted_after_composing_accents(service, sessionmaker, draft):
    composed = ("Nhà văn hóa " * 100)[:COMMENT_LIMIT]
    decomposed = unicodedata.normalize("NFD", composed)
    assert len(decomposed) > COMMENT_LIMIT
    await service.handle(press("u1", f"comment:{draft.id}"))
    assert "Received" in joined(await service.handle(text("u1", decomposed)))
    async with sessionmaker() as session:
        assert (await session.scalar(select(Comment))).text == composed.strip()


async def test_control_characters_and_escapes_are_not_stored(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    answer = joined(await service.handle(text("u1", "a\x00b\ud800c \x1b[31mred\x1b[0m\u200b")))
    assert "Received" in answer
    async with sessionmaker() as session:
        assert (await session.scalar(select(Comment))).text == "abc red"


@pytest.mark.parametrize("choice", [
    "vote:²", "vote:١٢", "vote:99999999999999999999", "vote:", ":", "comment:-1", "comment:0",
    "comment:00012", "held:", "menu:mine", "menu:", "lang:fr", "erase:maybe", "x" * 65,
    "vote:1:2", "commune:１２", "vóte:1", "",
])
async def test_forged_buttons_get_a_clear_answer(service, sessionmaker, draft, choice, caplog):
    answer = joined(await service.handle(press("u1", choice)))
    assert answer == INVALID_BUTTON
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await scalar_count(sessionmaker, Resident) == 1


async def test_an_edit_is_answered_and_changes_nothing(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    await service.handle(text("u1", "first words"))
    answer = joined(await service.handle(Incoming(CHANNEL, "u1", Kind.EDITED, text="second")))
    assert answer.startswith("Edits are not recorded")
    async with sessionmaker() as session:
        assert [c.text for c in await session.scalars(select(Comment))] == ["first words"]


async def test_a_very_long_commune_search_is_refused_with_the_limit(service, sessionmaker):
    await service.handle(press("u1", "agree:en"))
    answer = joined(await service.handle(text("u1", "cam tu " * 2000)))
    assert "That is too long for a commune name (at most 100 characters)." in answer


# ---- drafts a resident may answer -------------------------------------------------------


async def test_receipts_are_numbered_per_draft(service, sessionmaker, draft):
    other = await make_draft(sessionmaker, title="Street lights")
    receipts = []
    for target in (draft, draft, other):
        await service.handle(press("u1", f"comment:{target.id}"))
        receipts.append(joined(await service.handle(text("u1", "words"))))
    assert f"no. {draft.id}-1 " in receipts[0]
    assert f"no. {draft.id}-2 " in receipts[1]
    assert f"no. {other.id}-1 " in receipts[2]
    mine = joined(await service.handle(text("u1", "/mycomments")))
    assert f"No. {draft.id}-2," in mine and f"No. {other.id}-1," in mine


async def test_a_draft_for_another_commune_takes_no_comment(service, sessionmaker, draft):
    elsewhere = await make_draft(sessionmaker, title="Hanoi only", communes=(BA_DINH,))
    for event in (press("u1", f"comment:{elsewhere.id}"),
                  press("u1", f"vote:{elsewhere.options[0].id}")):
        assert "That draft is not open to your commune." in joined(await service.handle(event))
    assert await scalar_count(sessionmaker, Vote) == 0


async def test_a_draft_not_yet_open_takes_no_comment(service, sessionmaker, draft):
    later = await make_draft(sessionmaker, title="Next year",
                             opens_at=utcnow() + timedelta(days=1),
                             deadline=utcnow() + timedelta(days=9))
    answer = joined(await service.handle(press("u1", f"comment:{later.id}")))
    assert "“Next year” is not open for comments yet." in answer
    answer = joined(await service.handle(press("u1", f"vote:{later.options[0].id}")))
    assert "“Next year” is not open for comments yet." in answer
    assert await scalar_count(sessionmaker, Vote) == 0


async def test_a_closed_draft_takes_no_comment(service, sessionmaker, draft):
    await service.handle(press("u1", f"comment:{draft.id}"))
    await set_rows(sessionmaker, update(Draft).values(status=DraftStatus.CLOSED,
                                                      closed_at=utcnow()))
    answer = joined(await service.handle(text("u1", "too late")))
    assert "Consultation on “Rubbish collection” closed at" in answer
    assert await scalar_count(sessionmaker, Comment) == 0


async def test_language_chosen_after_consent_is_kept(service, sessionmaker, draft):
    answer = joined(await service.handle(text("u1", "/language")))
    assert "Từ giờ tôi sẽ trả lời bạn bằng tiếng Việt." in answer
    resident = await stored_resident(sessionmaker)
    assert resident is not None and resident.language == "vi"
    assert "Hạn góp ý" in joined(await service.handle(text("u1", "/drafts")))


# ---- privacy of the logs ----------------------------------------------------------------


async def test_no_chat_id_or_comment_text_in_the_logs(service, sessionmaker, caplog):
    caplog.set_level(logging.DEBUG)
    user = "987654321"
    secret = "my neighbour Nguyen Van A"
    await subscribe(service, user)
    draft = await make_draft(sessionmaker)
    for event in (press(user, f"comment:{draft.id}"), text(user, secret), press(user, "vote:²"),
                  text(user, "/nosuchcommand"), Incoming(CHANNEL, user, Kind.PHOTO),
                  text(user, secret, update_id="1"), text(user, secret, update_id="1")):
        await service.handle(event)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the conversation did log
    assert user not in logged and secret not in logged


# ---- cost of the incoming path ----------------------------------------------------------


async def test_a_comment_costs_eight_statements(service, sessionmaker, draft):
    """Resident (read with its person), draft, the person's recent comments (flood control,
    storage.flood), the person's reach marked as taking part, resident state, receipt
    number, comment, and the update recorded with its replies (which makes a retry change
    nothing, and keeps the replies until they are sent, so a crash loses none): nothing
    more. On PostgreSQL the number and the comment are one statement. The person's first
    comment costs one more: the person is marked as asked whom they comment for
    (handlers.respondent), once."""
    statements: list[str] = []

    def count(connection, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(" ".join(statement.split()[:3]))

    engine = sessionmaker.kw["bind"].sync_engine
    postgres = engine.dialect.name == "postgresql"
    for update_id, asked in (("41", True), ("42", False)):
        await service.handle(press("u1", f"comment:{draft.id}"))
        statements.clear()
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            answer = joined(await service.handle(text("u1", "cheap", update_id=update_id)))
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert "Received" in answer
        assert ("One more question" in answer) is asked
        expected = (7 if postgres else 8) + asked
        assert len(statements) <= expected, "\n".join(statements)
        assert ("UPDATE persons SET" in statements) is asked
