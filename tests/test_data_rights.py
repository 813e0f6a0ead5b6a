"""/mydata beyond the channels' paths (tests/channels/test_mydata.py): the daily limit, a
stranger, the typed words, a whole summary in several messages, linked chats, the download
link refused once erased, forged or expired; the consent events; the retention purge run
once a day by the housekeeping; migration 0011's record of earlier consents."""

from __future__ import annotations

import re
from datetime import timedelta

import aiohttp
from sqlalchemy import select, text, update

from bot.app import daily_purge
from bot.config import Settings
from bot.service import ChatService
from handlers.capabilities import Capabilities
from handlers.events import Document, Reply
from handlers.onboarding import CONSENT_VERSION
from storage import consent, retention
from storage.db import make_engine, upgrade
from storage.flood import CommentLimits
from storage.models import (
    AppSetting,
    Comment,
    ConsentEvent,
    DataLink,
    DataRequest,
    Person,
    Resident,
    utcnow,
)
from storage.personal_data import REQUESTS_A_DAY
from tests.chat import CHANNEL, button_for, joined, press, scalar_count, subscribe
from tests.chat import text as say
from tests.officials import PUBLIC_URL, workspace_service
from tests.retention_data import known_retention_set
from tests.test_linking import ZALO, code_shown, linked
from tests.test_linking import text as say_on
from tests.test_migration_0007 import downgrade_to
from tests.web.serving import running_server

LINK = re.compile(r"https?://\S+(/mydata/[A-Za-z0-9_-]+)")
FILES = Capabilities(buttons_per_message=100, button_label_limit=64, text_limit=4096,
                     sends_files=True)


async def test_a_few_requests_a_day_then_a_polite_refusal(service, sessionmaker):
    await subscribe(service, "u1")
    for _ in range(REQUESTS_A_DAY):
        answer = await service.handle(say("u1", "/mydata"), FILES)
        assert [type(part) for part in answer] == [Reply, Document]
    refused = joined(await service.handle(say("u1", "/mydata"), FILES))
    assert "already asked for your data 3 times" in refused and "ask again after" in refused
    assert await scalar_count(sessionmaker, DataRequest) == REQUESTS_A_DAY
    async with sessionmaker() as session:  # a day later, the next one is answered
        await session.execute(update(DataRequest).values(
            created_at=utcnow() - timedelta(days=1, minutes=1)))
        await session.commit()
    answer = await service.handle(say("u1", "/mydata"), FILES)
    assert isinstance(answer[-1], Document)
    assert await scalar_count(sessionmaker, DataRequest) == 1  # the old ones went


async def test_a_stranger_is_told_nothing_is_stored_and_nothing_is(service, sessionmaker):
    answer = joined(await service.handle(say("nobody", "/mydata")))
    assert "không có dữ liệu nào về bạn được lưu" in answer  # in Vietnamese, first
    assert await scalar_count(sessionmaker, Resident) == 0
    assert await scalar_count(sessionmaker, DataRequest) == 0


async def test_typed_words_and_a_comment_that_says_them(service, sessionmaker):
    await subscribe(service, "u1")
    for words in ("dữ liệu của tôi", "Du lieu cua toi", "DỮ LIỆU\u200b CỦA TÔI"):
        assert "Your data held by Ý kiến" in joined(await service.handle(say("u1", words)))
    assert "Your data" not in joined(await service.handle(say("u1", "dữ liệu của tôi đâu")))
    from tests.chat import make_draft

    draft = await make_draft(sessionmaker)
    await service.handle(press("u1", f"comment:{draft.id}"))
    asked = await service.handle(say("u1", "dữ liệu của tôi"))
    assert "your comment, or did you mean the command" in joined(asked)
    await service.handle(press("u1", button_for(asked, "See the data held about me")))
    assert await scalar_count(sessionmaker, Comment) == 0


async def test_a_message_kept_aside_is_in_the_data_until_it_is_placed(service, sessionmaker):
    from tests.chat import make_draft

    await subscribe(service, "u1")
    await make_draft(sessionmaker, title="Rubbish collection")
    asked = await service.handle(say("u1", "Bins overflow in hamlet 3"))
    shown = joined(await service.handle(say("u1", "/mydata"), FILES))
    kept = "Kept until you choose its draft, not yet a comment:\n• Bins overflow in hamlet 3"
    assert kept in shown
    document = await service.handle(say("u1", "/mydata"), FILES)
    assert isinstance(document[-1], Document)
    assert b'"kept_aside": "Bins overflow in hamlet 3"' in document[-1].data
    await service.handle(press("u1", button_for(asked, "Rubbish")))
    shown = joined(await service.handle(say("u1", "/mydata"), FILES))
    assert "Kept until" not in shown and "Bins overflow in hamlet 3" in shown  # a comment now


