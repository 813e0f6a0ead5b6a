"""Officials in the chat: the invite code that gives a role, and /login (or "đăng nhập"),
which answers with a one-time link to the workspace; /results ID and /export ID, a draft's
figures and chart, and its comments and votes as XLSX, within the person's scope.

Residents never learn that any of this exists: an official command from a chat whose person
holds no role is left to the resident conversation (`answer` returns None), which treats it
as it treats any text it does not know. Every official command is in OFFICIAL_COMMANDS and
gets the same guard.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Awaitable, Callable

from handlers.breakdown import offline_line, percent, reached_line, took_part_line
from handlers.buttons import MAX_ID
from handlers.capabilities import PictureWay
from handlers.commands import slash_name
from handlers.events import Document, LinkedPicture, Outgoing, Picture, Reply
from handlers.i18n import N_, Translator
from handlers.linking import too_many_guesses
from handlers.logref import chat_ref
from handlers.onboarding import greeting
from handlers.turn import Turn
from storage import audit, chart_links, communes, linking, roles, sessions
from storage.audit import Actor, AuditAction, Via
from storage.charts import results_png
from storage.drafts import STATE_WORDS
from storage.export_xlsx import export_xlsx
from storage.keys import pseudonym_key
from storage.models import VIETNAM
from storage.results import DraftResults, draft_results
from storage.roles import Authority, Grant, Permission, Role, Scope, ScopeKind
from storage.text import fold

log = logging.getLogger(__name__)

# The workspace's pages, under YKIEN_PUBLIC_URL (bot/web/auth.py serves them).
ADMIN_PATH = "/admin"
LOGIN_PATH = ADMIN_PATH + "/login/"
DOWNLOADS_PATH = ADMIN_PATH + "/downloads"
CHARTS_PATH = ADMIN_PATH + "/charts/"  # + a token of storage.chart_links + ".png"

ROLE_WORDS = {
    Role.ADMIN: N_("administrator"),
    Role.OFFICIAL: N_("official"),
    Role.STAFF: N_("staff member"),
}

# A step gets what followed the command ("12" of "/results 12").
OfficialStep = Callable[[Turn, Authority, str], Awaitable[list[Outgoing]]]
_SPACING = re.compile(r"[\s\-.]+")


def sign_in_url(public_url: str, token: str) -> str:
    return f"{public_url}{LOGIN_PATH}{token}"


def chart_url(public_url: str, token: str) -> str:
    return f"{public_url}{CHARTS_PATH}{token}.png"


def role_words(role: Role, t: Translator) -> str:
    return t(ROLE_WORDS[role])


def scope_words(scope: Scope, t: Translator) -> str:
    """"all communes", "Tỉnh Thanh Hóa (province 38)", "Xã Cẩm Tú — Tỉnh Thanh Hóa (commune
    15148)"."""
    if scope.kind is ScopeKind.ALL:
        return t("all communes")
    if scope.kind is ScopeKind.PROVINCE:
        return t("{place} (province {code})", place=scope.place, code=scope.code)
    return t("{place} (commune {code})", place=scope.place,
             code=communes.commune_code_text(scope.code))


def grant_words(grant: Grant, t: Translator) -> str:
    return t("{role} of {scope}", role=role_words(grant.role, t), scope=scope_words(grant.scope, t))


def _actor(turn: Turn, authority: Authority, role: Role | None) -> Actor:
    return Actor(Via.CHAT, authority.person_id, role, turn.event.channel)


def _not_set_up(turn: Turn) -> Reply:
    return Reply(turn.t(
        "The officials' workspace is not set up on this server yet. The administrator "
        "must set YKIEN_PUBLIC_URL to the server's https:// address and run ykien serve "
        "(see “For officials” in the README)."
    ))


async def _sign_in_link(turn: Turn, authority: Authority) -> str:
    """A new one-time sign-in link (the workspace must be set up), its giving audited."""
    token = await sessions.new_login_link(turn.session, authority.person_id, turn.now)
    await audit.record(turn.session, _actor(turn, authority, authority.role),
                       AuditAction.LOGIN_LINK, turn.now)
    log.info("sign-in link given on %s", chat_ref(turn.event.channel, turn.event.user_id))
    return sign_in_url(turn.workspace.public_url, token)


