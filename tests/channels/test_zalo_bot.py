"""The Zalo Bot channel against the fake platform: sending within 2,000 characters, every
send error mapped onto the shared outcomes, polling (unsupported messages, duplicates,
groups, failures, a registered webhook, a prompt stop) and reading updates wrapped or bare."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.channels.channel import (
    ChannelDisabled,
    PermanentFailure,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
)
from bot.channels.zalo_bot import (
    TEXT_LIMIT,
    WebhookRegistered,
    ZaloBotChannel,
    delete_webhook,
    events_of,
    from_settings,
)
from bot.config import Settings
from bot.service import ChatService
from handlers.events import Button, Document, Kind, Picture, Reply
from handlers.i18n import translator
from tests.channels.fake_zalo_bot import FakeZaloBot

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

ALICE = "9001aa"
UNSUPPORTED = (
    "I can only read text messages. Photos, stickers, voice messages, files and "
    "locations are not saved. To comment, type your opinion as text."
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeZaloBot]:
    async with FakeZaloBot() as server:
        yield server


@pytest.fixture
async def channel(fake, sessionmaker) -> AsyncIterator[ZaloBotChannel]:
    made = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker), poll_timeout=1)
    yield made
    await asyncio.wait_for(made.stop(), timeout=20)


@pytest.fixture
async def polling(channel, fake) -> ZaloBotChannel:
    since = len(fake.requests)
    await channel.start()
    await fake.wait_for("getUpdates", since=since, arrived=True)
    return channel


async def reply_to(fake: FakeZaloBot, update: dict, contains: str = "") -> str:
    """Push an update; the first message to its chat from now on containing `contains`."""
    chat = update["message"]["chat"]["id"]
    since = len(fake.calls)
    fake.push(update)
    call = await fake.wait_for(lambda c: c.method == "sendMessage" and c.ok
                               and c.chat_id == chat and contains in c.text, since=since)
    return call.text


# ---- sending ------------------------------------------------------------------------------------


async def test_long_text_is_sent_in_parts_within_the_limit(channel, fake):
    paragraphs = [f"Đoạn {i}: " + "lời góp ý về dự thảo " * 12 for i in range(40)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 3 * TEXT_LIMIT

    message_id = await channel.send(ALICE, Reply(text))

    sent = fake.texts_to(ALICE)
    assert len(sent) >= 4 and all(len(part) <= TEXT_LIMIT for part in sent)
    # Cut between paragraphs: nothing lost, nothing cut mid-paragraph.
    assert [p for part in sent for p in part.split("\n\n")] == paragraphs
    assert message_id == fake.sent[ALICE][-1]["message_id"]


async def test_one_long_word_is_cut_within_the_limit(channel, fake):
    await channel.send(ALICE, Reply("x" * (TEXT_LIMIT * 2 + 5)))
    assert [len(part) for part in fake.texts_to(ALICE)] == [TEXT_LIMIT, TEXT_LIMIT, 5]


async def test_choices_are_numbered_lines(channel, fake):
    reply = Reply("Bạn chọn gì?", [[Button("a", "Đồng ý"), Button("b", "Không đồng ý")],
                                   [Button("c", "Ý kiến khác")]])
    await channel.send(ALICE, reply)
    (text,) = fake.texts_to(ALICE)
    assert text == "Bạn chọn gì?\n\n1. Đồng ý   2. Không đồng ý\n3. Ý kiến khác"


async def test_pictures_and_files_go_as_their_caption(channel, fake):
    await channel.send(ALICE, Picture(b"\x89PNG", caption="Kết quả biểu quyết"))
    await channel.send(ALICE, Document("comments.csv", b"a,b", caption="Góp ý đã xuất"))
    assert fake.texts_to(ALICE) == ["Kết quả biểu quyết", "Góp ý đã xuất"]
    with pytest.raises(PermanentFailure):
        await channel.send(ALICE, Picture(b"\x89PNG"))


@pytest.mark.parametrize(
    ("code", "description", "http_status", "expected"),
    [
        (429, "Too Many Requests", None, Throttled),
        (403, "Forbidden: the user has blocked the bot", None, Unreachable),
        (403, "Forbidden", 200, Unreachable),  # an error inside an HTTP 200 answer
        (400, "Bad Request: chat not found", None, Unreachable),
        (400, "Bad Request: text is too long", None, PermanentFailure),
        (404, "Not Found", None, PermanentFailure),
        (401, "Unauthorized", None, ChannelDisabled),
        (500, "Internal Server Error", None, TemporaryFailure),
        (502, "Bad Gateway", None, TemporaryFailure),
        (503, "Service Unavailable", 200, TemporaryFailure),
    ],
)
async def test_send_errors_are_mapped(channel, fake, code, description, http_status, expected):
    fake.fail_next("sendMessage", ALICE, code=code, description=description,
                   retry_after=7 if code == 429 else None, http_status=http_status)
    with pytest.raises(SendError) as raised:
        await channel.send(ALICE, Reply("Xin chào"))
    assert type(raised.value) is expected
    assert fake.token not in str(raised.value)
    if expected is Throttled:
        assert raised.value.retry_after == 7  # type: ignore[attr-defined]


async def test_a_throttle_without_retry_after_still_waits(channel, fake):
    fake.fail_next("sendMessage", code=429)
    with pytest.raises(Throttled) as raised:
        await channel.send(ALICE, Reply("Xin chào"))
    assert raised.value.retry_after > 0


async def test_no_answer_is_a_temporary_failure_without_the_token(sessionmaker):
    async with FakeZaloBot() as gone:
        url, token = gone.url, gone.token  # the server stops: nothing listens there
    channel = ZaloBotChannel(token, url, ChatService(sessionmaker))
    try:
        with pytest.raises(TemporaryFailure) as raised:
            await channel.send(ALICE, Reply("Xin chào"))
    finally:
        await channel.stop()
    assert token not in str(raised.value)


# ---- receiving by polling ----------------------------------------------------------------------


async def test_start_and_unsupported_messages_are_answered(polling, fake):
    greeting = await reply_to(fake, fake.text_update(ALICE, "/start"), "/delete")
    assert "1. " in greeting  # the consent choices, as numbered lines
    expected = translator("vi")(UNSUPPORTED)
    assert await reply_to(fake, fake.update("message.image.received", ALICE,
                                            photo_url="https://example.invalid/a.jpg")) == expected
    assert await reply_to(fake, fake.update("message.sticker.received", ALICE,
                                            sticker="abc")) == expected
    assert await reply_to(fake, fake.update("message.unsupported.received", ALICE)) == expected
    assert await reply_to(fake, fake.update("message.video.received", ALICE)) == expected


async def test_an_update_polled_twice_is_handled_once(polling, fake):
    update = fake.text_update(ALICE, "/start")
    fake.push(update)
    fake.push(update)
    # A later update of the chat is handled after the earlier ones (in order).
    await reply_to(fake, fake.text_update(ALICE, "/help"), "/delete")
    hello = translator("vi")("Hello! Ý kiến lets you read draft policies of your commune and "
                             "send your comments and votes to the officials drafting them.")
    assert sum(hello in text for text in fake.texts_to(ALICE)) == 1


async def test_group_messages_are_ignored(polling, fake):
    fake.push_text("group-1", "/start", chat_type="GROUP")
    await reply_to(fake, fake.text_update(ALICE, "/start"), "/delete")
    assert fake.texts_to("group-1") == []


async def test_listed_updates_are_all_handled(sessionmaker):
    async with FakeZaloBot(batch=True) as fake:
        channel = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker),
                                 poll_timeout=1)
        fake.push_text("a1", "/start")
        fake.push_text("b2", "/start")
        await channel.start()
        try:
            for chat in ("a1", "b2"):
                await fake.wait_for(lambda c, chat=chat: c.method == "sendMessage"
                                    and c.chat_id == chat)
        finally:
            await asyncio.wait_for(channel.stop(), timeout=20)


async def test_polling_goes_on_after_failures_and_logs_no_token(polling, fake, caplog):
    polling.first_backoff = 0.01
    fake.fail_next("getUpdates", code=502)
    fake.fail_next("getUpdates", code=500, description="Internal error", http_status=200)
    since = len(fake.calls)
    await fake.wait_for(lambda c: c.method == "getUpdates" and c.ok is False
                        and c.error is not None and c.error["error_code"] == 500, since=since)
    await reply_to(fake, fake.text_update(ALICE, "/start"), "/delete")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("getUpdates failed" in message for message in warnings)
    assert not any(fake.token in r.getMessage() for r in caplog.records)


async def test_a_reply_is_throttled_then_sent(polling, fake):
    fake.fail_next("sendMessage", ALICE, code=429, retry_after=1)
    await reply_to(fake, fake.text_update(ALICE, "/start"), "/delete")
    assert [call.ok for call in fake.calls_to("sendMessage", ALICE)][:2] == [False, True]


async def test_polling_stops_promptly_during_a_long_poll(sessionmaker):
    async with FakeZaloBot(poll_cap=600) as fake:
        channel = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker),
                                 poll_timeout=300)
        await channel.start()
        await fake.wait_for("getUpdates", arrived=True)
        # The poll asked to wait 300 s; stopping does not wait for it.
        await asyncio.wait_for(channel.stop(), timeout=5)
        assert fake.calls_to("getUpdates") == []  # still unanswered when the bot left


async def test_polling_refuses_while_a_webhook_is_registered(sessionmaker, fake):
    fake.webhook = {"url": "https://ykien.example.gov.vn/zalobot/abc", "secret_token": "s" * 8}
    channel = ZaloBotChannel(fake.token, fake.url, ChatService(sessionmaker), poll_timeout=1)
    with pytest.raises(WebhookRegistered) as raised:
        await channel.start()
    await channel.stop()
    assert fake.calls_to("getUpdates") == [] and fake.calls_to("deleteWebhook") == []
    assert "ykien webhook delete" in raised.value.explain(translator("en"))
    assert "https://ykien.example.gov.vn/zalobot/abc" in raised.value.explain(translator("vi"))
    # Removing it, as the message says, lets polling start.
    assert await delete_webhook(fake.token, fake.url) == "https://ykien.example.gov.vn/zalobot/abc"
    await channel.start()
    await asyncio.wait_for(channel.stop(), timeout=20)


@pytest.mark.allow_errors
async def test_a_refused_token_stops_polling_with_an_error(polling, fake, caplog):
    fake.fail_next("getUpdates", code=401, description="Unauthorized")
    await asyncio.wait_for(polling._poller, timeout=10)  # type: ignore[arg-type]
    assert any(r.levelno == logging.ERROR and "YKIEN_ZALO_BOT_TOKEN" in r.getMessage()
               for r in caplog.records)


async def test_a_wrong_token_stops_the_start_with_a_clear_reason(sessionmaker, fake):
    channel = ZaloBotChannel("999:wrong-token", fake.url, ChatService(sessionmaker))
    with pytest.raises(RuntimeError, match="token was refused") as raised:
        await channel.start()
    assert "wrong-token" not in str(raised.value)


async def test_configured_from_settings(service):
    settings = Settings(zalo_bot_token="1:t", zalo_bot_webhook_secret="secret-123",
                        zalo_bot_api_url="http://127.0.0.1:9")
    channel = from_settings(settings, service)
    assert channel.name == "zalobot" and channel.capabilities.buttons_per_message == 0
    assert channel.webhook_path.startswith("/zalobot/") and "secret" not in channel.webhook_path


# ---- reading updates -----------------------------------------------------------------------------


def _update(message_id: str = "m1", **content) -> dict:
    return {"event_name": "message.text.received",
            "message": {"message_id": message_id, "chat": {"id": ALICE, "chat_type": "PRIVATE"},
                        "text": "xin chào", **content}}


@pytest.mark.parametrize("wrap", [
    lambda u: u, lambda u: {"ok": True, "result": u}, lambda u: [u],
    lambda u: {"ok": True, "result": [u]},
])
def test_updates_are_read_wrapped_or_bare(wrap):
    (event,) = events_of(wrap(_update()))
    assert (event.channel, event.user_id, event.kind, event.text) == (
        "zalobot", ALICE, Kind.TEXT, "xin chào")
    assert event.update_id == "message.text.received:m1"


def test_a_long_message_id_keeps_the_update_key_within_storage():
    (event,) = events_of(_update("x" * 200))
    (other,) = events_of(_update("x" * 199 + "y"))
    assert len(event.update_id) <= 64 and event.update_id != other.update_id


@pytest.mark.parametrize("payload", [
    None, [], {}, {"ok": True, "result": {}}, {"ok": False, "error_code": 408},
    {"event_name": "message.text.received"},
    {"event_name": "message.text.received", "message": {"message_id": "m1"}},
])
def test_what_is_no_update_is_refused(payload):
    with pytest.raises(ValueError):
        events_of(payload)
