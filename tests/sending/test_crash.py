"""`kill -9` of `ykien serve` in the middle of its work, then a restart: a broadcast reaches
every resident (duplicates only the messages in flight: sent, their outcome not written yet),
no outbox row is lost, and every webhook update acknowledged with 200 before the kill is
handled after it. `ykien serve` runs as a separate process against the fake Bot API, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.channels.telegram.receiving import SECRET_HEADER, telegram_path
from handlers.onboarding import CONSENT_VERSION
from storage.db import open_database
from storage.models import (
    Comment,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    InboundUpdate,
    ProcessedUpdate,
    Resident,
    utcnow,
)
from storage.queries import add_residents_in_bulk
from tests import ykien_process
from tests.channels.fake_telegram import Call, FakeTelegram
from tests.conftest import ROOT, add_draft
from tests.sending.test_delivery import until

SECRET = "crash_Secret-42"
RESIDENTS = 300
CONCURRENCY = 8  # the delivery worker's in-flight window
BOUND = 120.0  # seconds any one wait may take (a restart waits for the dead one's leases)
LISTENING = re.compile(r"webhook server listening on [\d.]+:(\d+)")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


class Serve:
    """One `ykien serve` process, its port once it listens, and what it logged."""

    def __init__(self, process: ykien_process.Process) -> None:
        self.process = process
        self.log: list[str] = []
        self.port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.log.append(line)
            found = LISTENING.search(line)
            if found and not self.port.done():
                self.port.set_result(int(found.group(1)))

    async def address(self) -> str:
        async with asyncio.timeout(BOUND):
            return f"http://127.0.0.1:{await asyncio.shield(self.port)}"

    async def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        os.kill(self.process.pid, signal.SIGKILL)
        await self.stopped()

    async def stop(self) -> str:
        """SIGTERM, as an admin stops it; what it logged."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await self.stopped()
        return "".join(self.log)

    async def stopped(self) -> None:
        async with asyncio.timeout(BOUND):
            await self.process.wait()
            await self._reader


@contextlib.asynccontextmanager
async def serving(fake: FakeTelegram, database_url: str, tmp_path) -> AsyncIterator[Serve]:
    env = {
        **os.environ,
        "YKIEN_DATABASE_URL": database_url,
        "YKIEN_TELEGRAM_TOKEN": fake.token,
        "YKIEN_TELEGRAM_API_URL": fake.url,
        "YKIEN_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "YKIEN_PUBLIC_URL": "https://consult.example.vn",
        "YKIEN_TELEGRAM_MESSAGES_PER_SECOND": "0",
        "YKIEN_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "YKIEN_DELIVERY_LEASE_SECONDS": "5",  # the least allowed: a restart waits this long
        "YKIEN_WEBHOOK_LEASE_SECONDS": "2",  # likewise for the updates it was handling
        "YKIEN_LANGUAGE": "en",
        "PYTHONPATH": str(ROOT),
    }
    process = await ykien_process.start(
        ["serve", "--host", "127.0.0.1", "--port", "0"], env=env, cwd=tmp_path,
        stdout=ykien_process.DEVNULL, stderr=ykien_process.PIPE,
    )
    serve = Serve(process)
    try:
        yield serve
    finally:
        log = await serve.stop()
        assert "Traceback" not in log, log


class SendsHeld:
    """The first `let_through` sendMessage calls are answered, the later ones hang (unanswered)
    until `release`."""

    def __init__(self, fake: FakeTelegram, let_through: int) -> None:
        self.let_through, self.seen, self.holding = let_through, 0, True
        self.released = fake.hold(self._held)

    def _held(self, call: Call) -> bool:
        if not self.holding or call.method != "sendMessage":
            return False
        self.seen += 1
        return self.seen > self.let_through

    def release(self) -> None:
        self.holding = False
        self.released.set()


async def until_all_handled(sessionmaker) -> None:
    """Every stored webhook update handled (bounded)."""
    async with asyncio.timeout(BOUND):
        while True:
            async with sessionmaker() as session:
                if await session.scalar(
                    select(func.count()).where(InboundUpdate.handled_at.is_(None))
                ) == 0:
                    return
            await asyncio.sleep(0.05)


def sends(fake: FakeTelegram) -> Counter[int]:
    """sendMessage calls answered, per chat."""
    return Counter(call.chat_id for call in fake.calls_to("sendMessage") if call.ok)


