"""Whom a resident comments for — an individual, an organisation or a business — as the
consultation plans count comments: asked once after the person's first comment, optional,
changeable with /category. Kept on the person, so every linked chat shares it."""

from __future__ import annotations

from handlers.buttons import SayCategory
from handlers.events import Button, Outgoing, Reply
from handlers.i18n import Translator
from handlers.turn import Turn, button, with_menu
from storage.models import Resident, RespondentCategory
from storage.respondents import CATEGORY_WORDS, category


def _choices(t: Translator) -> list[Button]:
    return [button(SayCategory(choice), t(CATEGORY_WORDS[choice]))
            for choice in RespondentCategory]


def ask_once(turn: Turn, resident: Resident) -> list[Outgoing]:
    """The question, after a comment, to a person never asked before (then never again,
    whatever they answer); nothing otherwise. `resident` was read with its person."""
    person = resident.person
    if person.category_asked_at is not None:
        return []
    person.category_asked_at = turn.now
    return [Reply(turn.t(
        "One more question, optional: do you comment as an individual, for an organisation "
        "or for a business?"
    ), [_choices(turn.t), [button(SayCategory(None, skip=True), turn.t("Skip"))]])]


def said(t: Translator, raw: str) -> str:
    """The person's category in words, or that they have not said it."""
    chosen = category(raw)
    return t(CATEGORY_WORDS[chosen]) if chosen else t("not said")


async def show(turn: Turn, resident: Resident) -> list[Outgoing]:
    """/category: what is recorded, and the buttons to change it or stop saying it."""
    person = resident.person
    return [Reply(
        turn.t("You comment as: {category}. Choose to change it:",
               category=said(turn.t, person.respondent_category)),
        [_choices(turn.t), [button(SayCategory(None), turn.t("I prefer not to say"))]],
    )]


def _change_hint(turn: Turn) -> str:
    return turn.t("You can change it at any time with /category.")


async def choose(turn: Turn, resident: Resident, data: SayCategory) -> list[Outgoing]:
    """A category button, from the question or from /category; an old one is answered from
    what is recorded now."""
    person = resident.person
    # Whoever answers was asked, if only by the buttons of /category.
    person.category_asked_at = person.category_asked_at or turn.now
    current = category(person.respondent_category)
    if data.skip:
        if current is not None:  # answered since the question was asked
            return [with_menu(turn, turn.t(
                "You have already said that you comment as: {category}.",
                category=turn.t(CATEGORY_WORDS[current])) + " " + _change_hint(turn))]
        return [with_menu(turn, turn.t("Skipped: I will not ask again.") + " "
                          + turn.t("You can say it at any time with /category."))]
    if data.category is None:
        person.respondent_category = ""
        text = (turn.t("Removed: whom you comment for is no longer recorded.")
                if current is not None else
                turn.t("Nothing is recorded about whom you comment for."))
        return [with_menu(turn, text + " " + _change_hint(turn))]
    words = turn.t(CATEGORY_WORDS[data.category])
    if current is data.category:
        return [with_menu(turn, turn.t("Already recorded: you comment as: {category}.",
                                       category=words) + " " + _change_hint(turn))]
    person.respondent_category = data.category.value
    return [with_menu(turn, turn.t(
        "Recorded: you comment as: {category}. It is noted with your comments and votes from "
        "now on.", category=words) + " " + _change_hint(turn))]
