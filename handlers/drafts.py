"""Drafts as residents see them: the draft message, comments and votes."""

from __future__ import annotations

from handlers import respondent
from handlers.buttons import CommentOn, PlaceHeld, VoteFor
from handlers.events import Outgoing, Reply
from handlers.i18n import Translator
from handlers.state import AwaitComment, AwaitDraftChoice, awaiting, wait_for
from handlers.turn import COMMENT_LIMIT, Turn, button, with_menu
from storage import flood, queries, reach
from storage.models import Comment, Draft, DraftStatus, ReachWay, Resident

OPEN_DRAFTS_SHOWN = 5
HELD_TITLE_LENGTH = 60


def render_draft(draft: Draft, t: Translator, *, reply_hint: bool = False,
                 chosen: int | None = None) -> Reply:
    """The message that presents a draft, with a Comment button and one button per option.

    `reply_hint`: the channel lets residents reply to a message, and the message says that
    a reply is a comment too. `chosen`: the option the person votes for now, marked ✅."""
    parts = [f"📢 {draft.title}", draft.issuer, "", draft.summary, ""]
    if draft.poll_question:
        parts.append(f"❓ {draft.poll_question}")
    parts.append(t("Comments until: {deadline}", deadline=t.datetime(draft.deadline)))
    if draft.link:
        parts.append(t("Full text: {link}", link=draft.link))
    parts.append(t("Tap Comment, or reply to this message, to send your opinion.") if reply_hint
                 else t("Tap Comment to send your opinion."))
    buttons = [[button(CommentOn(draft.id), "💬 " + t("Comment"))]]
    for option in draft.options:
        mark = "✅" if option.id == chosen else "🗳"
        buttons.append([button(VoteFor(option.id), f"{mark} {option.label}")])
    return Reply("\n".join(parts), buttons, draft_id=draft.id)


def receipt(comment: Comment) -> str:
    """The number a resident and staff use to find a comment: draft, then its order."""
    return f"{comment.draft_id}-{comment.number}"


async def open_drafts_replies(turn: Turn, resident: Resident, way: ReachWay
                              ) -> list[Outgoing]:
    """The drafts open for the resident's commune, each as its own message; each draft
    shown counts as reaching the resident (`way`: on subscribing, or asked for)."""
    if resident.commune_code is None:
        return []
    drafts = await queries.open_drafts(turn.session, resident.commune_code, turn.now)
    if not drafts:
        return [Reply(turn.t(
            "No draft is open for comments in your commune right now. "
            "I will send you the next one as soon as it is published."
        ))]
    header = turn.t.plural(
        "{count} draft is open for comments:", "{count} drafts are open for comments:",
        len(drafts),
    )
    chosen = await queries.options_chosen(turn.session, resident,
                                          [draft.id for draft in drafts[:OPEN_DRAFTS_SHOWN]])
    shown = [render_draft(draft, turn.t, reply_hint=turn.replies_to_messages,
                          chosen=chosen.get(draft.id))
             for draft in drafts[:OPEN_DRAFTS_SHOWN]]
    await reach.record_shown(turn.session, [draft.id for draft in drafts[:OPEN_DRAFTS_SHOWN]],
                             resident, way, turn.now)
    return [Reply(header), *shown]


def _refusal(turn: Turn, draft: Draft) -> str | None:
    """Why this draft takes no comments or votes now, or None when it does."""
    t = turn.t
    if draft.status == DraftStatus.DRAFT or draft.opens_at > turn.now:
        return t("“{title}” is not open for comments yet.", title=draft.title)
    if draft.status == DraftStatus.CLOSED or draft.deadline <= turn.now:
        closed_at = draft.closed_at if draft.status == DraftStatus.CLOSED else None
        return t(
            "Consultation on “{title}” closed at {deadline}. Comments and votes are no "
            "longer accepted. Thank you for your interest.",
            title=draft.title,
            deadline=t.datetime(min(closed_at or draft.deadline, draft.deadline)),
        )
    return None


