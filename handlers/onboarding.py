"""Greeting, language, consent and choosing a commune. Nothing is stored before consent."""

from __future__ import annotations

import hashlib

from handlers.buttons import Agree, Decline, Menu, MenuCommand, PickCommune
from handlers.drafts import open_drafts_replies
from handlers.events import Button, Outgoing, Reply
from handlers.i18n import Translator, translator
from handlers.state import AwaitCommune, wait_for
from handlers.turn import Periods, Turn, button, language_switch, with_menu
from storage import communes, consent, queries
from storage.communes import Match
from storage.models import ConsentEventKind, ReachWay, Resident
from storage.text import fold

# Bump when the notice text changes: each resident's consent records the version they saw,
# and a resident who agreed to an earlier one is shown the new one once. At most 11
# characters: notice_version adds 5 within Resident.consent_version's 16.
CONSENT_VERSION = "2026-12-05b"
# Days a chat's numbered choices are kept (bot.app.FORGET_CHOICES), stated in the notice.
CHOICES_DAYS = 7
COMMUNE_CHOICES = 8


def notice_version(periods: Periods) -> str:
    """The version of the notice as these periods make it: CONSENT_VERSION with the default
    periods, else a version of its own (the notice states them, so other periods are
    another text, shown again to everyone once), within Resident.consent_version's 16."""
    if periods == Periods():
        return CONSENT_VERSION
    digest = hashlib.sha256(f"{periods.retention_months}/{periods.outbox_days}".encode())
    return f"{CONSENT_VERSION}.{digest.hexdigest()[:4]}"


def privacy_notice(t: Translator, periods: Periods) -> str:
    return (privacy_basics(t) + "\n\n" + respondent_notice(t) + "\n"
            + data_rights_notice(t, periods))


def respondent_notice(t: Translator) -> str:
    """Whom the person comments for (handlers.respondent): stored only if they say it."""
    return t(
        "• If you choose to say whom you comment for (yourself, an organisation or a "
        "business), that is stored and noted with your comments and votes."
    )


def data_rights_notice(t: Translator, periods: Periods) -> str:
    """The notice's part on access, the consent record and how long things are kept (issue
    20)."""
    return t(
        "• Type /mydata to see everything stored about you.\n"
        "• When you agree, stop or delete your data, that is recorded under a code that "
        "does not name you, kept after your data is deleted as proof for inspections.\n"
        "• {months} months after a draft closes, its comments and votes lose every link to "
        "you. If you have stopped receiving drafts and written nothing for {months} months, "
        "your data is deleted as with /delete. The record of messages sent to you is kept "
        "{days} days, the numbers shown beside choices {choices} days.",
        months=t.number(periods.retention_months), days=t.number(periods.outbox_days),
        choices=t.number(CHOICES_DAYS),
    )


def privacy_basics(t: Translator) -> str:
    return t(
        "Privacy notice:\n"
        "• If you agree, we store your chat account id, your language, your commune, your "
        "comments and votes, and when you agreed.\n"
        "• Commune officials read comments and vote counts; exports never show your name "
        "or chat account.\n"
        "• Type /delete at any time: your account, commune and language are erased; your "
        "comments are kept without any link to you; your votes on drafts still open are "
        "removed (you may vote again later), votes on closed drafts are kept without any link "
        "to you.\n"
        "Nothing is stored until you agree."
    )


def greeting(language: str, periods: Periods, replace: bool = False) -> list[Outgoing]:
    """The first message: who we are, the privacy notice and the consent buttons.

    `replace`: shown again in another language, it may take the place of the first one.
    """
    t = translator(language)
    notice = t(
        "Hello! Ý kiến lets you read draft policies of your commune and send your comments "
        "and votes to the officials drafting them."
    )
    buttons = [
        [button(Agree(t.language), t("I agree")), button(Decline(t.language), t("No, thanks"))],
        [language_switch(t)],
    ]
    return [Reply(f"{notice}\n\n{privacy_notice(t, periods)}", buttons, edit=replace)]


def updated_notice(turn: Turn, resident: Resident) -> Reply:
    """Shown once to a resident who agreed to an earlier version of the notice."""
    resident.notice_version = notice_version(turn.workspace.periods)
    text = turn.t("Our privacy notice has changed. Please read it again:") + "\n\n"
    text += privacy_notice(turn.t, turn.workspace.periods)
    return Reply(text, [[
        button(Agree(turn.t.language), turn.t("I agree")),
        button(Menu(MenuCommand.DELETE), turn.t("Delete my data")),
    ]])


async def start(turn: Turn) -> list[Outgoing]:
    """/start: greet a newcomer; welcome back someone who had stopped."""
    resident = turn.resident
    if resident is None:
        return greeting(turn.t.language, turn.workspace.periods)
    if not resident.subscribed:  # back after a stop: the consent to receive drafts again
        await consent.record(turn.session, resident, ConsentEventKind.AGREED, turn.now)
    resident.subscribed = True
    if resident.commune_code is None:
        return ask_commune(turn, resident)
    text = turn.t("You are subscribed to news from {commune}.", commune=_commune_name(resident))
    return [with_menu(turn, text),
            *await open_drafts_replies(turn, resident, ReachWay.SUBSCRIBED)]


def _commune_name(resident: Resident) -> str:
    commune = communes.get_commune(resident.commune_code) if resident.commune_code else None
    return commune.label if commune else str(resident.commune_code)


