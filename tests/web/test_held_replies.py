"""Replies held back by a chat's pace (1 message/s after a burst of 3) are not lost when a real
`ykien serve` is stopped (SIGTERM) or killed (kill -9) and started again: an update counts as
handled only once its replies are sent, so what was acknowledged is answered (issue 15,
item 3). A separate process against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path
from handlers.onboarding import CONSENT_VERSION
from storage.db import open_database
from storage.models import utcnow
from storage.queries import add_residents_in_bulk
from tests.channels.fake_telegram import FakeTelegram
from tests.sending.test_crash import BOUND, SECRET, serving
from tests.sending.test_delivery import until

STRANGER, RESIDENT = 910_001, 910_002  # one who has not agreed yet, one who has
UPDATES = 6  # per chat: the burst of 3 goes at once, the other 3 wait for the pace
GREETING, HELP = "Xin chào", "How to take part"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def answers(fake: FakeTelegram, chat: int, contains: str) -> int:
    return sum(1 for call in fake.calls_to("sendMessage", chat)
               if call.ok and contains in call.text)


async def add_resident(database_url: str) -> None:
    now = utcnow()
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        await add_residents_in_bulk(session, [{
            "channel": "telegram", "platform_id": str(RESIDENT), "language": "en",
            "commune_code": 15148, "consent_at": now, "consent_version": CONSENT_VERSION,
            "subscribed": True, "reachable": True, "awaiting": "", "held_text": "",
            "notice_version": CONSENT_VERSION, "created_at": now}])
        await session.commit()


async def post_all(fake: FakeTelegram, url: str) -> None:
    """Each chat sends its updates at once: /start from the stranger, /help from the
    resident; every one is acknowledged (stored) before the first answers go out."""
    async with aiohttp.ClientSession() as http:
        for _ in range(UPDATES):
            for chat, text in ((STRANGER, "/start"), (RESIDENT, "/help")):
                fake.push_text(chat, text)
                async with http.post(url, json=fake.take_update(),
                                     headers={SECRET_HEADER: SECRET}) as response:
                    assert response.status == 200


def all_answered(fake: FakeTelegram) -> bool:
    return (answers(fake, STRANGER, GREETING) >= UPDATES
            and answers(fake, RESIDENT, HELP) >= UPDATES)


async def test_held_replies_are_sent_before_a_sigterm_stop_ends(fake, database_url, tmp_path):
    await add_resident(database_url)
    async with serving(fake, database_url, tmp_path) as server:
        await post_all(fake, await server.address() + telegram_path(SECRET))
        await until(lambda: answers(fake, STRANGER, GREETING) >= 3, BOUND)
        log = await server.stop()  # while most of the answers wait for their chat's pace
    assert all_answered(fake), (answers(fake, STRANGER, GREETING), answers(fake, RESIDENT, HELP))
    assert "unsent" not in log, log


async def test_held_replies_are_sent_after_a_kill_and_a_restart(fake, database_url, tmp_path):
    await add_resident(database_url)
    async with serving(fake, database_url, tmp_path) as first:
        await post_all(fake, await first.address() + telegram_path(SECRET))
        await until(lambda: answers(fake, STRANGER, GREETING) >= 3, BOUND)
        await first.kill()
    assert not all_answered(fake)  # the kill came while answers waited for the pace
    async with serving(fake, database_url, tmp_path):
        await until(lambda: all_answered(fake), BOUND)
        await asyncio.sleep(1)
    counts = Counter(call.chat_id for call in fake.calls_to("sendMessage") if call.ok)
    # At least once each; again at most the answers the dead process had on their way out.
    assert counts[STRANGER] <= UPDATES + 3 and counts[RESIDENT] <= UPDATES + 3, counts
