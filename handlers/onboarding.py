"""Greeting, language, consent and choosing a commune. Nothing is stored before consent."""

from __future__ import annotations

from handlers.drafts import open_drafts_replies
from handlers.events import Button, Outgoing, Reply
from handlers.i18n import translator
from handlers.turn import Turn, with_menu
from storage import communes, queries
from storage.communes import Match

# Bump when the notice text changes: each resident's consent records the version they saw.
CONSENT_VERSION = "2026-11"
COMMUNE_CHOICES = 8


def greeting(language: str, replace: bool = False) -> list[Outgoing]:
    """The first message: who we are, the privacy notice and the consent buttons.

    `replace`: shown again in another language, it may take the place of the first one.
    """
    t = translator(language)
    switch = Button("lang:en", "English") if t.language == "vi" else Button(
        "lang:vi", "Tiếng Việt"
    )
    notice = t(
        "Hello! Ý kiến lets you read draft policies of your commune and send your comments "
        "and votes to the officials drafting them."
    )
    privacy = t(
        "Privacy notice:\n"
        "• If you agree, we store your chat account id, your language, your commune, your "
        "comments and votes, and when you agreed.\n"
        "• Commune officials read comments and vote counts; exports never show your name "
        "or chat account.\n"
        "• Type /delete at any time: your data is erased and your comments are kept only "
        "without any link to you.\n"
        "Nothing is stored until you agree."
    )
    buttons = [
        [Button(f"agree:{t.language}", t("I agree")),
         Button(f"decline:{t.language}", t("No, thanks"))],
        [switch],
    ]
    return [Reply(f"{notice}\n\n{privacy}", buttons, edit=replace)]


async def start(turn: Turn) -> list[Outgoing]:
    """/start: greet a newcomer; welcome back someone who had stopped."""
    resident = turn.resident
    if resident is None:
        return greeting(turn.t.language)
    resident.subscribed = True
    if resident.commune_code is None:
        return ask_commune(turn)
    commune = communes.get_commune(resident.commune_code)
    name = commune.label if commune else str(resident.commune_code)
    text = turn.t("You are subscribed to news from {commune}.", commune=name)
    return [with_menu(turn, text), *await open_drafts_replies(turn)]


async def agree(turn: Turn, language: str) -> list[Outgoing]:
    """Consent given: the first moment anything about this person is stored."""
    turn.resident = await queries.add_resident(
        turn.session, turn.event.channel, turn.event.user_id, language, CONSENT_VERSION
    )
    turn.t = translator(turn.resident.language)
    return [Reply(turn.t("Thank you. Your consent is recorded.")), *ask_commune(turn)]


def decline(language: str) -> list[Outgoing]:
    t = translator(language)
    return [Reply(t("Understood: nothing was stored. Type /start if you change your mind."))]


async def choose_language(turn: Turn, language: str) -> list[Outgoing]:
    if turn.resident is None:
        return greeting(language, replace=True)
    turn.resident.language = language
    turn.t = translator(language)
    return [with_menu(turn, turn.t("I will write to you in English from now on."))]


def ask_commune(turn: Turn) -> list[Outgoing]:
    assert turn.resident is not None
    turn.resident.awaiting = "commune"
    return [Reply(turn.t(
        "Which commune do you live in? Type its name, with or without accents, "
        "for example: Cam Tu, or Cam Tu Thanh Hoa."
    ))]


def _choice_label(turn: Turn, match: Match) -> str:
    if match.former is None:
        return match.commune.label
    return turn.t(
        "{commune} (includes former {former})",
        commune=match.commune.label,
        former=match.former.name,
    )


def search_communes(turn: Turn, query: str) -> list[Outgoing]:
    """Offer the communes matching what the resident typed; they always pick from a list."""
    matches = communes.search(query, limit=COMMUNE_CHOICES + 1)
    if not matches:
        return [Reply(turn.t(
            "I found no commune called “{query}”. Check the spelling and type it again, "
            "for example: Cam Tu, or Phuong Ba Dinh.",
            query=query[:60],
        ))]
    text = turn.t("Choose your commune:")
    if len(matches) > COMMUNE_CHOICES:
        matches = matches[:COMMUNE_CHOICES]
        text += "\n" + turn.t(
            "There are more with this name: add the province to narrow it, "
            "for example: Tan Thanh Lam Dong."
        )
    else:
        text += "\n" + turn.t("Not in the list? Type the name again.")
    buttons = [[Button(f"commune:{m.commune.code}", _choice_label(turn, m))] for m in matches]
    return [Reply(text, buttons)]


async def pick_commune(turn: Turn, code: str) -> list[Outgoing]:
    commune = communes.get_commune(int(code)) if code.isdigit() else None
    if commune is None:
        return [Reply(turn.t("That commune is not in the list. Type its name again."))]
    assert turn.resident is not None
    turn.resident.commune_code = commune.code
    turn.resident.subscribed = True
    turn.resident.awaiting = ""
    text = turn.t(
        "Subscribed: you will receive the draft policies put to consultation in {commune}.",
        commune=commune.label,
    )
    return [with_menu(turn, text), *await open_drafts_replies(turn)]
