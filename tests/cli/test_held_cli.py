"""`ykien draft` controls on messages held for a messaging window (Zalo OA's 7 days), run as
an official would: each command a separate process, the worker and the resident in the test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.sending.worker import DeliveryWorker
from handlers.events import Incoming, Kind
from storage.models import Delivery, DeliveryStatus, Resident, utcnow
from tests.cli.test_outbox_cli import ykien  # noqa: F401 (the fixture)
from tests.conftest import EXAMPLE_DRAFT
from tests.sending.test_delivery import WindowedChannel, subscribe


async def statuses(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Delivery.status).order_by(Delivery.id))).all())


async def held_broadcast(ykien, service, sessionmaker) -> WindowedChannel:  # noqa: F811
    """Resident "a" silent for 8 days: the draft's message to them is held."""
    await subscribe(service, ["a"])
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Resident).values(last_seen_at=utcnow() - timedelta(days=8)))
    await ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await ykien("draft", "broadcast", "1", "--no-wait")
    channel = WindowedChannel()
    assert (await DeliveryWorker(sessionmaker, {"test": channel}).run_once()).held == 1
    assert await statuses(sessionmaker) == [DeliveryStatus.HELD]
    return channel


async def resident_writes(service) -> None:
    await service.handle(Incoming("test", "a", Kind.TEXT, text="/help"))


async def test_cancel_cancels_a_held_message(ykien, service, sessionmaker):  # noqa: F811
    channel = await held_broadcast(ykien, service, sessionmaker)
    done = await ykien("draft", "cancel", "1")
    assert "1 message not sent yet will not be sent" in done.stdout
    await resident_writes(service)  # the window opens: nothing of this draft goes
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert channel.sent == []
    assert await statuses(sessionmaker) == [DeliveryStatus.CANCELLED]
    again = await ykien("draft", "broadcast", "1", "--no-wait", "--resend-cancelled")
    assert "1 cancelled message queued again." in again.stdout
    assert (await DeliveryWorker(sessionmaker, {"test": channel}).run_once()).sent == 1


async def test_pause_holds_back_a_held_message_until_resumed(
    ykien, service, sessionmaker  # noqa: F811
):
    channel = await held_broadcast(ykien, service, sessionmaker)
    await ykien("draft", "pause", "1")
    await resident_writes(service)
    worker = DeliveryWorker(sessionmaker, {"test": channel})
    await worker.run_once()
    assert channel.sent == []
    assert "Paused" in (await ykien("draft", "status", "1")).stdout
    await ykien("draft", "resume", "1")
    assert (await worker.run_once()).sent == 1


async def test_close_ends_a_held_message_at_once(ykien, service, sessionmaker):  # noqa: F811
    channel = await held_broadcast(ykien, service, sessionmaker)
    await ykien("draft", "close", "1")
    status = (await ykien("draft", "status", "1")).stdout
    assert "1 expired" in status and "0 remaining" in status
    assert "when they next write" not in status  # it never goes
    await resident_writes(service)
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert channel.sent == []
    assert await statuses(sessionmaker) == [DeliveryStatus.EXPIRED]


@pytest.mark.parametrize("control", ["cancel", "close"])
async def test_status_after_a_control_promises_nothing_for_held_messages(
    ykien, service, sessionmaker, control  # noqa: F811
):
    await held_broadcast(ykien, service, sessionmaker)
    before = (await ykien("draft", "status", "1")).stdout
    assert "1 resident has not written for 7 days" in before
    await ykien("draft", control, "1")
    assert "has not written for 7 days" not in (await ykien("draft", "status", "1")).stdout
