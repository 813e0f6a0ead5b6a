"""The channel contract: every channel passes the same resident scenarios.

Each channel is driven through its real adapter (console on a piped terminal, Telegram
through `ykien serve`'s webhook and a fake Bot API, Zalo OA through its signed webhook and a
fake Open API, Zalo Bot through a fake Bot platform); tests/channels/drivers/ hides only how a
resident types, presses and reads on each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from storage.models import Comment, Delivery, DeliveryStatus, Resident, Vote
from tests.channels.drivers.base import WAIT, ChatDriver
from tests.channels.drivers.console import console_driver
from tests.channels.drivers.telegram import telegram_driver
from tests.channels.drivers.zalo_bot import zalo_bot_driver
from tests.channels.drivers.zalo_oa import zalo_oa_driver
from tests.conftest import add_draft

# A chat's pace is tested in test_pacing; here it only made replies wait in real time.
pytestmark = pytest.mark.usefixtures("brisk_chats")

CHANNELS = ["console", "telegram", "zalo", "zalobot"]
COMMUNE = "Xã Cẩm Tú — Tỉnh Thanh Hóa (includes former Xã Cẩm Lương)"
USER = "7001"


@contextlib.asynccontextmanager
async def driving(channel: str, database_url: str, sessionmaker) -> AsyncIterator[ChatDriver]:
    if channel == "console":
        async with console_driver(sessionmaker) as console:
            yield console
    elif channel == "telegram":
        async with telegram_driver(database_url, sessionmaker) as telegram:
            yield telegram
    elif channel == "zalo":
        async with zalo_oa_driver(database_url, sessionmaker) as zalo:
            yield zalo
    elif channel == "zalobot":
        async with zalo_bot_driver(database_url, sessionmaker) as zalobot:
            yield zalobot
    else:
        raise AssertionError(f"no driver for {channel}")


@pytest.fixture(params=CHANNELS)
async def driver(request, database_url, sessionmaker) -> AsyncIterator[ChatDriver]:
    async with driving(request.param, database_url, sessionmaker) as chosen:
        yield chosen


async def count(driver: ChatDriver, model, *where) -> int:
    async with driver.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def join(driver: ChatDriver, user: str = USER) -> None:
    """First contact, English, consent, and a commune found by its former name."""
    await driver.first_contact(user)
    await driver.expect(user, "English")
    await driver.press(user, "English")
    await driver.expect(user, "Privacy notice")
    # Nothing stored before consent.
    assert await count(driver, Resident, Resident.platform_id == user) == 0
    await driver.press(user, "I agree")
    await driver.expect(user, "Which commune")
    await driver.text(user, "cam luong")
    await driver.expect(user, COMMUNE)
    await driver.press(user, COMMUNE)
    await driver.expect(user, "Subscribed")


async def receive_draft(driver: ChatDriver, user: str = USER) -> str:
    draft = await add_draft(driver.sessionmaker)
    await driver.deliver(user)
    await driver.expect(user, draft.title)
    # The worker records a sent message (so a reply to it counts) within a second of sending
    # it; a person's reply comes later than that. (Earlier, it is kept and asked about.)
    async with asyncio.timeout(WAIT):
        while await count(driver, Delivery, Delivery.status == DeliveryStatus.SENT) == 0:
            await asyncio.sleep(0.02)
    return draft.title


async def test_first_contact_consent_and_commune_by_old_name(driver):
    await join(driver)
    async with driver.sessionmaker() as session:
        resident = await session.scalar(select(Resident))
    assert resident.channel == driver.channel and resident.platform_id == USER
    assert resident.commune_code == 15148 and resident.language == "en"
    assert resident.consent_at is not None


async def test_declining_stores_nothing(driver):
    await driver.first_contact(USER)
    await driver.expect(USER, "Không, cảm ơn")
    await driver.press(USER, "Không, cảm ơn")
    await driver.expect(USER, "/start")
    assert await count(driver, Resident) == 0


async def test_a_draft_arrives_and_takes_a_comment_by_button(driver):
    await join(driver)
    title = await receive_draft(driver)
    await driver.press(USER, "💬 Comment")
    await driver.expect(USER, "1,000")  # the limit is said up front
    await driver.text(USER, "Thu gom rác lúc 18 giờ thì hơn.")
    await driver.expect(USER, "Received")
    async with driver.sessionmaker() as session:
        comment = await session.scalar(select(Comment))
    assert comment.text == "Thu gom rác lúc 18 giờ thì hơn." and title


async def test_the_draft_and_help_offer_a_reply_only_where_one_is_possible(driver):
    await join(driver)
    draft = await add_draft(driver.sessionmaker)
    await driver.deliver(USER)
    shown = await driver.expect(USER, draft.title)
    assert ("reply to this message" in shown) == driver.can_reply, shown
    assert "Tap Comment" in shown
    await driver.text(USER, "/drafts")
    listed = await driver.expect(USER, "Tap Comment")
    assert ("reply to this message" in listed) == driver.can_reply, listed
    await driver.text(USER, "/help")
    helped = await driver.expect(USER, "How to take part")
    assert ("reply to the draft message" in helped) == driver.can_reply, helped


async def test_a_reply_to_the_draft_is_a_comment(driver):
    if not driver.can_reply:
        pytest.skip(f"{driver.channel} has no replies to a message")
    await join(driver)
    title = await receive_draft(driver)
    await driver.reply(USER, "Phí cao quá.", to=title)
    await driver.expect(USER, "Received")
    assert await count(driver, Comment) == 1


async def test_vote_and_change_it(driver):
    await join(driver)
    await receive_draft(driver)
    await driver.press(USER, "🗳 Đồng ý")
    await driver.expect(USER, "Recorded your vote")
    await driver.press(USER, "🗳 Không đồng ý")
    await driver.expect(USER, "Không đồng ý")
    async with driver.sessionmaker() as session:
        votes = list(await session.scalars(select(Vote)))
    assert len(votes) == 1


async def test_stop_then_delete(driver):
    await join(driver)
    await driver.text(USER, "stop")
    await driver.expect(USER, "Stopped")
    assert await count(driver, Resident, Resident.subscribed.is_(True)) == 0
    await driver.text(USER, "/delete")
    await driver.expect(USER, "Yes, delete")
    await driver.press(USER, "Yes, delete")
    await driver.expect(USER, "Your data has been deleted")
    assert await count(driver, Resident) == 0


async def test_an_unsupported_message_is_answered(driver):
    if driver.channel == "console":
        pytest.skip("a terminal sends text only")
    await join(driver)
    await driver.photo(USER)
    await driver.expect(USER, "I can only read text messages")
    assert await count(driver, Comment) == 0


async def test_an_update_delivered_twice_is_handled_once(driver):
    if driver.channel == "console":
        pytest.skip("a terminal line is never delivered twice")
    await join(driver)
    await receive_draft(driver)
    await driver.press(USER, "💬 Comment")
    await driver.expect(USER, "1,000")
    await driver.text(USER, "Một lần thôi.")
    await driver.expect(USER, "Received")
    await driver.send_again(USER)
    await driver.text(USER, "/help")  # answered after the retry: the retry was handled first
    await driver.expect(USER, "How to take part")
    assert await count(driver, Comment) == 1
