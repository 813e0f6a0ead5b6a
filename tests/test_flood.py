"""Flood control (issue 20, part 3): a person may leave a few comments a minute and an hour,
counted from the stored comments; past that nothing is stored, and they are told once, politely,
from when they can comment again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.service import ChatService
from storage.flood import CommentLimits
from storage.models import Comment, Person, Resident, utcnow
from tests import ykien_process
from tests.chat import joined, make_draft, press, scalar_count, stored_texts, subscribe, text
from tests.conftest import EXAMPLE_DRAFT, cli_environment

LIMITS = CommentLimits(per_minute=3, per_hour=5)
REFUSED = "To keep the consultation fair, each person can send at most 3 comments a minute"


@pytest.fixture
def limited(sessionmaker) -> ChatService:
    return ChatService(sessionmaker, comment_limits=LIMITS)


@pytest.fixture
async def draft(sessionmaker, limited):
    await subscribe(limited)
    return await make_draft(sessionmaker, title="Rubbish collection")


async def comment(service: ChatService, draft_id: int, body: str, user: str = "u1") -> str:
    await service.handle(press(user, f"comment:{draft_id}"))
    return joined(await service.handle(text(user, body)))


async def age_everything(sessionmaker, by: timedelta) -> None:
    """As if `by` had passed: the comments and the "told until" are that much older."""
    async with sessionmaker() as session, session.begin():
        for row in (await session.scalars(select(Comment))).all():
            row.created_at -= by
        for person in (await session.scalars(select(Person))).all():
            if person.comments_refused_until is not None:
                person.comments_refused_until -= by


async def test_under_the_limits_every_comment_is_stored(limited, sessionmaker, draft):
    for number in range(1, 4):
        assert f"Received: your comment no. {draft.id}-{number}" in await comment(
            limited, draft.id, f"comment {number}")
    assert await stored_texts(sessionmaker) == ["comment 1", "comment 2", "comment 3"]


async def test_past_the_minute_nothing_is_stored_and_one_answer_is_given(
        limited, sessionmaker, draft):
    for number in range(1, 4):
        await comment(limited, draft.id, f"comment {number}")
    before = utcnow()
    refused = await comment(limited, draft.id, "comment 4")
    assert REFUSED in refused and "was not saved" in refused
    assert "Received" not in refused
    # The next ones, by button or as a held text, are dropped without another answer.
    for number in range(5, 12):
        assert await comment(limited, draft.id, f"comment {number}") == ""
        assert joined(await limited.handle(text("u1", f"loose text {number}"))) == ""
    assert await stored_texts(sessionmaker) == ["comment 1", "comment 2", "comment 3"]
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
        assert resident is not None and resident.held_text == "" and resident.awaiting == ""
        person = await session.get(Person, resident.person_id)
        assert person is not None and person.comments_refused_until is not None
        # From when: a minute after the oldest of the three comments that filled the minute.
        assert before < person.comments_refused_until <= before + timedelta(minutes=1)


async def test_after_the_minute_comments_are_taken_again_until_the_hour_is_full(
        limited, sessionmaker, draft):
    for number in range(1, 5):
        await comment(limited, draft.id, f"comment {number}")
    await age_everything(sessionmaker, timedelta(minutes=2))
    assert "Received" in await comment(limited, draft.id, "comment 5")
    assert "Received" in await comment(limited, draft.id, "comment 6")
    # Five in the hour: the sixth is refused, told once, until the first leaves the hour.
    refused = await comment(limited, draft.id, "comment 7")
    assert REFUSED in refused
    assert await comment(limited, draft.id, "comment 8") == ""
    async with sessionmaker() as session:
        first = await session.scalar(select(Comment.created_at).order_by(Comment.id).limit(1))
        until = await session.scalar(select(Person.comments_refused_until))
    assert first is not None and until == first + timedelta(hours=1)
    assert await stored_texts(sessionmaker) == [f"comment {n}" for n in (1, 2, 3, 5, 6)]
    # A new flood after the wait is told again (once).
    await age_everything(sessionmaker, timedelta(hours=2))
    for number in range(9, 12):
        assert "Received" in await comment(limited, draft.id, f"comment {number}")
    assert REFUSED in await comment(limited, draft.id, "comment 12")
    assert await comment(limited, draft.id, "comment 13") == ""


async def test_limits_are_per_person_not_per_chat_nor_for_everyone(limited, sessionmaker, draft):
    await subscribe(limited, "u2")
    for number in range(1, 4):
        await comment(limited, draft.id, f"one {number}")
    assert REFUSED in await comment(limited, draft.id, "one 4")
    # Another person is not held back by the first one's flood.
    assert "Received" in await comment(limited, draft.id, "two 1", user="u2")
    assert await scalar_count(sessionmaker, Comment) == 4


async def test_a_vote_is_not_a_comment(limited, sessionmaker, draft):
    for number in range(1, 4):
        await comment(limited, draft.id, f"comment {number}")
    answer = joined(await limited.handle(press("u1", f"vote:{draft.options[0].id}")))
    assert REFUSED not in answer and "vote" in answer.lower()


def test_the_settings_reach_the_console(tmp_path, database_url):
    """YKIEN_COMMENTS_PER_MINUTE / _PER_HOUR, through `ykien console`."""
    env = {**cli_environment(database_url), "YKIEN_COMMENTS_PER_MINUTE": "2",
           "YKIEN_COMMENTS_PER_HOUR": "10"}

    def ykien(*args: str, stdin: str = "") -> str:
        done = ykien_process.run(args, input=stdin, text=True, env=env, cwd=tmp_path,
                                 timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    ykien("console", "--user", "minh", stdin="/start\n1\ncam tu\n1\n")
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    ykien("draft", "broadcast", "1")
    # Each text is held and placed on the draft, its choice no. 1.
    out = ykien("console", "--user", "minh", stdin="first\n1\nsecond\n1\nthird\nfourth\n")
    assert out.count("Đã nhận góp ý số") == 2
    assert out.count("tối đa 2 góp ý mỗi phút và 10 góp ý mỗi giờ") == 1
