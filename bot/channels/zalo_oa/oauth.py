"""Connecting the Zalo OA by OAuth v4 with PKCE: the consent URL, the code exchange, and the
callback page where Zalo sends the admin after consent (served by `ykien serve`).

`ykien zalo auth` (bot/cli/zalo.py) stores a verifier and a state and prints the consent URL;
the code comes back to the callback page or is pasted, and `finish_authorisation` exchanges it
for a token pair, which is saved: a running server picks it up within a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import TemporaryFailure
from bot.channels.zalo_oa.api import (
    CHANNEL,
    PERMISSION_PATH,
    OAuthRefused,
    TokenPair,
    request_tokens,
)
from handlers.i18n import Translator, translator
from storage import sealing, tokens
from storage.models import utcnow

CALLBACK_PATH = "/zalo/oauth/callback"


def pkce_pair() -> tuple[str, str]:
    """A code verifier (86 characters of A–Z a–z 0–9 - _) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect_uri(public_url: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH


def consent_url(oauth_url: str, app_id: str, redirect: str, challenge: str, state: str) -> str:
    query = urlencode({"app_id": app_id, "redirect_uri": redirect,
                       "code_challenge": challenge, "state": state})
    return f"{oauth_url.rstrip('/')}{PERMISSION_PATH}?{query}"


def code_from(text: str) -> tuple[str, str | None]:
    """(code, state) from what the admin pasted: the code, or the whole callback address."""
    text = text.strip()
    if "code=" not in text:
        return text, None
    query = parse_qs(urlsplit(text).query or text.partition("?")[2] or text)
    return query.get("code", [""])[0], query.get("state", [None])[0]


def no_secret_key(t: Translator) -> str:
    """What the admin reads when the OA's tokens cannot be stored: there is no key."""
    return t("The Zalo OA's tokens are stored only encrypted, and YKIEN_SECRET_KEY is not set. "
             "Make a key with: ykien secret generate, put it in YKIEN_SECRET_KEY (in the "
             "environment or the .env file) and keep a copy somewhere safe, then start again.")


class AuthFailure(StrEnum):
    NOTHING_PENDING = "nothing pending"  # no `ykien zalo auth` was started
    WRONG_STATE = "wrong state"  # not the consent this server asked for
    REFUSED = "refused"  # Zalo refused the code (or the app secret)
    UNREACHABLE = "unreachable"
    NO_SECRET_KEY = "no secret key"  # YKIEN_SECRET_KEY unset: the tokens could not be stored


class AuthError(Exception):
    def __init__(self, failure: AuthFailure, detail: str = "") -> None:
        super().__init__(f"{failure}: {detail}" if detail else str(failure))
        self.failure = failure
        self.detail = detail

    def explain(self, t: Translator) -> str:
        if self.failure == AuthFailure.NOTHING_PENDING:
            return t("No Zalo authorisation is under way. Start one with: ykien zalo auth")
        if self.failure == AuthFailure.NO_SECRET_KEY:
            return no_secret_key(t)
        if self.failure == AuthFailure.WRONG_STATE:
            return t("This code belongs to another authorisation (the state does not match). "
                     "Start again with: ykien zalo auth")
        if self.failure == AuthFailure.REFUSED:
            return t("Zalo refused the code: {reason}. Codes work once and for a few minutes; "
                     "check YKIEN_ZALO_APP_SECRET, then start again with: ykien zalo auth",
                     reason=self.detail)
        return t("Zalo could not be reached ({reason}). Try again in a moment.",
                 reason=self.detail)


@dataclass(frozen=True)
class ZaloApp:
    oauth_url: str
    app_id: str
    app_secret: str


async def finish_authorisation(
    sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession, app: ZaloApp,
    code: str, state: str | None,
) -> TokenPair:
    """Exchange the code for a token pair with the stored verifier, and save the pair.

    `state` is checked when known (the callback always knows it). Raises AuthError.
    """
    if not sealing.current().has_key:  # before spending the code on a pair we cannot keep
        raise AuthError(AuthFailure.NO_SECRET_KEY)
    async with sessionmaker() as session:
        row = await tokens.get(session, CHANNEL)
    if row is None or not row.pkce_verifier:
        raise AuthError(AuthFailure.NOTHING_PENDING)
    if state is not None and not hmac.compare_digest(state.encode(), row.pkce_state.encode()):
        raise AuthError(AuthFailure.WRONG_STATE)
    try:
        pair = await request_tokens(
            http, app.oauth_url, app.app_id, app.app_secret,
            {"code": code, "grant_type": "authorization_code",
             "code_verifier": row.pkce_verifier},
            utcnow(),
        )
    except OAuthRefused as refused:
        raise AuthError(AuthFailure.REFUSED, str(refused)) from refused
    except TemporaryFailure as failure:
        raise AuthError(AuthFailure.UNREACHABLE, str(failure)) from failure
    async with sessionmaker() as session, session.begin():
        await tokens.save_pair(session, CHANNEL, pair.access_token, pair.refresh_token,
                               pair.access_expires_at, pair.refresh_expires_at, utcnow())
    return pair


def callback_handler(
    sessionmaker: async_sessionmaker[AsyncSession], http: Callable[[], aiohttp.ClientSession],
    app: ZaloApp,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /zalo/oauth/callback?code=…&state=…: where Zalo sends the admin after consent."""

    async def callback(request: web.Request) -> web.Response:
        t = translator(None)
        code, state = request.query.get("code", ""), request.query.get("state", "")
        if not code or not state:
            return web.Response(status=400, text=t(
                "This page needs the code and state Zalo adds after consent."))
        try:
            await finish_authorisation(sessionmaker, http(), app, code, state)
        except AuthError as error:
            if error.failure in (AuthFailure.NOTHING_PENDING, AuthFailure.WRONG_STATE):
                # Anyone can open this page: it must not tell whether an authorisation is
                # under way (the admin's terminal says which).
                return web.Response(status=400, text=t(
                    "This address does not belong to an authorisation of this server (or it "
                    "was used already). Start again with: ykien zalo auth"))
            status = {AuthFailure.UNREACHABLE: 502,
                      AuthFailure.NO_SECRET_KEY: 503}.get(error.failure, 400)
            return web.Response(status=status, text=error.explain(t))
        return web.Response(text=t("The Zalo OA is connected. You can close this page."))

    return callback