def arrived_sends(fake: FakeTelegram) -> int:
    return sum(1 for call in fake.requests if call.method == "sendMessage")


async def test_a_broadcast_killed_midway_reaches_everyone_after_a_restart(
    fake, database_url, tmp_path
):
    chats = [700_000 + number for number in range(RESIDENTS)]
    now = utcnow()
    async with open_database(database_url) as sessionmaker:
        async with sessionmaker() as session:
            await add_residents_in_bulk(session, [
                {"channel": "telegram", "platform_id": str(chat), "language": "vi",
                 "commune_code": 15148, "consent_at": now, "consent_version": "test",
                 "subscribed": True, "reachable": True, "awaiting": "", "held_text": "",
                 "notice_version": "test", "created_at": now}
                for chat in chats
            ])
            await session.commit()
        await add_draft(sessionmaker)
    let_through = 100
    held = SendsHeld(fake, let_through)
    async with serving(fake, database_url, tmp_path) as first, \
            open_database(database_url) as sessionmaker:

        async def recorded_sent() -> int:
            async with sessionmaker() as session:
                return await session.scalar(
                    select(func.count()).where(Delivery.status == DeliveryStatus.SENT)) or 0

        # A hundred went out and were answered; the worker's whole window is on its way.
        await until(lambda: arrived_sends(fake) >= let_through + CONCURRENCY, BOUND)
        # Their outcomes are written without waiting for more answers (group commit): no
        # timer and no batch to fill, while every other send hangs.
        async with asyncio.timeout(BOUND):
            while await recorded_sent() < let_through:
                await asyncio.sleep(0.05)
        await first.kill()
    answered = set(sends(fake))
    assert len(answered) == let_through
    in_flight = arrived_sends(fake) - let_through
    assert in_flight == CONCURRENCY  # sent, never answered: in flight at the kill
    held.release()  # what reached Telegram before the kill is delivered all the same
    async with serving(fake, database_url, tmp_path):
        await until(lambda: len(sends(fake)) == RESIDENTS, BOUND)
        async with open_database(database_url) as sessionmaker:

            async def all_recorded() -> bool:
                async with sessionmaker() as session:
                    return await session.scalar(
                        select(func.count()).where(Delivery.status == DeliveryStatus.SENT)
                    ) == RESIDENTS

            async with asyncio.timeout(BOUND):
                while not await all_recorded():
                    await asyncio.sleep(0.05)
            async with sessionmaker() as session:
                rows = await session.scalar(select(func.count()).select_from(Delivery))
    counts = sends(fake)
    assert set(counts) == set(chats)  # everyone
    duplicates = sum(count - 1 for count in counts.values())
    # The bound: a crash resends only the messages in flight (sent, outcome not yet written):
    # here the unanswered ones, since the answered ones' outcomes were written.
    assert duplicates <= in_flight
    assert all(counts[chat] == 1 for chat in answered)
    assert rows == RESIDENTS  # no outbox row lost (or added)


async def processed_update_ids(database_url: str) -> set[int]:
    """The updates the conversation has committed (it records each one's id)."""
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        return {int(update_id) for update_id in await session.scalars(
            select(ProcessedUpdate.update_id).where(ProcessedUpdate.channel == "telegram"))}


