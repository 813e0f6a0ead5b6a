"""What the conversation waits for from a resident, typed, with a time limit.

Stored in `Resident.awaiting` as a short text ("commune", "comment:12", "held") with the moment the
wait began; a wait left alone longer than the configured silence is over, so an abandoned
step does not swallow later messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.models import Resident

DEFAULT_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class AwaitCommune:
    """The next text is a commune name to search."""


@dataclass(frozen=True)
class AwaitComment:
    """The next text is a comment on this draft."""

    draft_id: int


@dataclass(frozen=True)
class AwaitDraftChoice:
    """Text sent outside any draft is kept aside (Resident.held_text) until the resident
    chooses its draft; more text meanwhile joins it, as one comment typed in several
    messages."""


Awaiting = AwaitCommune | AwaitComment | AwaitDraftChoice


def _encode(state: Awaiting) -> str:
    if isinstance(state, AwaitComment):
        return f"comment:{state.draft_id}"
    if isinstance(state, AwaitDraftChoice):
        return "held"
    return "commune"


def _decode(raw: str) -> Awaiting | None:
    if raw == "commune":
        return AwaitCommune()
    if raw == "held":
        return AwaitDraftChoice()
    kind, _, argument = raw.partition(":")
    if kind == "comment" and argument.isascii() and argument.isdigit():
        return AwaitComment(int(argument))
    return None


def awaiting(resident: Resident, now: datetime, timeout: timedelta) -> Awaiting | None:
    """What the resident's next text answers, unless the wait has run out."""
    state = _decode(resident.awaiting or "")
    if state is None:
        return None
    since = resident.awaiting_since
    if since is not None and now - since > timeout:
        return None
    return state


def wait_for(resident: Resident, state: Awaiting | None, now: datetime) -> None:
    """Start waiting for `state` (None: wait for nothing)."""
    resident.awaiting = "" if state is None else _encode(state)
    resident.awaiting_since = None if state is None else now