async def test_without_files_or_address_the_whole_summary_comes_in_several_messages(
        sessionmaker):
    from tests.chat import make_draft

    # Fifteen comments in a moment: the flood limit, which this does not test, is lifted.
    service = ChatService(sessionmaker, comment_limits=CommentLimits(per_minute=100,
                                                                     per_hour=100))
    await subscribe(service, "u1")
    draft = await make_draft(sessionmaker)
    written = [f"Ý kiến số {n}: " + "chữ " * 150 for n in range(1, 16)]
    for comment in written:
        await service.handle(press("u1", f"comment:{draft.id}"))
        await service.handle(say("u1", comment.strip()))
    small = Capabilities(buttons_per_message=0, button_label_limit=64, text_limit=2000)
    parts = await service.handle(say("u1", "/mydata"), small)
    assert len(parts) > 2 and all(isinstance(part, Reply) for part in parts)
    shown = joined(parts)
    assert all(comment.strip() in shown for comment in written)  # all 15, not 10
    assert "in the file" not in shown


async def test_linked_chats_are_one_person_with_both_chats(service, sessionmaker):
    await linked(service)
    shown = joined(await service.handle(say_on(ZALO, "/mydata")))
    assert "Telegram, account 1" in shown and "Zalo OA, account z1" in shown
    assert await code_shown(service)  # the person goes on


async def test_the_link_is_refused_when_forged_expired_or_the_person_erased(
        database_url, sessionmaker):
    chat = workspace_service(sessionmaker)
    for user in ("u1", "u2", "u3"):
        await subscribe(chat, user)
    links = {}
    for user in ("u1", "u2", "u3"):
        found = LINK.search(joined(await chat.handle(say(user, "/mydata"))))
        assert found and found.group(0).startswith(PUBLIC_URL)
        links[user] = found.group(1)
    asked = await chat.handle(say("u1", "/delete"))
    await chat.handle(press("u1", button_for(asked, "Yes, delete")))
    async with sessionmaker() as session:
        u2 = await session.scalar(select(Resident.person_id).where(Resident.platform_id == "u2"))
        await session.execute(update(DataLink).where(DataLink.person_id == u2).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    settings = Settings(database_url=database_url, public_url=PUBLIC_URL)
    async with running_server(settings) as address, aiohttp.ClientSession() as http:
        for path in (links["u1"], links["u2"], links["u3"] + "x", "/mydata/"):
            async with http.post(address + path) as answer:
                assert answer.status == 404, path
        async with http.post(address + links["u3"]) as answer:
            assert answer.status == 200
            assert (await answer.json())["chats"][0]["chat_id"] == "u3"


async def test_consent_events_of_agreeing_stopping_starting_and_erasing(service, sessionmaker):
    await subscribe(service, "u1")
    await service.handle(say("u1", "/stop"))
    await service.handle(say("u1", "/stop"))  # already stopped: nothing new
    await service.handle(say("u1", "/start"))
    await service.handle(say("u1", "/start"))  # already receiving: nothing new
    await service.handle(press("u1", "agree:en"))  # an old button: nothing new
    async with sessionmaker() as session:
        person = await session.scalar(select(Resident.person_id))
        expected = await consent.pseudonym(session, person)
    asked = await service.handle(say("u1", "/delete"))
    await service.handle(press("u1", button_for(asked, "No, keep")))
    await service.handle(press("u1", button_for(asked, "Yes, delete")))
    async with sessionmaker() as session:
        events = (await session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))).all()
    assert [(e.person, e.channel, e.event, e.notice_version) for e in events] == [
        (expected, CHANNEL, "agreed", CONSENT_VERSION), (expected, CHANNEL, "withdrawn", ""),
        (expected, CHANNEL, "agreed", CONSENT_VERSION), (expected, CHANNEL, "erased", "")]
    # Someone new may get the erased person's number (SQLite): not their record.
    await subscribe(service, "u2")
    async with sessionmaker() as session:
        person = await session.scalar(select(Resident.person_id))
        assert await consent.pseudonym(session, person) != expected


async def test_the_housekeeping_purges_once_a_day(sessionmaker):
    await known_retention_set(sessionmaker)
    await daily_purge(sessionmaker, retention.DEFAULT_MONTHS)
    assert await scalar_count(sessionmaker, Comment, Comment.resident_id.is_(None)) == 2
    assert await scalar_count(sessionmaker, Resident) == 4
    async with sessionmaker() as session:  # c falls silent long enough, and stops
        await session.execute(update(Resident).where(Resident.platform_id == "c")
                              .values(subscribed=False))
        await session.commit()
    await daily_purge(sessionmaker, retention.DEFAULT_MONTHS)  # not a day later yet
    assert await scalar_count(sessionmaker, Resident) == 4
    async with sessionmaker() as session:
        a_day_ago = utcnow() - timedelta(days=1, seconds=1)
        await session.execute(update(AppSetting).where(AppSetting.key == retention.LAST_RUN)
                              .values(value=a_day_ago.isoformat(timespec="seconds")))
        await session.commit()
    await daily_purge(sessionmaker, retention.DEFAULT_MONTHS)
    assert await scalar_count(sessionmaker, Resident) == 3


