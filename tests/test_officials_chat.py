"""Officials in the chat: invite codes (once, expiry, guesses limited with link codes, consent
first), /login's one-time link (not set up without YKIEN_PUBLIC_URL, never kept in the
database, no preview on Telegram), and residents who never learn official commands exist."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.app import run_channels
from bot.config import Settings
from storage import roles
from storage.linking import GUESS_LIMIT
from storage.models import AuditEntry, LoginLink, ProcessedUpdate, Resident, RoleInvite, utcnow
from storage.roles import Grant, Role, Scope
from storage.sessions import LOGIN_LINK_LIFETIME
from tests.channels.fake_telegram import FakeTelegram
from tests.chat import joined
from tests.officials import (
    CHANNEL,
    LINK,
    PUBLIC_URL,
    agree,
    audit_rows,
    official,
    say,
    subscribe,
    workspace_service,
)


async def invite(sessionmaker, role: Role = Role.OFFICIAL, scope: str = "commune:15148",
                 hours: int = 48) -> str:
    """An invite code as `ykien role invite` prints it ("K7M4-QX9P-2HTR")."""
    async with sessionmaker() as session:
        code = await roles.new_invite(session, Grant(role, Scope.parse(scope)), utcnow(),
                                      timedelta(hours=hours))
        await session.commit()
    return roles.shown_invite(code)


async def grants(sessionmaker, user: str) -> set[Grant]:
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, (CHANNEL, user))
        return set(await roles.grants_of(session, person)) if person else set()


async def test_an_invite_code_gives_its_role_once(sessionmaker):
    service = workspace_service(sessionmaker)
    code = await invite(sessionmaker)
    await subscribe(service, "cb")
    answer = joined(await service.handle(say("cb", code.lower().replace("-", " "))))
    assert "you are now official of Xã Cẩm Tú — Tỉnh Thanh Hóa (commune 15148)" in answer
    assert "/login" in answer
    assert await grants(sessionmaker, "cb") == {Grant(Role.OFFICIAL, Scope.parse("commune:15148"))}
    # Once: another person typing it gets nothing.
    await agree(service, "other")
    assert "expired or was used" in joined(await service.handle(say("other", code)))
    assert await grants(sessionmaker, "other") == set()
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.channel, r.role, r.action, r.detail) for r in rows] == [
        ("chat", CHANNEL, "official", "invite_used", "official commune:15148")]


async def test_an_expired_invite_code_gives_nothing(sessionmaker):
    service = workspace_service(sessionmaker)
    code = await invite(sessionmaker, hours=1)
    async with sessionmaker() as session:
        await session.execute(update(RoleInvite).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    await agree(service, "cb")
    assert "expired or was used" in joined(await service.handle(say("cb", code)))
    assert await grants(sessionmaker, "cb") == set()
    assert await audit_rows(sessionmaker) == []


async def test_an_invite_code_needs_consent_first_and_stores_nothing_before(sessionmaker):
    service = workspace_service(sessionmaker)
    code = await invite(sessionmaker, Role.STAFF)
    answer = joined(await service.handle(say("cb", code)))
    assert "Để dùng mã này, trước hết hãy đồng ý" in answer  # a stranger: Vietnamese
    async with sessionmaker() as session:
        assert (await session.scalars(select(Resident))).all() == []
    await agree(service, "cb")
    assert "staff member of" in joined(await service.handle(say("cb", code)))


async def test_wrong_invite_codes_count_with_wrong_link_codes(sessionmaker):
    service = workspace_service(sessionmaker)
    code = await invite(sessionmaker)
    await subscribe(service, "cb")
    await service.handle(say("cb", "K7M4QX"))  # a wrong link code
    for _ in range(GUESS_LIMIT - 1):
        assert "That code is wrong" in joined(await service.handle(say("cb", "2345-6789-ABCD")))
    # The right code now waits too: guessing stops for everyone's safety.
    assert "Too many wrong codes" in joined(await service.handle(say("cb", code)))
    assert await grants(sessionmaker, "cb") == set()


async def test_text_that_merely_looks_like_a_code_is_a_comment(sessionmaker):
    service = workspace_service(sessionmaker)
    await subscribe(service, "cb")
    await service.handle(say("cb", "/drafts"))
    for words in ("2345 6789 ABCD E", "tôi đồng ý 100%", "ABCDEFGHJKMN", "234567892345"):
        assert "code" not in joined(await service.handle(say("cb", words)))


async def test_login_answers_a_one_time_link_to_a_role_holder(sessionmaker):
    service = workspace_service(sessionmaker)
    await official(service, "cb")
    answer = await service.handle(say("cb", "/login", update_id="u-1"))
    assert len(answer) == 1 and answer[0].secret
    found = LINK.search(answer[0].text)
    assert found and found.group(0).startswith(PUBLIC_URL + "/admin/login/")
    assert "10 minutes" in answer[0].text
    # "đăng nhập" typed, with or without accents, is /login too.
    for words in ("đăng nhập", "Dang Nhap"):
        assert LINK.search(joined(await service.handle(say("cb", words))))
    async with sessionmaker() as session:
        links = (await session.scalars(select(LoginLink))).all()
        kept = await session.scalar(select(ProcessedUpdate.replies).where(
            ProcessedUpdate.update_id == "u-1"))
    assert len(links) == 3
    assert all(link.expires_at - link.created_at == LOGIN_LINK_LIFETIME for link in links)
    # Only hashes are stored, and the replies kept for a redelivered update leave it out.
    assert found.group(1) not in {link.token_hash for link in links}
    assert kept is not None and found.group(1) not in kept
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.role, r.action) for r in rows] == [("chat", "official", "login_link")] * 3


async def test_login_link_answer_given_again_for_a_redelivered_update_holds_no_link(
        sessionmaker):
    service = workspace_service(sessionmaker)
    await official(service, "cb")
    first = await service.handle(say("cb", "/login", update_id="u-1"))
    assert LINK.search(joined(first))
    assert await service.handle(say("cb", "/login", update_id="u-1")) == []


async def test_login_without_a_public_address_says_how_to_set_the_workspace_up(sessionmaker):
    service = workspace_service(sessionmaker, public_url="")
    await official(service, "cb")
    answer = joined(await service.handle(say("cb", "/login")))
    assert "not set up" in answer and "YKIEN_PUBLIC_URL" in answer and "ykien serve" in answer
    assert await audit_rows(sessionmaker) == []


def _as_unknown(answer: str, typed: str) -> str:
    return answer.replace(typed, "…")


@pytest.mark.parametrize("command", ["/login", "/results 1", "/export 1", "/LOGIN@ykien_bot"])
async def test_a_resident_typing_an_official_command_gets_the_unknown_command_answer(
        sessionmaker, command):
    service = workspace_service(sessionmaker)
    await subscribe(service, "dan")
    await subscribe(service, "dan2")
    name = command.split()[0][1:].split("@")[0].lower()
    official_answer = joined(await service.handle(say("dan", command)))
    unknown_answer = joined(await service.handle(say("dan2", "/nosuchthing")))
    assert _as_unknown(official_answer, "/" + name) == _as_unknown(unknown_answer, "/nosuchthing")
    assert "login" not in unknown_answer.lower()
    assert await audit_rows(sessionmaker) == []


async def test_a_resident_typing_dang_nhap_is_answered_as_any_other_text(sessionmaker):
    service = workspace_service(sessionmaker)
    await subscribe(service, "dan")
    await subscribe(service, "dan2")
    answer = joined(await service.handle(say("dan", "đăng nhập")))
    other = joined(await service.handle(say("dan2", "xin chào")))
    assert _as_unknown(answer, "đăng nhập") == _as_unknown(other, "xin chào")
    assert "/admin/" not in answer


async def test_an_official_whose_role_is_revoked_is_a_resident_again(sessionmaker):
    service = workspace_service(sessionmaker)
    person = await official(service, "cb")
    assert LINK.search(joined(await service.handle(say("cb", "/login"))))
    async with sessionmaker() as session:
        await roles.revoke(session, person)
        await session.commit()
    assert "I do not know the command" in joined(await service.handle(say("cb", "/login")))


# ---- over Telegram: the real adapter against the fake Bot API ---------------------------------

OFFICIAL_CHAT = 4242


@contextlib.asynccontextmanager
async def telegram_bot(fake: FakeTelegram, database_url: str) -> AsyncIterator[None]:
    """`ykien run` with a public address, and the official's chat in YKIEN_ADMIN_IDS."""
    settings = Settings(database_url=database_url, telegram_token=fake.token,
                        telegram_api_url=fake.url, public_url=PUBLIC_URL,
                        admin_ids=(f"telegram:{OFFICIAL_CHAT}",))
    stop = asyncio.Event()
    since = len(fake.requests)
    app = asyncio.create_task(run_channels(settings, stop))
    await fake.wait_for("getUpdates", since=since, arrived=True)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(app, timeout=30)


