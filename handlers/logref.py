"""Pseudonymous chat references for logs: no raw chat id (or message text) reaches a log."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Replaced by the configured pseudonym key at start-up, so references match across processes;
# until then a per-process random key still keeps chat ids out of the logs.
_key = secrets.token_bytes(32)


def configure(key: bytes) -> None:
    """Use this key for log references (the export pseudonym key, for instance)."""
    global _key
    if key:
        _key = key


def chat_ref(channel: str, user_id: str) -> str:
    """A short stable reference to a chat, e.g. 'telegram:L-3f9a1c02d4'."""
    digest = hmac.new(_key, f"log:{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{channel}:L-{digest[:10]}"
