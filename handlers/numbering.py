"""Choices shown as numbered lines, for channels with no buttons (or too few).

Numbering is per turn. A turn begins when the person sends something; every choice shown
until their next message (all the replies to it, and any broadcast that arrives meanwhile)
gets its own number, counting on from one message to the next. So after /start the menu may
show 1–6 and the open draft below it 7–10: no number stands for two choices on screen at once.

What counts as a number: after stripping white space and one trailing "." or ")", one to three
ASCII digits ("2", "2.", " 12) "). Anything else — other scripts' digits ("١", "２"),
superscripts ("²"), circled numbers ("①"), longer digit strings — is not a number: it is
matched against the labels and otherwise reaches the conversation as typed text.

A number chooses what it was shown next to most recently, even in an earlier turn, as an old
button on a chat platform can still be pressed; one that stands for nothing kept reaches the
conversation marked so (Incoming.unknown_choice), to be answered rather than taken as a
comment. A typed label (folded: case, accents and punctuation do not matter) chooses the
choice with that label; when several on screen carry it, the one shown last wins.

The numbering is plain data (`to_json`/`from_json`) so it is stored with the chat
(storage.choices): a typed "2" works on any process, and after a restart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from handlers.events import Button
from storage.text import fold

# At most 3 ASCII digits: enough for any screen of choices, and never a huge int().
_NUMBER = re.compile(r"[0-9]{1,3}")
# Numbers kept per chat: a person never sees more at once; older ones are forgotten.
MAX_KEPT = 60


def typed_number(text: str) -> int | None:
    """The choice number a typed line stands for, or None when it is not one."""
    answer = text.strip()
    if answer.endswith((".", ")")):
        answer = answer[:-1]
    return int(answer) if _NUMBER.fullmatch(answer) else None


@dataclass
class Shown:
    button: Button
    order: int  # when it was shown, to prefer the latest of choices sharing a label


@dataclass
class Numbering:
    """The choices numbered in one chat, to read a typed answer back."""

    shown: dict[int, Shown] = field(default_factory=dict)
    next_number: int = 1
    order: int = 0
    changed: bool = False  # something to store
    turn_began: int = 0  # `order` when this turn began

    def new_turn(self) -> None:
        """The person sent something: the next choices shown are numbered from 1 again."""
        self.turn_began = self.order
        if self.next_number != 1:
            self.next_number = 1
            self.changed = True

    def forget_earlier_turns(self) -> None:
        """Keep only this turn's choices: after erasure nothing older (a commune's name, a
        draft's title) may stay with the chat."""
        earlier = [n for n, shown in self.shown.items() if shown.order <= self.turn_began]
        for number in earlier:
            del self.shown[number]
        self.changed = self.changed or bool(earlier)

    def number(self, button: Button) -> int:
        number = self.next_number
        self.next_number += 1
        self.order += 1
        self.shown[number] = Shown(button, self.order)
        if len(self.shown) > MAX_KEPT:
            oldest = min(self.shown, key=lambda n: self.shown[n].order)
            del self.shown[oldest]
        self.changed = True
        return number

    def resolve(self, text: str) -> Button | None:
        """The choice a typed number or label stands for, if any."""
        number = typed_number(text)
        if number is not None and number in self.shown:
            return self.shown[number].button
        folded = fold(text)
        if not folded:
            return None
        labelled = [s for s in self.shown.values() if fold(s.button.label) == folded]
        latest = max(labelled, key=lambda shown: shown.order, default=None)
        return latest.button if latest else None

    def to_json(self) -> str:
        return json.dumps({
            "next": self.next_number,
            "order": self.order,
            "shown": [[n, s.button.id, s.button.label, s.order] for n, s in self.shown.items()],
        }, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, stored: str) -> Numbering:
        """The stored numbering; a row that cannot be read is a fresh start, not an error."""
        try:
            data = json.loads(stored)
            return cls(
                shown={int(n): Shown(Button(str(i), str(label)), int(order))
                       for n, i, label, order in data["shown"]},
                next_number=int(data["next"]),
                order=int(data["order"]),
            )
        except (ValueError, KeyError, TypeError):
            return cls()