def _link_lifetime(turn: Turn) -> str:
    return turn.t.number(int(sessions.LOGIN_LINK_LIFETIME.total_seconds() // 60))


async def login(turn: Turn, authority: Authority, _argument: str = "") -> list[Outgoing]:
    """A one-time link that signs this person in to the workspace (10 minutes, once)."""
    if not turn.workspace.public_url:
        return [_not_set_up(turn)]
    url = await _sign_in_link(turn, authority)
    return [Reply(turn.t(
        "Your sign-in link to the officials' workspace:\n{url}\n"
        "It works once, for {minutes} minutes. Do not forward it: whoever opens it is signed "
        "in as you.",
        url=url, minutes=_link_lifetime(turn),
    ), secret=True)]


def _draft_number(argument: str) -> int | None:
    """The draft number typed after a command; None if it is not one."""
    text = argument.strip().lstrip("#")
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


async def _draft_in_scope(turn: Turn, authority: Authority, permission: Permission,
                          argument: str, command: str
                          ) -> tuple[int, frozenset[int], Role | None] | Reply:
    """The draft typed after the command, the communes of it the person may see and the
    role used; or the answer to give instead. A draft outside the scope is answered as one
    that does not exist: a guessed number learns nothing."""
    number = _draft_number(argument)
    if number is None:
        return Reply(turn.t("Type {command} followed by the draft's number, for example "
                            "{command} 12.", command=command))
    with turn.session.no_autoflush:
        scope = await roles.draft_access(turn.session, authority, permission, number)
    if scope is None:
        log.info("%s of a draft out of scope or missing on %s", command,
                 chat_ref(turn.event.channel, turn.event.user_id))
        return Reply(turn.t("There is no draft no. {id}.", id=number))
    targets = await roles.draft_communes(turn.session, number)
    return number, scope, authority.role_for(permission, targets)


def results_summary(results: DraftResults, t: Translator) -> list[str]:
    """The figures in a few lines: the draft, reached, taking part (and the CLI's table
    follows these)."""
    lines = [
        t("Draft no. {id}: “{title}” — {state}, comments until {deadline}",
          id=results.draft_id, title=results.title, state=t(STATE_WORDS[results.state]),
          deadline=t.datetime(results.deadline)),
        reached_line(results.total, t),
        took_part_line(results.total, t),
    ]
    if offline := offline_line(results.breakdown, t):
        lines.append(offline)
    return lines


def _votes_lines(results: DraftResults, t: Translator) -> list[str]:
    if not results.options:
        return []
    total = results.total
    return [t("Votes per option:"), *(
        f"{option.label}: {t.number(count)}"
        + (f" ({percent(count / total.voters, t)})" if total.voters else "")
        for option, count in zip(results.options, total.votes, strict=True))]


async def results(turn: Turn, authority: Authority, argument: str) -> list[Outgoing]:
    """A draft's figures as text and its chart as a picture, within the person's communes."""
    found = await _draft_in_scope(turn, authority, Permission.READ, argument, "/results")
    if isinstance(found, Reply):
        return [found]
    number, scope, role = found
    counted = await draft_results(turn.session, number, scope, turn.now)
    assert counted is not None  # draft_access found it in this transaction
    await audit.record(turn.session, _actor(turn, authority, role), AuditAction.RESULTS_READ,
                       turn.now, draft_id=number)
    text = "\n".join([*results_summary(counted, turn.t), *_votes_lines(counted, turn.t)])
    if turn.pictures is PictureWay.FILE:
        # matplotlib's CPU work in a thread: the other chats are answered meanwhile.
        png = await asyncio.to_thread(results_png, counted, turn.t, turn.t.language)
        return [Reply(text), Picture(png)]
    if turn.pictures is PictureWay.LINK:
        if not turn.workspace.public_url:
            return [Reply(text + "\n" + turn.t(
                "(No chart here: this chat app takes pictures only from the server's "
                "address, YKIEN_PUBLIC_URL, which is not set.)"))]
        token = await chart_links.chart_token(turn.session, number, authority.person_id,
                                              turn.t.language, turn.now)
        return [Reply(text), LinkedPicture(chart_url(turn.workspace.public_url, token))]
    return [Reply(text)]


async def export(turn: Turn, authority: Authority, argument: str) -> list[Outgoing]:
    """A draft's comments and votes as XLSX (scoped and pseudonymised as `ykien export`);
    where the chat takes no such file, a sign-in link to the workspace's downloads."""
    found = await _draft_in_scope(turn, authority, Permission.EXPORT, argument, "/export")
    if isinstance(found, Reply):
        return [found]
    number, scope, role = found
    if not turn.sends_files:
        if not turn.workspace.public_url:
            return [_not_set_up(turn)]
        url = await _sign_in_link(turn, authority)
        return [Reply(turn.t(
            "This chat app cannot receive the spreadsheet. Sign in to the officials' "
            "workspace with this link, then open Downloads ({downloads}):\n{url}\n"
            "It works once, for {minutes} minutes. Do not forward it: whoever opens it is "
            "signed in as you.",
            url=url, downloads=turn.workspace.public_url + DOWNLOADS_PATH,
            minutes=_link_lifetime(turn),
        ), secret=True)]
    # Generated in this turn's transaction if need be: the conversation commits at its end.
    key = await pseudonym_key(turn.session, turn.workspace.pseudonym_key)
    out = io.BytesIO()
    rows = await export_xlsx(turn.session, out, number, key, translate=turn.t,
                             communes=scope)
    await audit.record(turn.session, _actor(turn, authority, role), AuditAction.EXPORTED,
                       turn.now, draft_id=number,
                       detail=f"xlsx; communes: {len(scope)}; via chat")
    stamp = turn.now.astimezone(VIETNAM).strftime("%Y%m%d-%H%M")
    return [Document(f"ykien-{number}-{stamp}.xlsx", out.getvalue(), turn.t(
        "Comments and votes on draft no. {id}: {rows} rows.", id=number,
        rows=turn.t.number(rows)))]


OFFICIAL_COMMANDS: dict[str, OfficialStep] = {"login": login, "results": results,
                                               "export": export}
# Official commands typed as words, folded ("đăng nhập", "dang nhap", "kết quả 12").
OFFICIAL_WORDS = {"dang nhap": "login", "ket qua": "results", "xuat file": "export"}
# The words alone or followed by a number only: a sentence starting with them is not one.
_WORDS_COMMAND = re.compile(
    r"(" + "|".join(map(re.escape, OFFICIAL_WORDS)) + r")(?: (\d+))?")


def _official_command(text: str) -> tuple[str, str] | None:
    """The official command in a message and what followed it; None if none."""
    name = slash_name(text)
    if name is not None:
        argument = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    elif found := _WORDS_COMMAND.fullmatch(fold(text)):
        name, argument = OFFICIAL_WORDS[found.group(1)], found.group(2) or ""
    else:
        return None
    return (name, argument) if name in OFFICIAL_COMMANDS else None


async def answer(turn: Turn, text: str) -> list[Outgoing] | None:
    """The answer to an official command from a person holding a role; None for any other
    text, and for an official command from anyone else (a resident is answered as if no
    official command existed)."""
    command = _official_command(text)
    if command is None or turn.resident is None:
        return None
    name, argument = command
    # Nothing of this turn is written before the step (the resident row is written once).
    with turn.session.no_autoflush:
        authority = await roles.authority_of(turn.session, turn.resident.person_id,
                                             turn.workspace.admin_chats)
    if not authority.holds_a_role:
        return None
    return await OFFICIAL_COMMANDS[name](turn, authority, argument)


def typed_invite(text: str) -> str | None:
    """The invite code in a message that is only one ("K7M4-QX9P-2HTR", any case, spaces
    or dashes anywhere); None otherwise. Twelve characters of the code alphabet with a
    letter and a digit: no word, sentence or number is ever taken for one."""
    compact = _SPACING.sub("", text).upper()
    return compact if roles.is_invite_shaped(compact) else None


async def use_invite(turn: Turn, code: str) -> list[Outgoing]:
    """An invite code typed in a chat: its role, for this chat's person."""
    resident = turn.resident
    if resident is None:  # a person exists only from consent: nothing to give a role to
        return [Reply(turn.t("To use this code, first agree to the privacy notice below, "
                             "then type the code again.")),
                *greeting(turn.t.language, turn.workspace.periods)]
    where = chat_ref(turn.event.channel, turn.event.user_id)
    # Wrong invite codes and wrong link codes count together: one limit on guessing.
    refused = await too_many_guesses(turn, resident.person_id, "invite code")
    if refused is not None:
        return refused
    with turn.session.no_autoflush:
        found = await roles.find_invite(turn.session, code)
    if found is None:
        await linking.record_wrong_guess(turn.session, resident.person_id, turn.now)
        log.info("wrong invite code on %s", where)
        return [Reply(turn.t("That code is wrong. Check it and type it again."))]
    if not await roles.spend_invite(turn.session, found, turn.now):
        log.info("expired or used invite code on %s", where)
        return [Reply(turn.t("That code has expired or was used already. Ask whoever gave "
                             "it to you for a new one."))]
    await roles.grant(turn.session, resident.person_id, found.grant, turn.now)
    await audit.record(turn.session, Actor(Via.CHAT, resident.person_id, found.grant.role,
                                           turn.event.channel),
                       AuditAction.INVITE_USED, turn.now, detail=str(found.grant))
    log.info("invite code used on %s", where)
    return [Reply(turn.t(
        "Done: you are now {grant}. Type /login for a link to the officials' workspace.",
        grant=grant_words(found.grant, turn.t),
    ))]

