"""The real Telegram adapter against the fake Bot API server, with a scripted service."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from telegram import Update

from bot.channels.channel import PermanentFailure, TemporaryFailure, Throttled, Unreachable
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.receiving import to_incoming
from bot.channels.telegram.rendering import split_text
from handlers.commands import command_menu
from handlers.events import Button, Document, Incoming, Kind, Outgoing, Picture, Reply
from handlers.logref import chat_ref
from tests.channels.fake_telegram import Call, FakeTelegram

ALICE, BOB = 42, 43  # residents' private chats

Script = Callable[[Incoming], list[Outgoing] | Awaitable[list[Outgoing]]]


class StubService:
    """Records events and sent messages; answers with `script(event)` (which may await)."""

    def __init__(self) -> None:
        self.events: list[Incoming] = []
        self.sent_calls: list[tuple[str, str, str, Outgoing]] = []
        self.script: Script = lambda event: [
            Reply(f"echo {event.text or event.choice}")
        ]
        self._changed = asyncio.Condition()

    async def handle(self, event: Incoming, capabilities: object = None) -> list[Outgoing]:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        replies = self.script(event)
        return await replies if inspect.isawaitable(replies) else replies

    async def sent(self, channel: str, user_id: str, message_id: str, message: Outgoing) -> None:
        async with self._changed:
            self.sent_calls.append((channel, user_id, message_id, message))
            self._changed.notify_all()

    async def wait_event(self, predicate: Callable[[Incoming], bool]) -> Incoming:
        """The first recorded event matching; bounded wait."""
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: any(map(predicate, self.events)))
        return next(event for event in self.events if predicate(event))

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: len(self.sent_calls) >= count)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def service() -> StubService:
    return StubService()


@pytest.fixture
async def channel(fake: FakeTelegram, service: StubService) -> AsyncIterator[TelegramChannel]:
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=1)
    await telegram.start()
    yield telegram
    # Only a guard against a hang, above the channel's own bounded stop: cut short, its
    # teardown would leave HTTP sessions open (reported in whichever test runs next).
    async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
        await telegram.stop()


def sent_to(chat_id: int) -> Callable[[Call], bool]:
    return lambda call: call.method == "sendMessage" and call.chat_id == chat_id and call.ok


WELCOME = Reply(
    "Xin chào! Bạn đồng ý với thông báo về dữ liệu cá nhân?",
    buttons=[
        [Button("consent:yes", "Đồng ý"), Button("consent:no", "Từ chối")],
        [Button("lang:en", "English")],
    ],
)


async def test_start_sets_command_menus(channel: TelegramChannel, fake: FakeTelegram) -> None:
    fake.push_text(ALICE, "/help")  # so the first long poll returns at once
    await fake.wait_for("getUpdates")
    assert [c["command"] for c in fake.commands[""]] == list(command_menu("vi"))
    assert [c["description"] for c in fake.commands[""]] == list(command_menu("vi").values())
    assert [c["description"] for c in fake.commands["en"]] == list(command_menu("en").values())
    assert fake.commands[""][0]["description"] != fake.commands["en"][0]["description"]
    assert fake.calls_to("getMe") and fake.calls_to("deleteWebhook")
    polls = fake.calls_to("getUpdates")
    assert polls[0].params["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ]


async def test_start_command_gets_keyboard(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    service.script = lambda event: [WELCOME]
    fake.push_text(ALICE, "/start@ykien_test_bot", language_code="en")

    call = await fake.wait_for(sent_to(ALICE))
    assert service.events == [
        Incoming(
            channel="telegram",
            user_id=str(ALICE),
            kind=Kind.TEXT,
            text="/start",
            update_id=str(fake.last_update_id),
            language_hint="en",
        )
    ]
    assert call.params["text"] == WELCOME.text
    [shown] = fake.messages_to(ALICE)
    assert fake.buttons(shown) == [
        [("Đồng ý", "consent:yes"), ("Từ chối", "consent:no")],
        [("English", "lang:en")],
    ]


async def test_button_press_is_a_choice_and_is_answered(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    service.script = lambda event: [WELCOME] if event.kind == Kind.TEXT else [Reply("Cảm ơn")]
    fake.push_text(ALICE, "/start")
    await fake.wait_for(sent_to(ALICE))
    [welcome] = fake.messages_to(ALICE)

    query_id = fake.push_callback(ALICE, "consent:yes", welcome["message_id"])

    answered = await fake.wait_for("answerCallbackQuery")
    assert answered.params["callback_query_id"] == query_id
    event = await service.wait_event(lambda e: e.kind == Kind.CHOICE)
    assert (event.user_id, event.choice, event.text) == (str(ALICE), "consent:yes", "")
    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "Cảm ơn")


async def test_edit_reply_replaces_the_message_with_the_button(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    page2 = Reply("Trang 2", buttons=[[Button("page:1", "‹ Trước")]], draft_id=3, edit=True)
    service.script = lambda event: [WELCOME] if event.kind == Kind.TEXT else [page2]
    fake.push_text(ALICE, "/start")
    await fake.wait_for(sent_to(ALICE))
    [welcome] = fake.messages_to(ALICE)

    fake.push_callback(ALICE, "page:2", welcome["message_id"])

    edit = await fake.wait_for("editMessageText")
    assert edit.params["message_id"] == welcome["message_id"]
    [shown] = fake.messages_to(ALICE)  # no new message
    assert shown["text"] == "Trang 2"
    assert fake.buttons(shown) == [[("‹ Trước", "page:1")]]
    await service.wait_sent(2)  # the welcome, then the edited page
    assert service.sent_calls[1] == ("telegram", str(ALICE), str(welcome["message_id"]), page2)


async def test_failed_edit_falls_back_to_a_new_message(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    service.script = lambda event: [Reply("Mới", edit=True)]
    fake.fail_next("editMessageText", code=400, description="Bad Request: message can't be edited")
    fake.push_callback(ALICE, "page:2", message_id=99)

    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "Mới")
    assert not fake.calls_to("editMessageText")[0].ok


async def test_reply_to_is_filled_from_the_replied_message(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    draft = Reply("Dự thảo: Quy định về chợ", draft_id=7)
    service.script = lambda event: [draft] if event.text == "/drafts" else [Reply("Đã nhận")]
    fake.push_text(ALICE, "/drafts")
    await fake.wait_for(sent_to(ALICE))
    [shown] = fake.messages_to(ALICE)
    await service.wait_sent(1)
    # The service learns the Telegram id of the message showing the draft.
    assert service.sent_calls[0] == ("telegram", str(ALICE), str(shown["message_id"]), draft)

    fake.push_text(ALICE, "Nên mở cửa sớm hơn", reply_to=shown["message_id"])

    event = await service.wait_event(lambda e: e.text.startswith("Nên"))
    assert event.reply_to == str(shown["message_id"])


@pytest.mark.parametrize(
    ("push", "kind", "text"),
    [
        (
            lambda fake: fake.push_photo(ALICE, caption="Ổ gà đường thôn"),
            Kind.PHOTO,
            "Ổ gà đường thôn",
        ),
        (lambda fake: fake.push_sticker(ALICE), Kind.STICKER, ""),
        (lambda fake: fake.push_voice(ALICE), Kind.VOICE, ""),
        (lambda fake: fake.push_audio(ALICE), Kind.VOICE, ""),
        (lambda fake: fake.push_location(ALICE), Kind.LOCATION, ""),
        (lambda fake: fake.push_document(ALICE, caption="Góp ý"), Kind.FILE, "Góp ý"),
        (lambda fake: fake.push_video(ALICE), Kind.OTHER, ""),
        (lambda fake: fake.push_contact(ALICE), Kind.OTHER, ""),
    ],
)
async def test_media_map_to_kinds(
    channel: TelegramChannel,
    fake: FakeTelegram,
    service: StubService,
    push: Callable[[FakeTelegram], int],
    kind: Kind,
    text: str,
) -> None:
    push(fake)
    event = await service.wait_event(lambda e: True)
    assert (event.kind, event.text, event.user_id) == (kind, text, str(ALICE))


async def test_group_chats_are_ignored(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    fake.push_text(-1001, "/start", chat_type="group")
    fake.push_text(ALICE, "sau cùng")

    await fake.wait_for(sent_to(ALICE))
    assert [e.text for e in service.events] == ["sau cùng"]
    assert not fake.calls_to("sendMessage", chat_id=-1001)


def _update(**content: object) -> Update:
    return Update.de_json({"update_id": 1, **content}, None)


PRIVATE = {"id": ALICE, "type": "private", "first_name": "Dân"}
GROUP = {"id": -5, "type": "supergroup", "title": "Nhóm thôn"}
USER = {"id": ALICE, "is_bot": False, "first_name": "Dân", "language_code": "vi"}
BOT = {"id": 1, "is_bot": True, "first_name": "Ý kiến"}


def _membership(chat: dict, old: str, new: str) -> Update:
    def member(status: str) -> dict:
        return {"user": BOT, "status": status, **({"until_date": 0} if status == "kicked" else {})}

    change = {
        "chat": chat,
        "from": USER,
        "date": 0,
        "old_chat_member": member(old),
        "new_chat_member": member(new),
    }
    return _update(my_chat_member=change)


def test_what_is_ignored_translates_to_nothing() -> None:
    text = {"message_id": 5, "date": 0, "chat": PRIVATE, "from": USER, "text": "sửa"}
    in_group = {**text, "chat": GROUP}
    location = {**text, "text": None, "location": {"latitude": 21.0, "longitude": 105.8}}
    button = {"id": "1", "from": USER, "chat_instance": "c", "data": "consent:yes"}
    ignored = [
        _update(message=in_group),
        _update(edited_message=in_group),
        _update(edited_message=location),  # a live location is "edited" every few seconds
        _update(callback_query={**button, "message": in_group}),
        _membership(GROUP, "member", "kicked"),
        _membership(PRIVATE, "left", "member"),  # not after a block
        _update(channel_post={**text, "chat": {"id": -7, "type": "channel", "title": "x"}}),
    ]
    assert [to_incoming(update) for update in ignored] == [None] * len(ignored)


async def test_an_edited_text_is_an_edit_event(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    draft = await channel.send(str(ALICE), Reply("Dự thảo: Quy định về chợ", draft_id=7))

    fake.push_text(ALICE, "Nên mở cửa sớm hơn", reply_to=int(draft), edited=True)

    event = await service.wait_event(lambda e: True)
    assert event == Incoming(
        channel="telegram",
        user_id=str(ALICE),
        kind=Kind.EDITED,
        text="Nên mở cửa sớm hơn",
        reply_to=draft,
        update_id=str(fake.last_update_id),
        language_hint="vi",
    )


async def test_blocking_and_unblocking_the_bot_are_events(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    fake.push_membership(ALICE, "member", "kicked")
    fake.push_membership(ALICE, "kicked", "member")
    fake.push_text(ALICE, "sau cùng")

    # One chat's updates are handled in order: once the last is in, the others were handled.
    await service.wait_event(lambda e: e.text == "sau cùng")
    assert [(e.kind, e.user_id, e.text, e.choice) for e in service.events] == [
        (Kind.BLOCKED, str(ALICE), "", ""),
        (Kind.UNBLOCKED, str(ALICE), "", ""),
        (Kind.TEXT, str(ALICE), "sau cùng", ""),
    ]
    assert [e.update_id for e in service.events] == [str(n) for n in (1, 2, 3)]


@pytest.mark.allow_errors
async def test_a_failing_service_does_not_stop_polling(
    channel: TelegramChannel,
    fake: FakeTelegram,
    service: StubService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def script(event: Incoming) -> list[Outgoing]:
        if event.text == "boom":
            raise RuntimeError("handler bug")
        return [Reply("vẫn chạy")]

    service.script = script
    fake.push_text(ALICE, "boom")
    fake.push_text(ALICE, "tiếp")

    call = await fake.wait_for(sent_to(ALICE))
    assert call.params["text"] == "vẫn chạy"
    assert [e.text for e in service.events] == ["boom", "tiếp"]
    errors = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    ref = chat_ref("telegram", str(ALICE))
    assert errors == [
        ("bot.channels.telegram.channel", f"Telegram: handling an update from {ref} failed")
    ]


@pytest.mark.parametrize(
    ("code", "description", "error"),
    [
        (403, "Forbidden: bot was blocked by the user", Unreachable),
        (403, "Forbidden: user is deactivated", Unreachable),
        (400, "Bad Request: chat not found", Unreachable),
        (400, "Bad Request: BUTTON_DATA_INVALID", PermanentFailure),
        (502, "Bad Gateway", TemporaryFailure),
        (500, "Internal Server Error", TemporaryFailure),
    ],
)
async def test_send_maps_errors(
    channel: TelegramChannel, fake: FakeTelegram, code: int, description: str, error: type
) -> None:
    fake.fail_next("sendMessage", ALICE, code=code, description=description)
    with pytest.raises(error):
        await channel.send(str(ALICE), Reply("Dự thảo mới"))


async def test_send_maps_flood_control_to_throttled(
    channel: TelegramChannel, fake: FakeTelegram
) -> None:
    fake.fail_next("sendMessage", ALICE, code=429, retry_after=3)
    with pytest.raises(Throttled) as caught:
        await channel.send(str(ALICE), Reply("Dự thảo mới"))
    assert caught.value.retry_after == 3
    # The next send goes through and returns the message id.
    message_id = await channel.send(str(ALICE), Reply("Dự thảo mới"))
    assert message_id == str(fake.messages_to(ALICE)[-1]["message_id"])


async def test_message_ids_increase_per_chat(channel: TelegramChannel, fake: FakeTelegram) -> None:
    first = await channel.send(str(ALICE), Reply("một"))
    second = await channel.send(str(ALICE), Reply("hai"))
    other = await channel.send("43", Reply("một"))
    assert (first, second, other) == ("1", "2", "1")


async def test_long_text_is_split_on_paragraphs(
    channel: TelegramChannel, fake: FakeTelegram
) -> None:
    paragraphs = [f"Điều {n}. " + "quy định " * 120 for n in range(1, 9)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 4096
    reply = Reply(text, buttons=[[Button("comment:1", "Góp ý")]])

    await channel.send(str(ALICE), reply)

    shown = fake.messages_to(ALICE)
    assert len(shown) == 3
    assert all(len(m["text"]) <= 4096 for m in shown)
    assert "\n\n".join(m["text"] for m in shown) == text  # cut between paragraphs only
    assert [bool(fake.buttons(m)) for m in shown] == [False, False, True]


def test_split_text_cuts_long_paragraphs_on_lines_then_words() -> None:
    assert split_text("ngắn") == ["ngắn"]
    line = "chữ " * 30
    parts = split_text("\n".join([line] * 5), limit=100)
    assert all(len(p) <= 100 for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == (line * 5).replace(" ", "")
    # Emoji count twice in Telegram's UTF-16 lengths.
    assert split_text("😀" * 60, limit=100) == ["😀" * 50, "😀" * 10]


async def test_document_and_picture(channel: TelegramChannel, fake: FakeTelegram) -> None:
    data = "\ufeffbình luận,số\n".encode()
    await channel.send(str(ALICE), Document("y-kien.csv", data, caption="Xuất dữ liệu"))
    await channel.send(str(ALICE), Picture(b"\x89PNG fake", caption="Kết quả"))

    [document] = fake.calls_to("sendDocument")
    assert document.params["document"]["filename"] == "y-kien.csv"
    assert document.params["document"]["data"] == data
    assert document.params["caption"] == "Xuất dữ liệu"
    [photo] = fake.calls_to("sendPhoto")
    assert photo.params["photo"]["data"] == b"\x89PNG fake"
    assert [m.get("caption") for m in fake.messages_to(ALICE)] == ["Xuất dữ liệu", "Kết quả"]


async def test_stop_is_prompt_and_idempotent(fake: FakeTelegram, service: StubService) -> None:
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=30)
    await telegram.start()
    async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
        await telegram.stop()
        await telegram.stop()


async def test_a_rejected_token_fails_start_clearly(
    fake: FakeTelegram, service: StubService
) -> None:
    telegram = TelegramChannel("999:wrong", fake.url, service, poll_timeout=1)
    with pytest.raises(RuntimeError, match="token `<token>` was rejected") as caught:
        await telegram.start()
    assert "999:wrong" not in str(caught.value)
    # The first request was refused, and the bot went no further: no menu, no polling.
    assert [(call.method, call.error) for call in fake.calls] == [
        ("getMe", {"error_code": 401, "description": "Unauthorized"})
    ]
    await telegram.stop()  # harmless after a failed start
    assert len(fake.calls) == 1


# ---- one resident cannot slow down the others --------------------------------------------


def blocking_for(chat_id: int, release: asyncio.Event, replies: list[Outgoing]) -> Script:
    """A script that answers `chat_id` with `replies` once `release` is set, others at once."""

    async def script(event: Incoming) -> list[Outgoing]:
        if event.user_id == str(chat_id):
            await release.wait()
            return replies
        return [Reply(f"echo {event.text}")]

    return script


def texts_to(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [message["text"] for message in fake.messages_to(chat_id)]


async def test_a_slow_chat_does_not_hold_up_another(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    release = asyncio.Event()
    service.script = blocking_for(ALICE, release, [Reply("một"), Reply("hai")])
    try:
        fake.push_text(ALICE, "tìm xã rất lâu")
        await service.wait_event(lambda e: e.user_id == str(ALICE))  # her handler now waits
        fake.push_text(BOB, "chào")

        await fake.wait_for(sent_to(BOB))
        assert not fake.calls_to("sendMessage", ALICE)
    finally:
        release.set()
    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "hai")
    assert texts_to(fake, ALICE) == ["một", "hai"]


async def test_a_chats_updates_are_handled_in_order_even_when_the_first_is_slow(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    release = asyncio.Event()

    async def script(event: Incoming) -> list[Outgoing]:
        if event.text == "một":
            await release.wait()
        return [Reply(f"echo {event.text}")]

    service.script = script
    try:
        fake.push_text(ALICE, "một")
        fake.push_text(ALICE, "hai")
        fake.push_text(BOB, "ba")
        # Bob's update came after Alice's second, so that one was taken up too: it waits.
        await fake.wait_for(sent_to(BOB))
        assert [e.text for e in service.events if e.user_id == str(ALICE)] == ["một"]
    finally:
        release.set()
    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "echo hai")
    assert texts_to(fake, ALICE) == ["echo một", "echo hai"]


async def test_a_chat_with_many_waiting_updates_leaves_room_for_others(
    fake: FakeTelegram, service: StubService
) -> None:
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=1, concurrent_chats=2)
    await telegram.start()
    release = asyncio.Event()
    service.script = blocking_for(ALICE, release, [Reply("xong")])
    try:
        for number in range(5):  # more than the two places: her waiting updates hold none
            fake.push_text(ALICE, f"tin {number}")
        fake.push_text(BOB, "chào")
        await fake.wait_for(sent_to(BOB))
        assert [e.text for e in service.events if e.user_id == str(ALICE)] == ["tin 0"]
    finally:
        release.set()
        await fake.wait_for(lambda c: sent_to(ALICE)(c) and len(fake.messages_to(ALICE)) == 5)
        async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
            await telegram.stop()


def retry_to(fake: FakeTelegram, chat_id: int) -> Callable[[Call], bool]:
    """Matches a sendMessage to the chat after one was already made (the retry of a 429)."""
    return lambda call: (
        call.method == "sendMessage"
        and call.chat_id == chat_id
        and bool(fake.calls_to("sendMessage", chat_id))
    )


async def test_a_throttled_reply_waits_without_holding_up_other_chats(
    fake: FakeTelegram, service: StubService
) -> None:
    # Two places: Alice's handler waits in hers (its update is handled once the reply is
    # sent), Bob's update is handled in the other and answered when the pause is over.
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=1, concurrent_chats=2)
    await telegram.start()
    fake.fail_next("sendMessage", ALICE, code=429, retry_after=1)
    # Alice's retry is held until Bob is answered, so Bob is answered during her wait.
    bob_answered = fake.hold(retry_to(fake, ALICE))
    try:
        fake.push_text(ALICE, "chào")
        throttled = await fake.wait_for(
            lambda c: c.method == "sendMessage" and c.chat_id == ALICE
        )
        assert throttled.error is not None and throttled.error["error_code"] == 429

        fake.push_text(BOB, "chào")
        await fake.wait_for(sent_to(BOB))
    finally:
        bob_answered.set()
    try:
        sent = await fake.wait_for(sent_to(ALICE))
        assert sent.params["text"] == "echo chào"
        assert sent.at - throttled.at >= 1.0  # not before Telegram's retry_after
        assert [c.ok for c in fake.calls_to("sendMessage", ALICE)] == [False, True]
    finally:
        async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
            await telegram.stop()


async def test_replies_held_by_flood_control_keep_the_chats_order(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    service.script = lambda event: [Reply(f"{event.text} 1"), Reply(f"{event.text} 2")]
    fake.fail_next("sendMessage", ALICE, code=429, retry_after=1)
    released = fake.hold(retry_to(fake, ALICE))
    fake.push_text(ALICE, "a")
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == ALICE)

    # Her next message waits for her first replies (that update is not handled before they
    # are sent), and is answered after them.
    fake.push_text(ALICE, "b")
    await asyncio.sleep(0.3)
    assert [event.text for event in service.events] == ["a"]
    released.set()

    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "b 2")
    assert texts_to(fake, ALICE) == ["a 1", "a 2", "b 1", "b 2"]
    await service.wait_sent(4)
    assert [message.text for *_, message in service.sent_calls] == texts_to(fake, ALICE)


async def test_an_unchanged_edit_counts_as_shown(
    channel: TelegramChannel, fake: FakeTelegram, service: StubService
) -> None:
    page = Reply("Trang 1", buttons=[[Button("page:2", "Sau ›")]], draft_id=3, edit=True)
    service.script = lambda e: [page] if e.kind == Kind.CHOICE else [Reply(f"echo {e.text}")]
    shown = await channel.send(str(ALICE), page)

    # Pressing asks for what the message already shows: Telegram answers "not modified".
    fake.push_callback(ALICE, "page:1", int(shown))
    fake.push_text(ALICE, "tiếp")  # its answer comes after anything sent for the press

    await fake.wait_for(lambda c: sent_to(ALICE)(c) and c.params["text"] == "echo tiếp")
    [edit] = fake.calls_to("editMessageText")
    assert edit.error is not None and "message is not modified" in edit.error["description"]
    assert texts_to(fake, ALICE) == ["Trang 1", "echo tiếp"]  # no second copy of the page
    assert service.sent_calls[0] == ("telegram", str(ALICE), shown, page)


# ---- privacy in logs ---------------------------------------------------------------------


class Unsendable:
    """Not a message type the adapter knows: sending it is a programming error."""


@pytest.mark.allow_errors  # the unsendable reply is rightly logged at ERROR
async def test_logs_name_no_chat_and_quote_nothing(
    fake: FakeTelegram, service: StubService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="telegram")
    resident, group = 738291046, -1009876543210  # ids that cannot occur in a log by chance

    def script(event: Incoming) -> list[Outgoing]:
        if "hỏng" in event.text:
            raise RuntimeError("handler bug")
        if "lạ" in event.text:
            return [Unsendable()]  # type: ignore[list-item]
        return [Reply(f"Đã nhận: {event.text}", edit=True)]

    service.script = script
    telegram = TelegramChannel(fake.token, fake.url, service, poll_timeout=1)
    await telegram.start()
    try:
        fake.push_text(resident, "Bí mật của tôi")
        fake.push_text(group, "Bí mật của nhóm", chat_type="group")
        fake.push_text(resident, "Bí mật hỏng")  # the service fails
        fake.push_text(resident, "Bí mật lạ")  # the reply cannot be sent
        fake.fail_next("editMessageText", code=400)
        fake.push_callback(resident, "Bí mật nút", message_id=1)  # the edit fails
        fake.fail_next("sendMessage", resident, code=403)
        fake.push_text(resident, "Bí mật chặn")  # the reply is refused
        fake.push_text(resident, "Bí mật cuối")
        await fake.wait_for(
            lambda c: sent_to(resident)(c) and c.params["text"] == "Đã nhận: Bí mật cuối"
        )
    finally:
        async with asyncio.timeout(TelegramChannel.stop_timeout * 3):
            await telegram.stop()

    logged = caplog.text  # formatted, tracebacks included
    for secret in (str(resident), str(group), "Bí mật", fake.token):
        assert secret not in logged
    # The failures were logged, naming the chat by its reference and the exception by type.
    ref = chat_ref("telegram", str(resident))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"Telegram: handling an update from {ref} failed",
        f"Telegram: TypeError while handling an update from {ref}",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        # Replies go through the aiohttp sender, which names the Bot API's error code.
        f"Telegram: reply to {ref} not sent: Unreachable: 403: Forbidden: bot was blocked by "
        "the user"
    ]
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
