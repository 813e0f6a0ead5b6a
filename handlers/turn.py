"""What every step of the conversation gets: the event, the resident, the translator, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.buttons import ButtonData, ChooseLanguage, Menu, MenuCommand, encode
from handlers.capabilities import PictureWay
from handlers.events import Button, Incoming, Reply
from handlers.i18n import Translator
from handlers.state import DEFAULT_TIMEOUT
from storage.flood import DEFAULT_LIMITS, CommentLimits
from storage.models import Resident
from storage.queries import COMMENT_LIMIT as COMMENT_LIMIT  # the limits a person is told
from storage.retention import DEFAULT_MONTHS
from storage.roles import Chat

# Zalo's text limit is the smallest of our channels; a draft must fit one message everywhere.
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Periods:
    """How long the bot keeps what it keeps, as the settings say: the privacy notice states
    them (handlers.onboarding)."""

    retention_months: int = DEFAULT_MONTHS  # YKIEN_RETENTION_MONTHS (storage.retention)
    outbox_days: int = 90  # YKIEN_OUTBOX_RETENTION_DAYS: the record of messages sent


@dataclass(frozen=True)
class Workspace:
    """What the officials' commands need from the settings (see handlers.officials)."""

    public_url: str = ""  # YKIEN_PUBLIC_URL, where sign-in links point; "" = not set up
    admin_chats: frozenset[Chat] = frozenset()  # YKIEN_ADMIN_IDS: admins of everything
    pseudonym_key: str = ""  # YKIEN_PSEUDONYM_KEY, so chat exports match the CLI's
    periods: Periods = Periods()


@dataclass
class Turn:
    session: AsyncSession
    event: Incoming
    resident: Resident | None
    t: Translator
    now: datetime
    # Silence after which a waiting step (comment, commune search) is over.
    timeout: timedelta = DEFAULT_TIMEOUT
    # The channel counts a reply to a draft's message as a comment (Capabilities).
    replies_to_messages: bool = False
    workspace: Workspace = Workspace()
    # The channel sends documents as files (Capabilities.sends_files), pictures this way.
    sends_files: bool = False
    pictures: PictureWay = PictureWay.NONE
    comment_limits: CommentLimits = DEFAULT_LIMITS


def button(data: ButtonData, label: str) -> Button:
    """A button carrying typed data (see handlers.buttons)."""
    return Button(encode(data), label)


def language_switch(t: Translator) -> Button:
    """The button that offers the other language, labelled in that language."""
    if t.language == "vi":
        return button(ChooseLanguage("en"), "English")
    return button(ChooseLanguage("vi"), "Tiếng Việt")


def menu(t: Translator) -> list[list[Button]]:
    """The resident's everyday buttons, so nobody has to remember a command."""
    return [
        [button(Menu(MenuCommand.DRAFTS), t("Open drafts")),
         button(Menu(MenuCommand.MY_COMMENTS), t("My comments"))],
        [button(Menu(MenuCommand.COMMUNE), t("Change commune")), language_switch(t)],
        [button(Menu(MenuCommand.HELP), t("Help")), button(Menu(MenuCommand.STOP), t("Stop"))],
    ]


def with_menu(turn: Turn, text: str) -> Reply:
    return Reply(text, menu(turn.t))
