"""Fast sendMessage for broadcasts: plain aiohttp POSTs to the Bot API.

python-telegram-bot's HTTP client tops out near 1,000 messages/s on a small machine, a bare
aiohttp loop near ten times that (benchmarks/results/send.txt), so `TelegramChannel.send`
posts text messages through this one ClientSession with a bounded connection pool.

Answers map onto the neutral send errors as `channel.send_error` maps PTB's: 429 →
Throttled(retry_after); 403 and "chat not found" → Unreachable; any other 400 →
PermanentFailure; 5xx, network trouble and timeouts → TemporaryFailure; 401/404 (a wrong
token or address) → `Misconfigured`, a TemporaryFailure that says the trouble is ours.
Error texts never carry the token (aiohttp puts the URL, token included, in its messages).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from bot.channels.channel import (
    PermanentFailure,
    SendError,
    TemporaryFailure,
    Throttled,
    Unreachable,
)


class Misconfigured(TemporaryFailure):
    """The Bot API refused the bot itself (wrong token or address): not this message's fault."""


class TelegramSender:
    """POSTs `sendMessage` to `{api_url}/bot{token}/sendMessage` through one session."""

    def __init__(
        self, token: str, api_url: str, *, connections: int = 64, timeout: float = 10.0
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(5.0, timeout))
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=self._timeout,
                json_serialize=json.dumps,
            )
        return self._session

    async def send_message(
        self, chat_id: int, text: str, reply_markup: dict[str, Any] | None = None
    ) -> str:
        """Send one text message; its message id. Raises a `SendError`."""
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if reply_markup:
            payload["reply_markup"] = reply_markup
        try:
            async with self._client().post(self._url, json=payload) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except TimeoutError as exc:
            raise TemporaryFailure("sendMessage timed out") from exc
        except aiohttp.ClientError as exc:
            # The message names the URL, and with it the token: only the kind of trouble.
            raise TemporaryFailure(f"network trouble: {type(exc).__name__}") from exc
        if isinstance(answer, dict) and answer.get("ok"):
            result = answer.get("result")
            if isinstance(result, dict) and "message_id" in result:
                return str(result["message_id"])
            raise TemporaryFailure("sendMessage answered without a message id")
        raise answer_error(status, answer if isinstance(answer, dict) else {})

    async def close(self) -> None:
        """Close the connections (a later send opens new ones)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
            # Let the connector's transports finish closing (aiohttp's advice).
            await asyncio.sleep(0)


def answer_error(status: int, answer: dict[str, Any]) -> SendError:
    """The neutral send error for a Bot API answer that is not ok."""
    code = answer.get("error_code") if isinstance(answer.get("error_code"), int) else status
    description = str(answer.get("description") or f"HTTP {status}")
    detail = f"{code}: {description}"
    parameters = answer.get("parameters") or {}
    if code == 429:
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return Throttled(float(retry_after) if retry_after else 1.0, detail)
    if code == 403:  # blocked by the user, or the account was deleted
        return Unreachable(detail)
    if code == 400:
        if "chat not found" in description.lower():
            return Unreachable(detail)
        return PermanentFailure(detail)
    if code in (401, 404):
        return Misconfigured(detail)
    return TemporaryFailure(detail)


__all__ = ["Misconfigured", "TelegramSender", "answer_error"]
