"""Broadcast sending through the aiohttp sender, driven through `TelegramChannel.send` against
the fake Bot API: error mapping, split text, message ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.channel import PermanentFailure, TemporaryFailure, Throttled, Unreachable
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.sender import Misconfigured
from handlers.events import Button, Reply
from tests.channels.fake_telegram import FakeTelegram


class NoService:
    async def handle(self, event, capabilities=None):  # pragma: no cover - nothing is received here
        return []

    async def sent(self, channel, user_id, message_id, message) -> None:
        pass


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def channel(fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    # Not started: `send` needs no polling, only the Bot API address.
    telegram = TelegramChannel(fake.token, fake.url, NoService(), messages_per_second=0)
    yield telegram
    await telegram.stop()
    await telegram.sender.close()


async def test_a_message_with_buttons_is_posted_as_json_and_its_id_returned(
    fake: FakeTelegram, channel: TelegramChannel
) -> None:
    reply = Reply("Dự thảo mới", [[Button("c:1", "Góp ý")], [Button("v:1:2", "Đồng ý")]])
    first = await channel.send("42", reply)
    second = await channel.send("42", Reply("Lần hai"))
    assert (first, second) == ("1", "2")
    [message, _] = fake.messages_to(42)
    assert message["text"] == "Dự thảo mới"
    assert fake.buttons(message) == [[("Góp ý", "c:1")], [("Đồng ý", "v:1:2")]]


async def test_long_text_is_split_with_the_buttons_on_the_last_part(
    fake: FakeTelegram, channel: TelegramChannel
) -> None:
    text = "\n\n".join(f"Đoạn {n}: " + "chữ " * 300 for n in range(8))  # ~9,700 characters
    last = await channel.send("42", Reply(text, [[Button("c:1", "Góp ý")]]))
    messages = fake.messages_to(42)
    assert len(messages) == 3
    assert last == str(messages[-1]["message_id"])
    assert [fake.buttons(m) for m in messages] == [[], [], [[("Góp ý", "c:1")]]]
    assert "\n\n".join(m["text"] for m in messages) == text


@pytest.mark.parametrize(
    ("code", "description", "error"),
    [
        (403, None, Unreachable),
        (400, "Bad Request: chat not found", Unreachable),
        (400, "Bad Request: can't parse entities", PermanentFailure),
        (500, None, TemporaryFailure),
        (502, None, TemporaryFailure),
    ],
)
async def test_bot_api_errors_map_onto_send_errors(
    fake: FakeTelegram, channel: TelegramChannel, code: int, description: str | None, error
) -> None:
    fake.fail_next("sendMessage", 42, code=code, description=description)
    with pytest.raises(error) as raised:
        await channel.send("42", Reply("Xin chào"))
    assert type(raised.value) is error  # not a subclass such as Misconfigured
    assert fake.token not in str(raised.value)


async def test_flood_control_gives_its_retry_after(
    fake: FakeTelegram, channel: TelegramChannel
) -> None:
    fake.fail_next("sendMessage", 42, code=429, retry_after=7)
    with pytest.raises(Throttled) as raised:
        await channel.send("42", Reply("Xin chào"))
    assert raised.value.retry_after == 7


async def test_a_wrong_token_is_configuration_trouble_and_the_token_stays_out(
    fake: FakeTelegram,
) -> None:
    telegram = TelegramChannel("999:wrong", fake.url, NoService())
    try:
        with pytest.raises(Misconfigured) as raised:
            await telegram.send("42", Reply("Xin chào"))
        assert isinstance(raised.value, TemporaryFailure)
        assert "999:wrong" not in str(raised.value)
    finally:
        await telegram.sender.close()


async def test_an_unreachable_api_is_a_temporary_failure_without_the_token(
    fake: FakeTelegram,
) -> None:
    url = fake.url
    await fake.stop()  # nothing listens there any more
    telegram = TelegramChannel(fake.token, url, NoService())
    try:
        with pytest.raises(TemporaryFailure) as raised:
            await telegram.send("42", Reply("Xin chào"))
        assert type(raised.value) is TemporaryFailure
        assert fake.token not in str(raised.value)
    finally:
        await telegram.sender.close()


async def test_a_chat_id_that_is_not_a_number_is_refused(channel: TelegramChannel) -> None:
    with pytest.raises(PermanentFailure):
        await channel.send("not-a-chat", Reply("Xin chào"))
