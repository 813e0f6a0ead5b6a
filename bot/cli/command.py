"""What every command module shares: the shape of a command and of the helper that adds one."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings

Command = Callable[[argparse.Namespace, "Settings", Translator], Coroutine[Any, Any, int]]
# add(name, help, handler, parent) -> the subcommand's parser (see main.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]
Subcommands = Any  # argparse's _SubParsersAction, private in typeshed


@dataclass(frozen=True)
class LanguageOnly:
    """A command that needs nothing of the settings but the language, given as its handler.

    It runs without reading the other settings (pydantic), the channels or an event loop, so
    it starts in a fraction of the time; a bad value of another setting does not stop it.
    """

    run: Callable[[argparse.Namespace, Translator], int]
