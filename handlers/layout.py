"""Replies laid out within what a channel can show (handlers.capabilities).

Buttons stay buttons while the message has no more than the channel allows, with labels
shortened to its limit; otherwise every choice of the message becomes a numbered line
(handlers.numbering), so one message is answered one way. Text longer than the channel's
limit is split at paragraph, then line, then word ends; the buttons go with the last part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from handlers.capabilities import Capabilities
from handlers.events import Button, Outgoing, Reply, flat_buttons
from handlers.numbering import Numbering

ELLIPSIS = "…"


def needs_numbers(message: Outgoing, capabilities: Capabilities) -> bool:
    """Whether laying out `message` numbers its choices (and so changes the numbering)."""
    return isinstance(message, Reply) and (
        len(flat_buttons(message)) > capabilities.buttons_per_message
    )


def lay_out(message: Outgoing, capabilities: Capabilities, numbering: Numbering) -> list[Outgoing]:
    """The messages to send for `message` on a channel with `capabilities`."""
    if not isinstance(message, Reply):
        return [message]
    if needs_numbers(message, capabilities):
        # One line per row of buttons, as the conversation grouped them ("1. Yes   2. No").
        lines = "\n".join(
            "   ".join(f"{numbering.number(button)}. {button.label}" for button in row)
            for row in message.buttons if row
        )
        message = replace(message, text=f"{message.text}\n\n{lines}", buttons=[])
    elif message.buttons:
        limit = capabilities.button_label_limit
        message = replace(message, buttons=[
            [_shortened(button, limit, capabilities.measure) for button in row]
            for row in message.buttons if row
        ])
    parts = split_text(message.text, capabilities.text_limit, capabilities.measure)
    if len(parts) == 1:
        return [message]
    last = len(parts) - 1
    return [
        replace(message, text=part, buttons=message.buttons if i == last else [], edit=False)
        for i, part in enumerate(parts)
    ]


def _shortened(button: Button, limit: int, measure: Callable[[str], int]) -> Button:
    if measure(button.label) <= limit:
        return button
    label = button.label
    while label and measure(label + ELLIPSIS) > limit:
        label = label[:-1]
    return Button(button.id, label.rstrip() + ELLIPSIS)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Text in parts of at most `limit`, cut at paragraph, then line, then word boundaries."""
    parts = [part for part in _split(text, limit, ("\n\n", "\n", " "), measure) if part.strip()]
    return parts or [text]


def _split(
    text: str, limit: int, separators: tuple[str, ...], measure: Callable[[str], int]
) -> list[str]:
    if measure(text) <= limit:
        return [text]
    if not separators:
        return _hard_cut(text, limit, measure)
    separator, finer = separators[0], separators[1:]
    parts: list[str] = []
    current: str | None = None
    for piece in text.split(separator):
        for chunk in _split(piece, limit, finer, measure):
            candidate = chunk if current is None else current + separator + chunk
            if measure(candidate) <= limit:
                current = candidate
            else:
                if current is not None:
                    parts.append(current)
                current = chunk
    if current is not None:
        parts.append(current)
    return parts


def _hard_cut(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = measure(char)
        if size + width > limit:
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        parts.append("".join(current))
    return parts
