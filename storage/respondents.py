"""How comments and votes came, in words: the chat app, whom the person answers for, the
source. The chat and the exports say them the same way (translated by the caller)."""

from __future__ import annotations

from storage.models import CommentSource, RespondentCategory
from storage.text import N_

CATEGORY_WORDS = {
    RespondentCategory.INDIVIDUAL: N_("Individual"),
    RespondentCategory.ORGANISATION: N_("Organisation"),
    RespondentCategory.BUSINESS: N_("Business"),
}
SOURCE_WORDS = {
    CommentSource.CHAT: N_("Chat app"),
    CommentSource.MEETING: N_("Village meeting"),
    CommentSource.PHONE: N_("Phone"),
    CommentSource.PAPER: N_("Paper"),
    CommentSource.OTHER: N_("Other"),
}
NOT_SAID = N_("not said")  # whom they commented for, when they did not say
# Names of brands stay as they are (Zalo's two ways in by the names Zalo gives them); the
# console is a word. The exports, /mydata and the annual report name them alike.
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo OA", "zalobot": "Zalo Bot",
                 "console": N_("console")}


def category(raw: str) -> RespondentCategory | None:
    """A stored category, or None when not said (or not one of ours)."""
    return RespondentCategory(raw) if raw in RespondentCategory.__members__.values() else None
