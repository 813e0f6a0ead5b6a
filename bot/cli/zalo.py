"""`ykien zalo auth` (OAuth consent with PKCE) and `ykien zalo status`, and the callback page.

`auth` stores a PKCE verifier and state, prints Zalo's consent URL, and takes the code Zalo
returns: typed or pasted (the whole address works too), given with `--code`, or received by
`ykien serve` at /zalo/oauth/callback. The code is exchanged for a token pair, which is saved
and clears any problem: a running server picks it up within a minute.

Exit codes: 0 done, 1 cannot be done (Zalo refused, unreachable, nothing to finish; status:
the channel has a problem), 2 not configured.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import TemporaryFailure
from bot.channels.zalo_oa.api import PERMISSION_PATH, OAuthRefused, TokenPair, request_tokens
from bot.channels.zalo_oa.channel import CALLBACK_PATH, CHANNEL
from bot.config import Settings
from handlers.i18n import Translator, translator
from storage import tokens
from storage.db import open_database
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.channels.zalo_oa.channel import ZaloOAChannel

AddCommand = Callable[..., argparse.ArgumentParser]


def add_zalo_commands(commands, add: AddCommand, t: Translator) -> None:
    """Register `ykien zalo …` under the top-level subcommands."""
    zalo = commands.add_parser("zalo", help=t("the Zalo Official Account"))
    subcommands = zalo.add_subparsers(dest="zalo_command", required=True, metavar="COMMAND")
    auth = add("auth", t("connect the Zalo OA: open Zalo's consent page, then give the code"),
               cmd_zalo_auth, subcommands)
    auth.add_argument("--code", help=t("the code Zalo gave after consent (or the whole address)"))
    add("status", t("whether the Zalo OA can send, its tokens and held messages"),
        cmd_zalo_status, subcommands)


# ---- PKCE and the exchange -----------------------------------------------------------------


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


class AuthFailure(StrEnum):
    NOTHING_PENDING = "nothing pending"  # no `ykien zalo auth` was started
    WRONG_STATE = "wrong state"  # not the consent this server asked for
    REFUSED = "refused"  # Zalo refused the code (or the app secret)
    UNREACHABLE = "unreachable"


class AuthError(Exception):
    def __init__(self, failure: AuthFailure, detail: str = "") -> None:
        super().__init__(f"{failure}: {detail}" if detail else str(failure))
        self.failure = failure
        self.detail = detail

    def explain(self, t: Translator) -> str:
        if self.failure == AuthFailure.NOTHING_PENDING:
            return t("No Zalo authorisation is under way. Start one with: ykien zalo auth")
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


def _app(settings: Settings) -> ZaloApp:
    return ZaloApp(settings.zalo_oauth_url, settings.zalo_app_id, settings.zalo_app_secret)


def _missing(settings: Settings, *, webhook: bool) -> list[str]:
    needed = [("YKIEN_ZALO_APP_ID", settings.zalo_app_id),
              ("YKIEN_ZALO_APP_SECRET", settings.zalo_app_secret)]
    if webhook:
        needed += [("YKIEN_ZALO_OA_SECRET", settings.zalo_oa_secret),
                   ("YKIEN_PUBLIC_URL", settings.public_url)]
    return [name for name, value in needed if not value]


# ---- ykien zalo auth -----------------------------------------------------------------------


async def cmd_zalo_auth(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    missing = _missing(settings, webhook=False)
    if args.code is None and not settings.public_url:
        missing.append("YKIEN_PUBLIC_URL")
    if missing:
        print(t("Set {variables} first (in the environment or the .env file; see "
                ".env.example).", variables=", ".join(missing)), file=sys.stderr)
        return 2
    async with open_database(settings.database_url) as sessionmaker:
        if args.code is None:
            verifier, challenge = pkce_pair()
            nonce = secrets.token_urlsafe(16)
            async with sessionmaker() as session, session.begin():
                await tokens.start_authorisation(session, CHANNEL, verifier, nonce, utcnow())
            redirect = redirect_uri(settings.public_url)
            print(t("1. Open this address while logged in as an admin of the OA, and allow "
                    "access:"))
            print(consent_url(settings.zalo_oauth_url, settings.zalo_app_id, redirect,
                              challenge, nonce))
            print(t("2. Zalo then opens {url}. If ykien serve runs there, it finishes by "
                    "itself. Otherwise copy that whole address (or its code) and paste it "
                    "here:", url=redirect))
            pasted = sys.stdin.readline()
            if not pasted.strip():
                print(t("No code given. Finish later with: ykien zalo auth --code CODE"))
                return 0
        else:
            pasted = args.code
        code, state = code_from(pasted)
        async with aiohttp.ClientSession() as http:
            try:
                pair = await finish_authorisation(sessionmaker, http, _app(settings), code,
                                                  state)
            except AuthError as error:
                print(error.explain(t), file=sys.stderr)
                return 1
    print(t("The Zalo OA is connected. The access token is valid until {access}; the "
            "refresh token until {refresh}.", access=t.datetime(pair.access_expires_at),
            refresh=t.datetime(pair.refresh_expires_at)))
    return 0


def callback_handler(
    sessionmaker: async_sessionmaker[AsyncSession], channel: ZaloOAChannel
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /zalo/oauth/callback?code=…&state=…: where Zalo sends the admin after consent."""
    app = ZaloApp(channel.oauth_url, channel.app_id, channel.keeper.app_secret)

    async def callback(request: web.Request) -> web.Response:
        t = translator(None)
        code, state = request.query.get("code", ""), request.query.get("state", "")
        if not code or not state:
            return web.Response(status=400, text=t(
                "This page needs the code and state Zalo adds after consent."))
        try:
            await finish_authorisation(sessionmaker, channel._http(), app, code, state)
        except AuthError as error:
            status = 502 if error.failure == AuthFailure.UNREACHABLE else 400
            return web.Response(status=status, text=error.explain(t))
        return web.Response(text=t("The Zalo OA is connected. You can close this page."))

    return callback


