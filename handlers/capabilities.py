"""What a chat platform can show, so every reply is laid out within it (see handlers.layout)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

# The most choices one reply of the conversation carries: a channel allowing this many
# buttons never needs numbered lines.
MOST_CHOICES = 100


class PictureWay(StrEnum):
    """How a channel gets a picture (a results chart) to a person."""

    NONE = "none"  # it cannot: only the picture's caption is sent
    FILE = "file"  # the image itself is uploaded (Telegram, the Zalo OA, the console's file)
    LINK = "link"  # the platform fetches it from an address we serve (Zalo Bot's sendPhoto)


@dataclass(frozen=True)
class Capabilities:
    """One channel's limits, declared by its adapter.

    `buttons_per_message` 0 means no buttons at all: choices become numbered lines that
    accept a typed number. A reply with more choices than the limit is numbered as a whole
    (so every choice of one message is chosen the same way).
    """

    buttons_per_message: int
    button_label_limit: int  # longer labels are shortened with "…"
    text_limit: int  # longer texts are split into several messages at line or word ends
    can_edit: bool = False  # a button's answer may replace the message it was on
    # A resident can answer a given message (quote it), and a reply to a draft's message is
    # a comment on that draft: its message says so.
    replies_to_messages: bool = False
    # Residents who have not written for this long cannot be sent to (Zalo OA: 7 days).
    messaging_window: timedelta | None = None
    # How the platform counts text length (Telegram counts UTF-16 code units).
    measure: Callable[[str], int] = len
    # Documents (an export) are sent as files; without, only their captions.
    sends_files: bool = False
    pictures: PictureWay = PictureWay.NONE

    @property
    def numbers_choices(self) -> bool:
        """Whether some replies show numbered lines, so typed numbers must be read back."""
        return self.buttons_per_message < MOST_CHOICES


# A terminal shows any length and has no buttons.
CONSOLE = Capabilities(buttons_per_message=0, button_label_limit=200, text_limit=100_000,
                       sends_files=True,  # written to files, their paths printed
                       pictures=PictureWay.FILE)
