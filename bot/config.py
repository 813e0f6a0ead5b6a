"""Settings from the environment (and a `.env` file beside where the bot runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from dotenv import load_dotenv

from storage.db import DEFAULT_DATABASE_URL
from storage.text import N_

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LANGUAGES = ("vi", "en")


class ConfigError(ValueError):
    """A setting has a value the bot cannot use; says which variable and what it accepts."""

    def __init__(
        self, variable: str, value: str, expected: str, choices: tuple[str, ...] = ()
    ) -> None:
        super().__init__(f"YKIEN_{variable}={value!r}: {expected}")
        self.variable = f"YKIEN_{variable}"
        self.value = value
        self.expected = expected  # marked for the catalogue: the CLI translates it
        self.choices = choices


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    telegram_token: str = ""
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    admin_ids: tuple[str, ...] = ()
    pseudonym_key: str = ""
    language: str = "vi"
    log_level: str = "INFO"
    # Silence after which a waiting step (a comment, a commune search) is forgotten.
    conversation_timeout_minutes: int = 30

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read YKIEN_* variables; a `.env` file fills in what the environment does not set."""
        if environ is None:
            load_dotenv(".env", override=False)
            environ = dict(os.environ)

        def value(name: str, default: str = "") -> str:
            return environ.get(f"YKIEN_{name}", "").strip() or default

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            chosen = value(name, default)
            normalised = chosen.upper() if name == "LOG_LEVEL" else chosen.lower()
            if normalised not in allowed:
                raise ConfigError(name, chosen, "one of " + ", ".join(allowed), allowed)
            return normalised

        def minutes(name: str, default: int) -> int:
            raw = value(name, str(default))
            if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 7 * 24 * 60:
                raise ConfigError(name, raw, N_("a whole number of minutes from 1 to 10080"))
            return int(raw)

        return cls(
            database_url=value("DATABASE_URL", DEFAULT_DATABASE_URL),
            telegram_token=value("TELEGRAM_TOKEN"),
            telegram_api_url=value("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL).rstrip("/"),
            admin_ids=tuple(i.strip() for i in value("ADMIN_IDS").split(",") if i.strip()),
            pseudonym_key=value("PSEUDONYM_KEY"),
            language=choice("LANGUAGE", "vi", LANGUAGES),
            log_level=choice("LOG_LEVEL", "INFO", LOG_LEVELS),
            conversation_timeout_minutes=minutes("CONVERSATION_TIMEOUT_MINUTES", 30),
        )

    @property
    def conversation_timeout(self) -> timedelta:
        return timedelta(minutes=self.conversation_timeout_minutes)


    def __repr__(self) -> str:  # never print secrets in logs
        return f"Settings(database_url={self.database_url!r}, telegram={bool(self.telegram_token)})"
