"""The language of the command line, read as `bot.config.Settings` reads YKIEN_LANGUAGE (the
environment first, then the `.env` file) but without pydantic, whose import alone takes longer
than a short command such as `ykien communes search` should (tests/cli/test_startup.py checks
that both readings agree)."""

from __future__ import annotations

import os
from collections.abc import Mapping

VARIABLE = "YKIEN_LANGUAGE"  # bot.config.PREFIX + "LANGUAGE"
ENV_FILE = ".env"  # bot.config.ENV_FILE


def configured_language() -> str:
    """YKIEN_LANGUAGE as given, stripped and lowercased; "" when unset (the default).

    As in the settings, an empty value in the environment leaves the word to `.env`, and
    names match in any case. Raises OSError when `.env` cannot be read.
    """
    value = _given(os.environ)
    if not value and os.path.isfile(ENV_FILE):
        from dotenv import dotenv_values

        value = _given(dotenv_values(ENV_FILE))
    return value.strip().lower()


def _given(variables: Mapping[str, str | None]) -> str:
    value = variables.get(VARIABLE)
    if value is None:
        value = next((v for k, v in variables.items() if k.upper() == VARIABLE), None)
    return value or ""
