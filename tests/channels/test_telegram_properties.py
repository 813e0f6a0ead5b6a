"""Random text, Unicode and button data through the real Telegram adapter and a fake Bot API:
every update is answered, nothing escapes (the conftest guard fails on any ERROR log), and
the comment stored before is never lost or changed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.db import open_database
from storage.models import Comment
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.test_telegram_e2e import ALICE, Chat, bot_running, draft_to, subscribe
from tests.conftest import add_draft
from tests.test_properties import BUTTON_DATA, TYPED, WORDS

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What a Telegram client can send: text of 1 to 4,096 characters, button data of 1 to 64 bytes.
MESSAGE_TEXT = st.one_of(TYPED, WORDS).map(lambda text: text[:4096]).filter(str.strip)
CALLBACK_DATA = BUTTON_DATA.filter(lambda data: 0 < len(data.encode()) <= 64)


async def stored_comments(database_url: str) -> dict[int, str]:
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        return {c.id: c.text for c in await session.scalars(select(Comment))}


def answered(chat_id: int):
    return lambda call: call.method in ("sendMessage", "editMessageText") and (
        call.chat_id == chat_id
    )


@pytest.fixture
async def bot(database_url):
    """The bot polling the fake, Alice subscribed, with one comment on a broadcast draft."""
    async with FakeTelegram() as fake, bot_running(fake, database_url):
        alice = Chat(fake, ALICE)
        await subscribe(alice)
        async with open_database(database_url) as sessionmaker:
            draft = await add_draft(sessionmaker)
        await fake.wait_for(draft_to(ALICE, draft.title))
        await alice.press(f"comment:{draft.id}", "")
        await alice.say("kept whatever happens", "1-1")
        yield fake, await stored_comments(database_url)


@EXAMPLES
@given(is_text=st.booleans(), text=MESSAGE_TEXT, data=CALLBACK_DATA)
async def test_random_updates_are_all_answered(bot, database_url, is_text, text, data):
    fake, before = bot
    since = len(fake.calls)
    if is_text:
        fake.push_text(ALICE, text)
    else:
        last = fake.messages_to(ALICE)[-1]["message_id"]
        fake.push_callback(ALICE, data, last)
    await fake.wait_for(answered(ALICE), since=since)
    after = await stored_comments(database_url)
    assert {k: after.get(k) for k in before} == before