async def agree(turn: Turn, language: str) -> list[Outgoing]:
    """Consent given: the first moment anything about this person is stored."""
    resident = turn.resident
    if resident is not None:
        return await _agree_again(turn, resident)
    resident = await queries.add_resident(
        turn.session, turn.event.channel, turn.event.user_id, language,
        notice_version(turn.workspace.periods), turn.now,
    )
    await consent.record(turn.session, resident, ConsentEventKind.AGREED, turn.now)
    turn.resident = resident
    turn.t = translator(resident.language)
    return [Reply(turn.t("Thank you. Your consent is recorded.")), *ask_commune(turn, resident)]


async def _agree_again(turn: Turn, resident: Resident) -> list[Outgoing]:
    """An Agree button pressed by someone who already agreed: record a newer notice only."""
    version = notice_version(turn.workspace.periods)
    if resident.consent_version != version:
        resident.consent_version = version
        resident.consent_at = turn.now
        resident.notice_version = version
        await consent.record(turn.session, resident, ConsentEventKind.AGREED, turn.now)
        text = turn.t("Thank you. Your consent to the updated notice is recorded.")
    else:
        text = turn.t("Your consent is already recorded.")
    if not resident.subscribed:
        # An old button must not undo a STOP.
        return [Reply(text + "\n" + turn.t(
            "You have stopped receiving drafts. Type START or BẮT ĐẦU to subscribe again."
        ))]
    return [with_menu(turn, text)]


async def decline(turn: Turn, language: str) -> list[Outgoing]:
    resident = turn.resident
    if resident is None:
        # What the chat was told before (kept in case an answer was lost) goes too.
        await queries.forget_chat(turn.session, turn.event.channel, turn.event.user_id)
        t = translator(language)
        return [Reply(t("Understood: nothing was stored. Type /start if you change your mind."))]
    # An old "No, thanks" from before the resident agreed: say what is really stored.
    return [with_menu(turn, turn.t(
        "You agreed earlier, so your commune and your comments are stored. "
        "To stop receiving drafts, type /stop; to delete your data, type /delete."
    ))]


async def choose_language(turn: Turn, language: str) -> list[Outgoing]:
    if turn.resident is None:
        return greeting(language, turn.workspace.periods, replace=True)
    turn.resident.language = language
    turn.t = translator(language)
    return [with_menu(turn, turn.t("I will write to you in English from now on."))]


def ask_commune(turn: Turn, resident: Resident) -> list[Outgoing]:
    wait_for(resident, AwaitCommune(), turn.now)
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
    if len(query) > communes.QUERY_LIMIT:
        return [Reply(turn.t(
            "That is too long for a commune name (at most {limit} characters). Type just the "
            "name of your commune, for example: Cam Tu.",
            limit=turn.t.number(communes.QUERY_LIMIT),
        ))]
    matches = communes.search(query, limit=COMMUNE_CHOICES + 1)
    province = communes.find_province(query)
    if not matches and province is not None:
        return [Reply(_province_hint(turn, query, province))]
    if not matches:
        near = communes.near_misses(query, limit=COMMUNE_CHOICES)
        if not near:
            return [Reply(turn.t(
                "I found no commune called “{query}”. Check the spelling and type it again, "
                "for example: Cam Tu, or Phuong Ba Dinh.",
                query=query[:60],
            ))]
        text = turn.t("I found no commune called “{query}”. Did you mean one of these?",
                      query=query[:60])
        return [Reply(text + "\n" + turn.t("Not in the list? Type the name again."),
                      _commune_buttons(turn, near))]
    text = turn.t("Choose your commune:")
    if len(matches) > COMMUNE_CHOICES:
        matches = matches[:COMMUNE_CHOICES]
        text += "\n" + turn.t(
            "There are more with this name: add the province to narrow it, "
            "for example: Tan Thanh Lam Dong."
        )
    else:
        text += "\n" + turn.t("Not in the list? Type the name again.")
    if province is not None:  # "thanh hoa": a few communes, and a province of that name
        text += "\n" + _province_hint(turn, query, province)
    return [Reply(text, _commune_buttons(turn, matches))]


def _commune_buttons(turn: Turn, matches: list[Match]) -> list[list[Button]]:
    return [[button(PickCommune(m.commune.code), _choice_label(turn, m))] for m in matches]


def _province_hint(turn: Turn, query: str, province: communes.Province) -> str:
    """A province typed for a commune (perhaps a former one, "long an"): say so, with one of
    its communes as an example."""
    example = fold(communes.communes_in_province(province.code)[0].name).title()
    return turn.t("“{query}” is a province or city ({province}). Type the name of your "
                  "commune or ward, for example: {example}.",
                  query=query[:60], province=province.name, example=example)


async def pick_commune(turn: Turn, resident: Resident, code: int) -> list[Outgoing]:
    commune = communes.get_commune(code)
    if commune is None:
        return [Reply(turn.t("That commune is not in the list. Type its name again."))]
    resident.commune_code = commune.code
    wait_for(resident, None, turn.now)
    text = turn.t(
        "Subscribed: you will receive the draft policies put to consultation in {commune}.",
        commune=commune.label,
    )
    if not resident.subscribed:
        # Choosing a commune (perhaps on an old button) does not undo a STOP.
        return [Reply(turn.t(
            "Your commune is now {commune}. You have stopped receiving drafts: type START or "
            "BẮT ĐẦU to receive them again.",
            commune=commune.label,
        ))]
    return [with_menu(turn, text),
            *await open_drafts_replies(turn, resident, ReachWay.SUBSCRIBED)]
