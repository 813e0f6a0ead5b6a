"""What `ykien serve` keeps of the webhook updates it receives (issue 15, item 1).

A handled update keeps its identity (so a retry is recognised) but not its body; a person who
declines, or who deletes their data, leaves no name, username or phone number of theirs
anywhere in the database; handled updates and their ids go after two days. On Telegram,
Zalo OA and Zalo Bot, through the real webhook server and the fake platforms.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage.models import Comment, InboundUpdate, ProcessedUpdate, Resident, utcnow
from tests.channels.test_conformance import join, receive_draft
from tests.web.platforms import CHANNELS, all_platforms, everything_stored, until, zalo_event

USER = "7001"
NAME, SURNAME, USERNAME = "Hương Giang", "Nguyễn Thị", "huonggiang_camtu"
PHONE = "0912345678"
INTERNATIONAL = "+84912345678"


pytestmark = pytest.mark.usefixtures("brisk_chats")


def named(platforms) -> None:
    """The residents have a name (and on Telegram a username) on their platform."""
    user = {"id": int(USER), "is_bot": False, "first_name": NAME, "last_name": SURNAME,
            "username": USERNAME, "language_code": "vi"}
    platforms.telegram._user_json = lambda chat: user
    platforms.telegram._chat_json = lambda chat: {
        "id": chat.id, "type": "private", "first_name": NAME, "last_name": SURNAME,
        "username": USERNAME}
    made = platforms.zalobot.update

    def with_name(*args, **kwargs):
        update = made(*args, **kwargs)
        update["message"]["from"]["display_name"] = f"{SURNAME} {NAME}"
        return update

    platforms.zalobot.update = with_name


async def shares_a_phone_number(platforms, driver) -> None:
    """The resident sends their phone number: as a contact on Telegram, typed elsewhere."""
    if driver.channel == "telegram":
        platforms.telegram.push_message(int(USER), {"contact": {
            "phone_number": INTERNATIONAL, "first_name": NAME, "last_name": SURNAME,
            "user_id": int(USER)}})
        await driver._post(USER)
        await driver.expect(USER, "")  # (only text is read)
    await driver.text(USER, f"{SURNAME} {NAME}, {PHONE}")


def personal(found: str) -> list[str]:
    """Which of the resident's name, username and phone number appear in `found`."""
    words = [NAME, SURNAME, USERNAME, PHONE, INTERNATIONAL]
    escaped = [json.dumps(word)[1:-1] for word in words]  # as JSON writes it (\\u1ea1...)
    return [word for word in {*words, *escaped} if word in found]


async def all_handled(sessionmaker) -> bool:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.count()).where(InboundUpdate.handled_at.is_(None))) == 0


async def update_ids(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return [*await session.scalars(select(InboundUpdate.update_id)),
                *await session.scalars(select(ProcessedUpdate.update_id))]


async def stored_bodies(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(InboundUpdate.payload)))


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_person_who_declines_leaves_nothing_of_theirs(
    channel, database_url, sessionmaker
):
    async with all_platforms(database_url) as platforms:
        named(platforms)
        driver = platforms.driver(channel, sessionmaker)
        await driver.first_contact(USER)
        await driver.expect(USER, "Không, cảm ơn")
        await shares_a_phone_number(platforms, driver)
        await driver.expect(USER, "Không, cảm ơn")
        await driver.press(USER, "Không, cảm ơn")
        await driver.expect(USER, "/start")
        await until(lambda: all_handled(sessionmaker))
        found = await everything_stored(sessionmaker)
        bodies = await stored_bodies(sessionmaker)
    assert personal(found) == [], found
    assert bodies and set(bodies) == {""}  # each update kept (a retry is recognised), no body
    # Nor does an update's id name the chat (a Zalo OA follow event's did).
    assert not [update_id for update_id in await update_ids(sessionmaker) if USER in update_id]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Resident)) == 0
        # Which updates were the chat's is forgotten, the decline's own too.
        chats = set(await session.scalars(select(ProcessedUpdate.platform_id)))
        assert chats == {""}, chats


@pytest.mark.parametrize("channel", CHANNELS)
async def test_after_delete_nothing_of_the_person_remains_but_their_comments(
    channel, database_url, sessionmaker
):
    async with all_platforms(database_url) as platforms:
        named(platforms)
        driver = platforms.driver(channel, sessionmaker)
        await join(driver, USER)
        await shares_a_phone_number(platforms, driver)  # kept aside until a draft is chosen
        await driver.text(USER, "/commune")
        await driver.expect(USER, "Which commune")
        await driver.text(USER, PHONE)  # a commune search: the answer repeats it
        await driver.expect(USER, PHONE)
        await receive_draft(driver, USER)
        await driver.press(USER, "💬 Comment")
        await driver.expect(USER, "1,000")
        await driver.text(USER, "Nên thu gom rác sau 19 giờ.")
        await driver.expect(USER, "Received")
        await driver.text(USER, "/delete")
        await driver.expect(USER, "Yes, delete")
        await driver.press(USER, "Yes, delete")
        await driver.expect(USER, "Your data has been deleted")
        await until(lambda: all_handled(sessionmaker))
        found = await everything_stored(sessionmaker)
        bodies = await stored_bodies(sessionmaker)
    assert personal(found) == [], found
    assert set(bodies) == {""}
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Resident)) == 0
        [comment] = (await session.execute(select(Comment.text, Comment.resident_id))).all()
    assert comment == ("Nên thu gom rác sau 19 giờ.", None)  # kept, linked to nobody


async def test_handled_updates_and_their_ids_go_after_two_days(database_url, sessionmaker):
    now = utcnow()
    old, recent = now - timedelta(days=2, hours=1), now - timedelta(days=1)
    async with sessionmaker() as session:
        for update_id, at in (("1", old), ("2", recent)):
            session.add(InboundUpdate(channel="zalo", update_id=update_id, chat_key="",
                                      payload="", received_at=at, handled_at=at, attempts=1))
            session.add(ProcessedUpdate(channel="zalo", update_id=update_id, created_at=at))
        await session.commit()
    async with all_platforms(database_url) as platforms:  # its upkeep runs at start
        async def purged() -> bool:
            async with sessionmaker() as session:
                return await session.scalar(select(func.count()).select_from(
                    InboundUpdate)) == 1
        await until(purged)
        async with sessionmaker() as session:
            assert list(await session.scalars(select(InboundUpdate.update_id))) == ["2"]
            assert list(await session.scalars(select(ProcessedUpdate.update_id))) == ["2"]
        # A retry of the recent one is still recognised: acknowledged, not handled again.
        retry = zalo_event(USER, "user_send_text", message={"text": "/start", "msg_id": "2"})
        assert await platforms.post("zalo", retry) == 200
        await driver_says_hello(platforms)
    assert platforms.sent_to("zalo", USER) == []


async def driver_says_hello(platforms) -> None:
    """Another resident's /start is answered: what was posted before it was handled."""
    other = zalo_event("7002", "user_send_text", message={"text": "/start", "msg_id": "h-1"})
    assert await platforms.post("zalo", other) == 200
    await platforms.zalo.wait_for(lambda: bool(platforms.zalo.messages("7002")))
