"""A draft as residents will see it on each chat platform, drawn by the code that sends it:
the draft message (handlers.drafts.render_draft), laid out within the channel's capabilities
(handlers.layout: buttons or numbered lines, texts split at the limit), then cut into the
platform's messages by the channel's own renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.channels import zalo_bot
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.zalo_bot import ZaloBotChannel
from bot.channels.zalo_oa import api as zalo_oa_api
from bot.channels.zalo_oa import channel as zalo_oa
from handlers.capabilities import Capabilities
from handlers.drafts import render_draft
from handlers.events import Reply
from handlers.i18n import Translator
from handlers.layout import lay_out, needs_numbers
from handlers.numbering import Numbering
from storage.models import Draft, PollOption

# What an OA can show (its channel declares the same on start-up; the messaging window,
# which the channel adds, changes nothing in how a message looks).
ZALO_OA = Capabilities(buttons_per_message=zalo_oa_api.BUTTONS_LIMIT,
                       button_label_limit=zalo_oa_api.TITLE_LIMIT,
                       text_limit=zalo_oa_api.TEXT_LIMIT)


@dataclass(frozen=True)
class Bubble:
    """One message as the resident's chat shows it: text, then rows of buttons."""

    text: str
    buttons: list[list[str]]


@dataclass(frozen=True)
class ChannelPreview:
    name: str  # the platform, as officials know it
    bubbles: list[Bubble]
    numbered: bool  # choices are numbered lines: the resident types the number


def _sendable(draft: Draft) -> Draft:
    """A copy with ids, so a draft not saved yet (or its new options) can be rendered."""
    options = [PollOption(id=option.id or position + 1, position=position, label=option.label)
               for position, option in enumerate(draft.options)]
    return Draft(id=draft.id or 0, title=draft.title, issuer=draft.issuer,
                 summary=draft.summary, link=draft.link, deadline=draft.deadline,
                 poll_question=draft.poll_question, options=options)


def _telegram(part: Reply) -> list[Bubble]:
    return [Bubble(part.text, [[button.label for button in row] for row in part.buttons])]


def _zalo_oa(part: Reply) -> list[Bubble]:
    return [Bubble(text, [[button.label] for button in buttons])
            for text, buttons in zalo_oa.render(part)]


def _zalo_bot(part: Reply) -> list[Bubble]:
    return [Bubble(text, []) for text in zalo_bot.render(part)]


def _on(name: str, draft: Draft, t: Translator, capabilities: Capabilities,
        bubbles: Callable[[Reply], list[Bubble]]) -> ChannelPreview:
    message = render_draft(draft, t, reply_hint=capabilities.replies_to_messages)
    parts = lay_out(message, capabilities, Numbering())
    return ChannelPreview(name, [bubble for part in parts if isinstance(part, Reply)
                                 for bubble in bubbles(part)],
                          needs_numbers(message, capabilities))


def previews(draft: Draft, t: Translator) -> list[ChannelPreview]:
    """The draft on Telegram, on a Zalo Official Account and on a Zalo Bot, in `t`'s language."""
    draft = _sendable(draft)
    return [
        _on("Telegram", draft, t, TelegramChannel.capabilities, _telegram),
        _on(t("Zalo (Official Account)"), draft, t, ZALO_OA, _zalo_oa),
        _on(t("Zalo (bot)"), draft, t, ZaloBotChannel.capabilities, _zalo_bot),
    ]
