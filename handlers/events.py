"""Channel-neutral events and replies: what adapters translate to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What a resident sent; adapters map platform message types onto these."""

    TEXT = "text"
    CHOICE = "choice"  # a button was pressed (or its number typed on a text-only channel)
    PHOTO = "photo"
    STICKER = "sticker"
    VOICE = "voice"
    LOCATION = "location"
    FILE = "file"
    OTHER = "other"
    FOLLOW = "follow"  # Zalo's follow event: the same as /start
    EDITED = "edited"  # an earlier message was edited: edits are not recorded
    BLOCKED = "blocked"  # the person blocked the bot (or unfollowed): stop sending
    UNBLOCKED = "unblocked"  # the person allowed the bot again


@dataclass(frozen=True)
class Incoming:
    """One thing a person did in a chat."""

    channel: str
    user_id: str
    kind: Kind = Kind.TEXT
    text: str = ""
    choice: str = ""  # the compact id of the pressed button
    reply_to: str = ""  # platform id of the message this one answers, if any
    update_id: str = ""  # platform id of the update, so a retried webhook changes nothing
    language_hint: str = ""  # the chat app's language (the greeting is Vietnamese regardless)
    forwarded: bool = False  # someone else's words passed on (forwarded, via an inline bot)
    # A number typed where choices are numbered lines, standing for none of them (a slip, or
    # a list gone from the chat): answered as such unless a comment is awaited.
    unknown_choice: int | None = None


@dataclass(frozen=True)
class Button:
    """A choice offered to the person; `id` is compact (Telegram allows 64 bytes)."""

    id: str
    label: str


@dataclass
class Reply:
    """A message to show: text with optional rows of buttons."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    draft_id: int | None = None  # set when the message presents a draft, so replies to it count
    edit: bool = False  # a channel that can edit may replace the message the button was on
    # Holds a one-time secret (a sign-in link): sent without a link preview (a platform's
    # robot fetching it must not be the one to open it) and never kept to be sent again.
    secret: bool = False


@dataclass
class Document:
    """A file to send (an export, for instance)."""

    filename: str
    data: bytes
    caption: str = ""


@dataclass
class Picture:
    """An image to send (a results chart, for instance)."""

    data: bytes
    caption: str = ""


@dataclass
class LinkedPicture:
    """An image the platform fetches from `url` (under YKIEN_PUBLIC_URL, signed and
    expiring): for a channel that sends pictures only by address (PictureWay.LINK)."""

    url: str
    caption: str = ""


Outgoing = Reply | Document | Picture | LinkedPicture


def flat_buttons(reply: Reply) -> list[Button]:
    """All buttons of a reply in reading order, as text-only channels number them."""
    return [button for row in reply.buttons for button in row]
