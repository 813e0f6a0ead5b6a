"""Real kinds of updates the platforms send, replayed through `ykien serve` (issue 15, items
14-17): Telegram's group, supergroup and channel updates are not stored at all; messages sent
by bots are ignored; Zalo OA's `user_send_link` is a text; what python-telegram-bot cannot
read is acknowledged and logged once (forwarded texts: test_forwarded.py). The payloads
follow those the platforms document (and other projects record)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import func, select

from storage.models import Comment, InboundUpdate
from tests.channels.test_conformance import join, receive_draft
from tests.web.platforms import all_platforms, everything_stored, until, zalo_event

USER = "7001"
SETTLER = 9009  # a resident whose answer shows that what was posted before was dealt with
NOW = int(time.time())
PERSON = {"id": 5551, "is_bot": False, "first_name": "Trần Văn", "last_name": "Bình",
          "username": "binh_thon3", "language_code": "vi"}
BOT = {"id": 5552, "is_bot": True, "first_name": "Tin tức", "username": "tintuc_bot"}
OUR_BOT = {"id": 123456, "is_bot": True, "first_name": "Ý kiến", "username": "ykien_test_bot"}
GROUP = {"id": -4_012_345, "title": "Thôn 3 Cẩm Tú", "type": "group",
         "all_members_are_administrators": True}
SUPERGROUP = {"id": -1_001_234_567, "title": "Cư dân Cẩm Tú", "type": "supergroup"}
FORUM = {"id": -1_001_234_568, "title": "Góp ý xã", "type": "supergroup", "is_forum": True}
CHANNEL = {"id": -1_001_234_569, "title": "UBND xã Cẩm Tú", "type": "channel",
           "username": "ubnd_camtu"}


pytestmark = pytest.mark.usefixtures("brisk_chats")


def member(user: dict, status: str, **extra) -> dict:
    return {"user": user, "status": status, **extra}


NOT_A_RESIDENTS = {
    "channel post": {"channel_post": {
        "message_id": 31, "sender_chat": CHANNEL, "chat": CHANNEL, "date": NOW,
        "text": "Thông báo lịch thu gom rác"}},
    "edited channel post": {"edited_channel_post": {
        "message_id": 31, "sender_chat": CHANNEL, "chat": CHANNEL, "date": NOW,
        "edit_date": NOW, "text": "Thông báo (sửa)"}},
    "supergroup message": {"message": {
        "message_id": 7, "from": PERSON, "chat": SUPERGROUP, "date": NOW,
        "text": "/start@ykien_test_bot", "entities": [
            {"type": "bot_command", "offset": 0, "length": 21}]}},
    "group pin": {"message": {
        "message_id": 9, "from": PERSON, "chat": GROUP, "date": NOW, "pinned_message": {
            "message_id": 8, "from": PERSON, "chat": GROUP, "date": NOW, "text": "Họp thôn"}}},
    "new group members": {"message": {
        "message_id": 10, "from": PERSON, "chat": GROUP, "date": NOW,
        "new_chat_members": [OUR_BOT], "new_chat_member": OUR_BOT,
        "new_chat_participant": OUR_BOT}},
    "forum topic": {"message": {
        "message_id": 11, "from": PERSON, "chat": FORUM, "date": NOW,
        "message_thread_id": 11, "is_topic_message": True,
        "forum_topic_created": {"name": "Rác thải", "icon_color": 7322096}}},
    "reaction": {"message_reaction": {
        "chat": SUPERGROUP, "message_id": 7, "user": PERSON, "date": NOW,
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}},
    "boost": {"chat_boost": {"chat": CHANNEL, "boost": {
        "boost_id": "AbCd", "add_date": NOW, "expiration_date": NOW + 86400 * 30,
        "source": {"source": "premium", "user": PERSON}}}},
    "added to a group": {"my_chat_member": {
        "chat": GROUP, "from": PERSON, "date": NOW,
        "old_chat_member": member(OUR_BOT, "left"),
        "new_chat_member": member(OUR_BOT, "member")}},
    "group callback": {"callback_query": {
        "id": "77", "from": PERSON, "chat_instance": "-55", "data": "menu:help",
        "message": {"message_id": 12, "from": OUR_BOT, "chat": SUPERGROUP, "date": NOW,
                    "text": "?"}}},
}


@pytest.mark.parametrize("kind", NOT_A_RESIDENTS)
async def test_group_and_channel_updates_are_not_stored(kind, database_url, sessionmaker):
    async with all_platforms(database_url) as platforms:
        for update_id, update in enumerate([NOT_A_RESIDENTS[kind]], start=500):
            assert await platforms.post("telegram", {"update_id": update_id, **update}) == 200
        await settled(platforms, sessionmaker)
        found = await everything_stored(sessionmaker)
        sent = [call for call in platforms.telegram.calls
                if call.method == "sendMessage" and call.chat_id != SETTLER]
    assert sent == []
    assert await count(sessionmaker, InboundUpdate) == 1  # only the resident's, below
    assert "Bình" not in found and "binh_thon3" not in found and "Cẩm Tú" not in found


async def settled(platforms, sessionmaker) -> None:
    """A resident's /start posted after the others is answered: they were dealt with."""
    driver = platforms.driver("telegram", sessionmaker)
    await driver.first_contact(str(SETTLER))
    await driver.expect(str(SETTLER), "Xin chào")

    async def handled() -> bool:
        return await count(sessionmaker, InboundUpdate, InboundUpdate.handled_at.is_(None)) == 0

    await until(handled)


async def count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


