"""The Zalo OA channel end to end: signed events POSTed to the real webhook server, answered
through the fake Zalo OA API; broadcasts by the real delivery worker; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from bot.channels.pacing import ChannelLimiter
from bot.channels.zalo_oa.channel import ZaloOAChannel, render
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from bot.web.webhook import WebhookReceiver, make_app
from handlers.events import Button, Reply
from storage import tokens
from storage.drafts import broadcast
from storage.models import (
    VIETNAM,
    ChannelToken,
    Comment,
    Delivery,
    DeliveryStatus,
    Draft,
    InboundUpdate,
    Resident,
    Vote,
    utcnow,
)
from tests.channels.fake_zalo import (
    APP_ID,
    APP_SECRET,
    OA_SECRET,
    Call,
    FakeZalo,
    follow_event,
    media_event,
    press_event,
    signed,
    text_event,
)
from tests.chat import CAM_TU, make_draft

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

ALICE, BOB = "5001", "5002"


@dataclass
class OA:
    """A running webhook server with the real OA channel, talking to the fake Zalo."""

    fake: FakeZalo
    channel: ZaloOAChannel
    receiver: WebhookReceiver
    url: str
    http: aiohttp.ClientSession
    sessionmaker: Any

    async def post(self, event: dict | None = None, *, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> int:
        if event is not None:
            body, signed_headers = signed(event)
            headers = signed_headers if headers is None else headers
        async with self.http.post(self.url + self.channel.webhook_path, data=body,
                                  headers=headers or {}) as response:
            await response.read()
            return response.status

    async def settle(self) -> None:
        """Wait until every accepted event is handled."""
        await asyncio.wait_for(
            asyncio.gather(*self.receiver._in_flight.values(), return_exceptions=True), 20)

    async def say(self, event: dict, user: str) -> list[Call]:
        """POST a resident's event; the messages the OA answered with."""
        before = len(self.fake.messages(user))
        assert await self.post(event) == 200
        await self.settle()
        return self.fake.messages(user)[before:]

    def worker(self) -> DeliveryWorker:
        return DeliveryWorker(self.sessionmaker, {"zalo": self.channel})


