"""How the console numbers buttons and reads typed numbers and labels back (handlers.numbering)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from storage.flood import CommentLimits
from storage.models import Comment, PollOption, Resident, Vote
from tests.chat import stored_texts
from tests.conftest import EXAMPLE_DRAFT, Console, add_draft

POLL = ["Đồng ý", "Không đồng ý", "Ý kiến khác"]  # the example draft's options
BUTTON = re.compile(r"(\d+)\. (.+?)(?=   \d+\. |$)")


def buttons_printed(out: str) -> list[tuple[int, str]]:
    """Every (number, label) printed, in order: button lines start with 'N. '."""
    return [
        (int(number), label)
        for line in out.splitlines()
        if re.match(r"\d+\. ", line)
        for number, label in BUTTON.findall(line)
    ]


def number_of(out: str, label: str) -> str:
    """The number printed next to the one button with this label."""
    numbers = [number for number, shown in buttons_printed(out) if shown == label]
    assert len(numbers) == 1, (label, buttons_printed(out))
    return str(numbers[0])


async def subscribed(console, user: str) -> Console:
    """A resident of Xã Cẩm Tú who chose English, typing labels only (no numbers)."""
    resident = console(user)
    await resident.say("/start", "english", "i agree", "cam tu", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    return resident


async def voted_options(sessionmaker) -> list[tuple[int, str]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Vote.draft_id, PollOption.label).join(
                PollOption, PollOption.id == Vote.option_id
            )
        )
        return [(draft_id, label) for draft_id, label in rows.all()]


async def test_every_button_shown_in_a_turn_has_its_own_number(sessionmaker, console):
    lan = await subscribed(console, "lan")
    draft = await add_draft(sessionmaker)
    await lan.say()  # the broadcast arrives
    out = await lan.say("/start")
    shown = buttons_printed(out)
    # The menu and the open draft below it count on from 1: no number twice.
    assert [number for number, _ in shown] == list(range(1, len(shown) + 1))
    labels = [label for _, label in shown]
    assert labels[-4:] == ["💬 Comment", *(f"🗳 {option}" for option in POLL)]
    assert "My comments" in labels[:-4]
    # The next line starts a new turn, numbered from 1 again.
    two_turns = await lan.say("/start", "/drafts")
    drafts = await lan.say("/drafts")
    assert buttons_printed(two_turns) == shown + buttons_printed(drafts)
    assert buttons_printed(drafts)[0] == (1, "💬 Comment")
    # Typing the number printed next to an option votes for exactly that option.
    for option in [*POLL[1:], POLL[0]]:
        await lan.say("/start", number_of(out, f"🗳 {option}"))
        assert await voted_options(sessionmaker) == [(draft.id, option)]


async def test_the_number_next_to_my_comments_shows_the_comments(sessionmaker, console):
    lan = await subscribed(console, "lan")
    await add_draft(sessionmaker)
    await lan.say()  # the broadcast arrives
    drafts = await lan.say("/drafts")
    await lan.say("/drafts", number_of(drafts, "💬 Comment"), "Fewer bins, emptied more often.")
    start = await lan.say("/start")
    out = await lan.say("/start", number_of(start, "My comments"))
    assert out.count("Fewer bins, emptied more often.") == 1
    assert await voted_options(sessionmaker) == []  # the number pressed no poll option


async def test_a_typed_label_presses_its_button_the_latest_when_labels_repeat(
    sessionmaker, console, tmp_path: Path
):
    lan = await subscribed(console, "lan")
    first = await add_draft(sessionmaker)
    other = tmp_path / "other.toml"
    other.write_text(
        EXAMPLE_DRAFT.read_text(encoding="utf-8").replace(first.title, "Dự thảo thứ hai"),
        encoding="utf-8",
    )
    second = await add_draft(sessionmaker, other)
    await lan.say()  # both broadcasts arrive
    # Both drafts show "🗳 Đồng ý": the one printed last (the second draft) gets the vote.
    out = await lan.say("/drafts", "dong y")
    assert out.index(first.title) < out.index(second.title)
    assert await voted_options(sessionmaker) == [(second.id, "Đồng ý")]
    # A label from the menu, printed above the drafts in the same turn, presses its button.
    await lan.say("/start", "tieng viet")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Resident))).language == "vi"


async def test_other_digits_and_long_numbers_are_text_not_buttons(sessionmaker, console):
    """Only 1-3 ASCII digits press a button; these lines are comments like any text."""
    lan = await subscribed(console, "lan")
    # Six comments in a moment: past the flood limit (test_flood.py), which is not tested here.
    lan.comment_limits = CommentLimits(per_minute=100, per_hour=100)
    await add_draft(sessionmaker)
    await lan.say()  # the broadcast arrives
    comment = number_of(await lan.say("/drafts"), "💬 Comment")
    lines = ["²", "①", "١", "٣", "２", "12345"]
    for line in lines:
        await lan.say("/drafts", comment, line)
    assert await stored_texts(sessionmaker) == lines
    # 5,000 digits: too long for a comment, and said so; not a crash, not a button.
    out = await lan.say("/drafts", comment, "9" * 5000)
    assert "5,000" in out
    async with sessionmaker() as session:
        assert len((await session.scalars(select(Comment))).all()) == len(lines)


NO_CHOICE = "No choice has the number {} now."


async def test_a_number_standing_for_no_choice_is_said_so_not_kept_as_a_comment(
    sessionmaker, console
):
    lan = await subscribed(console, "lan")
    await add_draft(sessionmaker)
    await lan.say()  # the broadcast arrives
    drafts = await lan.say("/drafts")
    missing = "42"
    assert int(missing) not in dict(buttons_printed(drafts))
    out = await lan.say("/drafts", missing, f" {missing}. ")  # the menu shown between: 1-6
    assert out.count(NO_CHOICE.format(missing)) == 2
    assert "Which draft is your comment about?" not in out
    assert "My comments" in out.split(NO_CHOICE.format(missing))[-1]  # the menu follows
    # A new console session: the numbers printed before choose nothing.
    assert NO_CHOICE.format(1) in await lan.say("1")
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
        assert resident is not None and resident.held_text == ""
        assert (await session.scalars(select(Comment))).all() == []
    # After Comment, a number is the comment (a score, an amount): not a choice.
    await lan.say("/drafts", number_of(drafts, "💬 Comment"), missing)
    assert await stored_texts(sessionmaker) == [missing]