async def agree_on_telegram(fake: FakeTelegram) -> None:
    """The official's chat starts and agrees to the privacy notice, in English."""
    since = len(fake.calls)
    fake.push_text(OFFICIAL_CHAT, "/start")
    await fake.wait_for(lambda c: c.method == "sendMessage" and "agree" in str(
        c.params.get("reply_markup", "")), since=since)
    message_id = fake.messages_to(OFFICIAL_CHAT)[-1]["message_id"]
    since = len(fake.calls)
    fake.push_callback(OFFICIAL_CHAT, "agree:en", message_id)
    await fake.wait_for(lambda c: c.method in ("sendMessage", "editMessageText")
                        and c.chat_id == OFFICIAL_CHAT, since=since)


@pytest.mark.usefixtures("brisk_chats")
async def test_on_telegram_the_link_goes_without_a_preview(database_url):
    async with FakeTelegram() as fake, telegram_bot(fake, database_url):
        await agree_on_telegram(fake)
        since = len(fake.calls)
        fake.push_text(OFFICIAL_CHAT, "/login")
        sent = await fake.wait_for(lambda c: c.method == "sendMessage"
                                   and "/admin/login/" in str(c.params.get("text")), since=since)
    assert sent.params["link_preview_options"] in ({"is_disabled": True}, '{"is_disabled": true}')
    assert re.search(r"/admin/login/[A-Za-z0-9_-]{43}\n", sent.params["text"])
    async with with_database(database_url) as rows:
        assert [(r.via, r.channel, r.role, r.action) for r in rows] == [
            ("chat", "telegram", "admin", "login_link")]


@contextlib.asynccontextmanager
async def with_database(database_url: str) -> AsyncIterator[list[AuditEntry]]:
    from storage.db import open_database

    async with open_database(database_url) as sessionmaker:
        yield await audit_rows(sessionmaker)