async def _usable_draft(
    turn: Turn, resident: Resident, draft_id: int, with_options: bool = False
) -> tuple[Draft | None, list[Outgoing]]:
    draft = None
    if resident.commune_code is not None:
        draft = await queries.draft_for_commune(
            turn.session, draft_id, resident.commune_code, with_options
        )
    if draft is None:
        return None, [with_menu(turn, turn.t("That draft is not open to your commune."))]
    refusal = _refusal(turn, draft)
    if refusal:
        return None, [with_menu(turn, refusal)]
    return draft, []


def too_long(turn: Turn, text: str) -> Reply:
    """Refuse, never cut: the resident decides what to leave out."""
    return Reply(turn.t(
        "Your comment has {length} characters; the limit is {limit}. Nothing was saved: "
        "please shorten it and send it again.",
        length=turn.t.number(len(text)),
        limit=turn.t.number(COMMENT_LIMIT),
    ))


async def _over_comment_limits(turn: Turn, resident: Resident) -> list[Outgoing] | None:
    """None when the person may comment now. Otherwise nothing is stored, and the first
    comment refused is told politely from when they can comment again; later ones, until
    then, get no answer (a flood of messages gets one reply, not a flood of replies)."""
    limits = turn.comment_limits
    until = await flood.comments_allowed_from(turn.session, resident.person_id, limits,
                                              turn.now)
    if until is None:
        return None
    wait_for(resident, None, turn.now)
    if not await flood.first_refusal(turn.session, resident.person_id, until, turn.now):
        return []
    return [Reply(turn.t(
        "Thank you for your many comments! To keep the consultation fair, each person can "
        "send at most {per_minute} comments a minute and {per_hour} an hour, so this one "
        "was not saved, nor will anything you send before {time}. From {time}, tap Comment "
        "and send it again.",
        per_minute=turn.t.number(limits.per_minute), per_hour=turn.t.number(limits.per_hour),
        time=turn.t.datetime(until),
    ))]


async def ask_comment(turn: Turn, resident: Resident, draft_id: int) -> list[Outgoing]:
    """The Comment button: the next text the resident sends is their comment."""
    draft, refused = await _usable_draft(turn, resident, draft_id)
    if draft is None:
        return refused
    wait_for(resident, AwaitComment(draft.id), turn.now)
    return [Reply(turn.t(
        "Type your comment on “{title}” in one message (at most {limit} characters).",
        title=draft.title,
        limit=turn.t.number(COMMENT_LIMIT),
    ))]


async def submit_comment(
    turn: Turn, resident: Resident, draft_id: int, text: str, *, forwarded: bool = False,
    held: bool = False,
) -> list[Outgoing]:
    """Store a comment, or say exactly why not (and keep waiting for a better one).

    `text` is already cleaned (handlers.conversation): NFC, no invisible characters.
    `forwarded`: someone else's words passed on, kept and marked so.
    `held`: the text kept aside (Resident.held_text), let go of once stored; another
    comment leaves it, for the question still on screen to place.
    """
    draft, refused = await _usable_draft(turn, resident, draft_id)
    if draft is None:
        wait_for(resident, None, turn.now)
        return refused
    if not text:
        wait_for(resident, AwaitComment(draft.id), turn.now)
        return [Reply(turn.t("Your comment is empty. Type your comment in one message."))]
    if len(text) > COMMENT_LIMIT:
        wait_for(resident, AwaitComment(draft.id), turn.now)
        return [too_long(turn, text)]
    if (over := await _over_comment_limits(turn, resident)) is not None:
        return over
    wait_for(resident, None, turn.now)
    if held:
        resident.held_text = ""
    await reach.record_part(turn.session, draft.id, resident, turn.now)
    # The resident's step written now, so that after the draft's receipt counter, which
    # stays locked until the commit (every comment on the draft waits for it), only the
    # replies kept are written.
    await turn.session.flush()
    comment = await queries.add_comment(turn.session, draft, resident, text, turn.now,
                                        forwarded=forwarded)
    return [with_menu(turn, turn.t(
        "Received: your comment no. {number} on “{title}”. Thank you! "
        "To add more, tap Comment again.",
        number=receipt(comment),
        title=draft.title,
    )), *respondent.ask_once(turn, resident)]


