"""Helpers for the tests of officials: people in chats holding roles, `ykien …` run in-loop,
sign-in links taken from the bot's answer, and the audit log read back."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli.main import main
from bot.service import ChatService
from handlers.events import Incoming, Kind
from handlers.turn import Workspace
from storage import roles
from storage.models import AuditEntry, utcnow
from storage.roles import Grant, Role, Scope
from tests.chat import CAM_TU, joined

PUBLIC_URL = "https://ykien.example.gov.vn"
# A chat app the command line knows (`--chat zalo:cb`); tests.chat's "test" is none.
CHANNEL = "zalo"
LINK = re.compile(r"https?://\S+/admin/login/([A-Za-z0-9_-]+)")


def workspace_service(sessionmaker: async_sessionmaker[AsyncSession], *admins: str,
                      public_url: str = PUBLIC_URL) -> ChatService:
    """The chat service as `ykien run` makes it with YKIEN_PUBLIC_URL and YKIEN_ADMIN_IDS
    (`admins`: user ids on the test channel)."""
    return ChatService(sessionmaker, workspace=Workspace(
        public_url, frozenset((CHANNEL, admin) for admin in admins)))


def say(user: str, body: str, **extra) -> Incoming:
    return Incoming(CHANNEL, user, Kind.TEXT, text=body, **extra)


def press(user: str, choice: str) -> Incoming:
    return Incoming(CHANNEL, user, Kind.CHOICE, choice=choice)


async def agree(service: ChatService, user: str) -> None:
    """Consent in English: the person now exists (nothing is stored before)."""
    await service.handle(press(user, "agree:en"))


async def subscribe(service: ChatService, user: str, commune: int = CAM_TU) -> None:
    await agree(service, user)
    await service.handle(press(user, f"commune:{commune}"))


async def give_role(sessionmaker: async_sessionmaker[AsyncSession], user: str, role: Role,
                    scope: str) -> int:
    """Grant a role to the person of a chat on the test channel, as `ykien role grant` does
    (without its audit row); their person id."""
    async with sessionmaker() as session:
        person_id = await roles.person_of_chat(session, (CHANNEL, user))
        assert person_id is not None, f"{user} has not agreed"
        await roles.grant(session, person_id, Grant(role, Scope.parse(scope)), utcnow())
        await session.commit()
    return person_id


async def official(service: ChatService, user: str, role: Role = Role.OFFICIAL,
                   scope: str = "commune:15148") -> int:
    await agree(service, user)
    return await give_role(service.sessionmaker, user, role, scope)


async def login_token(service: ChatService, user: str) -> str:
    """Type /login and take the token out of the link the bot answers."""
    answer = joined(await service.handle(say(user, "/login")))
    found = LINK.search(answer)
    assert found, answer
    return found.group(1)


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse refusing the arguments
        return exit.code if isinstance(exit.code, int) else 1


async def ykien(*argv: str) -> int:
    """`ykien …` in a thread (it runs an event loop of its own), its exit code; set the
    environment first (see `command_line`)."""
    return await asyncio.wait_for(asyncio.to_thread(_exit_code, list(argv)), 60)


def command_line(monkeypatch, database_url: str, tmp_path, **settings: str) -> None:
    """The environment of `ykien`: this database, English, no .env file, and `settings`
    (YKIEN_ + the name in capitals)."""
    monkeypatch.chdir(tmp_path)
    for name, value in {"database_url": database_url, "language": "en", "telegram_token": "",
                        "public_url": "", "admin_ids": "", **settings}.items():
        monkeypatch.setenv("YKIEN_" + name.upper(), value)


async def audit_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[AuditEntry]:
    async with sessionmaker() as session:
        return list((await session.scalars(
            select(AuditEntry).order_by(AuditEntry.id))).all())
