"""A fake Telegram Bot API server on localhost, for tests and benchmarks.

    async with FakeTelegram() as fake:
        channel = TelegramChannel(fake.token, fake.url, service, poll_timeout=1)
        await channel.start()
        fake.push_text(42, "/start")
        call = await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 42)

It serves `{url}/bot{token}/{method}` (GET or POST; JSON, form or multipart parameters),
records every call, queues updates for getUpdates (bounded long polling), and can be told to
fail the next call of a method with a realistic Bot API error, or hold calls until a test
releases them (`hold`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.channels.fake_platform import Call, RecordsCalls, matcher

# Parameters that Telegram treats as integers, and those that carry JSON-serialised objects.
_INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "user_id", "reply_to_message_id"}
_JSON_PARAMS = {
    "reply_markup",
    "commands",
    "allowed_updates",
    "reply_parameters",
    "entities",
    "caption_entities",
    "link_preview_options",
    "scope",
}
_DEFAULT_ERRORS = {
    400: "Bad Request: invalid request",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


@dataclass
class _Failure:
    method: str
    chat_id: int | None
    code: int
    description: str
    retry_after: int | None
    times: int


class ApiError(Exception):
    """Raised inside a method handler to answer with a Bot API error."""

    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class _Chat:
    id: int
    type: str = "private"
    language_code: str = "vi"
    next_message_id: int = 1
    messages: dict[int, dict] = field(default_factory=dict)  # every message, by id
    from_bot: list[int] = field(default_factory=list)  # ids of the bot's messages, in order


class FakeTelegram(RecordsCalls):
    """The fake Bot API server; use as `async with FakeTelegram() as fake:`."""

    def __init__(self, token: str = "123456:TEST-token", *, poll_cap: float = 2.0) -> None:
        super().__init__()
        self.token = token
        self.poll_cap = poll_cap  # no getUpdates waits longer than this, whatever it asks
        self.commands: dict[str, list[dict]] = {}  # language code ("" = default) -> menu
        self.bot_user = {
            "id": int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "Ý kiến",
            "username": "ykien_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._chats: dict[int, _Chat] = {}
        self._updates: list[dict] = []
        self.last_update_id = 0  # of the latest pushed update
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._allowed: list[str] | None = None
        # The registered webhook (setWebhook's parameters); "" when none, as on Telegram.
        self.webhook: dict[str, Any] = {"url": ""}
        self._failures: list[_Failure] = []
        self._holds: list[tuple[Callable[[Call], bool], asyncio.Event]] = []
        self._new_updates = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""
        handlers: dict[str, Callable[[dict], Any]] = {
            "getMe": lambda params: self.bot_user,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendChatAction": lambda params: True,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": lambda params: True,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
        }
        # Bot API method names are case-insensitive; calls are recorded under the usual name.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port; `url` is then the API address."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        # handler_cancellation: a long poll the client abandoned ends at once, as on Telegram.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Wake waiting long polls and close the server."""
        self._closing = True
        self._new_updates.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- pushing updates (what residents do) ----------------------------------------------

    def chat(self, chat_id: int, *, chat_type: str = "private", language_code: str = "vi") -> _Chat:
        """The chat with this id, created on first use."""
        if chat_id not in self._chats:
            self._chats[chat_id] = _Chat(chat_id, chat_type, language_code)
        return self._chats[chat_id]

    def push_update(self, update: dict) -> int:
        """Queue a raw update (an `update_id` is added); return the update id."""
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self.last_update_id = update_id
        # Wake every waiting getUpdates, and give later waiters a fresh event.
        self._new_updates.set()
        self._new_updates = asyncio.Event()
        return update_id

    def take_update(self) -> dict:
        """Remove the latest pushed update from the getUpdates queue and return it, so a test
        can POST it to a webhook instead (`push_text` and the like build it)."""
        return self._updates.pop()

    def push_message(
        self,
        chat_id: int,
        content: dict,
        *,
        reply_to: int | None = None,
        chat_type: str = "private",
        language_code: str | None = None,
        edited: bool = False,
    ) -> int:
        """Queue a message from the person in `chat_id` with the given content; its id."""
        chat = self.chat(chat_id, chat_type=chat_type)
        if language_code is not None:
            chat.language_code = language_code
        message = {
            "message_id": self._next_message_id(chat),
            "date": int(time.time()),
            "chat": self._chat_json(chat),
            "from": self._user_json(chat),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = chat.messages.get(reply_to) or {
                "message_id": reply_to,
                "date": int(time.time()),
                "chat": self._chat_json(chat),
            }
        chat.messages[message["message_id"]] = message
        self.push_update({"edited_message" if edited else "message": message})
        return message["message_id"]

    def push_text(self, chat_id: int, text: str, reply_to: int | None = None, **kw: Any) -> int:
        """A text message (commands included, e.g. "/start"); returns its message id."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.push_message(chat_id, content, reply_to=reply_to, **kw)

    def push_callback(self, chat_id: int, data: str, message_id: int, **kw: Any) -> str:
        """A press on an inline button of the bot's message `message_id`; the query id."""
        chat = self.chat(chat_id, **kw)
        query_id = str(next(self._callback_ids))
        message = chat.messages.get(message_id) or {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat_json(chat),
            "from": self.bot_user,
            "text": "",
        }
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user_json(chat),
                    "message": message,
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def push_membership(self, chat_id: int, old: str, new: str, **kw: Any) -> int:
        """The bot's membership of a chat changed: in a private chat, "kicked" is the person
        blocking the bot and "member" after "kicked" unblocking it. Returns the update id."""
        chat = self.chat(chat_id, **kw)
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat),
                    "from": self._user_json(chat),
                    "date": int(time.time()),
                    "old_chat_member": self._member_json(old),
                    "new_chat_member": self._member_json(new),
                }
            }
        )

    def push_photo(self, chat_id: int, caption: str | None = None, **kw: Any) -> int:
        """A photo (two sizes, as Telegram sends them); returns its message id."""
        sizes = [self._file(width=90, height=90), self._file(width=800, height=800)]
        return self.push_message(chat_id, _with_caption({"photo": sizes}, caption), **kw)

    def push_sticker(self, chat_id: int, **kw: Any) -> int:
        """A sticker; returns its message id."""
        sticker = self._file(
            type="regular", width=512, height=512, is_animated=False, is_video=False, emoji="👍"
        )
        return self.push_message(chat_id, {"sticker": sticker}, **kw)

    def push_voice(self, chat_id: int, **kw: Any) -> int:
        """A voice note; returns its message id."""
        voice = self._file(duration=3, mime_type="audio/ogg")
        return self.push_message(chat_id, {"voice": voice}, **kw)

    def push_audio(self, chat_id: int, **kw: Any) -> int:
        """An audio file; returns its message id."""
        return self.push_message(chat_id, {"audio": self._file(duration=60)}, **kw)

    def push_video(self, chat_id: int, caption: str | None = None, **kw: Any) -> int:
        """A video; returns its message id."""
        video = self._file(width=640, height=480, duration=5)
        return self.push_message(chat_id, _with_caption({"video": video}, caption), **kw)

    def push_location(
        self, chat_id: int, latitude: float = 21.03, longitude: float = 105.85, **kw: Any
    ) -> int:
        """A shared location; returns its message id."""
        location = {"latitude": latitude, "longitude": longitude}
        return self.push_message(chat_id, {"location": location}, **kw)

    def push_document(
        self, chat_id: int, file_name: str = "gop-y.pdf", caption: str | None = None, **kw: Any
    ) -> int:
        """A file; returns its message id."""
        document = self._file(file_name=file_name, mime_type="application/pdf")
        return self.push_message(chat_id, _with_caption({"document": document}, caption), **kw)

    def push_contact(self, chat_id: int, **kw: Any) -> int:
        """A shared contact; returns its message id."""
        contact = {"phone_number": "+84901234567", "first_name": "Lan"}
        return self.push_message(chat_id, {"contact": contact}, **kw)

    # ---- failure injection ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        chat_id: int | None = None,
        *,
        code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with an error.

        code=429 with retry_after=3 is flood control; code=403 is "bot was blocked by the
        user"; code=400 with description="Bad Request: chat not found" a vanished chat.
        """
        if code == 429 and retry_after is None:
            retry_after = 1
        text = description or _DEFAULT_ERRORS.get(code, f"Error {code}")
        self._failures.append(
            _Failure(
                method.lower(),
                chat_id,
                code,
                text.format(retry_after=retry_after),
                retry_after,
                times,
            )
        )

    def hold(self, predicate: Callable[[Call], bool] | str) -> asyncio.Event:
        """Keep matching calls waiting (unanswered, unrecorded) until the event is set.

        The predicate sees each call as it arrives, before it is recorded.
        """
        released = asyncio.Event()
        self._holds.append((matcher(predicate), released))
        return released

    # ---- looking at what the bot did -------------------------------------------------------

    def messages_to(self, chat_id: int) -> list[dict]:
        """The bot's messages in a chat, as Bot API message objects (edits applied).

        Each has `text` (or `caption`) and, when it has buttons, `reply_markup`.
        """
        chat = self._chats.get(chat_id)
        return [chat.messages[i] for i in chat.from_bot] if chat else []

    @staticmethod
    def buttons(message: dict) -> list[list[tuple[str, str]]]:
        """Rows of (label, callback_data) of a message's inline keyboard."""
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        return [[(b["text"], b.get("callback_data", "")) for b in row] for row in rows]

    # ---- the HTTP side --------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        name, handler = self._methods.get(method.lower(), (method, None))
        call = Call(name, await _read_params(request))
        await self._arrived(call)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            await self._wait_while_held(call)
            self._maybe_fail(call)
            result = handler(call.params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            call.error = {"error_code": exc.code, "description": exc.description}
            if exc.parameters:
                call.error["parameters"] = exc.parameters
            await self._record(call)
            return _error(exc.code, exc.description, exc.parameters)
        call.result = result
        await self._record(call)
        return web.json_response({"ok": True, "result": result})

    async def _wait_while_held(self, call: Call) -> None:
        for matches, released in list(self._holds):
            if matches(call):
                await released.wait()

    def _maybe_fail(self, call: Call) -> None:
        for failure in self._failures:
            if failure.method == call.method.lower() and failure.chat_id in (None, call.chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                parameters = {"retry_after": failure.retry_after} if failure.retry_after else None
                raise ApiError(failure.code, failure.description, parameters)

    # ---- methods --------------------------------------------------------------------------

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = params.get("offset") or 0
        if params.get("allowed_updates") is not None:
            self._allowed = params["allowed_updates"] or None  # [] means "all", as on Telegram
        # Updates below the offset are confirmed: Telegram forgets them.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        wait = min(float(params.get("timeout") or 0), self.poll_cap)
        pending = self._pending(params)
        if not pending and wait > 0 and not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._new_updates.wait()
            pending = self._pending(params)
        return pending

    def _pending(self, params: dict) -> list[dict]:
        limit = int(params.get("limit") or 100)
        allowed = self._allowed
        selected = [u for u in self._updates if allowed is None or _update_type(u) in allowed]
        return selected[:limit]

    def _set_webhook(self, params: dict) -> bool:
        self.webhook = {"url": "", **params}
        return True

    def _delete_webhook(self, params: dict) -> bool:
        self.webhook = {"url": ""}
        return True

    def _get_webhook_info(self, params: dict) -> dict:
        info: dict[str, Any] = {
            "url": self.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _set_my_commands(self, params: dict) -> bool:
        self.commands[params.get("language_code") or ""] = params["commands"]
        return True

    def _get_my_commands(self, params: dict) -> list[dict]:
        return self.commands.get(params.get("language_code") or "", [])

    def _send_message(self, params: dict) -> dict:
        text = str(params.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._bot_message(params, {"text": text})

    def _send_document(self, params: dict) -> dict:
        upload = params.get("document")
        if isinstance(upload, dict):
            document = self._file(
                file_name=upload["filename"],
                mime_type=upload["content_type"],
                file_size=len(upload["data"]),
            )
        else:  # a file_id or URL
            document = self._file(file_name="file")
        return self._bot_message(params, {"document": document})

    def _send_photo(self, params: dict) -> dict:
        upload = params.get("photo")
        size = len(upload["data"]) if isinstance(upload, dict) else 0
        photo = [self._file(width=320, height=240, file_size=size)]
        return self._bot_message(params, {"photo": photo})

    def _edit_message_text(self, params: dict) -> dict:
        message = self._editable(params)
        markup = params.get("reply_markup")
        if message.get("text") == params.get("text") and message.get("reply_markup") == markup:
            raise ApiError(400, _NOT_MODIFIED)
        message["text"] = params.get("text")
        _set_markup(message, markup)
        message["edit_date"] = int(time.time())
        return message

    def _edit_message_reply_markup(self, params: dict) -> dict:
        message = self._editable(params)
        markup = params.get("reply_markup")
        if message.get("reply_markup") == markup:
            raise ApiError(400, _NOT_MODIFIED)
        _set_markup(message, markup)
        message["edit_date"] = int(time.time())
        return message

    def _editable(self, params: dict) -> dict:
        chat = self._chats.get(params.get("chat_id"))  # type: ignore[arg-type]
        message_id = params.get("message_id")
        if chat is None or message_id not in chat.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message_id not in chat.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat.messages[message_id]

    # ---- Bot API objects ------------------------------------------------------------------

    def _bot_message(self, params: dict, content: dict) -> dict:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        chat = self.chat(chat_id)
        message = {
            "message_id": self._next_message_id(chat),
            "date": int(time.time()),
            "chat": self._chat_json(chat),
            "from": self.bot_user,
            **content,
        }
        if params.get("caption"):
            message["caption"] = params["caption"]
        _set_markup(message, params.get("reply_markup"))
        chat.messages[message["message_id"]] = message
        chat.from_bot.append(message["message_id"])
        return message

    @staticmethod
    def _next_message_id(chat: _Chat) -> int:
        # One counter per chat, shared by both sides, as in Telegram private chats.
        message_id = chat.next_message_id
        chat.next_message_id += 1
        return message_id

    def _member_json(self, status: str) -> dict:
        member: dict[str, Any] = {"user": self.bot_user, "status": status}
        if status == "kicked":
            member["until_date"] = 0  # forever, as when a person blocks a bot
        return member

    @staticmethod
    def _chat_json(chat: _Chat) -> dict:
        if chat.type == "private":
            return {"id": chat.id, "type": "private", "first_name": "Dân", "last_name": "Test"}
        return {"id": chat.id, "type": chat.type, "title": "Nhóm thôn"}

    @staticmethod
    def _user_json(chat: _Chat) -> dict:
        user_id = chat.id if chat.id > 0 else 777
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": "Dân",
            "last_name": "Test",
            "language_code": chat.language_code,
        }

    def _file(self, **extra: Any) -> dict:
        number = next(self._file_ids)
        return {"file_id": f"FILE{number}", "file_unique_id": f"U{number}", **extra}


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A running fake Bot API server (import this fixture into a test module to use it)."""
    async with FakeTelegram() as fake:
        yield fake


def _with_caption(content: dict, caption: str | None) -> dict:
    return {**content, "caption": caption} if caption else content


def _set_markup(message: dict, markup: Any) -> None:
    if markup and markup.get("inline_keyboard"):
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _update_type(update: dict) -> str:
    return next(key for key in update if key != "update_id")


def _error(code: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Bot API parameters from the query string, a JSON body, or a form (multipart or not)."""
    raw: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            raw.update(body if isinstance(body, dict) else {})
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "data": value.file.read(),
                    }
                else:
                    raw[key] = value
    return {key: _coerce(key, value) for key, value in raw.items()}


def _coerce(key: str, value: Any) -> Any:
    # Form values are strings, with objects JSON-encoded; JSON bodies already have types.
    if not isinstance(value, str):
        return value
    if key in _JSON_PARAMS:
        return json.loads(value)
    if key in _INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value  # "@channelname" style chat ids
    if value in ("true", "false"):
        return value == "true"
    return value
