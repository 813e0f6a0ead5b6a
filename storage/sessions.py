"""Signing in to the workspace without passwords: one-time sign-in links given in the chat,
the browser sessions they start, and the refused attempts that slow guessing down.

Links and sessions are random tokens of which only the hash is stored, so the tables give
nobody a way in. A session is a row: deleting it signs the browser out in every process.
None of these commits.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.keys import token_hash
from storage.models import DataLink, LoginLink, SignInFailure, WebSession
from storage.queries import affected

LOGIN_LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_BYTES = 32  # 256 random bits: guessing one is hopeless, limiting is for good measure
# Refused sign-in links allowed per client in a window; then the client waits.
FAILURE_LIMIT = 10
FAILURE_WINDOW = timedelta(minutes=15)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


# The tables of tokens given to a person (storage.models.PersonToken).
TokenModel = type[LoginLink] | type[WebSession] | type[DataLink]


async def issue_token(session: AsyncSession, model: TokenModel, person_id: int,
                      now: datetime, lifetime: timedelta) -> str:
    """A fresh token for the person, stored as its hash; the model's expired rows go."""
    await session.execute(delete(model).where(model.expires_at <= now))
    token = new_token()
    session.add(model(token_hash=token_hash(token), person_id=person_id, created_at=now,
                      expires_at=now + lifetime))
    await session.flush()
    return token


async def new_login_link(session: AsyncSession, person_id: int, now: datetime) -> str:
    """A fresh sign-in token for the person (put it in the link; it is not stored)."""
    return await issue_token(session, LoginLink, person_id, now, LOGIN_LINK_LIFETIME)


async def login_link_person(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Whose live sign-in link this is, without using it up (a page may be looked at, by a
    preview robot too, without signing anyone in)."""
    return await token_person(session, LoginLink, token, now)


async def token_person(session: AsyncSession, model: TokenModel, token: str, now: datetime
                       ) -> int | None:
    """Whose live token this is, without using it up."""
    return await session.scalar(select(model.person_id).where(
        model.token_hash == token_hash(token), model.expires_at > now))


async def spend_login_link(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Use a sign-in link: its person, or None when it is wrong, expired or used (once, even
    with two browsers posting at the same moment on two processes)."""
    return await spend_token(session, LoginLink, token, now)


async def spend_token(session: AsyncSession, model: TokenModel, token: str, now: datetime
                      ) -> int | None:
    """Use a one-time token: its person, or None when it is wrong, expired or used (once,
    even when two requests spend it at the same moment on two processes)."""
    spent = (await session.execute(
        delete(model).where(model.token_hash == token_hash(token))
        .returning(model.person_id, model.expires_at)
        .execution_options(synchronize_session=False))).first()
    if spent is None or spent.expires_at <= now:
        return None
    return int(spent.person_id)


async def start_session(session: AsyncSession, person_id: int, now: datetime) -> str:
    """A new browser session for the person: the token for the cookie (only its hash is
    kept)."""
    return await issue_token(session, WebSession, person_id, now, SESSION_LIFETIME)


async def session_person(session: AsyncSession, token: str, now: datetime) -> int | None:
    """The person signed in with this session token, while the session lasts."""
    return await session.scalar(select(WebSession.person_id).where(
        WebSession.token_hash == token_hash(token), WebSession.expires_at > now))


async def end_session(session: AsyncSession, token: str) -> bool:
    """Sign one browser out; False when it was not signed in."""
    result = await session.execute(delete(WebSession).where(
        WebSession.token_hash == token_hash(token)).execution_options(synchronize_session=False))
    return affected(result) == 1


async def end_sessions_of(session: AsyncSession, person_id: int) -> int:
    """Sign out every browser of the person (and drop their unused sign-in links): how many
    sessions were ended."""
    await session.execute(delete(LoginLink).where(LoginLink.person_id == person_id))
    result = await session.execute(delete(WebSession).where(WebSession.person_id == person_id)
                                   .execution_options(synchronize_session=False))
    return affected(result)


async def recent_failures(session: AsyncSession, client: str, now: datetime) -> list[datetime]:
    """When this client's refused sign-in attempts that still count happened, oldest first."""
    return list((await session.scalars(
        select(SignInFailure.created_at)
        .where(SignInFailure.client == client, SignInFailure.created_at > now - FAILURE_WINDOW)
        .order_by(SignInFailure.created_at))).all())


async def record_failure(session: AsyncSession, client: str, now: datetime) -> None:
    """Count a refused attempt; attempts (anyone's) that no longer count go."""
    await session.execute(delete(SignInFailure).where(
        SignInFailure.created_at <= now - FAILURE_WINDOW))
    session.add(SignInFailure(client=client, created_at=now))
    await session.flush()