def test_months_before_keeps_the_day_or_takes_the_month_end():
    now = utcnow().replace(year=2026, month=3, day=31)
    assert retention.months_before(now, 1).date().isoformat() == "2026-02-28"
    assert retention.months_before(now, 24).date().isoformat() == "2024-03-31"
    assert retention.months_before(now, 25).date().isoformat() == "2024-02-29"


async def test_migration_0011_records_the_consents_given_before(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to("0009"))
            await connection.execute(text(
                "INSERT INTO persons (id, created_at) VALUES (7, '2026-01-02 03:04:05.123456')"))
            await connection.execute(text(
                "INSERT INTO residents (channel, platform_id, person_id, language, consent_at,"
                " consent_version, subscribed, reachable, notice_version, awaiting, held_text,"
                " held_forwarded, created_at) VALUES ('zalo', 'z9', 7, 'vi',"
                " '2026-01-02 03:04:05', '2026-01-01', true, true, '', '', '', false,"
                " '2026-01-02 03:04:05')"))
        await upgrade(engine)
        from sqlalchemy.ext.asyncio import async_sessionmaker

        async with async_sessionmaker(engine)() as session:
            event = await session.scalar(select(ConsentEvent))
            assert event is not None and await session.get(Person, 7) is not None
            assert event.person == await consent.pseudonym(session, 7)
            assert (event.channel, event.event, event.notice_version, event.detail) == (
                "zalo", "agreed", "2026-01-01", consent.BEFORE_RECORD)
            assert event.at.isoformat() == "2026-01-02T03:04:05+00:00"
    finally:
        await engine.dispose()


async def test_the_notice_states_the_periods_and_other_periods_are_another_version(
        sessionmaker):
    from bot.service import ChatService
    from handlers.turn import Periods, Workspace

    default = ChatService(sessionmaker)
    greeting = joined(await default.handle(say("u1", "/start")))  # in Vietnamese, first
    assert "Gõ /mydata" in greeting and "24 tháng sau khi một dự thảo kết thúc" in greeting
    assert "được giữ 90 ngày" in greeting and "lựa chọn được giữ 7 ngày" in greeting
    await subscribe(default, "u1")
    longer = ChatService(sessionmaker, workspace=Workspace(periods=Periods(36, 120)))
    shown = joined(await longer.handle(say("u1", "/help")))
    assert "privacy notice has changed" in shown and "36 months after" in shown
    assert "privacy notice has changed" not in joined(await longer.handle(say("u1", "/help")))
    await longer.handle(press("u1", "agree:en"))
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
        versions = (await session.scalars(select(ConsentEvent.notice_version)
                                          .order_by(ConsentEvent.id))).all()
    assert resident.consent_version.startswith(CONSENT_VERSION + ".")
    assert len(resident.consent_version) <= 16
    assert versions == [CONSENT_VERSION, resident.consent_version]


async def test_the_purge_drops_spent_requests_and_dead_links_only(sessionmaker):
    chat = workspace_service(sessionmaker)
    for user in ("old", "new"):
        await subscribe(chat, user)
        await chat.handle(say(user, "/mydata"))
    async with sessionmaker() as session:
        old = await session.scalar(select(Resident.person_id).where(Resident.platform_id == "old"))
        await session.execute(update(DataRequest).where(DataRequest.person_id == old).values(
            created_at=utcnow() - timedelta(days=2)))
        await session.execute(update(DataLink).where(DataLink.person_id == old).values(
            expires_at=utcnow() - timedelta(minutes=1)))
        await retention.purge(session, utcnow(), retention.DEFAULT_MONTHS)
        await session.commit()
    assert await scalar_count(sessionmaker, DataRequest) == 1
    assert await scalar_count(sessionmaker, DataLink) == 1
    assert await scalar_count(sessionmaker, DataLink, DataLink.person_id == old) == 0


async def test_a_number_after_mydata_reaches_nobody_else(service, sessionmaker):
    await subscribe(service, "u1")
    await subscribe(service, "u2")
    async with sessionmaker() as session:
        other = await session.scalar(select(Resident.person_id)
                                     .where(Resident.platform_id == "u2"))
    answer = await service.handle(say("u1", f"/mydata {other}"), FILES)
    file = answer[-1]
    assert isinstance(file, Document)
    assert b'"chat_id": "u1"' in file.data and b"u2" not in file.data
