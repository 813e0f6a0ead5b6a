"""The Zalo OA access token: kept in the database, refreshed before it expires, once.

Refresh tokens are single-use and every process shares one pair, so a refresh runs under an
asyncio lock (this process) and the row's lock (every process, storage.tokens.lock); after
taking them the row is read again, since another process may have refreshed meanwhile. The
new pair is committed before the new access token is used. A refused refresh disables the
channel with a problem saying to run `ykien zalo auth`; while disabled the row is re-read
now and then, so an authorisation done in another process brings the channel back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NoReturn

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.channel import ChannelDisabled
from bot.channels.zalo_oa.api import CHANNEL, OAuthRefused, request_tokens
from storage import sealing, tokens
from storage.models import ChannelToken, utcnow

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(hours=1)  # refresh when less than this is left
RECHECK = timedelta(seconds=30)  # how often a disabled channel looks for a fix


def no_key_problem() -> str:
    """Why the OA does not send without YKIEN_SECRET_KEY: its tokens are stored only sealed."""
    return str(sealing.NoSecretKey(tokens.SEALED_WHAT))


def refusal_problem(reason: str) -> str:
    """What `ykien zalo status` shows when Zalo refused the tokens (kept in English, like
    the rest of the database; the status command says it in the admin's language)."""
    return f"Zalo refused the tokens ({reason}); run: ykien zalo auth"


class TokenKeeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: Callable[[], aiohttp.ClientSession],
        oauth_url: str,
        app_id: str,
        app_secret: str,
        *,
        seed_access: str = "",
        seed_refresh: str = "",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self._http = http
        self.oauth_url = oauth_url
        self.app_id = app_id
        self.app_secret = app_secret
        self.seed_access = seed_access
        self.seed_refresh = seed_refresh
        self.now = now
        self._lock = asyncio.Lock()
        self._access = ""
        self._expires_at: datetime | None = None
        self.problem = ""
        self._checked_at: datetime | None = None
        self._loaded = False

    async def load(self) -> None:
        """Seed the configured pair if the database has none, then read the row."""
        async with self.sessionmaker() as session, session.begin():
            if (self.seed_refresh or self.seed_access) and sealing.current().has_key:
                await tokens.seed(session, CHANNEL, self.seed_access, self.seed_refresh,
                                  self.now())
            row = await tokens.get(session, CHANNEL)
        self._adopt(row)
        self._loaded = True
        if self.problem:
            log.error("Zalo OA: not sending: %s", self.problem)

    def _adopt(self, row: ChannelToken | None) -> None:
        self._checked_at = self.now()
        if not sealing.current().has_key:  # no token may be stored, so none is used either
            self._access, self._expires_at, self.problem = "", None, no_key_problem()
            return
        if row is None or not row.access_token:
            self._access, self._expires_at = "", None
            self.problem = (row.problem if row is not None and row.problem else
                            "no Zalo tokens yet; run: ykien zalo auth")
            return
        self._access, self._expires_at, self.problem = (
            row.access_token, row.access_expires_at, row.problem)

    async def access_token(self) -> str:
        """A usable access token, refreshed first if it is about to expire."""
        if not self._loaded:  # sending before start (a command-line worker): load first
            await self.load()
        if self.problem:
            await self._recheck()
        if self._expires_at is not None and self._expires_at - self.now() < REFRESH_MARGIN:
            return await self.refresh(self._access)
        return self._access

    async def _recheck(self) -> None:
        now = self.now()
        if self._checked_at is None or now - self._checked_at >= RECHECK:
            async with self.sessionmaker() as session:
                self._adopt(await tokens.get(session, CHANNEL))
            if not self.problem:
                log.info("Zalo OA: tokens fixed, sending again")
        if self.problem:
            raise ChannelDisabled(self.problem)

    async def refresh(self, stale: str) -> str:
        """A new access token in place of `stale` (which Zalo refused, or which expires soon);
        if someone else already replaced it, theirs."""
        if not sealing.current().has_key:  # a new pair could not be stored: keep the old
            self._disable(no_key_problem())
        async with self._lock:
            if self._access != stale and not self.problem:
                return self._access  # refreshed in this process while we waited
            problem, pair = "", None
            async with self.sessionmaker() as session, session.begin():
                row = await tokens.lock(session, CHANNEL)
                if row is None or not row.refresh_token:
                    problem = "no Zalo refresh token stored; run: ykien zalo auth"
                elif row.access_token != stale and not row.problem and self._fresh(row):
                    self._adopt(row)  # another process refreshed
                    return self._access
                else:
                    try:
                        pair = await request_tokens(
                            self._http(), self.oauth_url, self.app_id, self.app_secret,
                            {"refresh_token": row.refresh_token, "grant_type": "refresh_token"},
                            self.now(),
                        )
                    except OAuthRefused as refused:
                        problem = refusal_problem(str(refused))
                if pair is not None:
                    # Committed on leaving the block, before the new token is used.
                    await tokens.save_pair(
                        session, CHANNEL, pair.access_token, pair.refresh_token,
                        pair.access_expires_at, pair.refresh_expires_at, self.now(),
                    )
                else:
                    await tokens.set_problem(session, CHANNEL, problem, self.now())
            if pair is None:
                return self._disable(problem)
            self._access, self._expires_at, self.problem = (
                pair.access_token, pair.access_expires_at, "")
            self._checked_at = self.now()
            log.info("Zalo OA: access token refreshed, valid until %s", pair.access_expires_at)
            return self._access

    async def disable(self, problem: str) -> None:
        """Stop sending (Zalo refused the app's configuration): recorded, logged once."""
        async with self.sessionmaker() as session, session.begin():
            await tokens.set_problem(session, CHANNEL, problem, self.now())
        self._disable(problem)

    def _fresh(self, row: ChannelToken) -> bool:
        expires = row.access_expires_at
        return expires is None or expires - self.now() >= REFRESH_MARGIN

    def _disable(self, problem: str) -> NoReturn:
        # Committed with the problem; logged once per failed refresh, never the token.
        self.problem = problem
        self._checked_at = self.now()
        log.error("Zalo OA: stopped sending: %s", problem)
        raise ChannelDisabled(problem)
