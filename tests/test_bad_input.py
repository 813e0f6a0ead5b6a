"""Bad input gets a clear answer, nothing crashes, nothing stored is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from handlers.events import Incoming, Kind, Reply
from handlers.turn import COMMENT_LIMIT
from storage.models import Comment, Draft, Resident, Vote, utcnow
from tests.chat import CHANNEL, joined, press, scalar_count, subscribe, text
from tests.conftest import add_draft


@pytest.fixture
async def open_draft(sessionmaker, service) -> Draft:
    await subscribe(service)
    return await add_draft(sessionmaker)


async def test_empty_and_too_long_comments_are_refused_not_cut(service, sessionmaker, open_draft):
    await service.handle(press("u1", f"comment:{open_draft.id}"))
    answer = joined(await service.handle(text("u1", "   ")))
    assert "empty" in answer
    too_long = "x" * (COMMENT_LIMIT + 1)
    answer = joined(await service.handle(text("u1", too_long)))
    assert "1,001" in answer and "1,000" in answer and "Nothing was saved" in answer
    assert await scalar_count(sessionmaker, Comment) == 0
    # Still waiting for the comment: a shorter one is accepted.
    answer = joined(await service.handle(text("u1", "x" * COMMENT_LIMIT)))
    assert "Received" in answer
    assert await scalar_count(sessionmaker, Comment) == 1


async def test_after_the_deadline_comments_and_votes_are_refused(
    service, sessionmaker, open_draft
):
    await service.handle(press("u1", f"comment:{open_draft.id}"))
    await service.handle(text("u1", "first comment"))
    option = open_draft.options[0]
    await service.handle(press("u1", f"vote:{option.id}"))
    async with sessionmaker() as session:
        await session.execute(
            update(Draft).values(deadline=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    for event in (press("u1", f"comment:{open_draft.id}"), press("u1", f"vote:{option.id}")):
        answer = joined(await service.handle(event))
        assert "closed at" in answer and "no longer accepted" in answer
    # What was said before the deadline is kept.
    assert await scalar_count(sessionmaker, Comment) == 1
    assert await scalar_count(sessionmaker, Vote) == 1


async def test_vote_twice_and_change(service, sessionmaker, open_draft):
    first, second = open_draft.options[0], open_draft.options[1]
    assert "Recorded" in joined(await service.handle(press("u1", f"vote:{first.id}")))
    assert "already" in joined(await service.handle(press("u1", f"vote:{first.id}")))
    answer = joined(await service.handle(press("u1", f"vote:{second.id}")))
    assert f"from “{first.label}” to “{second.label}”" in answer
    async with sessionmaker() as session:
        votes = (await session.scalars(select(Vote))).all()
    assert [v.option_id for v in votes] == [second.id]


@pytest.mark.parametrize("choice", ["vote:999999", "comment:abc", "zzz", "x" * 64, "held:"])
async def test_unknown_button_data(service, sessionmaker, open_draft, choice):
    answer = joined(await service.handle(press("u1", choice)))
    assert answer  # a clear answer, no crash
    assert await scalar_count(sessionmaker, Resident) == 1


BEYOND_INTEGERS = [2**31, 9_999_999_999]  # ids of 10 digits or fewer the database cannot hold


@pytest.mark.parametrize("choice", [
    *(f"{kind}:{number}" for kind in ("vote", "comment", "commune", "held")
      for number in BEYOND_INTEGERS),
    "erase:yes:2147483648", "erase:yes:1", "erase:yes:0", "erase:yes:", "erase:yes:x",
])
async def test_forged_ids_beyond_the_database_integers_are_no_longer_valid(
    service, sessionmaker, open_draft, choice
):
    """On PostgreSQL such an id reaching a query failed the update (integer out of range)."""
    answer = joined(await service.handle(press("u1", choice)))
    assert answer.startswith("That button is no longer valid.")
    assert await scalar_count(sessionmaker, Resident) == 1


async def test_message_from_an_unknown_chat_stores_nothing(service, sessionmaker, open_draft):
    for event in (
        press("stranger", f"vote:{open_draft.options[0].id}"),
        press("stranger", f"comment:{open_draft.id}"),
        text("stranger", "I have an opinion"),
        text("stranger", "/mycomments"),
    ):
        answer = joined(await service.handle(event))
        assert "Privacy notice" in answer or "Thông báo" in answer
    assert await scalar_count(sessionmaker, Resident) == 1
    assert await scalar_count(sessionmaker, Vote) == 0


@pytest.mark.parametrize("kind", [Kind.PHOTO, Kind.STICKER, Kind.VOICE, Kind.LOCATION, Kind.FILE])
async def test_non_text_messages_get_a_helpful_answer(service, open_draft, kind):
    answer = joined(await service.handle(Incoming(CHANNEL, "u1", kind)))
    assert "only read text" in answer


async def test_unknown_command(service):
    await subscribe(service)
    answer = joined(await service.handle(text("u1", "/frobnicate")))
    assert "/frobnicate" in answer and "/help" in answer


async def test_a_retried_update_changes_nothing(service, sessionmaker, open_draft):
    await service.handle(press("u1", f"comment:{open_draft.id}"))
    event = text("u1", "only once", update_id="77")
    first = await service.handle(event)
    assert "Received" in joined(first)
    # Delivered again (the process may have died before answering): the same receipt again.
    assert await service.handle(event) == first
    assert await scalar_count(sessionmaker, Comment) == 1
    await service.handle(text("u1", "/help", update_id="78"))
    assert await service.handle(event) == []  # answered before a later update: not repeated
    assert await scalar_count(sessionmaker, Comment) == 1


async def test_reply_to_the_draft_message_is_a_comment(service, sessionmaker, open_draft):
    await service.sent(CHANNEL, "u1", "m-42", Reply("draft", draft_id=open_draft.id))
    answer = joined(await service.handle(text("u1", "a reply", reply_to="m-42")))
    assert "Received" in answer
    async with sessionmaker() as session:
        comment = await session.scalar(select(Comment))
    assert comment.draft_id == open_draft.id and comment.text == "a reply"


async def test_text_outside_a_draft_is_kept_until_the_draft_is_chosen(
    service, sessionmaker, open_draft
):
    answer = joined(await service.handle(text("u1", "my loose opinion")))
    assert "Which draft" in answer
    answer = joined(await service.handle(press("u1", f"held:{open_draft.id}")))
    assert "Received" in answer
    async with sessionmaker() as session:
        assert (await session.scalar(select(Comment))).text == "my loose opinion"


async def test_correct_is_not_stop(service, sessionmaker, open_draft):
    await service.handle(press("u1", f"comment:{open_draft.id}"))
    answer = joined(await service.handle(text("u1", "Đúng")))
    assert "Received" in answer
    answer = joined(await service.handle(text("u1", "dung")))
    assert "Stopped" in answer


async def test_delete_my_data_keeps_comments_anonymously(service, sessionmaker, open_draft):
    await service.handle(press("u1", f"comment:{open_draft.id}"))
    await service.handle(text("u1", "keep my words"))
    await service.handle(press("u1", f"vote:{open_draft.options[0].id}"))
    assert "cannot be undone" in joined(await service.handle(text("u1", "/delete")))
    answer = joined(await service.handle(press("u1", "erase:yes")))
    assert "deleted" in answer
    assert await scalar_count(sessionmaker, Resident) == 0
    async with sessionmaker() as session:
        comment = await session.scalar(select(Comment))
    assert comment.text == "keep my words" and comment.resident_id is None
    # The draft is still open: the vote goes, so coming back and voting counts once.
    assert await scalar_count(sessionmaker, Vote) == 0


async def test_my_comments_lists_them(service, open_draft):
    for body in ("one", "two"):
        await service.handle(press("u1", f"comment:{open_draft.id}"))
        await service.handle(text("u1", body))
    answer = joined(await service.handle(text("u1", "/mycomments")))
    assert "2 comments" in answer and "one" in answer and "two" in answer


async def test_a_stopped_resident_can_still_answer_a_draft(service, sessionmaker, open_draft):
    await service.sent(CHANNEL, "u1", "m-7", Reply("draft", draft_id=open_draft.id))
    assert "Stopped" in joined(await service.handle(text("u1", "STOP")))
    assert "START" in joined(await service.handle(text("u1", "a loose remark")))
    answer = joined(await service.handle(text("u1", "still my opinion", reply_to="m-7")))
    assert "Received" in answer
    assert await scalar_count(sessionmaker, Comment) == 1
