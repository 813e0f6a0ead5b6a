"""The entry point of the conversation: one neutral event in, neutral replies out."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import account, drafts, onboarding
from handlers.events import Incoming, Kind, Outgoing, Reply
from handlers.i18n import LANGUAGES, translator
from handlers.turn import Turn, with_menu
from storage import queries
from storage.models import utcnow
from storage.text import fold

log = logging.getLogger(__name__)

Step = Callable[[Turn], Awaitable[list[Outgoing]]]


async def _drafts(turn: Turn) -> list[Outgoing]:
    if turn.resident.commune_code is None:
        return onboarding.ask_commune(turn)
    return await drafts.open_drafts_replies(turn)


async def _change_commune(turn: Turn) -> list[Outgoing]:
    return onboarding.ask_commune(turn)


async def _language(turn: Turn) -> list[Outgoing]:
    other = "en" if turn.t.language == "vi" else "vi"
    return await onboarding.choose_language(turn, other)


# Commands that need a consenting resident; the others work for anyone.
RESIDENT_COMMANDS: dict[str, Step] = {
    "drafts": _drafts,
    "mycomments": account.my_comments,
    "commune": _change_commune,
    "language": _language,
}
ANYONE_COMMANDS: dict[str, Step] = {
    "start": onboarding.start,
    "help": account.help_text,
    "stop": account.stop,
    "delete": account.ask_erase,
}
COMMAND_ALIASES = {"mine": "mycomments", "menu": "help", "lang": "language"}
# Words typed instead of commands; folded, so "Tro giup" and "trợ giúp" both work.
TYPED_COMMANDS = {"stop": "stop", "start": "start", "bat dau": "start", "help": "help",
                  "tro giup": "help", "giup": "help"}


def _typed_command(text: str) -> str | None:
    """A command from '/name' or a typed keyword such as STOP, DỪNG, BẮT ĐẦU."""
    if text.startswith("/"):
        name = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
        return COMMAND_ALIASES.get(name, name) or "?"
    folded = fold(text)
    if folded == "dung":
        # "dung" typed plainly or "dừng" means stop; "Đúng" (right!) is a comment.
        plain = unicodedata.normalize("NFC", text.strip().lower())
        return "stop" if plain in ("dung", "dừng") else None
    return TYPED_COMMANDS.get(folded)


async def _on_command(turn: Turn, name: str) -> list[Outgoing]:
    if name in ANYONE_COMMANDS:
        return await ANYONE_COMMANDS[name](turn)
    if name in RESIDENT_COMMANDS:
        if turn.resident is None:
            return onboarding.greeting(turn.t.language)
        return await RESIDENT_COMMANDS[name](turn)
    log.info("unknown command %r from %s", name, turn.event.channel)
    text = turn.t("I do not know the command “{command}”.", command="/" + name[:30])
    return [Reply(text), *await account.help_text(turn)]


async def _on_choice(turn: Turn, choice: str) -> list[Outgoing]:
    action, _, argument = choice.partition(":")
    language = argument if argument in LANGUAGES else turn.t.language
    if action == "lang":
        return await onboarding.choose_language(turn, language)
    if action == "agree":
        return await onboarding.agree(turn, language)
    if action == "decline":
        return onboarding.decline(language)
    if action == "start":
        return await onboarding.start(turn)
    if action == "menu":
        return await _on_command(turn, argument)
    if turn.resident is None:
        # An old button from before the person erased their data, or never consented.
        return onboarding.greeting(turn.t.language)
    number = int(argument) if argument.isdigit() else -1
    if action == "commune":
        return await onboarding.pick_commune(turn, argument)
    if action == "erase":
        return await account.erase(turn, argument == "yes")
    if number >= 0 and action == "comment":
        return await drafts.ask_comment(turn, number)
    if number >= 0 and action == "vote":
        return await drafts.vote(turn, number)
    if number >= 0 and action == "held":
        return await drafts.place_held_comment(turn, number)
    log.warning("unknown choice %r from %s", choice[:64], turn.event.channel)
    return [with_menu(turn, turn.t("That button is no longer valid. Here is the menu."))]


async def _on_text(turn: Turn, text: str) -> list[Outgoing]:
    resident = turn.resident
    if resident is None:
        return onboarding.greeting(turn.t.language)
    # A comment the resident clearly meant (after Comment, or replying to a draft) is taken
    # even from someone who stopped receiving drafts.
    awaiting = resident.awaiting
    if awaiting.startswith("comment:"):
        return await drafts.submit_comment(turn, int(awaiting.partition(":")[2]), text)
    if turn.event.reply_to:
        draft_id = await queries.draft_of_message(turn.session, resident, turn.event.reply_to)
        if draft_id is not None:
            return await drafts.submit_comment(turn, draft_id, text)
    if not resident.subscribed:
        return [Reply(turn.t(
            "You have stopped receiving drafts. Type START or BẮT ĐẦU to subscribe again."
        ))]
    if awaiting == "commune" or resident.commune_code is None:
        return onboarding.search_communes(turn, text)
    return await drafts.hold_comment(turn, text)


def _unsupported(turn: Turn) -> list[Outgoing]:
    log.info("unsupported %s message on %s", turn.event.kind, turn.event.channel)
    return [Reply(turn.t(
        "I can only read text messages. Photos, stickers, voice messages, files and "
        "locations are not saved. To comment, type your opinion as text."
    ))]


async def _dispatch(turn: Turn) -> list[Outgoing]:
    event = turn.event
    if event.kind == Kind.FOLLOW:
        return await onboarding.start(turn)
    if event.kind == Kind.CHOICE:
        return await _on_choice(turn, event.choice)
    if event.kind != Kind.TEXT:
        return _unsupported(turn)
    text = event.text.strip()
    command = _typed_command(text)
    if command:
        return await _on_command(turn, command)
    return await _on_text(turn, event.text)


async def handle(
    session: AsyncSession, event: Incoming, now: datetime | None = None
) -> list[Outgoing]:
    """Answer one event. Never raises for what a person sent; a failure rolls back."""
    language = None
    try:
        if not await queries.first_time_update(session, event.channel, event.update_id):
            log.info("update %s on %s already handled", event.update_id, event.channel)
            return []
        resident = await queries.get_resident(session, event.channel, event.user_id)
        language = resident.language if resident else None
        turn = Turn(session, event, resident, translator(language), now or utcnow())
        replies = await _dispatch(turn)
        await session.commit()
        return replies
    except Exception:
        log.exception("failed to handle %s event on %s", event.kind, event.channel)
        await session.rollback()
        t = translator(language)
        return [Reply(t(
            "Sorry, something went wrong on our side. Nothing you sent before is lost; "
            "please try again in a moment."
        ))]


async def remember_draft_message(
    session: AsyncSession, channel: str, user_id: str, message_id: str, draft_id: int
) -> None:
    """Note which draft a sent message showed, so a reply to it counts as a comment."""
    resident = await queries.get_resident(session, channel, user_id)
    if resident is not None:
        await queries.remember_message(session, resident, message_id, draft_id)
        await session.commit()
