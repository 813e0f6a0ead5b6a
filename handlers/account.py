"""A resident's own things: help, their comments, stopping and erasing their data."""

from __future__ import annotations

from handlers.events import Button, Outgoing, Reply
from handlers.turn import COMMENT_LIMIT, Turn, with_menu
from storage import queries

MY_COMMENTS_SHOWN = 10
EXCERPT = 80


async def help_text(turn: Turn) -> list[Outgoing]:
    text = turn.t(
        "How to take part:\n"
        "• When a draft arrives, tap Comment (or reply to the draft message) and type your "
        "opinion, at most {limit} characters.\n"
        "• Tap an option to vote; you can change your vote until the deadline.\n"
        "Commands:\n"
        "/drafts – drafts open now\n"
        "/mycomments – your comments\n"
        "/commune – change commune\n"
        "/language – Tiếng Việt / English\n"
        "/stop – stop receiving drafts (or type STOP / DỪNG)\n"
        "/delete – delete your data\n"
        "/help – this help",
        limit=turn.t.number(COMMENT_LIMIT),
    )
    if turn.resident is None:
        return [Reply(text + "\n\n" + turn.t("To begin, type /start."))]
    return [with_menu(turn, text)]


async def my_comments(turn: Turn) -> list[Outgoing]:
    assert turn.resident is not None
    comments = await queries.comments_of(turn.session, turn.resident, MY_COMMENTS_SHOWN)
    if not comments:
        return [with_menu(turn, turn.t("You have not sent any comment yet."))]
    total = await queries.count_comments_of(turn.session, turn.resident)
    lines = [turn.t.plural("You have sent {count} comment:", "You have sent {count} comments:",
                           total)]
    for comment in comments:
        draft = await queries.get_draft(turn.session, comment.draft_id)
        excerpt = comment.text if len(comment.text) <= EXCERPT else comment.text[:EXCERPT] + "…"
        lines.append(turn.t(
            "No. {number}, {time}, on “{title}”: {text}",
            number=comment.id,
            time=turn.t.datetime(comment.created_at),
            title=draft.title if draft else "?",
            text=excerpt,
        ))
    if total > len(comments):
        lines.append(turn.t("(the latest {count} are shown)", count=len(comments)))
    return [with_menu(turn, "\n".join(lines))]


async def stop(turn: Turn) -> list[Outgoing]:
    """Unsubscribe at once, whatever the conversation was waiting for."""
    if turn.resident is None:
        return [Reply(turn.t("You are not subscribed, and nothing about you is stored."))]
    turn.resident.subscribed = False
    turn.resident.awaiting = ""
    turn.resident.held_text = ""
    return [Reply(
        turn.t(
            "Stopped: you will receive no more drafts. Your comments are kept. "
            "Type START or BẮT ĐẦU to subscribe again, or /delete to delete your data."
        ),
        [[Button("start", turn.t("Subscribe again")),
          Button("menu:delete", turn.t("Delete my data"))]],
    )]


async def ask_erase(turn: Turn) -> list[Outgoing]:
    if turn.resident is None:
        return [Reply(turn.t("You are not subscribed, and nothing about you is stored."))]
    return [Reply(
        turn.t(
            "Delete your data? Your account, commune and language are erased; your comments "
            "and votes are kept only without any link to you. This cannot be undone."
        ),
        [[Button("erase:yes", turn.t("Yes, delete")), Button("erase:no", turn.t("No, keep"))]],
    )]


async def erase(turn: Turn, confirmed: bool) -> list[Outgoing]:
    if turn.resident is None:
        return [Reply(turn.t("You are not subscribed, and nothing about you is stored."))]
    if not confirmed:
        return [with_menu(turn, turn.t("Nothing was deleted."))]
    await queries.erase_resident(turn.session, turn.resident)
    turn.resident = None
    return [Reply(turn.t(
        "Your data has been deleted. Your comments are kept only without any link to you. "
        "Type /start if you want to take part again."
    ))]
