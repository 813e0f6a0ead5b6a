"""The command line's parser in the user's language: argparse's own words through our catalogue,
and a command group typed alone (`ykien`, `ykien draft`) lists its commands.

argparse looks its words up through the module-level `_` and `ngettext` at each use, so
pointing those at the catalogue translates usage lines, headings and errors alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from handlers.i18n import Translator
from storage.text import N_

# argparse's words that a user of `ykien` can see (Python 3.11–3.13), marked for extraction.
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("options"),
    N_("positional arguments"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("expected one argument"),
    N_("expected at least one argument"),
    N_("expected at most one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("ignored explicit argument %r"),
)


def speak(t: Translator) -> None:
    """Make argparse say its words in `t`'s language (for this process)."""
    argparse._ = t.gettext  # type: ignore[attr-defined]
    argparse.ngettext = t.ngettext  # type: ignore[attr-defined]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose command groups, typed without a command, list their commands.

    The chosen leaf sets `handler`; a group parser leaves `handler` None and `listing` on
    itself, so `main` can print that group's help instead of an error.
    """

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs["required"] = False
        kwargs.setdefault("parser_class", Parser)
        self.set_defaults(handler=None, listing=self)
        return super().add_subparsers(**kwargs)


def whole_number(t: Translator, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number within [low, high], refused in the user's words."""

    def parse(text: str) -> int:
        stripped = text.strip()
        if not (stripped.isascii() and stripped.isdigit()) or not low <= int(stripped) <= high:
            raise argparse.ArgumentTypeError(t(
                "“{value}” is not valid: write a whole number from {low} to {high}.",
                value=text, low=t.number(low), high=t.number(high)))
        return int(stripped)

    return parse
