"""What every command module shares: the shape of a command and of the helper that adds one."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Settings
from handlers.i18n import Translator

Command = Callable[[argparse.Namespace, Settings, Translator], Awaitable[int]]
# add(name, help, handler, parent) -> the subcommand's parser (see main.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]
Subcommands = Any  # argparse's _SubParsersAction, private in typeshed
