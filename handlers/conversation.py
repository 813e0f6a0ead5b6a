"""The entry point of the conversation: one neutral event in, neutral replies out.

`respond` does not commit: the caller (bot.service) owns the transaction of an update, so a
failure anywhere rolls back everything the update did.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import account, drafts, linking, officials, onboarding, respondent
from handlers.buttons import (
    Agree,
    ButtonData,
    ChooseLanguage,
    CommentOn,
    ConfirmErase,
    Decline,
    Menu,
    MenuCommand,
    PickCommune,
    PlaceHeld,
    SayCategory,
    VoteFor,
    decode,
)
from handlers.capabilities import PictureWay
from handlers.commands import slash_name
from handlers.events import Incoming, Kind, Outgoing, Reply
from handlers.i18n import N_, translator
from handlers.payload import PayloadError, decode_replies, encode_replies
from handlers.state import DEFAULT_TIMEOUT, AwaitComment, AwaitCommune, awaiting, wait_for
from handlers.turn import Turn, Workspace, button, with_menu
from storage import linking as linking_storage
from storage import outbox, queries
from storage.flood import CommentLimits
from storage.models import ReachWay, Resident
from storage.text import clean_text, fold

log = logging.getLogger(__name__)

ResidentStep = Callable[[Turn, Resident], Awaitable[list[Outgoing]]]


async def _drafts(turn: Turn, resident: Resident) -> list[Outgoing]:
    if resident.commune_code is None:
        return onboarding.ask_commune(turn, resident)
    return await drafts.open_drafts_replies(turn, resident, ReachWay.ASKED)


async def _change_commune(turn: Turn, resident: Resident) -> list[Outgoing]:
    return onboarding.ask_commune(turn, resident)


async def _language(turn: Turn, resident: Resident) -> list[Outgoing]:
    other = "en" if turn.t.language == "vi" else "vi"
    return await onboarding.choose_language(turn, other)


# Commands that need a consenting resident; the others work for anyone.
RESIDENT_COMMANDS: dict[MenuCommand, ResidentStep] = {
    MenuCommand.DRAFTS: _drafts,
    MenuCommand.MY_COMMENTS: account.my_comments,
    MenuCommand.COMMUNE: _change_commune,
    MenuCommand.LANGUAGE: _language,
    MenuCommand.CATEGORY: respondent.show,
}
ANYONE_COMMANDS: dict[MenuCommand, Callable[[Turn], Awaitable[list[Outgoing]]]] = {
    MenuCommand.START: onboarding.start,
    MenuCommand.HELP: account.help_text,
    MenuCommand.STOP: account.stop,
    MenuCommand.DELETE: account.ask_erase,
    MenuCommand.LINK: linking.show_code,
    MenuCommand.MY_DATA: account.my_data_or_nothing,
}
COMMAND_ALIASES = {"mine": MenuCommand.MY_COMMENTS, "menu": MenuCommand.HELP,
                   "lang": MenuCommand.LANGUAGE}
# Words typed instead of commands; folded, so "Tro giup" and "trợ giúp" both work.
TYPED_COMMANDS = {
    "stop": MenuCommand.STOP, "start": MenuCommand.START, "bat dau": MenuCommand.START,
    "help": MenuCommand.HELP, "tro giup": MenuCommand.HELP, "giup": MenuCommand.HELP,
    "menu": MenuCommand.HELP, "huong dan": MenuCommand.HELP,
    linking.KEYWORD: MenuCommand.LINK,
    "du lieu cua toi": MenuCommand.MY_DATA,
}
# What the button offering a typed keyword's command says, when the keyword may be a comment.
KEYWORD_BUTTONS = {
    MenuCommand.STOP: N_("Stop receiving drafts"),
    MenuCommand.START: N_("Subscribe again"),
    MenuCommand.HELP: N_("Show the help"),
    MenuCommand.LINK: N_("Link another chat app"),
    MenuCommand.MY_DATA: N_("See the data held about me"),
}
SHOWN_COMMAND_LENGTH = 30
# Messages are held only for residents silent far longer (a 7-day window): someone who wrote
# within this has nothing held, and their messages cost no look for it.
HELD_AFTER_SILENCE = timedelta(days=1)


def _slash_command(text: str) -> MenuCommand | str | None:
    """The command of '/name …' (a MenuCommand, or the unknown name); None for other text."""
    name = slash_name(text)
    if name is None:
        return None
    if name in COMMAND_ALIASES:
        return COMMAND_ALIASES[name]
    if name in MenuCommand.__members__.values():
        return MenuCommand(name)
    return name


def _keyword(text: str) -> MenuCommand | None:
    """A command typed as a word: STOP, DỪNG, BẮT ĐẦU, trợ giúp…"""
    folded = fold(text)
    if folded == "dung":
        # "dung" typed plainly or "dừng" means stop; "Đúng" (right!) is a comment.
        plain = text.strip().lower()
        return MenuCommand.STOP if plain in ("dung", "dừng") else None
    return TYPED_COMMANDS.get(folded)


async def _on_command(turn: Turn, command: MenuCommand | str) -> list[Outgoing]:
    if isinstance(command, MenuCommand):
        if command in ANYONE_COMMANDS:
            return await ANYONE_COMMANDS[command](turn)
        if turn.resident is None:
            return onboarding.greeting(turn.t.language, turn.workspace.periods)
        return await RESIDENT_COMMANDS[command](turn, turn.resident)
    log.info("unknown command on %s", turn.event.channel)
    text = turn.t("I do not know the command “{command}”.",
                  command="/" + command[:SHOWN_COMMAND_LENGTH])
    return [Reply(text), *await account.help_text(turn)]


def _invalid_button(turn: Turn) -> list[Outgoing]:
    log.warning("invalid button data on %s", turn.event.channel)
    if turn.resident is None:
        return onboarding.greeting(turn.t.language, turn.workspace.periods)
    return [with_menu(turn, turn.t("That button is no longer valid. Here is the menu."))]


async def _on_choice(turn: Turn, data: ButtonData | None) -> list[Outgoing]:
    match data:
        case None:
            return _invalid_button(turn)
        case ChooseLanguage(language):
            return await onboarding.choose_language(turn, language)
        case Agree(language):
            return await onboarding.agree(turn, language)
        case Decline(language):
            return await onboarding.decline(turn, language)
        case Menu(command):
            return await _on_command(turn, command)
    resident = turn.resident
    if resident is None:
        # An old button from before the person erased their data, or never consented.
        greeting = onboarding.greeting(turn.t.language, turn.workspace.periods)
        if isinstance(data, SayCategory):  # an answer about them: say it was not kept
            return [Reply(turn.t("That button is no longer valid: nothing about you is "
                                 "stored now, so nothing was recorded.")), *greeting]
        return greeting
    match data:
        case PickCommune(code):
            return await onboarding.pick_commune(turn, resident, code)
        case ConfirmErase():
            return await account.erase(turn, resident, data)
        case CommentOn(draft_id):
            return await drafts.ask_comment(turn, resident, draft_id)
        case VoteFor(option_id):
            return await drafts.vote(turn, resident, option_id)
        case PlaceHeld(draft_id):
            return await drafts.place_held_comment(turn, resident, draft_id)
        case SayCategory():
            return await respondent.choose(turn, resident, data)
    return _invalid_button(turn)


def _keyword_or_comment(
    turn: Turn, resident: Resident, text: str, command: MenuCommand, draft_id: int
) -> list[Outgoing]:
    """A command word typed while a comment is awaited: ask, and lose neither."""
    resident.held_text, resident.held_forwarded = text, turn.event.forwarded
    return [Reply(
        turn.t("Is “{text}” your comment, or did you mean the command?", text=text),
        [[button(PlaceHeld(draft_id), turn.t("Send it as my comment"))],
         [button(Menu(command), turn.t(KEYWORD_BUTTONS[command]))]],
    )]


async def _on_text(turn: Turn, text: str) -> list[Outgoing]:
    official = await officials.answer(turn, text)  # None unless a role holder's command
    if official is not None:
        return official
    command = _slash_command(text)
    if command is MenuCommand.LINK and linking.slash_argument(text):
        return await linking.use_code(turn, linking.slash_argument(text))
    if command is not None:
        return await _on_command(turn, command)
    resident = turn.resident
    keyword = _keyword(text)
    # Looked for only after a comment the resident clearly meant: a code typed while a
    # comment is awaited (or in reply to a draft) is that comment.
    code = linking.typed_code(text)
    invite = officials.typed_invite(text)
    if resident is None:
        if keyword is not None:
            return await _on_command(turn, keyword)
        if invite is not None:
            return await officials.use_invite(turn, invite)  # asks for consent first
        if code is not None:
            return await linking.use_code(turn, code)  # asks for consent first
        return onboarding.greeting(turn.t.language, turn.workspace.periods)
    state = awaiting(resident, turn.now, turn.timeout)
    if state is None and resident.awaiting:
        wait_for(resident, None, turn.now)  # the wait ran out: this text is not its answer
    if keyword is not None:
        if isinstance(state, AwaitComment):
            return _keyword_or_comment(turn, resident, text, keyword, state.draft_id)
        return await _on_command(turn, keyword)
    # A comment the resident clearly meant (after Comment, or replying to a draft) is taken
    # even from someone who stopped receiving drafts.
    if isinstance(state, AwaitComment):
        return await drafts.submit_comment(turn, resident, state.draft_id, text,
                                           forwarded=turn.event.forwarded)
    if turn.event.reply_to:
        draft_id = await queries.draft_of_message(turn.session, resident, turn.event.reply_to)
        if draft_id is not None:
            return await drafts.submit_comment(turn, resident, draft_id, text,
                                               forwarded=turn.event.forwarded)
    if invite is not None:
        return await officials.use_invite(turn, invite)
    if code is not None:
        return await linking.use_code(turn, code)
    if not resident.subscribed:
        return [Reply(turn.t(
            "You have stopped receiving drafts. Type START or BẮT ĐẦU to subscribe again."
        ))]
    if isinstance(state, AwaitCommune) or resident.commune_code is None:
        return onboarding.search_communes(turn, text)
    if turn.event.unknown_choice is not None:
        log.info("a number standing for no choice on %s", turn.event.channel)
        return [with_menu(turn, turn.t(
            "No choice has the number {number} now. Type a number from the latest list; "
            "to comment, choose Comment first.", number=str(turn.event.unknown_choice)))]
    return await drafts.hold_comment(turn, resident, text)


def _unsupported(turn: Turn) -> list[Outgoing]:
    log.info("unsupported %s message on %s", turn.event.kind, turn.event.channel)
    return [Reply(turn.t(
        "I can only read text messages. Photos, stickers, voice messages, files and "
        "locations are not saved. To comment, type your opinion as text."
    ))]


def _edited(turn: Turn) -> list[Outgoing]:
    if turn.resident is None:
        return onboarding.greeting(turn.t.language, turn.workspace.periods)
    return [Reply(turn.t(
        "Edits are not recorded: what you sent first is what officials read. To correct a "
        "comment, tap Comment again and send the corrected text; staff see both, in order."
    ))]


def _empty(turn: Turn) -> list[Outgoing]:
    return [Reply(turn.t(
        "Your message was empty or had only invisible characters, so nothing was saved. "
        "Please type it again."
    ))]


async def _dispatch(turn: Turn) -> list[Outgoing]:
    event = turn.event
    if event.kind == Kind.FOLLOW:
        return await onboarding.start(turn)
    if event.kind == Kind.CHOICE:
        return await _on_choice(turn, decode(event.choice))
    if event.kind == Kind.EDITED:
        return _edited(turn)
    if event.kind != Kind.TEXT:
        return _unsupported(turn)
    text = clean_text(event.text)
    if not text:
        return _empty(turn)
    return await _on_text(turn, text)


def _note_presence(resident: Resident, kind: Kind, now: datetime) -> None:
    """Whatever a resident sends proves they can be reached (a block is lifted by writing)."""
    resident.reachable = kind != Kind.BLOCKED
    if kind not in (Kind.BLOCKED, Kind.UNBLOCKED):
        resident.last_seen_at = now


async def respond(
    session: AsyncSession, event: Incoming, now: datetime, timeout: timedelta = DEFAULT_TIMEOUT,
    *, replies_to_messages: bool = False, workspace: Workspace | None = None,
    sends_files: bool = False, pictures: PictureWay = PictureWay.NONE,
    comment_limits: CommentLimits | None = None, again: bool = False,
) -> list[Outgoing]:
    """The replies to one event; the caller commits, or rolls back if this raises.

    An update handled before (a platform delivering it again) changes nothing, and its
    replies are given again unless a later update of the chat was handled since: the
    process that handled it may have died before sending them all. The replies are kept
    with the update's id, so this holds for anyone (a stranger's greeting too).

    The update is recorded as handled, with its replies, as the transaction's last write
    (one statement): for one delivered again, that finds it recorded and raises
    `UpdateHandledBefore`; the caller rolls back and asks `again`, which gives the replies
    kept instead.
    """
    if again:
        return await _given_before(session, event)
    resident = await queries.get_resident(session, event.channel, event.user_id)
    if event.kind in (Kind.BLOCKED, Kind.UNBLOCKED):
        if resident is not None:
            _note_presence(resident, event.kind, now)
        replies: list[Outgoing] = []  # nothing to answer, and nothing to store about a stranger
    else:
        replies = await _answer(Turn(
            session, event, resident, translator(resident.language if resident else None),
            now, timeout, replies_to_messages, workspace or Workspace(), sends_files, pictures,
            comment_limits or CommentLimits()))
    if event.update_id and not await queries.record_update(
        session, event.channel, event.update_id, event.user_id, encode_replies(replies), now
    ):
        raise UpdateHandledBefore(event.update_id)
    return replies


class UpdateHandledBefore(Exception):
    """The update was recorded as handled already: a platform delivered it again."""


async def _answer(turn: Turn) -> list[Outgoing]:
    """The replies to what a person did (not a block or unblock), its changes made."""
    resident, now = turn.resident, turn.now
    shared = linking_storage.settings_of(resident) if resident is not None else None
    if resident is not None:
        # Noted before the step: a comment takes its draft's receipt counter (a row every
        # comment on the draft locks until commit) as late in the transaction as it can.
        silent_since = resident.last_seen_at
        if silent_since is None or silent_since <= now - HELD_AFTER_SILENCE:
            # Writing opens the channel's messaging window: what was held for it goes now.
            await outbox.release_held(turn.session, resident.id, now)
        # After that statement, so the resident row is written once, with the step's changes.
        _note_presence(resident, turn.event.kind, now)
    replies = await _dispatch(turn)
    if (resident is not None and turn.resident is resident
            and linking_storage.settings_of(resident) != shared):
        # Commune, subscription and language belong to the person: every linked chat.
        await linking_storage.share_settings(turn.session, resident)
    resident = turn.resident  # agreeing creates one; erasing removes it
    if (resident is not None
            and resident.notice_version != onboarding.notice_version(turn.workspace.periods)):
        replies.insert(0, onboarding.updated_notice(turn, resident))
    return replies


async def _given_before(session: AsyncSession, event: Incoming) -> list[Outgoing]:
    given = await queries.replies_given(session, event.channel, event.update_id)
    if not given:
        log.info("update on %s already handled", event.channel)
        return []
    log.info("update on %s already handled; its replies are given again", event.channel)
    try:
        return decode_replies(given)
    except PayloadError:
        log.warning("the replies stored for an update on %s are unreadable", event.channel)
        return []


def apology(language: str | None) -> list[Outgoing]:
    """What a person reads when handling their update failed on our side."""
    t = translator(language)
    return [Reply(t(
        "Sorry, something went wrong on our side. Nothing you sent before is lost; "
        "please try again in a moment."
    ))]


def too_fast(language: str | None, until: datetime) -> Reply:
    """What a chat reads when it wrote faster than it can be answered, and its messages
    from then until `until` are not read."""
    t = translator(language)
    return Reply(t(
        "You are sending messages faster than I can answer, so I did not read your latest "
        "ones. Please send them again after {time}.", time=t.datetime(until),
    ))


async def remember_draft_message(
    session: AsyncSession, channel: str, user_id: str, message_id: str, draft_id: int
) -> None:
    """Note which draft a sent message showed, so a reply to it counts as a comment."""
    resident = await queries.get_resident(session, channel, user_id)
    if resident is not None:
        await queries.remember_message(session, resident, message_id, draft_id)


async def language_of(session: AsyncSession, channel: str, user_id: str) -> str | None:
    resident = await queries.get_resident(session, channel, user_id)
    return resident.language if resident else None
