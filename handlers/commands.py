"""The commands typed in a chat: the menu residents see, in their language, and reading a
typed "/command"."""

from __future__ import annotations

from handlers.i18n import N_, translator

COMMAND_MENU = {
    "start": N_("Start and subscribe to drafts"),
    "drafts": N_("Drafts open for comment"),
    "mycomments": N_("My comments"),
    "commune": N_("Change commune"),
    "category": N_("Say whom you comment for"),
    "language": N_("Change language (Tiếng Việt / English)"),
    "help": N_("How to use this bot"),
    "link": N_("Link your Telegram and Zalo chats"),
    "stop": N_("Stop receiving messages"),
    "delete": N_("Delete my data"),
    "mydata": N_("See the data held about me"),
}


def command_menu(language: str) -> dict[str, str]:
    """Command name → description, translated."""
    t = translator(language)
    return {name: t(description) for name, description in COMMAND_MENU.items()}


def slash_name(text: str) -> str | None:
    """The name of a typed "/command …", in lower case and without a bot's "@name" ("" for
    a lone "/"); None for text that is not a command."""
    if not text.startswith("/"):
        return None
    return text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