# ---- ykien zalo status ---------------------------------------------------------------------


async def cmd_zalo_status(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    if not settings.zalo_app_id:
        print(t("The Zalo OA is not configured: set YKIEN_ZALO_APP_ID, YKIEN_ZALO_APP_SECRET "
                "and YKIEN_ZALO_OA_SECRET (see .env.example)."), file=sys.stderr)
        return 2
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        row = await tokens.get(session, CHANNEL)
        held = await tokens.held_count(session, CHANNEL)
    print(t("Zalo OA: app {app_id}.", app_id=settings.zalo_app_id))
    missing = _missing(settings, webhook=True)
    if missing:
        print(t("Missing settings: {variables}.", variables=", ".join(missing)))
    healthy = not missing
    if row is None or not row.refresh_token:
        if settings.zalo_refresh_token:
            print(t("No tokens stored yet: those of YKIEN_ZALO_ACCESS_TOKEN and "
                    "YKIEN_ZALO_REFRESH_TOKEN are stored when ykien serve starts."))
        else:
            print(t("No tokens yet. Connect the OA with: ykien zalo auth"))
            healthy = False
    else:
        if row.access_expires_at is None:
            print(t("Access token: the configured one, used until Zalo refuses it."))
        else:
            print(t("Access token valid until {time} (renewed an hour before).",
                    time=t.datetime(row.access_expires_at)))
        if row.refresh_expires_at is not None:
            print(t("Refresh token valid until {time}.", time=t.datetime(row.refresh_expires_at)))
    if row is not None and row.problem:
        print(t("Not sending: {problem}", problem=row.problem))
        healthy = False
    if row is not None and row.pkce_state:
        print(t("An authorisation is under way: finish it with: ykien zalo auth --code CODE"))
    print(t.plural(
        "{count} message waits for its resident to write to the OA (the 7-day window).",
        "{count} messages wait for their residents to write to the OA (the 7-day window).",
        held,
    ))
    return 0 if healthy else 1
