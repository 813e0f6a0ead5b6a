"""Button data: one typed value per kind of button, and its compact text form.

Platforms hand button data back as a string (Telegram allows 64 bytes), and anybody can
forge one. `decode` accepts only what `encode` produces — ASCII, known actions, ids made of
ASCII digits within range — and returns None for anything else, never raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storage.models import RespondentCategory

MAX_DATA_BYTES = 64
MAX_ID = 2**31 - 1  # the database's integer range


class MenuCommand(StrEnum):
    """Commands reachable from buttons; the same names as the typed /commands."""

    START = "start"
    DRAFTS = "drafts"
    MY_COMMENTS = "mycomments"
    COMMUNE = "commune"
    LANGUAGE = "language"
    HELP = "help"
    STOP = "stop"
    DELETE = "delete"
    LINK = "link"  # show a code that links another chat app (handlers.linking)
    MY_DATA = "mydata"  # what the bot holds about the person (handlers.mydata)
    CATEGORY = "category"  # whom the person comments for (handlers.respondent)


@dataclass(frozen=True)
class ChooseLanguage:
    language: str


@dataclass(frozen=True)
class Agree:
    language: str  # chosen before consent, carried here since nothing is stored yet


@dataclass(frozen=True)
class Decline:
    language: str


@dataclass(frozen=True)
class Menu:
    command: MenuCommand


@dataclass(frozen=True)
class PickCommune:
    code: int


@dataclass(frozen=True)
class ConfirmErase:
    confirmed: bool
    # How many linked chats the question said would be erased: a "yes" to a question about
    # fewer than the person has by now is asked again (see handlers.account.erase).
    chats: int = 1


@dataclass(frozen=True)
class CommentOn:
    draft_id: int


@dataclass(frozen=True)
class VoteFor:
    option_id: int


@dataclass(frozen=True)
class PlaceHeld:
    """Put the text kept aside on this draft (draft_id None: throw it away)."""

    draft_id: int | None


@dataclass(frozen=True)
class SayCategory:
    """Whom the person comments for; None: not saying (clears it). `skip`: "Skip" under the
    question asked after a first comment, which leaves it as it is."""

    category: RespondentCategory | None
    skip: bool = False


ButtonData = (
    ChooseLanguage | Agree | Decline | Menu | PickCommune | ConfirmErase | CommentOn | VoteFor
    | PlaceHeld | SayCategory
)

_LANGUAGES = ("vi", "en")
_CANCEL = "cancel"
_NOT_SAYING = "none"
_SKIP = "skip"


def encode(data: ButtonData) -> str:
    """The compact text form, e.g. 'vote:12'."""
    match data:
        case ChooseLanguage(language):
            return f"lang:{language}"
        case Agree(language):
            return f"agree:{language}"
        case Decline(language):
            return f"decline:{language}"
        case Menu(command):
            return f"menu:{command.value}"
        case PickCommune(code):
            return f"commune:{code}"
        case ConfirmErase(confirmed, chats):
            if not confirmed:
                return "erase:no"
            return "erase:yes" if chats == 1 else f"erase:yes:{chats}"
        case CommentOn(draft_id):
            return f"comment:{draft_id}"
        case VoteFor(option_id):
            return f"vote:{option_id}"
        case PlaceHeld(draft_id):
            return f"held:{_CANCEL if draft_id is None else draft_id}"
        case SayCategory(_, True):
            return f"category:{_SKIP}"
        case SayCategory(category):
            return f"category:{_NOT_SAYING if category is None else category.value}"
    raise TypeError(f"not button data: {data!r}")


def _number(text: str) -> int | None:
    """A positive id written in ASCII digits ("²", "١" and "0012" are not ids)."""
    if not (text.isascii() and text.isdigit()) or text.startswith("0") or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _language(text: str) -> str | None:
    return text if text in _LANGUAGES else None


def decode(raw: str) -> ButtonData | None:
    """The button a platform handed back, or None when it is not one of ours."""
    if not raw or not raw.isascii() or len(raw) > MAX_DATA_BYTES:
        return None
    action, separator, argument = raw.partition(":")
    if not separator or not argument:
        return None
    language = _language(argument)
    number = _number(argument)
    match action:
        case "lang" if language:
            return ChooseLanguage(language)
        case "agree" if language:
            return Agree(language)
        case "decline" if language:
            return Decline(language)
        case "menu" if argument in MenuCommand.__members__.values():
            return Menu(MenuCommand(argument))
        case "commune" if number:
            return PickCommune(number)
        case "erase" if argument in ("yes", "no"):
            return ConfirmErase(argument == "yes")
        case "erase" if argument.startswith("yes:") and (chats := _number(argument[4:])):
            return ConfirmErase(True, chats) if chats > 1 else None
        case "comment" if number:
            return CommentOn(number)
        case "vote" if number:
            return VoteFor(number)
        case "held" if number or argument == _CANCEL:
            return PlaceHeld(number)
        case "category" if argument in RespondentCategory.__members__.values():
            return SayCategory(RespondentCategory(argument))
        case "category" if argument in (_NOT_SAYING, _SKIP):
            return SayCategory(None, skip=argument == _SKIP)
    return None
