"""Secret keys the application generates once and keeps in `app_settings`, so that every
process uses the same (the web's cookie key, the audit log's pseudonym key, the chart
addresses' key).

Nothing here commits: the key is written with the caller's transaction, and two processes
generating one at once keep the first that was stored.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AppSetting
from storage.queries import insert_unless_present

WEB_KEY = "web_key"  # signs the workspace's cookies and CSRF tokens
AUDIT_KEY = "audit_key"  # the audit log's pseudonyms of persons
CHART_KEY = "chart_key"  # signs the chart addresses sent to a Zalo Bot (storage.chart_links)


async def generated_key(session: AsyncSession, name: str) -> bytes:
    """The key called `name`, generated (32 random bytes) the first time it is asked for."""
    stored = select(AppSetting.value).where(AppSetting.key == name)
    value = await session.scalar(stored)
    if value is None:
        await insert_unless_present(session, AppSetting, key=name, value=secrets.token_hex(32))
        value = await session.scalar(stored)
        assert value is not None
    return bytes.fromhex(value)


def token_hash(token: str) -> str:
    """What is stored of a one-time code or token: its SHA-256, in hex. Whoever reads the
    table cannot use what they read."""
    return hashlib.sha256(token.encode()).hexdigest()
