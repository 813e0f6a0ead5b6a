"""Linking chats: a code shown in one chat (/link) and typed in another makes them one person.

The chat that types the code joins the person that showed it: its commune, subscription and
language become that person's. Both chats must have agreed to the privacy notice first.
"""

from __future__ import annotations

import logging
import re

from handlers.events import Outgoing, Reply
from handlers.i18n import translator
from handlers.logref import chat_ref
from handlers.onboarding import ask_commune, greeting
from handlers.state import wait_for
from handlers.turn import Turn, with_menu
from storage import communes, linking
from storage.models import Resident
from storage.text import fold

log = logging.getLogger(__name__)

# "liên kết", typed with or without accents, then perhaps the code.
KEYWORD = "lien ket"
_SPACING = re.compile(r"[\s\-.]+")


def _compact(text: str) -> str:
    """A code as typed ("k7m 4qx", "K7M-4QX") in the form it is stored: "K7M4QX"."""
    return _SPACING.sub("", text).upper()


def slash_argument(text: str) -> str:
    """What follows "/link" ("" when nothing does)."""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def typed_code(text: str) -> str | None:
    """The code in "lien ket K7M4QX", or a message that is only a code; None otherwise.

    A bare code has six characters of the code alphabet with a letter and a digit, so no
    word, name or number is ever taken for one.
    """
    folded = fold(text)
    if folded.startswith(KEYWORD + " "):
        return _compact(folded[len(KEYWORD):])
    compact = _compact(text)
    return compact if linking.is_code_shaped(compact) else None


def _minutes() -> int:
    return int(linking.CODE_LIFETIME.total_seconds() // 60)


def _consent_first(turn: Turn) -> list[Outgoing]:
    """Nothing is stored before consent, not even a link."""
    return [
        Reply(turn.t("To link your chats, first agree to the privacy notice below, "
                     "then type /link again.")),
        *greeting(turn.t.language, turn.workspace.periods),
    ]


async def show_code(turn: Turn) -> list[Outgoing]:
    """/link: a code to type in the other chat."""
    resident = turn.resident
    if resident is None:
        return _consent_first(turn)
    code = await linking.new_code(turn.session, resident.person_id, turn.now)
    log.info("link code shown on %s", chat_ref(turn.event.channel, turn.event.user_id))
    return [Reply(turn.t(
        "Your link code: {code}\n"
        "Open Ý kiến in your other chat app (Telegram or Zalo) and send it this code. "
        "If you have not started there yet, type /start and agree first.\n"
        "The code works once, for {minutes} minutes. Do not give it to anyone: whoever "
        "types it joins your account.",
        code=code.code, minutes=turn.t.number(_minutes()),
    ))]


async def too_many_guesses(turn: Turn, person_id: int, what: str) -> list[Outgoing] | None:
    """The refusal of a code typed after too many wrong ones (link codes and invite codes
    count together); None while the person may still try. Writes nothing."""
    with turn.session.no_autoflush:
        guesses = await linking.wrong_guesses(turn.session, person_id, turn.now)
    if len(guesses) < linking.GUESS_LIMIT:
        return None
    log.info("%s refused on %s: too many wrong codes", what,
             chat_ref(turn.event.channel, turn.event.user_id))
    return [Reply(turn.t(
        "Too many wrong codes. For your safety, try again after {time}.",
        time=turn.t.datetime(guesses[-linking.GUESS_LIMIT] + linking.GUESS_WINDOW),
    ))]


async def use_code(turn: Turn, code: str) -> list[Outgoing]:
    """A code typed in a chat: join this chat to the person who was shown it."""
    resident = turn.resident
    if resident is None:
        return _consent_first(turn)
    where = chat_ref(turn.event.channel, turn.event.user_id)
    # Nothing of this chat written before linking.redeem holds the persons: an erasure or a
    # link holding them may have to write this chat's row (see queries.lock_person).
    with turn.session.no_autoflush:
        refused = await too_many_guesses(turn, resident.person_id, "link code")
        if refused is not None:
            return refused
        found = await linking.find_code(turn.session, code)
    if found is None:
        await linking.record_wrong_guess(turn.session, resident.person_id, turn.now)
        log.info("wrong link code on %s", where)
        return [Reply(turn.t(
            "That code is wrong. Check it and type it again, or type /link in your other "
            "chat for a new code. (To send a comment, tap Comment first.)"
        ))]
    if found.expires_at <= turn.now:
        await linking.use_code(turn.session, found)
        return _expired(turn)
    if found.person_id == resident.person_id:
        if await linking.person_count(turn.session, resident.person_id) == 1:
            return [Reply(turn.t(
                "This code is for your other chat app: type it there, not here."
            ))]
        await linking.use_code(turn.session, found)
        return [with_menu(turn, turn.t("These chats are already linked."))]
    if not await linking.redeem(turn.session, resident, found, turn.now):
        log.info("link code on %s went while it was being used", where)
        return _expired(turn)
    log.info("chat linked on %s", where)
    return _linked(turn, resident)


def _expired(turn: Turn) -> list[Outgoing]:
    return [Reply(turn.t(
        "That code has expired: codes work for {minutes} minutes. Type /link in your "
        "other chat for a new code.",
        minutes=turn.t.number(_minutes()),
    ))]


def _linked(turn: Turn, resident: Resident) -> list[Outgoing]:
    """Say what the chat now shares with the person it joined."""
    turn.t = translator(resident.language)
    wait_for(resident, None, turn.now)
    resident.held_text = ""
    text = turn.t(
        "Linked: this chat and your other chat are now one account. Each draft comes once, "
        "to the chat you used last; your vote counts once."
    )
    if resident.commune_code is None:
        return [Reply(text), *ask_commune(turn, resident)]
    if not resident.subscribed:
        return [Reply(text + "\n" + turn.t(
            "Your commune is now {commune}. You have stopped receiving drafts: type START or "
            "BẮT ĐẦU to receive them again.",
            commune=_commune_label(resident.commune_code),
        ))]
    return [with_menu(turn, text + "\n" + turn.t(
        "You are subscribed to news from {commune}.",
        commune=_commune_label(resident.commune_code),
    ))]


def _commune_label(code: int) -> str:
    commune = communes.get_commune(code)
    return commune.label if commune else str(code)
