"""The delivery worker with the real Telegram adapter, against the fake Bot API's errors.

The fake answers per chat as Telegram would (403 blocked, 400 refused, 429 flood control,
500 server trouble); the rows and residents must record what each answer means.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.channels.telegram.channel import TelegramChannel
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from handlers.events import Incoming, Kind
from storage.models import Delivery, DeliveryStatus, DraftMessage, Resident, utcnow
from tests.channels.fake_telegram import FakeTelegram
from tests.conftest import add_draft

FINE, BLOCKED, REFUSED, FLAKY, THROTTLED, NEXT = 2001, 2002, 2003, 2004, 2005, 2006


@dataclass
class Row:
    """One recipient's delivery row, and whether the resident is reachable."""

    status: str
    attempts: int
    error: str
    not_before: datetime
    reachable: bool


async def subscribe(service: ChatService, chat_ids: list[int]) -> None:
    """Residents of Xã Cẩm Tú, subscribed over Telegram (consent, then the commune)."""
    for chat_id in chat_ids:
        for choice in ("agree:vi", "commune:15148"):
            await service.handle(Incoming("telegram", str(chat_id), Kind.CHOICE, choice=choice))


async def rows(sessionmaker) -> dict[int, Row]:
    async with sessionmaker() as session:
        result = await session.execute(
            select(Resident.platform_id, Delivery, Resident.reachable).join(
                Resident, Resident.id == Delivery.resident_id
            )
        )
        return {
            int(user): Row(row.status, row.attempts, row.error, row.not_before, reachable)
            for user, row, reachable in result.all()
        }


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def telegram(fake: FakeTelegram, service: ChatService) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(fake.token, fake.url, service, poll_timeout=1)
    await channel.start()
    yield channel
    async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
        await channel.stop()


def draft_sent_to(chat_id: int):
    return lambda call: call.method == "sendMessage" and call.chat_id == chat_id and call.ok


async def test_telegram_errors_map_to_row_outcomes(
    sessionmaker, service, fake: FakeTelegram, telegram: TelegramChannel
) -> None:
    await subscribe(service, [FINE, BLOCKED, REFUSED, FLAKY])
    draft = await add_draft(sessionmaker)
    fake.fail_next("sendMessage", BLOCKED, code=403)
    fake.fail_next("sendMessage", REFUSED, code=400, description="Bad Request: BUTTON_DATA_INVALID")
    fake.fail_next("sendMessage", FLAKY, code=500)
    before = utcnow()

    await DeliveryWorker(sessionmaker, {"telegram": telegram}).run_once()

    outcome = await rows(sessionmaker)
    assert outcome[FINE].status == DeliveryStatus.SENT and outcome[FINE].reachable
    # Blocked: the row says so, and the resident is left out of later broadcasts.
    assert (outcome[BLOCKED].status, outcome[BLOCKED].reachable) == (
        DeliveryStatus.UNREACHABLE,
        False,
    )
    assert "blocked by the user" in outcome[BLOCKED].error
    # Refused for good: failed, with Telegram's reason, and the resident still reachable.
    assert outcome[REFUSED].status == DeliveryStatus.FAILED
    assert "button_data_invalid" in outcome[REFUSED].error.lower()  # PTB recases it
    assert outcome[REFUSED].reachable
    # Server trouble: tried again later, and the attempt counts toward giving up.
    assert (outcome[FLAKY].status, outcome[FLAKY].attempts) == (DeliveryStatus.PENDING, 1)
    assert outcome[FLAKY].not_before > before
    assert "Internal Server Error" in outcome[FLAKY].error
    # The message that reached the resident is known, so a reply to it is a comment.
    [shown] = fake.messages_to(FINE)
    async with sessionmaker() as session:
        remembered = (await session.scalars(select(DraftMessage))).all()
    assert [(m.message_id, m.draft_id) for m in remembered] == [
        (str(shown["message_id"]), draft.id)
    ]


async def test_flood_control_pauses_the_channel_then_sends(
    sessionmaker, service, fake: FakeTelegram, telegram: TelegramChannel
) -> None:
    await subscribe(service, [THROTTLED, NEXT])
    await add_draft(sessionmaker)
    fake.fail_next("sendMessage", THROTTLED, code=429, retry_after=1)
    worker = DeliveryWorker(sessionmaker, {"telegram": telegram})

    await worker.run_once()

    # The whole channel waits: the next resident is not even tried, and waiting is no attempt.
    assert [call.chat_id for call in fake.calls_to("sendMessage")] == [THROTTLED]
    outcome = await rows(sessionmaker)
    assert {user: (row.status, row.attempts) for user, row in outcome.items()} == {
        THROTTLED: (DeliveryStatus.PENDING, 0),
        NEXT: (DeliveryStatus.PENDING, 0),
    }
    assert all(row.reachable for row in outcome.values())

    # Once Telegram's retry_after has passed, both are sent, each in one attempt.
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, idle_seconds=0.2))
    try:
        for chat_id in (THROTTLED, NEXT):
            await fake.wait_for(draft_sent_to(chat_id))
    finally:
        stop.set()
        await running
    throttled, sent = fake.calls_to("sendMessage", THROTTLED)
    assert sent.at - throttled.at >= 1.0  # not before Telegram's retry_after
    outcome = await rows(sessionmaker)
    assert {user: (row.status, row.attempts) for user, row in outcome.items()} == {
        THROTTLED: (DeliveryStatus.SENT, 1),
        NEXT: (DeliveryStatus.SENT, 1),
    }
