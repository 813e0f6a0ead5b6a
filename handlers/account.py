"""A resident's own things: help, their comments, stopping and erasing their data."""

from __future__ import annotations

from handlers.buttons import ConfirmErase, Menu, MenuCommand
from handlers.drafts import receipt
from handlers.events import Outgoing, Reply
from handlers.mydata import my_data
from handlers.state import wait_for
from handlers.turn import COMMENT_LIMIT, Turn, button, with_menu
from storage import consent, linking, queries
from storage.models import ConsentEventKind, Resident

MY_COMMENTS_SHOWN = 10
EXCERPT = 80


def _not_stored(turn: Turn) -> list[Outgoing]:
    return [Reply(turn.t("You are not subscribed, and nothing about you is stored."))]


async def help_text(turn: Turn) -> list[Outgoing]:
    limit = turn.t.number(COMMENT_LIMIT)
    how_to_comment = turn.t(
        "• When a draft arrives, tap Comment (or reply to the draft message) and type your "
        "opinion, at most {limit} characters.", limit=limit,
    ) if turn.replies_to_messages else turn.t(
        "• When a draft arrives, tap Comment and type your opinion, at most {limit} "
        "characters.", limit=limit,
    )
    text = turn.t(
        "How to take part:\n"
        "{how_to_comment}\n"
        "• Tap an option to vote; you can change your vote until the deadline.\n"
        "Commands:\n"
        "/drafts – drafts open now\n"
        "/mycomments – your comments\n"
        "/commune – change commune\n"
        "/category – say whom you comment for (individual, organisation, business)\n"
        "/language – Tiếng Việt / English\n"
        "/link – link your Telegram and Zalo chats (or type LIÊN KẾT)\n"
        "/stop – stop receiving drafts (or type STOP / DỪNG)\n"
        "/delete – delete your data\n"
        "/mydata – see the data held about you (or type DỮ LIỆU CỦA TÔI)\n"
        "/help – this help",
        how_to_comment=how_to_comment,
    )
    if turn.resident is None:
        return [Reply(text + "\n\n" + turn.t("To begin, type /start."))]
    return [with_menu(turn, text)]


async def my_comments(turn: Turn, resident: Resident) -> list[Outgoing]:
    latest = await queries.comments_of(turn.session, resident, MY_COMMENTS_SHOWN)
    if not latest:
        return [with_menu(turn, turn.t("You have not sent any comment yet."))]
    total = await queries.count_comments_of(turn.session, resident)
    lines = [turn.t.plural("You have sent {count} comment:", "You have sent {count} comments:",
                           total)]
    for comment, title in latest:
        excerpt = comment.text if len(comment.text) <= EXCERPT else comment.text[:EXCERPT] + "…"
        lines.append(turn.t(
            "No. {number}, {time}, on “{title}”: {text}",
            number=receipt(comment),
            time=turn.t.datetime(comment.created_at),
            title=title,
            text=excerpt,
        ))
    if total > len(latest):
        lines.append(turn.t.plural(
            "(the latest {count} is shown)", "(the latest {count} are shown)", len(latest)
        ))
    return [with_menu(turn, "\n".join(lines))]


async def my_data_or_nothing(turn: Turn) -> list[Outgoing]:
    """/mydata: what is held about the person; for someone who never agreed, that nothing is."""
    if turn.resident is None:
        return _not_stored(turn)
    return await my_data(turn, turn.resident)


async def stop(turn: Turn) -> list[Outgoing]:
    """Unsubscribe at once, whatever the conversation was waiting for."""
    resident = turn.resident
    if resident is None:
        return _not_stored(turn)
    if resident.subscribed:
        await consent.record(turn.session, resident, ConsentEventKind.WITHDRAWN, turn.now)
    resident.subscribed = False
    wait_for(resident, None, turn.now)
    resident.held_text = ""
    return [Reply(
        turn.t(
            "Stopped: you will receive no more drafts. Your comments are kept. "
            "Type START or BẮT ĐẦU to subscribe again, or /delete to delete your data."
        ),
        [[button(Menu(MenuCommand.START), turn.t("Subscribe again")),
          button(Menu(MenuCommand.DELETE), turn.t("Delete my data"))]],
    )]


async def ask_erase(turn: Turn) -> list[Outgoing]:
    if turn.resident is None:
        return _not_stored(turn)
    text = turn.t(
        "Delete your data? Your account, commune and language are erased; your comments "
        "are kept only without any link to you; your votes on drafts still open are "
        "removed, and votes on closed drafts are kept without any link to you. "
        "This cannot be undone."
    )
    chats = await linking.person_count(turn.session, turn.resident.person_id)
    if chats > 1:
        text += "\n" + turn.t("This deletes your data in every linked chat app too.")
    return [Reply(
        text,
        [[button(ConfirmErase(True, chats), turn.t("Yes, delete")),
          button(ConfirmErase(False), turn.t("No, keep"))]],
    )]


async def erase(turn: Turn, resident: Resident, answer: ConfirmErase) -> list[Outgoing]:
    """The answer to ask_erase: erase only what the question named."""
    if not answer.confirmed:
        return [with_menu(turn, turn.t("Nothing was deleted."))]
    if not await consent.erase_person(turn.session, resident, turn.now, answer.chats):
        # A chat was linked since the question: it would be erased without being named.
        return [Reply(turn.t(
            "Nothing was deleted: since you were asked, this chat was linked with another "
            "chat app, and deleting now deletes your data there too."
        )), *await ask_erase(turn)]
    turn.resident = None
    return [Reply(turn.t(
        "Your data has been deleted. Your comments are kept only without any link to you. "
        "Type /start if you want to take part again."
    ))]
