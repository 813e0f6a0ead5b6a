"""Secret keys the application generates once and keeps in `app_settings`, so that every
process uses the same: the exports' pseudonym key, the web's cookie key, the audit log's
pseudonym key, the chart addresses' key. Each is sealed with YKIEN_SECRET_KEY when one is
set (storage.sealing).

Nothing here commits: the key is written with the caller's transaction (which must commit for
it to be kept), and two processes generating one at once keep the first that was stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sealing
from storage.models import AppSetting
from storage.queries import insert_unless_present

log = logging.getLogger(__name__)

PSEUDONYM_KEY = "pseudonym_key"  # the residents' pseudonyms in exports
WEB_KEY = "web_key"  # signs the workspace's cookies and CSRF tokens
AUDIT_KEY = "audit_key"  # the audit log's pseudonyms of persons
CHART_KEY = "chart_key"  # signs the chart addresses sent to a Zalo Bot (storage.chart_links)
# Every app_settings row that holds a secret: sealed once a key exists (storage.sealed_rows).
SECRET_SETTINGS = (PSEUDONYM_KEY, WEB_KEY, AUDIT_KEY, CHART_KEY)


async def stored_secret(session: AsyncSession, name: str) -> str:
    """The secret called `name` (64 hex digits), generated the first time it is asked for."""
    sealer = sealing.current()
    stored = select(AppSetting.value).where(AppSetting.key == name)
    value = await session.scalar(stored)
    if value is None:
        if not sealer.has_key:
            log.warning("the %s is stored unencrypted: set YKIEN_SECRET_KEY (make one with: "
                        "ykien secret generate) and it is encrypted at the next start", name)
        await insert_unless_present(session, AppSetting, key=name,
                                    value=sealer.seal(secrets.token_hex(32)))
        value = await session.scalar(stored)
        assert value is not None
    return sealer.open(value, f"the {name} in app_settings")


async def generated_key(session: AsyncSession, name: str) -> bytes:
    """The key called `name`, generated (32 random bytes) the first time it is asked for."""
    return bytes.fromhex(await stored_secret(session, name))


async def pseudonym_key(session: AsyncSession, configured: str = "") -> bytes:
    """The exports' pseudonym key: YKIEN_PSEUDONYM_KEY when set, else the generated one (its
    hex text, as it has always been used, so that pseudonyms stay what they were)."""
    if configured:
        return configured.encode()
    return (await stored_secret(session, PSEUDONYM_KEY)).encode()


def token_hash(token: str) -> str:
    """What is stored of a one-time code or token: its SHA-256, in hex. Whoever reads the
    table cannot use what they read."""
    return hashlib.sha256(token.encode()).hexdigest()
