"""A channel's OAuth tokens in `channel_tokens` (Zalo OA): read, lock, seed, save, problems.

Zalo's refresh tokens are single-use, so whoever refreshes holds the row locked from reading
the refresh token to saving the new pair (`lock`): FOR UPDATE on PostgreSQL; on SQLite a
no-op UPDATE takes the database's write lock first. None of these functions commits.

The tokens and the PKCE verifier are sealed with YKIEN_SECRET_KEY (storage.sealing); without a
key they are not stored at all (NoSecretKey): a copied database must not hand over the OA.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChannelToken, Delivery, DeliveryStatus
from storage.queries import affected, insert_unless_present
from storage.sealing import require_key

PROBLEM_LENGTH = 300  # ChannelToken.problem
SEALED_WHAT = "the Zalo OA tokens"  # what NoSecretKey says is stored only encrypted


async def get(session: AsyncSession, channel: str) -> ChannelToken | None:
    return await session.get(ChannelToken, channel, populate_existing=True)


async def lock(session: AsyncSession, channel: str) -> ChannelToken | None:
    """The row, locked until the transaction ends (another process waits for it)."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: writing first takes the write lock for the whole database.
        await session.execute(
            update(ChannelToken).where(ChannelToken.channel == channel)
            .values(channel=ChannelToken.channel)
            .execution_options(synchronize_session=False)
        )
        return await get(session, channel)
    return await session.scalar(
        select(ChannelToken).where(ChannelToken.channel == channel)
        .with_for_update().execution_options(populate_existing=True)
    )


async def seed(
    session: AsyncSession, channel: str, access_token: str, refresh_token: str, now: datetime
) -> bool:
    """Store the configured first pair unless the database already holds one (it wins).

    Their expiry is unknown: the access token is used until Zalo refuses it.
    """
    require_key(SEALED_WHAT)
    added = await insert_unless_present(
        session, ChannelToken, channel=channel, access_token=access_token,
        refresh_token=refresh_token, updated_at=now, problem="", pkce_verifier="",
        pkce_state="",
    )
    if added:
        return True
    # A row made by `ykien zalo auth` before any pair (PKCE only) takes the configured pair.
    result = await session.execute(
        update(ChannelToken)
        .where(ChannelToken.channel == channel, ChannelToken.refresh_token == "")
        .values(access_token=access_token, refresh_token=refresh_token, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return affected(result) == 1


async def save_pair(
    session: AsyncSession, channel: str, access_token: str, refresh_token: str,
    access_expires_at: datetime, refresh_expires_at: datetime, now: datetime,
) -> None:
    """A new pair: it replaces the old one, and clears the problem and any authorisation."""
    require_key(SEALED_WHAT)
    values = dict(
        access_token=access_token, refresh_token=refresh_token,
        access_expires_at=access_expires_at, refresh_expires_at=refresh_expires_at,
        updated_at=now, problem="", pkce_verifier="", pkce_state="",
    )
    if not await insert_unless_present(session, ChannelToken, channel=channel, **values):
        await session.execute(
            update(ChannelToken).where(ChannelToken.channel == channel).values(**values)
            .execution_options(synchronize_session=False)
        )


async def set_problem(session: AsyncSession, channel: str, problem: str, now: datetime) -> None:
    """Why the channel stopped sending (shown by `ykien zalo status`)."""
    problem = problem[:PROBLEM_LENGTH]
    if not await insert_unless_present(
        session, ChannelToken, channel=channel, access_token="", refresh_token="",
        updated_at=now, problem=problem, pkce_verifier="", pkce_state="",
    ):
        await session.execute(
            update(ChannelToken).where(ChannelToken.channel == channel)
            .values(problem=problem, updated_at=now)
            .execution_options(synchronize_session=False)
        )


async def start_authorisation(
    session: AsyncSession, channel: str, verifier: str, state: str, now: datetime
) -> None:
    """Remember the PKCE verifier and state of a consent under way (the last one counts)."""
    require_key(SEALED_WHAT)
    if not await insert_unless_present(
        session, ChannelToken, channel=channel, access_token="", refresh_token="",
        updated_at=now, problem="", pkce_verifier=verifier, pkce_state=state,
    ):
        await session.execute(
            update(ChannelToken).where(ChannelToken.channel == channel)
            .values(pkce_verifier=verifier, pkce_state=state)
            .execution_options(synchronize_session=False)
        )


async def held_count(session: AsyncSession, channel: str) -> int:
    """Messages of the channel waiting for their resident to open the messaging window."""
    return await session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.channel == channel, Delivery.status == DeliveryStatus.HELD)
    ) or 0
