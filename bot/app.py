"""Running the bot: every configured channel plus the delivery worker, until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import Channel, WebhookChannel
from bot.channels.registry import configured_channels, configured_entries
from bot.config import DeliveryConfig, Settings
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from handlers.onboarding import CHOICES_DAYS
from handlers.reminders import queue_reminders
from storage import choices, communes, inbound, outbox, queries, retention
from storage.db import open_database
from storage.models import utcnow

log = logging.getLogger(__name__)

# Platforms retry an update for at most a day; ids older than this cannot come back.
REMEMBER_UPDATES = timedelta(days=2)
HOUSEKEEPING_SECONDS = 3600
FORGET_CHOICES = timedelta(days=CHOICES_DAYS)  # the privacy notice states it


async def housekeeping(
    sessionmaker: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    delivery: DeliveryConfig = DeliveryConfig(),  # noqa: B008 (frozen, so shared safely)
    retention_months: int = retention.DEFAULT_MONTHS,
) -> None:
    """Hourly upkeep while the bot runs: old update ids and handled webhook updates, and
    finished outbox rows; once a day, the retention period (`ykien purge`)."""
    while not stop.is_set():
        try:
            now = utcnow()
            async with sessionmaker() as session, session.begin():
                await queries.forget_updates_before(session, now - REMEMBER_UPDATES)
                await inbound.forget_before(session, now - REMEMBER_UPDATES)
                await outbox.expire_held(session, now)
                purged = await outbox.purge(session, now - timedelta(days=delivery.retention_days))
                # Numbers shown a week ago are no longer on anyone's screen.
                await choices.forget_before(session, now - FORGET_CHOICES)
                reminded = await queue_reminders(session, now, delivery.reminder_days)
            if purged:
                log.info("housekeeping: %d finished outbox rows purged", purged)
            if reminded:
                log.info("housekeeping: %d reminders queued", reminded)
            await daily_purge(sessionmaker, retention_months)
        except Exception:
            log.exception("housekeeping failed; trying again later")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=HOUSEKEEPING_SECONDS)


async def daily_purge(sessionmaker: async_sessionmaker[AsyncSession], months: int) -> None:
    """The retention period's purge, once a day whichever process comes first."""
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        if not await retention.due(session, now):
            return
        done = await retention.purge(session, now, months)
    if done.anything:
        log.info("retention: %d comments and %d votes of %d drafts made anonymous; %d "
                 "persons (%d chats) erased", done.comments, done.votes, done.drafts,
                 done.persons, done.chats)


async def run_channels(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Start the channels and deliver broadcasts until `stop` is set (or SIGINT/SIGTERM)."""
    await _run(settings, stop, receive=True)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Only deliver (`ykien worker`): every configured channel sends, none receives.

    Beside `ykien serve` processes on one PostgreSQL, a worker adds sending capacity without
    taking webhook traffic; the rows are shared out by the database.
    """
    await _run(settings, stop, receive=False)


async def _run(settings: Settings, stop: asyncio.Event | None, *, receive: bool) -> None:
    if stop is None:
        stop = stop_on_signals()
    async with open_database(settings.database_url) as sessionmaker:
        await asyncio.to_thread(communes.warm_up)  # the first resident should not wait for it
        service = ChatService.for_settings(sessionmaker, settings)
        channels = configured_channels(settings, service, polling=receive)
        if receive and len(channels) < len(configured_entries(settings)):
            log.warning("a Zalo Official Account receives only by webhook: run ykien serve")
        started: list[Channel] = []
        upkeep = asyncio.create_task(housekeeping(sessionmaker, stop, settings.delivery,
                                                  settings.retention_months))
        try:
            for channel in channels.values():
                if receive:
                    await channel.start()
                elif isinstance(channel, WebhookChannel):
                    await channel.start_webhook()  # connects; registers nothing
                else:
                    continue
                started.append(channel)
                log.info("%s channel started", channel.name)
            await DeliveryWorker(sessionmaker, channels, settings.delivery).run(stop)
        finally:
            stop.set()
            await upkeep
            for channel in reversed(started):
                await channel.stop()


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (where the loop can catch them)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop
