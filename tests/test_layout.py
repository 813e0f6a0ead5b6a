"""Replies laid out within a channel's capabilities, and numbered choices stored per chat.

Driven through ChatService as an adapter calls it: `handle(event, capabilities)` for replies,
`lay_out(...)` for what the delivery worker sends.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.service import ChatService
from handlers.buttons import Menu, MenuCommand, encode
from handlers.capabilities import Capabilities
from handlers.events import Button, Incoming, Kind, Reply
from storage.models import ChatChoices, Resident
from tests.chat import CHANNEL, joined, labels, make_draft, subscribe

NO_BUTTONS = Capabilities(buttons_per_message=0, button_label_limit=30, text_limit=2000)
FIVE_BUTTONS = Capabilities(buttons_per_message=5, button_label_limit=20, text_limit=2000)


def typed(user: str, body: str) -> Incoming:
    return Incoming(CHANNEL, user, Kind.TEXT, text=body)


def numbered(text: str) -> dict[str, int]:
    """label → number, as printed ("1. Tiếng Việt   2. English")."""
    pairs = re.findall(r"(\d+)\. ([^\n]+?)(?=\s{3}|\n|$)", text)
    return {label.strip(): int(n) for n, label in pairs}


async def test_a_number_typed_on_another_process_chooses_what_was_shown(sessionmaker):
    first, second = ChatService(sessionmaker), ChatService(sessionmaker)
    greeting = await first.handle(typed("z1", "/start"), NO_BUTTONS)
    assert labels(greeting) == []  # no buttons at all: every choice is a numbered line
    shown = numbered(joined(greeting))
    assert "English" in shown
    # Another process (a restart, a load balancer) reads the number back from the database.
    notice = await second.handle(typed("z1", str(shown["English"])), NO_BUTTONS)
    agree = numbered(joined(notice))
    number = next(n for label, n in agree.items() if label == "I agree")
    await ChatService(sessionmaker).handle(typed("z1", f" {number}. "), NO_BUTTONS)
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
    assert resident is not None and resident.language == "en"


async def test_a_label_typed_without_accents_chooses_it(sessionmaker):
    service = ChatService(sessionmaker)
    await service.handle(typed("z2", "/start"), NO_BUTTONS)
    await service.handle(typed("z2", "english"), NO_BUTTONS)
    async with sessionmaker() as session:
        assert await session.scalar(select(Resident)) is None  # only the notice so far
    notice = await service.handle(typed("z2", "I AGREE"), NO_BUTTONS)
    async with sessionmaker() as session:
        stored = await session.scalar(select(Resident))
    assert stored is not None, joined(notice)


async def test_an_unknown_number_is_text_and_other_digits_are_not_numbers(sessionmaker):
    service = ChatService(sessionmaker)
    await subscribe(service, "z3")
    await service.handle(typed("z3", "/help"), NO_BUTTONS)
    for odd in ("99", "２", "①", "1234"):
        replies = await service.handle(typed("z3", odd), NO_BUTTONS)
        assert replies, odd  # answered as text, never an error


async def test_more_choices_than_the_channel_allows_become_numbered_lines(sessionmaker):
    service = ChatService(sessionmaker)
    await subscribe(service, "z4")
    await make_draft(sessionmaker, options=("Một", "Hai", "Ba", "Bốn", "Năm"))
    few = await service.handle(typed("z4", "/help"), FIVE_BUTTONS)
    many = await service.handle(typed("z4", "/drafts"), FIVE_BUTTONS)
    # The menu (6 buttons) and the draft (comment + 5 options) exceed 5: numbered as a whole.
    assert labels(many) == [] and "1. " in joined(many)
    assert all(len([b for row in r.buttons for b in row]) <= 5
               for r in few if isinstance(r, Reply))
    # Typing the number of the option "Ba" votes for it.
    vote = numbered(joined(many)).get("🗳 Ba")
    assert vote is not None, joined(many)
    answer = await service.handle(typed("z4", str(vote)), FIVE_BUTTONS)
    assert "Ba" in joined(answer)


async def test_labels_are_shortened_and_long_text_split(sessionmaker):
    service = ChatService(sessionmaker)
    tiny = Capabilities(buttons_per_message=10, button_label_limit=8, text_limit=120)
    long = Reply("word " * 100, [[Button("m:help", "A very long label indeed")]])
    parts = await service.lay_out("zalo", tiny, "z5", long)
    assert len(parts) > 1
    assert all(isinstance(p, Reply) and len(p.text) <= 120 for p in parts)
    assert " ".join(p.text for p in parts if isinstance(p, Reply)).split() == long.text.split()
    assert [p.buttons for p in parts[:-1] if isinstance(p, Reply)] == [[]] * (len(parts) - 1)
    last = parts[-1]
    assert isinstance(last, Reply) and last.buttons[0][0].label == "A very…"
    assert last.buttons[0][0].id == "m:help"
    async with sessionmaker() as session:  # nothing numbered, nothing stored
        assert await session.scalar(select(ChatChoices)) is None


async def test_a_broadcast_numbers_on_and_is_read_back(sessionmaker):
    service = ChatService(sessionmaker)
    await subscribe(service, "z6")
    draft = await make_draft(sessionmaker, options=("Đồng ý", "Không"))
    replies = await service.handle(typed("z6", "/drafts"), NO_BUTTONS)
    highest = max(numbered(joined(replies)).values())
    # A message the worker sends before the person writes again numbers on, not from 1.
    extra = Reply("Nhắc lại", [[Button(encode(Menu(MenuCommand.MY_COMMENTS)), "Khác")]], draft.id)
    parts = await service.lay_out(CHANNEL, NO_BUTTONS, "z6", extra)
    assert numbered(parts[-1].text)["Khác"] == highest + 1, parts  # type: ignore[union-attr]
    # Typing it (on any process) chooses what it stood for.
    answer = await ChatService(sessionmaker).handle(typed("z6", str(highest + 1)), NO_BUTTONS)
    assert "no longer valid" not in joined(answer) and "comment" in joined(answer).lower()


async def test_erasing_leaves_no_earlier_choices_with_the_chat(sessionmaker):
    service = ChatService(sessionmaker)
    await subscribe(service, "z7")
    await service.handle(typed("z7", "cam tu"), NO_BUTTONS)  # commune names shown
    await service.handle(typed("z7", "/delete"), NO_BUTTONS)
    confirm = await service.handle(typed("z7", "/delete"), NO_BUTTONS)
    shown = numbered(joined(confirm))
    yes = next((n for label, n in shown.items() if "elete" in label or "Xóa" in label), None)
    if yes is not None:
        await service.handle(typed("z7", str(yes)), NO_BUTTONS)
    async with sessionmaker() as session:
        assert await session.scalar(select(Resident)) is None
        stored = await session.scalar(select(ChatChoices.choices))
    assert stored is None or "Cẩm Tú" not in stored
