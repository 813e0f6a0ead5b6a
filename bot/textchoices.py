"""Buttons for channels that have none: a numbered list, answered by number or label."""

from __future__ import annotations

from collections import OrderedDict

from handlers.events import Button, Reply, flat_buttons
from storage.text import fold

REMEMBERED_CHATS = 10_000


class NumberedChoices:
    """Remembers the last buttons shown in each chat, to read a typed answer back."""

    def __init__(self) -> None:
        self._shown: OrderedDict[str, list[Button]] = OrderedDict()

    def render(self, chat: str, reply: Reply) -> str:
        """The reply's text followed by its buttons as '1. label' lines."""
        buttons = flat_buttons(reply)
        if not buttons:
            return reply.text
        self._shown[chat] = buttons
        self._shown.move_to_end(chat)
        while len(self._shown) > REMEMBERED_CHATS:
            self._shown.popitem(last=False)
        numbers = iter(range(1, len(buttons) + 1))
        # One line per row of buttons, as a keyboard would lay them out.
        lines = [
            "   ".join(f"{next(numbers)}. {button.label}" for button in row)
            for row in reply.buttons
        ]
        return reply.text + "\n\n" + "\n".join(lines)

    def resolve(self, chat: str, text: str) -> Button | None:
        """The button a typed number or label stands for, if any."""
        buttons = self._shown.get(chat, [])
        answer = text.strip().rstrip(".)")
        if answer.isdigit() and 1 <= int(answer) <= len(buttons):
            return buttons[int(answer) - 1]
        folded = fold(text)
        if not folded:
            return None
        return next((b for b in buttons if fold(b.label) == folded), None)
