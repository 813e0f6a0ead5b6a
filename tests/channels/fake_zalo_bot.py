"""A fake Zalo Bot platform API on localhost, for tests.

    async with FakeZaloBot() as fake:
        channel = ZaloBotChannel(fake.token, fake.url, service, poll_timeout=1)
        await channel.start()
        fake.push_text("u1", "/start")
        call = await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == "u1")

It serves `{url}/bot{token}/{method}` (POST with JSON, or GET with query parameters), records
every call, and answers getUpdates as the platform does: one update per call (a list with
`batch=True`), and after a bounded wait with nothing new `{"ok": false, "error_code": 408}`.
There is no offset: an update handed out is gone. While a webhook is set, getUpdates is
refused. It can be told to fail the next calls of a method with a platform-like error.
sendPhoto fetches the photo's address, as the platform does (through `proxied`, the reverse
proxy in front of a local server), and refuses one that answers no image.
`update(...)` builds the update objects the platform posts to a webhook, too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.channels.fake_platform import Call, RecordsCalls

TEXT_LIMIT = 2000
_DEFAULT_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: the user has blocked the bot",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class _Failure:
    method: str
    chat_id: str | None
    code: int
    description: str
    retry_after: int | None
    times: int
    http_status: int | None


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters
        self.http_status = http_status if http_status is not None else code


class FakeZaloBot(RecordsCalls):
    """The fake platform; use as `async with FakeZaloBot() as fake:`."""

    def __init__(self, token: str = "1234567890:TEST-zalo-bot-token", *,
                 poll_cap: float = 1.0, batch: bool = False) -> None:
        super().__init__()
        self.token = token
        self.poll_cap = poll_cap  # no getUpdates waits longer than this, whatever it asks
        self.batch = batch  # getUpdates hands out every waiting update as a list
        self.webhook: dict[str, Any] = {"url": ""}
        self.sent: dict[str, list[dict]] = {}  # chat id -> the bot's messages, in order
        # Photo addresses under a public address are fetched from this local server instead
        # (the reverse proxy in front of `ykien serve`): public URL -> http://127.0.0.1:port.
        self.proxied: dict[str, str] = {}
        self.fetched: list[tuple[str, int]] = []  # photo addresses fetched, and the status
        self._updates: list[dict] = []
        self._message_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._new_updates = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._methods: dict[str, Callable[[dict], Any]] = {
            "getme": lambda params: {"id": "987654321", "account_name": "bot.ykien",
                                     "account_type": "BASIC", "can_join_groups": False},
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": lambda params: {"url": self.webhook["url"],
                                              "updated_at": 1700000000000},
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "sendchataction": lambda params: True,
        }

    # ---- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> FakeZaloBot:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._new_updates.set()  # release long polls
        assert self._runner is not None
        await self._runner.cleanup()

    # ---- what residents do -----------------------------------------------------------------

    def update(self, event_name: str, chat_id: str, *, chat_type: str = "PRIVATE",
               message_id: str | None = None, **content: Any) -> dict:
        """An update as the platform sends it (bare), with a fresh message id."""
        number = next(self._message_ids)
        return {
            "event_name": event_name,
            "message": {
                "message_id": message_id or f"m{number:06d}abcdef",
                "from": {"id": chat_id, "display_name": "Dân Test", "is_bot": False},
                "chat": {"id": chat_id, "chat_type": chat_type},
                "date": int(time.time() * 1000),
                **content,
            },
        }

    def text_update(self, chat_id: str, text: str, **kw: Any) -> dict:
        return self.update("message.text.received", chat_id, text=text, **kw)

    def push(self, update: dict) -> dict:
        """Queue an update for getUpdates."""
        self._updates.append(update)
        self._new_updates.set()
        return update

    def push_text(self, chat_id: str, text: str, **kw: Any) -> dict:
        return self.push(self.text_update(chat_id, text, **kw))

    def push_image(self, chat_id: str, caption: str = "") -> dict:
        return self.push(self.update("message.image.received", chat_id,
                                     photo_url="https://example.invalid/a.jpg", caption=caption))

    def push_sticker(self, chat_id: str) -> dict:
        return self.push(self.update("message.sticker.received", chat_id, sticker="abc123",
                                     url="https://example.invalid/s.png"))

    @property
    def waiting(self) -> int:
        """Updates not handed out yet."""
        return len(self._updates)

    # ---- failure injection ------------------------------------------------------------------

    def fail_next(self, method: str, chat_id: str | None = None, *, code: int = 400,
                  description: str | None = None, retry_after: int | None = None,
                  times: int = 1, http_status: int | None = None) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with an error.

        `http_status` differs from `code` to mimic an error inside an HTTP 200 answer.
        """
        self._failures.append(_Failure(
            method.lower(), chat_id, code, description or _DEFAULT_ERRORS.get(code, "Error"),
            retry_after, times, http_status,
        ))

    # ---- looking at what the bot did ----------------------------------------------------------

    def texts_to(self, chat_id: str) -> list[str]:
        """What the bot's text messages in a chat said, in order."""
        return [message["text"] for message in self.sent.get(chat_id, []) if "text" in message]

    def photos_to(self, chat_id: str) -> list[dict]:
        """The bot's photo messages in a chat (address, the image fetched from it, caption)."""
        return [message for message in self.sent.get(chat_id, []) if "photo" in message]

    # ---- the HTTP side ------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        call = Call(method, params)
        await self._arrived(call)
        handler = self._methods.get(method.lower())
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            self._maybe_fail(call)
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            call.error = {"error_code": exc.code, "description": exc.description}
            await self._record(call)
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.http_status)
        call.result = result
        await self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _maybe_fail(self, call: Call) -> None:
        for failure in self._failures:
            if failure.method == call.method.lower() and failure.chat_id in (None, call.chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                parameters = {"retry_after": failure.retry_after} if failure.retry_after else None
                raise ApiError(failure.code, failure.description, parameters,
                               failure.http_status)

    # ---- methods -----------------------------------------------------------------------------

    async def _get_updates(self, params: dict) -> Any:
        if self.webhook["url"]:
            raise ApiError(400, "Bad Request: webhook is active, getUpdates is not allowed")
        wait = min(float(params.get("timeout") or 0), self.poll_cap)
        if not self._updates and wait > 0:
            self._new_updates.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._new_updates.wait()
        if not self._updates:
            raise ApiError(408, "Request timeout", http_status=200)
        if self.batch:
            taken, self._updates = self._updates, []
            return taken
        return self._updates.pop(0)

    def _set_webhook(self, params: dict) -> dict:
        secret = str(params.get("secret_token") or "")
        if not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad Request: secret_token must be 8-256 characters")
        self.webhook = {"url": str(params.get("url") or ""), "secret_token": secret}
        return {"url": self.webhook["url"], "updated_at": int(time.time() * 1000)}

    def _delete_webhook(self, params: dict) -> dict:
        self.webhook = {"url": ""}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    def _send_message(self, params: dict) -> dict:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: text is empty")
        if len(text.encode("utf-16-le")) // 2 > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: text is too long")
        return self._message(params, {"text": text})

    async def _send_photo(self, params: dict) -> dict:
        """The platform fetches the photo from its address, as a chat app's server does:
        an address it cannot fetch, or that answers no image, is refused."""
        photo = params.get("photo")
        if not isinstance(photo, str) or not photo.startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: photo must be a URL")
        image = await self._fetch(photo)
        return self._message(params, {"photo": photo, "image": image,
                                      "caption": params.get("caption", "")})

    async def _fetch(self, address: str) -> bytes:
        for public, local in self.proxied.items():
            if address.startswith(public + "/"):
                address = local + address[len(public):]
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    address, timeout=aiohttp.ClientTimeout(total=10)) as response:
                image = await response.read()
                status, kind = response.status, response.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(400, f"Bad Request: cannot fetch the photo ({exc})") from None
        self.fetched.append((address, status))
        if status != 200 or kind not in ("image/png", "image/jpeg"):
            raise ApiError(400, f"Bad Request: the photo's address answered {status} {kind}")
        return image

    def _message(self, params: dict, content: dict) -> dict:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise ApiError(400, "Bad Request: chat_id is required")
        message = {"message_id": f"bot{next(self._message_ids):06d}",
                   "date": int(time.time() * 1000), **content}
        self.sent.setdefault(chat_id, []).append(message)
        return {"message_id": message["message_id"], "date": message["date"]}


@pytest.fixture
async def fake_zalo_bot() -> AsyncIterator[FakeZaloBot]:
    """A running fake platform (import this fixture into a test module to use it)."""
    async with FakeZaloBot() as fake:
        yield fake
