"""Buttons for channels that have none: numbered lines, answered by number or by label.

Numbering is per turn. A turn begins when the person sends a line; every button printed until
the next line (all the replies to it, and any broadcast that arrives meanwhile) gets its own
number, counting on from one message to the next. So after /start the menu may show 1–6 and
the open draft below it 7–10: no number stands for two buttons on screen at once.

What counts as a number: after stripping white space and one trailing "." or ")", one to three
ASCII digits ("2", "2.", " 12) "). Anything else — other scripts' digits ("١", "２"),
superscripts ("²"), circled numbers ("①"), longer digit strings — is not a number: it is
matched against the button labels and otherwise reaches the conversation as typed text.

A number presses the button it was printed next to most recently, even in an earlier turn,
as an old button on a chat platform can still be pressed. A typed label (folded: case,
accents and punctuation do not matter) presses the button with that label; when several
buttons on screen carry it, the one printed last wins.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from handlers.events import Button, Reply
from storage.text import fold

# At most 3 ASCII digits: enough for any screen of buttons, and never a huge int().
_NUMBER = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class _Shown:
    button: Button
    order: int  # when it was printed, to prefer the latest of buttons sharing a label


def typed_number(text: str) -> int | None:
    """The button number a typed line stands for, or None when it is not one."""
    answer = text.strip()
    if answer.endswith((".", ")")):
        answer = answer[:-1]
    return int(answer) if _NUMBER.fullmatch(answer) else None


class NumberedChoices:
    """The buttons shown in one chat, numbered per turn, to read a typed answer back."""

    def __init__(self) -> None:
        self._by_number: dict[int, _Shown] = {}
        self._next_number = 1
        self._order = itertools.count()

    def new_turn(self) -> None:
        """The person sent a line: the next buttons printed are numbered from 1 again."""
        self._next_number = 1

    def render(self, reply: Reply) -> str:
        """The reply's text followed by its buttons as '7. label' lines, one line per row."""
        if not any(reply.buttons):
            return reply.text
        lines = ["   ".join(self._number(button) for button in row) for row in reply.buttons]
        return reply.text + "\n\n" + "\n".join(line for line in lines if line)

    def _number(self, button: Button) -> str:
        number = self._next_number
        self._next_number += 1
        self._by_number[number] = _Shown(button, next(self._order))
        return f"{number}. {button.label}"

    def resolve(self, text: str) -> Button | None:
        """The button a typed number or label stands for, if any."""
        number = typed_number(text)
        if number is not None and number in self._by_number:
            return self._by_number[number].button
        folded = fold(text)
        if not folded:
            return None
        labelled = [s for s in self._by_number.values() if fold(s.button.label) == folded]
        latest = max(labelled, key=lambda shown: shown.order, default=None)
        return latest.button if latest else None