def button(calls: list[Call], label_part: str) -> dict[str, str]:
    found = [b for call in calls for b in call.buttons if label_part in b["title"]]
    assert found, f"no button with {label_part!r} in {[c.buttons for c in calls]}"
    return found[-1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    server = FakeZalo()
    await server.start()
    yield server
    await server.close()


def make_channel(fake: FakeZalo, service: ChatService, **extra: Any) -> ZaloOAChannel:
    access, refresh = extra.pop("pair", None) or fake.issue_pair()
    return ZaloOAChannel(
        service, app_id=APP_ID, app_secret=APP_SECRET, oa_secret=OA_SECRET,
        api_url=fake.url, oauth_url=fake.url, seed_access=access, seed_refresh=refresh,
        public_url="https://ykien.example", limiter=ChannelLimiter(0), **extra,
    )


@pytest.fixture
async def oa(fake, sessionmaker) -> AsyncIterator[OA]:
    channel = make_channel(fake, ChatService(sessionmaker))
    await channel.start_webhook()
    receiver = WebhookReceiver(sessionmaker, channel)
    runner = web.AppRunner(make_app([receiver], extra_routes=channel.extra_routes()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        yield OA(fake, channel, receiver, f"http://127.0.0.1:{port}", http, sessionmaker)
    await receiver.close()
    await runner.cleanup()
    await channel.stop()


async def count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def subscribe(oa: OA, user: str) -> None:
    greeting = await oa.say(follow_event(user), user)
    agreed = await oa.say(press_event(user, button(greeting, "đồng ý")), user)
    assert "xã/phường nào" in agreed[-1].text
    communes = await oa.say(text_event(user, "cam tu"), user)
    done = await oa.say(press_event(user, button(communes, "Cẩm Tú")), user)
    assert done


async def queue_draft(sessionmaker, **extra: Any) -> int:
    draft = await make_draft(sessionmaker, communes=(CAM_TU,), **extra)
    async with sessionmaker() as session:
        await broadcast(session, await session.get(type(draft), draft.id), utcnow())
        await session.commit()
    return draft.id


async def statuses(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Delivery.status).order_by(Delivery.id)))


# ---- the resident's flow ------------------------------------------------------------------


async def test_follow_consent_commune_draft_comment_vote(oa):
    await subscribe(oa, ALICE)
    draft_id = await queue_draft(oa.sessionmaker, title="Chợ mới")
    await oa.worker().run_once()
    shown = oa.fake.messages(ALICE)[-1]
    assert "Chợ mới" in shown.text
    assert 0 < len(shown.buttons) <= 5
    assert all(b["type"] == "oa.query.hide" and b["payload"].startswith("#b:")
               for b in shown.buttons)
    asked = await oa.say(press_event(ALICE, button([shown], "Góp ý")), ALICE)
    assert asked
    receipt = await oa.say(text_event(ALICE, "Nên làm thêm bãi đỗ xe"), ALICE)
    assert any(f"{draft_id}-1" in call.text for call in receipt)
    assert await count(oa.sessionmaker, Comment, Comment.draft_id == draft_id) == 1
    vote = [b for b in shown.buttons if "Yes" in b["title"]]
    assert vote, shown.buttons
    await oa.say(press_event(ALICE, vote[0]), ALICE)
    assert await count(oa.sessionmaker, Vote, Vote.draft_id == draft_id) == 1


async def test_photos_and_stickers_get_the_text_only_answer(oa):
    await subscribe(oa, ALICE)
    for kind in ("image", "sticker", "audio", "file", "location"):
        answer = await oa.say(media_event(ALICE, kind), ALICE)
        assert answer and "tin nhắn chữ" in answer[-1].text, kind


async def test_unfollow_stops_sending(oa):
    await subscribe(oa, ALICE)
    assert await oa.say(follow_event(ALICE, "unfollow"), ALICE) == []
    async with oa.sessionmaker() as session:
        resident = await session.scalar(select(Resident).where(Resident.platform_id == ALICE))
        assert resident is not None and not resident.reachable


# ---- refused and repeated webhooks --------------------------------------------------------


def _forged(event: dict) -> tuple[bytes, dict[str, str]]:
    body, headers = signed(event)
    return body, {**headers, "X-ZEvent-Signature": "mac=" + "0" * 64}


REFUSALS = {
    "unsigned": (lambda e: (signed(e)[0], {}), 403),
    "forged": (_forged, 403),
    "other secret": (lambda e: signed(e, secret="not-ours"), 403),
    "tampered body": (lambda e: (signed(e)[0].replace(b"hello", b"HELLO"), signed(e)[1]), 403),
    "replayed": (lambda e: signed({**e, "timestamp": str(int(e["timestamp"]) - 6 * 60_000)}),
                 403),
    "from the future": (
        lambda e: signed({**e, "timestamp": str(int(e["timestamp"]) + 6 * 60_000)}), 403),
    "unknown app": (lambda e: signed({**e, "app_id": "999"}), 403),
    "malformed": (lambda e: (b"{not json", {"X-ZEvent-Signature": "mac=00"}), 400),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_refused_webhooks_store_nothing(oa, case):
    make, expected = REFUSALS[case]
    body, headers = make(text_event(ALICE, "hello"))
    assert await oa.post(body=body, headers=headers) == expected
    await oa.settle()
    assert await count(oa.sessionmaker, InboundUpdate) == 0
    assert await count(oa.sessionmaker, Resident) == 0
    assert oa.fake.calls == []


async def test_the_oas_own_echo_is_acknowledged_and_not_stored(oa):
    echo = text_event(ALICE, "hello")
    echo["event_name"] = "oa_send_text"
    assert await oa.post(echo) == 200
    assert await count(oa.sessionmaker, InboundUpdate) == 0


async def test_a_duplicate_delivery_is_processed_once(oa):
    await subscribe(oa, ALICE)
    draft_id = await queue_draft(oa.sessionmaker)
    await oa.worker().run_once()
    shown = oa.fake.messages(ALICE)[-1]
    await oa.say(press_event(ALICE, button([shown], "Góp ý")), ALICE)
    event = text_event(ALICE, "một lần thôi", msg_id="dup-1")
    first = await oa.say(event, ALICE)
    again = await oa.say(event, ALICE)
    assert first and again == []
    assert await count(oa.sessionmaker, Comment, Comment.draft_id == draft_id) == 1


# ---- sending: error codes -----------------------------------------------------------------


async def _one_queued(oa: OA) -> None:
    await subscribe(oa, ALICE)
    await queue_draft(oa.sessionmaker)


@pytest.mark.parametrize(("code", "status"), [
    (-213, DeliveryStatus.UNREACHABLE), (-227, DeliveryStatus.UNREACHABLE),
    (-244, DeliveryStatus.UNREACHABLE), (-230, DeliveryStatus.HELD),
    (-232, DeliveryStatus.HELD), (-32, DeliveryStatus.PENDING), (-234, DeliveryStatus.PENDING),
])
async def test_error_codes_become_row_outcomes(oa, code, status):
    await _one_queued(oa)
    oa.fake.fail_next(code)
    await oa.worker().run_once()
    async with oa.sessionmaker() as session:
        row = await session.scalar(select(Delivery))
    assert row.status == status
    if status != DeliveryStatus.UNREACHABLE:
        assert row.attempts == 0  # not the row's fault: no attempt used
    if code == -234:
        local = row.not_before.astimezone(VIETNAM)
        assert (local.hour, local.minute) == (6, 0)


@pytest.mark.allow_errors
async def test_a_configuration_error_disables_the_channel(oa, capsys):
    await _one_queued(oa)
    await queue_draft(oa.sessionmaker, title="Second")
    oa.fake.fail_next(-124)
    await oa.worker().run_once()
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.PENDING] * 2
    sent = len(oa.fake.calls)
    await oa.worker().run_once()  # disabled: Zalo is not even asked
    assert len(oa.fake.calls) == sent
    async with oa.sessionmaker() as session:
        assert "-124" in (await tokens.get(session, "zalo")).problem


async def test_an_expired_token_is_refreshed_and_the_message_retried_once(oa):
    await _one_queued(oa)
    oa.fake.access_tokens.clear()  # Zalo now says -216 to the stored token
    await oa.worker().run_once()
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.SENT]
    assert len(oa.fake.refreshes()) == 1
    tried = [call for call in oa.fake.calls if call.path == "/v3.0/oa/message/cs"]
    assert [call.answer["error"] for call in tried[-2:]] == [-216, 0]


