"""A fake Zalo: the OA Open API (messages, image uploads) and the OAuth server (tokens), on
127.0.0.1.

It records every call, answers a queued error code to the next call of a path (`fail_next`),
spends refresh tokens once (a reused one is refused), keeps uploaded images under their
attachment id (a media message naming an unknown one is refused, as Zalo does), and builds
correctly signed webhook events as Zalo would POST them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.channels.zalo_oa.channel import SIGNATURE_HEADER, signature

APP_ID = "1234567890123456789"
APP_SECRET = "app-secret-for-tests"
OA_SECRET = "oa-secret-for-tests"


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return str(self.body.get("recipient", {}).get("user_id", ""))

    @property
    def text(self) -> str:
        message = self.body.get("message", {})
        if "text" in message:
            return str(message["text"])
        elements = message.get("attachment", {}).get("payload", {}).get("elements", [])
        return "\n".join(str(element.get("content", "")) for element in elements)

    @property
    def buttons(self) -> list[dict[str, str]]:
        payload = self.body.get("message", {}).get("attachment", {}).get("payload", {})
        return list(payload.get("buttons", []))

    @property
    def attachment_id(self) -> str:
        """The uploaded image a media message shows ("" for any other message)."""
        payload = self.body.get("message", {}).get("attachment", {}).get("payload", {})
        if payload.get("template_type") != "media":
            return ""
        return "".join(str(element.get("attachment_id", ""))
                       for element in payload.get("elements", [])[:1])

    @property
    def sent(self) -> bool:
        return self.path.startswith("/v3.0/") and self.answer.get("error") == 0


class FakeZalo:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        # Answered to the next message calls of each path, in order.
        self.errors: dict[str, deque[int]] = {}
        self.refuse_refresh = False
        self.refresh_gate: asyncio.Event | None = None  # holds refresh answers until set
        self.refreshes_waiting = 0  # refresh requests held at the gate
        self._codes: dict[str, str] = {}  # authorisation code -> code challenge
        self.images: dict[str, bytes] = {}  # attachment id -> the uploaded image
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._message)
        app.router.add_post("/v3.0/oa/message/promotion", self._message)
        app.router.add_post("/v4/oa/access_token", self._token)
        app.router.add_post("/v2.0/oa/upload/image", self._upload_image)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- state the tests arrange ----------------------------------------------------------

    def issue_pair(self) -> tuple[str, str]:
        access, refresh = "AT-" + secrets.token_hex(8), "RT-" + secrets.token_hex(8)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return access, refresh

    def fail_next(self, *codes: int, path: str = "/v3.0/oa/message/cs") -> None:
        self.errors.setdefault(path, deque()).extend(codes)

    def consent(self, challenge: str) -> str:
        """The admin allowed access on the consent page: the code Zalo redirects with."""
        code = "CODE-" + secrets.token_hex(6)
        self._codes[code] = challenge
        return code

    # ---- what happened -------------------------------------------------------------------

    def messages(self, user_id: str | None = None) -> list[Call]:
        return [call for call in self.calls
                if call.sent and (user_id is None or call.user_id == user_id)]

    def refreshes(self) -> list[Call]:
        return [call for call in self.calls if call.body.get("grant_type") == "refresh_token"]

    async def wait_for(self, found: Callable[[], bool], timeout: float = 20.0) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(found)

        await asyncio.wait_for(wait(), timeout)

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # ---- the API -------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> dict[str, Any] | None:
        """A wrong token's or a planned error's answer; None to go on."""
        if request.headers.get("access_token") not in self.access_tokens:
            return {"error": -216, "message": "Access token is invalid"}
        if self.errors.get(request.path):
            return {"error": self.errors[request.path].popleft(), "message": "planned error"}
        return None

    async def _upload_image(self, request: web.Request) -> web.Response:
        """Zalo's upload: multipart, the image in the field `file`, a JPG or PNG of 1 MB at
        most; answers its attachment id."""
        form = await request.post()
        upload = form.get("file")
        image = upload.file.read() if isinstance(upload, web.FileField) else b""
        call = Call(request.path, dict(request.headers), {"size": len(image)})
        refused = self._refusal(request)
        if refused is not None:
            call.answer = refused
        elif not image.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8")) or len(image) > 1_000_000:
            call.answer = {"error": -210, "message": "The image is not a JPG or PNG of 1 MB"}
        else:
            attachment = f"att-{next(self._ids)}"
            self.images[attachment] = image
            call.answer = {"error": 0, "message": "Success",
                           "data": {"attachment_id": attachment}}
        await self._record(call)
        return web.json_response(call.answer)

    async def _message(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = Call(request.path, dict(request.headers), body)
        refused = self._refusal(request)
        if refused is not None:
            call.answer = refused
        elif call.attachment_id and call.attachment_id not in self.images:
            call.answer = {"error": -201, "message": "The attachment id is invalid"}
        else:
            call.answer = {"error": 0, "message": "Success", "data": {
                "message_id": f"mid-{next(self._ids)}", "user_id": call.user_id}}
        await self._record(call)
        return web.json_response(call.answer)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        call = Call(request.path, dict(request.headers), {k: str(v) for k, v in form.items()})
        if self.refresh_gate is not None and form.get("grant_type") == "refresh_token":
            self.refreshes_waiting += 1
            async with self._changed:
                self._changed.notify_all()
            await self.refresh_gate.wait()
        call.answer = self._grant(request, call.body)
        await self._record(call)
        return web.json_response(call.answer)

    def _grant(self, request: web.Request, form: dict[str, str]) -> dict[str, Any]:
        if request.headers.get("secret_key") != APP_SECRET or form.get("app_id") != APP_ID:
            return {"error": -14002, "error_name": "Invalid app", "error_description":
                    "app_id or secret_key is invalid"}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if self.refuse_refresh or token not in self.refresh_tokens:
                return {"error": -14014, "error_name": "Invalid refresh token",
                        "error_description": "Refresh token is invalid or used"}
            self.refresh_tokens.discard(token)  # single-use
        elif grant == "authorization_code":
            challenge = self._codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if challenge is None or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != (
                    challenge):
                return {"error": -14019, "error_name": "Invalid code",
                        "error_description": "the code or code_verifier is invalid"}
        else:
            return {"error": -14001, "error_description": "unsupported grant_type"}
        access, refresh = self.issue_pair()
        return {"access_token": access, "refresh_token": refresh, "expires_in": "90000"}


# ---- webhook events, signed ---------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


_msg_ids = itertools.count(1)


def text_event(user: str, text: str, *, msg_id: str = "", timestamp: int | None = None,
               app_id: str = APP_ID) -> dict[str, Any]:
    return {
        "app_id": app_id, "user_id_by_app": "99" + user, "event_name": "user_send_text",
        "timestamp": str(timestamp if timestamp is not None else now_ms()),
        "sender": {"id": user}, "recipient": {"id": "oa-1"},
        "message": {"text": text, "msg_id": msg_id or f"msg-{next(_msg_ids)}"},
    }


def press_event(user: str, button: dict[str, str], **extra: Any) -> dict[str, Any]:
    """What Zalo sends when an oa.query.hide button is pressed: its payload, as text."""
    return text_event(user, button["payload"], **extra)


def media_event(user: str, kind: str, **extra: Any) -> dict[str, Any]:
    event = text_event(user, "", **extra)
    event["event_name"] = f"user_send_{kind}"
    event["message"] = {"msg_id": event["message"]["msg_id"],
                        "attachments": [{"type": kind, "payload": {"url": "https://x/y"}}]}
    return event


def follow_event(user: str, name: str = "follow", timestamp: int | None = None) -> dict[str, Any]:
    return {"app_id": APP_ID, "oa_id": "oa-1", "event_name": name, "source": "oa_profile",
            "follower": {"id": user}, "user_id_by_app": "99" + user,
            "timestamp": str(timestamp if timestamp is not None else now_ms())}


def signed(event: dict[str, Any], secret: str = OA_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and headers Zalo POSTs for an event."""
    body = json.dumps(event, ensure_ascii=False).encode()
    mac = signature(str(event.get("app_id", "")), body, str(event.get("timestamp", "")), secret)
    return body, {SIGNATURE_HEADER: f"mac={mac}", "Content-Type": "application/json"}
