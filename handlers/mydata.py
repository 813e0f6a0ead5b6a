"""/mydata (or "dữ liệu của tôi"): a resident sees what the bot holds about them.

A readable summary, and a JSON file of all of it: sent as a document where the chat app
takes files (Telegram; the console writes it and says where), else a one-time download
link under YKIEN_PUBLIC_URL (Zalo), else the whole summary in as many messages as needed.
A few requests a day per person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from handlers import respondent
from handlers.events import Document, Outgoing, Reply
from handlers.i18n import N_, Translator
from handlers.logref import chat_ref
from handlers.turn import Turn, with_menu
from storage import personal_data
from storage.consent import DETAIL_WORDS, EVENT_WORDS
from storage.models import VIETNAM, ConsentEventKind, DeliveryStatus, Resident
from storage.personal_data import PersonalData
from storage.respondents import CHANNEL_NAMES

log = logging.getLogger(__name__)

# The download page, under YKIEN_PUBLIC_URL (bot/web/mydata.py serves it).
MYDATA_PATH = "/mydata"
# Items of each list shown in the summary when the file holds them all.
SHOWN = 10
APP_NAMES = CHANNEL_NAMES
STATUS_WORDS = {
    DeliveryStatus.SENT: N_("sent"),
    DeliveryStatus.PENDING: N_("waiting to be sent"),
    DeliveryStatus.SENDING: N_("being sent"),
    DeliveryStatus.HELD: N_("waiting for you to write (Zalo's messaging window)"),
    DeliveryStatus.FAILED: N_("could not be sent"),
    DeliveryStatus.UNREACHABLE: N_("not sent: the bot was blocked"),
    DeliveryStatus.SKIPPED: N_("not sent: you had stopped, or it reached you elsewhere"),
    DeliveryStatus.EXPIRED: N_("not sent: the deadline had passed"),
    DeliveryStatus.CANCELLED: N_("not sent: cancelled"),
}


def _app(channel: str, t: Translator) -> str:
    return t(APP_NAMES[channel]) if channel in APP_NAMES else channel


def _words(table: Mapping[Any, str], value: str, t: Translator) -> str:
    return t(table[value]) if value in table else value


def _section(lines: list[str], heading: str, items: Sequence[str], whole: bool,
             t: Translator) -> None:
    """A heading and its items (the first SHOWN unless `whole`)."""
    lines.append("")
    lines.append(heading)
    shown = items if whole else items[:SHOWN]
    lines.extend(f"• {item}" for item in shown)
    if len(items) > len(shown):
        lines.append(t.plural("… and {count} more, in the file.",
                              "… and {count} more, in the file.", len(items) - len(shown)))


def summary(data: PersonalData, t: Translator, whole: bool) -> str:
    """What is held, in words; `whole`: every item (no file carries the rest)."""
    lines = [t("Your data held by Ý kiến:"),
             t("Commune: {commune}", commune=data.commune or t("not chosen yet")),
             t("Receiving drafts: {answer}", answer=t("yes") if data.subscribed else t("no")),
             t("Language: {language}",
               language="Tiếng Việt" if data.language == "vi" else "English"),
             t("You comment as: {category}",
               category=respondent.said(t, data.respondent_category))]
    _section(lines, t("Chats:"), [t(
        "{app}, account {account}: agreed to the privacy notice of {version} at {time}",
        app=_app(chat.channel, t), account=chat.chat_id, version=chat.notice_version,
        time=t.datetime(chat.agreed_at)) for chat in data.chats], True, t)
    kept = [chat.kept_aside for chat in data.chats if chat.kept_aside]
    if kept:
        _section(lines, t("Kept until you choose its draft, not yet a comment:"), kept, True, t)
    _section(lines, t("Consent record:"), [
        f"{t.datetime(step.at)}: {_words(EVENT_WORDS, step.event, t)} ({_app(step.channel, t)}"
        + (f", {step.notice_version}" if step.event == ConsentEventKind.AGREED else "")
        + (f", {_words(DETAIL_WORDS, step.detail, t)}" if step.detail else "") + ")"
        for step in data.consents], whole, t)
    _section(lines, t.plural("Your comment ({count}):", "Your comments ({count}):",
                             len(data.comments)), [
        t("No. {number}, {time}, on “{title}”: {text}", number=comment.receipt,
          time=t.datetime(comment.at), title=comment.draft_title, text=comment.text)
        for comment in data.comments], whole, t)
    _section(lines, t.plural("Your vote ({count}):", "Your votes ({count}):",
                             len(data.votes)), [
        t("On “{title}”: {option} (cast {cast}, last changed {changed})",
          title=vote.draft_title, option=vote.option, cast=t.datetime(vote.cast_at),
          changed=t.datetime(vote.changed_at)) for vote in data.votes], whole, t)
    _section(lines, t.plural("Message sent to you ({count}):", "Messages sent to you ({count}):",
                             len(data.messages)), [
        t("{time}, {app}: {what} — {status}",
          time=t.datetime(message.sent_at or message.queued_at), app=_app(message.channel, t),
          what=t("draft no. {id}, “{title}”", id=message.draft, title=message.draft_title)
          if message.draft is not None else t("a message"),
          status=_words(STATUS_WORDS, message.status, t))
        for message in data.messages], whole, t)
    if data.roles:
        _section(lines, t("Roles in the officials' workspace:"), [
            f"{role.role} ({role.scope}), {t.datetime(role.granted_at)}"
            for role in data.roles], True, t)
    return "\n".join(lines)


def _file_name(turn: Turn) -> str:
    return f"ykien-mydata-{turn.now.astimezone(VIETNAM):%Y%m%d-%H%M}.json"


async def my_data(turn: Turn, resident: Resident) -> list[Outgoing]:
    """The summary and the file (or its link), a few times a day."""
    person_id = resident.person_id
    with turn.session.no_autoflush:
        recent = await personal_data.recent_requests(turn.session, person_id, turn.now)
    where = chat_ref(turn.event.channel, turn.event.user_id)
    if len(recent) >= personal_data.REQUESTS_A_DAY:
        log.info("data request refused on %s: too many today", where)
        again = recent[-personal_data.REQUESTS_A_DAY] + personal_data.REQUEST_WINDOW
        return [with_menu(turn, turn.t(
            "You have already asked for your data {count} times in the last 24 hours. "
            "You can ask again after {time}.",
            count=turn.t.number(personal_data.REQUESTS_A_DAY), time=turn.t.datetime(again)))]
    with turn.session.no_autoflush:
        data = await personal_data.collect(turn.session, person_id)
    assert data is not None  # the resident's own person, in this transaction
    await personal_data.record_request(turn.session, person_id, turn.now)
    log.info("data request answered on %s", where)
    if turn.sends_files:
        return [Reply(summary(data, turn.t, whole=False)),
                Document(_file_name(turn), personal_data.as_json(data, turn.now), turn.t(
                    "All your data, as a JSON file."))]
    if not turn.workspace.public_url:
        return [with_menu(turn, summary(data, turn.t, whole=True))]
    token = await personal_data.new_link(turn.session, person_id, turn.now)
    minutes = int(personal_data.LINK_LIFETIME.total_seconds() // 60)
    return [Reply(summary(data, turn.t, whole=False)), Reply(turn.t(
        "All your data as a file (JSON): {url}\n"
        "The link works once, for {minutes} minutes. Do not forward it: whoever opens it "
        "gets your data.",
        url=f"{turn.workspace.public_url}{MYDATA_PATH}/{token}",
        minutes=turn.t.number(minutes)), secret=True)]