# ---- tokens -------------------------------------------------------------------------------


async def test_a_token_about_to_expire_is_refreshed_before_sending(oa):
    await _one_queued(oa)
    async with oa.sessionmaker() as session, session.begin():
        await session.execute(update(ChannelToken).values(
            access_expires_at=utcnow() + timedelta(minutes=30)))
    await oa.channel.keeper.load()
    await oa.worker().run_once()
    assert len(oa.fake.refreshes()) == 1
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.SENT]
    cs = [c for c in oa.fake.calls if c.path.startswith("/v3.0")]
    assert [c.answer["error"] for c in cs][-1] == 0 and all(
        c.answer["error"] == 0 for c in cs)  # never refused: refreshed first


@pytest.mark.allow_errors
async def test_a_refused_refresh_disables_and_status_says_run_auth(oa):
    await _one_queued(oa)
    oa.fake.access_tokens.clear()
    oa.fake.refuse_refresh = True
    await oa.worker().run_once()
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.PENDING]
    async with oa.sessionmaker() as session:
        assert "ykien zalo auth" in (await tokens.get(session, "zalo")).problem


async def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    fake, sessionmaker
):
    first = make_channel(fake, ChatService(sessionmaker))
    second = make_channel(fake, ChatService(sessionmaker))
    await first.start_webhook()
    await second.start_webhook()
    stale = first.keeper._access
    fake.refresh_gate = asyncio.Event()
    both = asyncio.gather(first.keeper.refresh(stale), second.keeper.refresh(stale))
    await fake.wait_for(lambda: fake.refreshes_waiting == 1)  # one holds the lock at Zalo
    await asyncio.sleep(0.2)  # (not timing: gives the other a chance to overtake, if it could)
    fake.refresh_gate.set()
    tokens_now = await asyncio.wait_for(both, 20)
    assert tokens_now[0] == tokens_now[1] and tokens_now[0] != stale
    assert len(fake.refreshes()) == 1
    await first.stop()
    await second.stop()


# ---- the messaging window -----------------------------------------------------------------


async def _silent_for(sessionmaker, user: str, days: int) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Resident).where(Resident.platform_id == user).values(
            last_seen_at=utcnow() - timedelta(days=days)))