# ---- item 15: bots ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "zalobot"])
async def test_messages_from_bots_are_ignored(channel, database_url, sessionmaker):
    async with all_platforms(database_url) as platforms:
        driver = platforms.driver(channel, sessionmaker)
        await join(driver, USER)
        await receive_draft(driver, USER)
        await driver.press(USER, "💬 Comment")
        await driver.expect(USER, "1,000")
        before = len(platforms.sent_to(channel, USER))
        if channel == "telegram":
            platforms.telegram.push_message(int(USER), {"text": "Quảng cáo: vay tiền nhanh"})
            update = platforms.telegram.take_update()
            update["message"]["from"] = {**BOT, "id": int(USER)}
            assert await platforms.post("telegram", update) == 200
            bot_in_private = {"update_id": 800, "message": {
                "message_id": 1, "from": BOT, "date": NOW, "text": "/start",
                "chat": {"id": BOT["id"], "type": "private", "first_name": BOT["first_name"]}}}
            assert await platforms.post("telegram", bot_in_private) == 200
        else:
            update = platforms.zalobot.text_update(USER, "Quảng cáo: vay tiền nhanh")
            update["message"]["from"]["is_bot"] = True
            assert await platforms.post("zalobot", update) == 200
        await driver.text(USER, "Góp ý của tôi.")  # the resident's own comment still counts
        await driver.expect(USER, "Received")
        await asyncio.sleep(0.3)
        sent = platforms.sent_to(channel, USER)[before:]
    # The receipt, then (a first comment) whom they comment for: nothing for the bot's text.
    assert [("Received" in text, "One more question" in text) for text in sent] == [
        (True, False), (False, True)]
    async with sessionmaker() as session:
        assert list(await session.scalars(select(Comment.text))) == ["Góp ý của tôi."]
    assert await count(sessionmaker, InboundUpdate, InboundUpdate.update_id.in_(["800"])) == 0


# ---- item 16: a Zalo OA text with a link --------------------------------------------------


async def test_a_zalo_text_with_a_link_is_a_text(database_url, sessionmaker, caplog):
    async with all_platforms(database_url) as platforms:
        driver = platforms.driver("zalo", sessionmaker)
        await join(driver, USER)
        await receive_draft(driver, USER)
        await driver.press(USER, "💬 Comment")
        await driver.expect(USER, "1,000")
        text = "Xem thêm ý kiến ở https://camtu.thanhhoa.gov.vn/gop-y nhé"
        await driver._post(USER, zalo_event(USER, "user_send_link", message={
            "msg_id": "link-1", "text": text, "attachments": [{"type": "link", "payload": {
                "url": "https://camtu.thanhhoa.gov.vn/gop-y", "description": "Góp ý",
                "thumbnail": "https://camtu.thanhhoa.gov.vn/logo.png"}}]}))
        await driver.expect(USER, "Received")
    async with sessionmaker() as session:
        assert list(await session.scalars(select(Comment.text))) == [text]
    ticked = [record.getMessage() for record in caplog.records
              if "tick" in record.getMessage()]
    assert ticked and "user_send_link" in ticked[0]


# ---- item 17: what python-telegram-bot cannot read ----------------------------------------


UNREADABLE = {
    # Bot API 6.x (2023): a bot made administrator, before the story rights existed.
    "my_chat_member": {"my_chat_member": {
        "chat": SUPERGROUP, "from": PERSON, "date": 1690000000,
        "old_chat_member": member(OUR_BOT, "member"),
        "new_chat_member": member(OUR_BOT, "administrator", can_be_edited=False,
                                  can_manage_chat=True, can_change_info=True,
                                  can_delete_messages=True, can_invite_users=True,
                                  can_restrict_members=True, can_pin_messages=True,
                                  can_promote_members=False, can_manage_video_chats=True,
                                  is_anonymous=False, can_manage_voice_chats=True)}},
    # A resident blocking the bot, as sent before until_date was always there.
    "my_chat_member (private)": {"my_chat_member": {
        "chat": {"id": int(USER), "type": "private", "first_name": "Dân"},
        "from": {"id": int(USER), "is_bot": False, "first_name": "Dân"}, "date": 1690000000,
        "old_chat_member": member(OUR_BOT, "member"),
        "new_chat_member": member(OUR_BOT, "kicked")}},
    # A poll sent in a private chat, without the fields of newer Bot API versions.
    "message": {"message": {
        "message_id": 40, "from": {"id": int(USER), "is_bot": False, "first_name": "Dân"},
        "chat": {"id": int(USER), "type": "private", "first_name": "Dân"}, "date": NOW,
        "poll": {"id": "5012", "question": "Giờ thu gom?", "options": [
            {"text": "17:00", "voter_count": 0}, {"text": "19:00", "voter_count": 0}],
            "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
            "type": "regular", "allows_multiple_answers": False}}},
}


async def test_updates_the_library_cannot_read_are_acknowledged_and_logged_once(
    database_url, sessionmaker, caplog
):
    async with all_platforms(database_url) as platforms:
        driver = platforms.driver("telegram", sessionmaker)
        for update_id, update in enumerate(UNREADABLE.values(), start=700):
            assert await platforms.post("telegram", {"update_id": update_id, **update}) == 200
        await driver.first_contact(USER)  # the same chat goes on at once
        await driver.expect(USER, "Xin chào")
    warnings = [record for record in caplog.records
                if record.levelno == logging.WARNING and "could not be read" in
                record.getMessage()]
    kinds = sorted(record.getMessage().split(" update ")[0].split()[-1] for record in warnings)
    assert kinds == ["message", "my_chat_member", "my_chat_member"], warnings
    assert "Traceback" not in caplog.text
    assert await count(sessionmaker, InboundUpdate) == 1  # the /start