async def hold_comment(turn: Turn, resident: Resident, text: str) -> list[Outgoing]:
    """Text sent outside any draft: keep it and ask which draft it is for. Text sent again
    before the answer joins it: a comment typed in several messages stays whole."""
    if resident.commune_code is None:
        return []
    drafts = await queries.open_drafts(turn.session, resident.commune_code, turn.now)
    if not drafts:
        return [with_menu(turn, turn.t(
            "No draft is open for comments in your commune right now, so your message was "
            "not saved. I will send you the next draft as soon as it is published."
        ))]
    if len(text) > COMMENT_LIMIT:
        return [too_long(turn, text)]
    if (over := await _over_comment_limits(turn, resident)) is not None:
        return over
    joining = bool(resident.held_text) and isinstance(
        awaiting(resident, turn.now, turn.timeout), AwaitDraftChoice)
    if not joining:
        resident.held_text, resident.held_forwarded = text, turn.event.forwarded
        question = turn.t("Which draft is your comment about?")
    elif len(joined := f"{resident.held_text}\n{text}") > COMMENT_LIMIT:
        question = turn.t(
            "With this message your comment would have {length} characters; the limit is "
            "{limit}, so this message was not added. Choose the draft for what you sent "
            "before, then send the rest as a new comment.",
            length=turn.t.number(len(joined)), limit=turn.t.number(COMMENT_LIMIT))
    else:
        resident.held_text = joined
        resident.held_forwarded = resident.held_forwarded or turn.event.forwarded
        question = turn.t("Added to your message before. Which draft is your comment about?")
    wait_for(resident, AwaitDraftChoice(), turn.now)
    buttons = [[button(PlaceHeld(d.id), d.title[:HELD_TITLE_LENGTH])] for d in drafts]
    buttons.append([button(PlaceHeld(None), turn.t("Cancel"))])
    return [Reply(question, buttons)]


async def place_held_comment(
    turn: Turn, resident: Resident, draft_id: int | None
) -> list[Outgoing]:
    if not resident.held_text:
        # An old button: the text it was for was placed or cancelled already.
        return [with_menu(turn, turn.t("That button is no longer valid. Here is the menu."))]
    if draft_id is None:
        resident.held_text = ""
        wait_for(resident, None, turn.now)
        return [with_menu(turn, turn.t("Cancelled: your message was not saved."))]
    return await submit_comment(turn, resident, draft_id, resident.held_text,
                                forwarded=resident.held_forwarded, held=True)


async def vote(turn: Turn, resident: Resident, option_id: int) -> list[Outgoing]:
    """One vote per resident per poll, changeable until the deadline."""
    # Nothing of this chat is written before cast_vote holds the person: a link waiting
    # for the person may have to write this chat's row (see queries.lock_person).
    with turn.session.no_autoflush:
        option = await queries.get_option(turn.session, option_id)
        if option is None:
            return [with_menu(turn, turn.t("That poll option no longer exists."))]
        draft, refused = await _usable_draft(turn, resident, option.draft_id, with_options=True)
    if draft is None:
        return refused
    # The vote before comes from cast_vote: read earlier, another chat of the person voting
    # at the same moment could be missed.
    previous, changed = await queries.cast_vote(turn.session, draft, option, resident, turn.now)
    if changed:
        await reach.record_part(turn.session, draft.id, resident, turn.now)
    previous_label = next((o.label for o in draft.options if o.id == previous), "")
    values = {
        "title": draft.title,
        "option": option.label,
        "previous": previous_label,
        "deadline": turn.t.datetime(draft.deadline),
    }
    if not changed:
        text = turn.t("Your vote on “{title}” is already “{option}”.", **values)
    elif previous_label:
        text = turn.t(
            "Changed your vote on “{title}” from “{previous}” to “{option}”. "
            "You can change it until {deadline}.",
            **values,
        )
    else:
        text = turn.t(
            "Recorded your vote on “{title}”: “{option}”. You can change it until {deadline}.",
            **values,
        )
    return [with_menu(turn, text)]