async def test_a_draft_held_for_the_window_goes_when_the_resident_writes(oa):
    await subscribe(oa, ALICE)
    await _silent_for(oa.sessionmaker, ALICE, 8)
    await queue_draft(oa.sessionmaker, title="Đèn đường")
    await queue_draft(oa.sessionmaker, title="Hết hạn", deadline=utcnow() + timedelta(hours=1))
    calls = len(oa.fake.calls)
    await oa.worker().run_once()
    assert len(oa.fake.calls) == calls  # held without asking Zalo
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.HELD] * 2
    async with oa.sessionmaker() as session, session.begin():  # the second one's deadline passes
        await session.execute(update(Draft).where(Draft.title == "Hết hạn").values(
            deadline=utcnow() - timedelta(minutes=1)))
    await oa.say(text_event(ALICE, "/help"), ALICE)
    assert await statuses(oa.sessionmaker) == [DeliveryStatus.PENDING, DeliveryStatus.EXPIRED]
    await oa.worker().run_once()
    texts = "\n".join(call.text for call in oa.fake.messages(ALICE))
    assert "Đèn đường" in texts and "Hết hạn" not in texts


async def test_promotion_reaches_a_silent_resident_once_a_day(fake, sessionmaker):
    channel = make_channel(fake, ChatService(sessionmaker), promotion=True,
                           now=lambda: utcnow().replace(hour=3))  # 10:00 in Vietnam
    service = channel.service
    from tests.chat import subscribe as subscribe_directly

    await subscribe_directly(service, ALICE)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Resident).values(channel="zalo"))
    await queue_draft(sessionmaker, title="Một")
    await queue_draft(sessionmaker, title="Hai")
    fake.fail_next(-230, -230)
    await DeliveryWorker(sessionmaker, {"zalo": channel}).run_once()
    promotions = [c for c in fake.messages() if c.path.endswith("/promotion")]
    assert len(promotions) == 1
    assert sorted(await statuses(sessionmaker)) == [DeliveryStatus.PENDING, DeliveryStatus.SENT]
    await channel.stop()


# ---- rendering within the OA's limits -----------------------------------------------------


def test_rendering_keeps_within_five_buttons_titles_and_2000_characters():
    buttons = [[Button(f"b:{i}", "x" * 150)] for i in range(7)]
    text = ("Một đoạn văn. " * 100 + "\n\n") * 3
    parts = render(Reply(text, buttons))
    assert all(len(part) <= 2000 for part, _ in parts)
    assert all(len(group) <= 5 for _, group in parts)
    assert sum(len(group) for _, group in parts) == 7
    assert "".join(part for part, _ in parts).replace(" ", "").replace("\n", "").startswith(
        "Mộtđoạnvăn.")
    from bot.channels.zalo_oa.api import cs_body

    body = cs_body("u", parts[-2][0], parts[-2][1])
    assert all(len(b["title"]) <= 100 for b in body["message"]["attachment"]["payload"][
        "buttons"])
    assert json.dumps(body)


async def test_held_messages_of_a_resident_who_never_returns_expire(sessionmaker):
    """Housekeeping ends held rows once too late, so they are over and purged in time."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from storage import outbox
    from storage.drafts import broadcast
    from storage.models import Delivery, DeliveryStatus, utcnow
    from tests.chat import make_draft, subscribe

    service = ChatService(sessionmaker)
    await subscribe(service, "held-1")
    soon = await make_draft(sessionmaker, title="Soon over", open_now=False,
                            deadline=utcnow() + timedelta(hours=1))
    later = await make_draft(sessionmaker, title="Still open", open_now=False)
    async with sessionmaker() as session, session.begin():
        for draft in (soon, later):
            await broadcast(session, await session.get(type(draft), draft.id), utcnow())
        await session.execute(update(Delivery).values(status=DeliveryStatus.HELD.value))
    async with sessionmaker() as session, session.begin():
        assert await outbox.expire_held(session, utcnow()) == 0  # nothing over yet
        assert await outbox.expire_held(session, utcnow() + timedelta(hours=2)) == 1
    async with sessionmaker() as session:
        rows = {row.draft_id: row.status for row in await session.scalars(select(Delivery))}
    assert rows == {soon.id: DeliveryStatus.EXPIRED, later.id: DeliveryStatus.HELD}
