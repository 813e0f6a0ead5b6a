"""`ykien zalo auth` (OAuth consent with PKCE) and `ykien zalo status`.

`auth` stores a PKCE verifier and state, prints Zalo's consent URL, and takes the code Zalo
returns: typed or pasted (the whole address works too), given with `--code`, or received by
`ykien serve` at /zalo/oauth/callback (bot/channels/zalo_oa/oauth.py, which exchanges the code
for a token pair and saves it: a running server picks it up within a minute).

Exit codes: 0 done, 1 cannot be done (Zalo refused, unreachable, nothing to finish; status:
the channel has a problem), 2 not configured.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.channels.zalo_oa.oauth import ZaloApp
    from bot.config import Settings


def add_zalo_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    """Register `ykien zalo …` under the top-level subcommands."""
    zalo = commands.add_parser("zalo", help=t("the Zalo Official Account"))
    subcommands = zalo.add_subparsers(dest="zalo_command", required=True, metavar="COMMAND")
    auth = add("auth", t("connect the Zalo OA: open Zalo's consent page, then give the code"),
               cmd_zalo_auth, subcommands)
    auth.add_argument("--code", help=t("the code Zalo gave after consent (or the whole address)"))
    add("status", t("whether the Zalo OA can send, its tokens and held messages"),
        cmd_zalo_status, subcommands)


def _app(settings: Settings) -> ZaloApp:
    from bot.channels.zalo_oa.oauth import ZaloApp

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
    import aiohttp

    from bot.channels.zalo_oa.api import CHANNEL
    from bot.channels.zalo_oa.oauth import (
        AuthError,
        code_from,
        consent_url,
        finish_authorisation,
        no_secret_key,
        pkce_pair,
        redirect_uri,
    )
    from storage import sealing, tokens
    from storage.db import open_database
    from storage.models import utcnow

    missing = _missing(settings, webhook=False)
    if args.code is None and not settings.public_url:
        missing.append("YKIEN_PUBLIC_URL")
    if missing:
        print(t("Set {variables} first (in the environment or the .env file; see "
                ".env.example).", variables=", ".join(missing)), file=sys.stderr)
        return 2
    if not sealing.current().has_key:
        print(no_secret_key(t), file=sys.stderr)
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
        if not code.strip():  # Zalo would only refuse it, and the authorisation with it
            print(t("The code is empty. Give the code Zalo showed after consent (or the whole "
                    "address of that page): ykien zalo auth --code CODE"), file=sys.stderr)
            return 2
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


# ---- ykien zalo status ---------------------------------------------------------------------


async def cmd_zalo_status(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from bot.channels.zalo_oa.api import CHANNEL
    from bot.channels.zalo_oa.oauth import no_secret_key
    from storage import sealing, tokens
    from storage.db import open_database

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
    if not sealing.current().has_key:
        print(no_secret_key(t))
        healthy = False
    elif row is not None and row.problem:
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
