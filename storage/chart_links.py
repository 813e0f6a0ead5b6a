"""Signed, expiring addresses of one official's results chart, for a platform that sends
pictures only by URL (the Zalo Bot's sendPhoto fetches the image itself).

A token names the draft, when it expires, the chart's language and, as a keyed pseudonym,
the official who asked: `<draft>.<expires>.<language>.<who>.<mac>`, the MAC (HMAC-SHA-256
under a key of its own, storage.keys.CHART_KEY) covering everything before it. Changing the
draft number, the time or anything else breaks the MAC; a token tells a reader the draft's
number and nothing of the person. Whoever fetches it gets the chart as that official may see
it at that moment: `chart_request` finds the official among the persons holding a role, so a
revoked role reaches nothing, and the caller checks the draft against their scope again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from storage import roles
from storage.keys import CHART_KEY, generated_key
from storage.roles import Chat

# Long enough for the platform to fetch it (and for a chat app that fetches it again when
# the message is opened the same day); short enough that a forwarded address soon dies.
CHART_LINK_LIFETIME = timedelta(hours=24)
_WHO_BYTES = 9  # 12 characters of base64
_MAC_BYTES = 18  # 24 characters of base64
_TOKEN = re.compile(r"([1-9][0-9]{0,9})\.([1-9][0-9]{0,10})\.([a-z]{2})\."
                    r"([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{24})")


@dataclass(frozen=True)
class ChartRequest:
    """What a genuine, unexpired token asks for: whose chart of which draft, in which
    language."""

    draft_id: int
    person_id: int
    language: str


class ChartRefused(StrEnum):
    """Why a token gets no chart (logged; the address answers 404, or 410 once expired)."""

    FORGED = "malformed or forged"
    EXPIRED = "expired"
    NOBODY = "for a person who holds no role now"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _digest(key: bytes, purpose: str, value: str, size: int) -> str:
    return _b64(hmac.digest(key, f"{purpose}:{value}".encode(), hashlib.sha256)[:size])


def _who(key: bytes, person_id: int) -> str:
    return _digest(key, "chart-person", str(person_id), _WHO_BYTES)


def _mac(key: bytes, signed: str) -> str:
    return _digest(key, "chart-link", signed, _MAC_BYTES)


async def chart_token(session: AsyncSession, draft_id: int, person_id: int, language: str,
                      now: datetime) -> str:
    """A token for this person's chart of this draft, valid CHART_LINK_LIFETIME from `now`."""
    key = await generated_key(session, CHART_KEY)
    expires = int((now + CHART_LINK_LIFETIME).timestamp())
    signed = f"{draft_id}.{expires}.{language}.{_who(key, person_id)}"
    return f"{signed}.{_mac(key, signed)}"


async def chart_request(session: AsyncSession, token: str, now: datetime,
                        admin_chats: Collection[Chat] = ()) -> ChartRequest | ChartRefused:
    """What `token` asks for, or why it gets nothing: it is malformed or forged, has
    expired, or names nobody who holds a role now (in the database or through
    YKIEN_ADMIN_IDS). The caller must still check the draft against the person's scope."""
    found = _TOKEN.fullmatch(token)
    if found is None:
        return ChartRefused.FORGED
    draft, expires, language, who, mac = found.groups()
    key = await generated_key(session, CHART_KEY)
    if not hmac.compare_digest(mac, _mac(key, token[: found.start(5) - 1])):
        return ChartRefused.FORGED
    if datetime.fromtimestamp(int(expires), UTC) <= now:
        return ChartRefused.EXPIRED
    candidates = await roles.holder_ids(session)
    for chat in admin_chats:
        person = await roles.person_of_chat(session, chat)
        if person is not None:
            candidates.add(person)
    person_id = next((person for person in sorted(candidates)
                      if hmac.compare_digest(_who(key, person), who)), None)
    if person_id is None:
        return ChartRefused.NOBODY
    return ChartRequest(int(draft), person_id, language)
