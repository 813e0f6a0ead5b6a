"""Zalo OA Open API v3 and OAuth v4 over aiohttp: message bodies, calls, and their errors.

Zalo answers most failures with HTTP 200 and a non-zero `error`; `send_error` maps each onto
the shared send outcomes (bot.channels.channel). Nothing here logs tokens or message text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp

from bot.channels.channel import (
    ChannelDisabled,
    OutsideWindow,
    PermanentFailure,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
)
from handlers.events import Button
from storage.models import VIETNAM

log = logging.getLogger(__name__)

CHANNEL = "zalo"  # the OA's name in the database: its tokens, chats and outbox rows
CS_PATH = "/v3.0/oa/message/cs"  # customer-service messages: within the 7-day window
PROMOTION_PATH = "/v3.0/oa/message/promotion"  # broadcast type: verified OAs, outside it
TOKEN_PATH = "/v4/oa/access_token"
PERMISSION_PATH = "/v4/oa/permission"
UPLOAD_IMAGE_PATH = "/v2.0/oa/upload/image"  # a JPG or PNG -> an attachment id to send
IMAGE_LIMIT = 1_000_000  # bytes of an uploaded image

TEXT_LIMIT = 2000  # characters of a text message
BUTTONS_LIMIT = 5  # buttons of one template message
TITLE_LIMIT = 100  # characters of a button title (oa.query.* buttons)
PAYLOAD_LIMIT = 1000  # characters of an oa.query.hide payload
PROMOTION_TEXT_LIMIT = 1000  # characters of a promotion's text element
PROMOTION_HEADER_LIMIT = 100
BUTTON_PREFIX = "#b:"  # a pressed button comes back as a text: this prefix marks it

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
THROTTLE_SECONDS = 60.0  # Zalo's -32 names no wait: back off a minute
MORNING = time(6, 0)  # no messages before 06:00 Vietnam time (-234)

TOKEN_EXPIRED = frozenset({-216, -220})  # refresh the access token and retry once
UNREACHABLE = frozenset({-213, -227, -244})  # not a follower, blocked, opted out
OUTSIDE_WINDOW = frozenset({-230, -232})
RATE_LIMITED = frozenset({-32})
NOT_NOW = frozenset({-234})
# The app or the OA is set up wrongly: nothing will go out until an admin fixes it.
CONFIGURATION = frozenset({-124, -204, -205, -209, -212, -221})
BAD_REQUEST = frozenset({-201, -210})


class TokenRejected(Exception):
    """The access token is invalid or expired (-216/-220): refresh it, then retry."""


def next_morning(now: datetime) -> datetime:
    """The next 06:00 in Vietnam after `now` (in UTC-aware form)."""
    local = now.astimezone(VIETNAM)
    morning = datetime.combine(local.date(), MORNING, tzinfo=VIETNAM)
    if morning <= local:
        morning += timedelta(days=1)
    return morning


def send_error(code: int, message: str, now: datetime) -> SendError | TokenRejected:
    """What a non-zero `error` of a send means for the sender."""
    detail = f"Zalo error {code}: {message}"[:200]
    if code in TOKEN_EXPIRED:
        return TokenRejected(detail)
    if code in RATE_LIMITED:
        return Throttled(THROTTLE_SECONDS, detail)
    if code in UNREACHABLE:
        return Unreachable(detail)
    if code in OUTSIDE_WINDOW:
        return OutsideWindow(detail)
    if code in NOT_NOW:
        return TemporaryFailure(detail, retry_at=next_morning(now))
    if code in CONFIGURATION:
        return ChannelDisabled(detail)
    if code in BAD_REQUEST:
        return PermanentFailure(detail)
    return TemporaryFailure(detail)  # unknown: retried with backoff, bounded by attempts


# ---- message bodies -----------------------------------------------------------------------


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def button_payload(button: Button) -> str:
    return BUTTON_PREFIX + button.id


def choice_of(text: str) -> str | None:
    """The button id a pressed button sent back as text, or None for typed text."""
    return text[len(BUTTON_PREFIX):] if text.startswith(BUTTON_PREFIX) else None


def cs_body(user_id: str, text: str, buttons: list[Button]) -> dict[str, Any]:
    """A customer-service message: text, with at most five hidden-query buttons."""
    message: dict[str, Any] = {"text": text}
    if buttons:
        message["attachment"] = {"type": "template", "payload": {"buttons": [
            _button(button) for button in buttons[:BUTTONS_LIMIT]
        ]}}
    return {"recipient": {"user_id": user_id}, "message": message}


def image_body(user_id: str, attachment_id: str, caption: str = "") -> dict[str, Any]:
    """A customer-service message showing an uploaded image, with a text beside it."""
    message: dict[str, Any] = {"attachment": {"type": "template", "payload": {
        "template_type": "media",
        "elements": [{"media_type": "image", "attachment_id": attachment_id}],
    }}}
    if caption:
        message["text"] = caption
    return {"recipient": {"user_id": user_id}, "message": message}


def promotion_body(user_id: str, header: str, text: str, buttons: list[Button]) -> dict[str, Any]:
    """A promotion (broadcast-type) message: a header and a text element, and buttons."""
    payload: dict[str, Any] = {
        "template_type": "promotion",
        "language": "VI",
        "elements": [
            {"type": "header", "content": shorten(header, PROMOTION_HEADER_LIMIT)},
            {"type": "text", "align": "left", "content": shorten(text, PROMOTION_TEXT_LIMIT)},
        ],
    }
    if buttons:
        payload["buttons"] = [_button(button) for button in buttons[:BUTTONS_LIMIT]]
    return {"recipient": {"user_id": user_id},
            "message": {"attachment": {"type": "template", "payload": payload}}}


def _button(button: Button) -> dict[str, str]:
    return {"title": shorten(button.label, TITLE_LIMIT), "type": "oa.query.hide",
            "payload": button_payload(button)[:PAYLOAD_LIMIT]}


# ---- calls --------------------------------------------------------------------------------


async def _post_json(
    http: aiohttp.ClientSession, url: str, server: str,
    refuse: Callable[[aiohttp.ClientResponse], None], **request: Any,
) -> dict[str, Any]:
    """POST and read the JSON object answered. `refuse` raises for a status that has no
    answer worth reading; TemporaryFailure when `server` could not be reached, or answered
    what is not a JSON object."""
    try:
        async with http.post(url, timeout=TIMEOUT, **request) as response:
            refuse(response)
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TemporaryFailure(f"{server} unreachable: {type(exc).__name__}") from exc
    if not isinstance(answer, dict):
        raise TemporaryFailure(f"{server} answered something that is not JSON")
    return answer


def _refuse_message(response: aiohttp.ClientResponse) -> None:
    if response.status == 429:
        retry = response.headers.get("Retry-After", "")
        raise Throttled(float(retry) if retry.isdigit() else THROTTLE_SECONDS)
    if response.status >= 500:
        raise TemporaryFailure(f"Zalo answered HTTP {response.status}")
    if response.status >= 400:
        raise PermanentFailure(f"Zalo answered HTTP {response.status}")


def _refuse_oauth(response: aiohttp.ClientResponse) -> None:
    # A 4xx carries Zalo's explanation in its JSON: read on.
    if response.status >= 500 or response.status == 429:
        raise TemporaryFailure(f"Zalo's OAuth server answered HTTP {response.status}")


async def post_message(
    http: aiohttp.ClientSession, url: str, access_token: str, body: dict[str, Any],
    now: datetime,
) -> str:
    """POST one message; its message id. Raises SendError or TokenRejected."""
    answer = await _post_json(http, url, "Zalo", _refuse_message, json=body,
                              headers={"access_token": access_token})
    return str(_data(answer, now).get("message_id", ""))


async def upload_image(
    http: aiohttp.ClientSession, url: str, access_token: str, png: bytes, now: datetime,
) -> str:
    """Upload a PNG (multipart, field `file`); the attachment id to send it with. Raises
    SendError or TokenRejected."""
    if len(png) > IMAGE_LIMIT:
        raise PermanentFailure(f"the image is larger than Zalo's {IMAGE_LIMIT:,} bytes")
    form = aiohttp.FormData()  # a fresh one per request: aiohttp consumes it
    form.add_field("file", png, filename="chart.png", content_type="image/png")
    answer = await _post_json(http, url, "Zalo", _refuse_message, data=form,
                              headers={"access_token": access_token})
    attachment = _data(answer, now).get("attachment_id")
    if not isinstance(attachment, str) or not attachment:
        raise TemporaryFailure("Zalo's image upload answered no attachment id")
    return attachment


def _data(answer: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The `data` of a successful answer; raises what a non-zero `error` means."""
    code = _int(answer.get("error"))
    if code:
        raise send_error(code, str(answer.get("message", "")), now)
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime


# Lifetimes Zalo documents (the answer's expires_in wins for the access token).
ACCESS_LIFETIME = timedelta(hours=25)
REFRESH_LIFETIME = timedelta(days=90)


class OAuthRefused(Exception):
    """Zalo's OAuth server refused (a wrong app secret, a spent or expired refresh token,
    a wrong code): only an admin can fix it. The message is Zalo's own explanation."""


async def request_tokens(
    http: aiohttp.ClientSession, oauth_url: str, app_id: str, app_secret: str,
    form: dict[str, str], now: datetime,
) -> TokenPair:
    """POST to the token endpoint (a refresh or a code exchange). Raises OAuthRefused, or
    TemporaryFailure when Zalo could not be reached."""
    answer = await _post_json(
        http, oauth_url + TOKEN_PATH, "Zalo's OAuth server", _refuse_oauth,
        data={**form, "app_id": app_id}, headers={"secret_key": app_secret},
    )
    access, refresh = answer.get("access_token"), answer.get("refresh_token")
    if not access or not refresh:
        reason = answer.get("error_description") or answer.get("error_name") or answer.get(
            "message") or "no token in the answer"
        raise OAuthRefused(f"{reason} (error {answer.get('error', '?')})"[:200])
    seconds = _int(answer.get("expires_in"))
    lifetime = timedelta(seconds=seconds) if seconds > 0 else ACCESS_LIFETIME
    return TokenPair(str(access), str(refresh), now + lifetime, now + REFRESH_LIFETIME)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
