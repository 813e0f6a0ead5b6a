"""Updates beyond what `ykien serve` holds in memory: stored and acknowledged at once, taken up
in their turn (by this process as room frees, or by another with room), each chat still in
order and within its bound. Through the real server and the fake Bot API, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels.fake_telegram import FakeTelegram
from tests.web.platforms import all_platforms, until
from tests.web.test_webhook import (
    ALICE,
    BOB,
    CAROL,
    GREETING,
    HELP,
    reply_to,
    serving,
    stored_rows,
)
from tests.web.test_webhook_hardening import greeting_to, not_greeting_to, telegram_start

pytestmark = pytest.mark.usefixtures("brisk_chats")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def all_handled(database_url: str):
    async def handled() -> bool:
        return all(row.handled_at is not None for row in await stored_rows(database_url))

    return handled


async def healthz(server) -> tuple[int, dict]:
    async with server.http.get(server.url + "/healthz") as response:
        return response.status, await response.json()


async def test_updates_beyond_the_backlog_are_acknowledged_and_handled_in_their_turn(
    fake, database_url
):
    released = fake.hold(reply_to(ALICE))
    async with serving(fake, database_url, backlog=1) as server:
        fake.push_text(ALICE, "/start")
        await server.deliver()
        await fake.wait_for(reply_to(ALICE), arrived=True)  # the backlog is full
        for chat, text in ((BOB, "/start"), (CAROL, "/start"), (ALICE, "/help")):
            fake.push_text(chat, text)
            await server.deliver()  # 200: stored, waiting in the database
        assert len(await stored_rows(database_url)) == 4
        # Not busy: the server still takes updates in; all four are counted as waiting.
        assert await healthz(server) == (200, {"status": "ok", "database": True, "backlog": 4})
        assert not fake.calls_to("sendMessage", BOB)
        released.set()
        for chat, text in ((BOB, GREETING), (CAROL, GREETING), (ALICE, HELP)):
            await fake.wait_for(reply_to(chat, text))
    assert all(row.handled_at is not None for row in await stored_rows(database_url))
    for chat in (BOB, CAROL):
        assert len(fake.calls_to("sendMessage", chat)) == 1
    alice = [call.params["text"] for call in fake.calls_to("sendMessage", ALICE)]
    assert len(alice) == 2 and GREETING in alice[0] and HELP in alice[1]  # in her order


async def test_a_chats_updates_waiting_in_the_database_count_towards_its_bound(
    database_url, sessionmaker
):
    async with all_platforms(database_url, backlog=1, chat_backlog=3) as platforms:
        fake = platforms.telegram
        released = fake.hold(greeting_to(ALICE))
        assert await platforms.post("telegram", telegram_start(platforms, ALICE)) == 200
        await fake.wait_for(greeting_to(ALICE), arrived=True)
        for _ in range(4):  # two stored beyond the backlog, then over her bound: dropped
            assert await platforms.post("telegram", telegram_start(platforms, ALICE)) == 200
        assert len(await stored_rows(database_url)) == 3
        notice = await fake.wait_for(not_greeting_to(ALICE))
        assert "gửi lại" in notice.text, notice.text
        released.set()
        await until(all_handled(database_url))
    assert len([call for call in fake.calls if greeting_to(ALICE)(call)]) == 3
    assert len([call for call in fake.calls if not_greeting_to(ALICE)(call)]) == 1


async def test_another_process_with_room_takes_up_what_one_could_not_hold(fake, database_url):
    released = fake.hold(reply_to(ALICE))
    # Two processes behind one load balancer: the first holds one update in memory, the
    # second has room. An update stored beyond the first's backlog is taken over by the
    # second once it has waited a lease (2 s), as from a process that died.
    async with serving(fake, database_url, backlog=1, lease_seconds=2) as first:
        fake.push_text(ALICE, "/start")
        await first.deliver()
        await fake.wait_for(reply_to(ALICE), arrived=True)
        fake.push_text(BOB, "/start")
        await first.deliver()
        async with serving(fake, database_url, lease_seconds=2):
            await fake.wait_for(reply_to(BOB, GREETING))  # while Alice's reply still hangs
            assert not released.is_set()
            released.set()
            await fake.wait_for(reply_to(ALICE, GREETING))
            # The first process, taking up its spilled update, finds it handled: let go.
            await until(all_handled(database_url))
    assert len(fake.calls_to("sendMessage", BOB)) == 1
    assert [row.attempts for row in await stored_rows(database_url)] == [1, 1]