async def test_updates_acknowledged_before_a_kill_are_handled_after_the_restart(
    fake, database_url, tmp_path
):
    chats = [800_000 + number for number in range(20)]
    now = utcnow()
    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        await add_residents_in_bulk(session, [
            {"channel": "telegram", "platform_id": str(chat), "language": "en",
             "commune_code": 15148, "consent_at": now, "consent_version": "test",
             "subscribed": True, "reachable": True, "awaiting": "", "held_text": "",
             "notice_version": CONSENT_VERSION, "created_at": now}
            for chat in chats
        ])
        await session.commit()
    holding = True  # the answers hang: handling is under way at the kill
    released = fake.hold(lambda call: holding and call.method == "sendMessage")
    updates: dict[int, int] = {}  # update id -> chat
    async with serving(fake, database_url, tmp_path) as first, aiohttp.ClientSession() as http:
        url = await first.address() + telegram_path(SECRET)
        for text in ("/help", "/mycomments"):
            for chat in chats:
                fake.push_text(chat, text)
                update = fake.take_update()
                updates[update["update_id"]] = chat
                async with http.post(url, json=update,
                                     headers={SECRET_HEADER: SECRET}) as response:
                    assert response.status == 200  # stored: Telegram forgets it
        await until(lambda: arrived_sends(fake) > 0, BOUND)
        await first.kill()
    assert sends(fake) == Counter()  # nothing was answered before the kill
    before = await processed_update_ids(database_url)
    assert len(before) < len(updates)  # some were not even begun
    holding = False  # (what the dead process asked stays unanswered)
    since = len(fake.calls)
    async with serving(fake, database_url, tmp_path), open_database(database_url) as sm:
        await until_all_handled(sm)
        async with sm() as session:
            stored = await session.scalar(select(func.count()).select_from(InboundUpdate))
    assert stored == len(updates)
    assert await processed_update_ids(database_url) == set(updates)  # every one handled
    answered = Counter(call.chat_id for call in fake.calls[since:]
                       if call.method == "sendMessage" and call.ok)
    # Every update is answered once now: those the dead process had not committed, and
    # those it had, whose answers were stuck on the way out (given again from the database).
    assert before & set(updates)  # the kill came after some answers were committed
    assert answered == Counter(updates.values())
    released.set()


async def test_a_batch_interrupted_by_a_kill_loses_and_doubles_nothing(
    fake, database_url, tmp_path
):
    """Updates posted at once are stored, claimed and recorded as handled in batches (group
    commit); `kill -9` while a batch of them is being handled (their replies hang), then what
    got no 200 is posted again, as Telegram would: every update is handled, each comment
    stored once, every chat answered."""
    chats = [900_000 + number for number in range(24)]
    now = utcnow()
    async with open_database(database_url) as sessionmaker:
        draft = await add_draft(sessionmaker, send=False)
        async with sessionmaker() as session:
            await session.execute(
                update(Draft).where(Draft.id == draft.id).values(status=DraftStatus.OPEN))
            await add_residents_in_bulk(session, [
                {"channel": "telegram", "platform_id": str(chat), "language": "en",
                 "commune_code": 15148, "consent_at": now, "consent_version": "test",
                 "subscribed": True, "reachable": True, "awaiting": f"comment:{draft.id}",
                 "awaiting_since": now, "last_seen_at": now, "held_text": "",
                 "notice_version": CONSENT_VERSION, "created_at": now}
                for chat in chats
            ])
            await session.commit()
    bodies: list[dict] = []  # each chat's comment, then a command: in that order
    for text in ("my comment", "/help"):
        for chat in chats:
            fake.push_text(chat, f"{text} {chat}" if text == "my comment" else text)
            bodies.append(fake.take_update())
    let_through = 10
    held = SendsHeld(fake, let_through)
    acknowledged: set[int] = set()

    async def post(http: aiohttp.ClientSession, url: str, body: dict) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.post(url, json=body, headers={SECRET_HEADER: SECRET}) as response:
                if response.status == 200:
                    acknowledged.add(body["update_id"])

    async with serving(fake, database_url, tmp_path) as first, aiohttp.ClientSession() as http:
        url = await first.address() + telegram_path(SECRET)
        posting = asyncio.gather(*(post(http, url, body) for body in bodies))
        await until(lambda: arrived_sends(fake) > let_through + 4, BOUND)  # several hang
        await first.kill()
        await posting
    assert acknowledged  # (some may have had no answer: Telegram posts those again)
    held.release()  # (what the dead process asked stays unanswered)
    async with serving(fake, database_url, tmp_path) as second, aiohttp.ClientSession() as http:
        url = await second.address() + telegram_path(SECRET)
        for body in bodies:
            if body["update_id"] not in acknowledged:
                await post(http, url, body)
        assert acknowledged == {body["update_id"] for body in bodies}
        async with open_database(database_url) as sessionmaker:
            await until_all_handled(sessionmaker)
            async with sessionmaker() as session:
                stored = await session.scalar(select(func.count()).select_from(InboundUpdate))
                comments = Counter((await session.execute(
                    select(Resident.platform_id, Comment.text)
                    .join(Resident, Comment.resident_id == Resident.id))).all())
    assert stored == len(bodies)  # each update stored once
    assert await processed_update_ids(database_url) == acknowledged  # none lost
    assert comments == Counter({(str(chat), f"my comment {chat}"): 1 for chat in chats})
    assert set(sends(fake)) == set(chats)  # every chat answered
