"""Updates python-telegram-bot cannot read, received by long polling (`ykien run`): each is
acknowledged (polling goes past it) and logged once at WARNING with its kind, nothing of what
it holds reaches the log, and the chats' later updates are answered (issue 15, item 17). The
same updates by webhook: tests/web/test_platform_updates.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram.channel import TelegramChannel
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.test_telegram import ALICE, StubService, sent_to
from tests.web.test_platform_updates import UNREADABLE


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def test_unreadable_updates_do_not_stop_polling(fake, caplog):
    service = StubService()
    for update in UNREADABLE.values():
        fake.push_update(update)
    fake.push_text(ALICE, "/start")
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=1)
    await telegram.start()
    try:
        await fake.wait_for(sent_to(ALICE))
        await asyncio.sleep(1.5)  # a poll or two more: nothing is read twice
    finally:
        async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
            await telegram.stop()
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING and "could not be read" in
                record.getMessage()]
    assert sorted(line.split(" update ")[0].split()[-1] for line in warnings) == [
        "message", "my_chat_member", "my_chat_member"], warnings
    assert not [record for record in caplog.records if record.levelno > logging.WARNING]
    assert "Giờ thu gom" not in caplog.text and "Cư dân" not in caplog.text
    assert [event.text for event in service.events] == ["/start"]
