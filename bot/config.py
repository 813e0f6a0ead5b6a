"""Settings from the environment (and a `.env` file beside where the bot runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dotenv import load_dotenv

from storage.db import DEFAULT_DATABASE_URL

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    telegram_token: str = ""
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    admin_ids: tuple[str, ...] = ()
    pseudonym_key: str = ""
    language: str = "vi"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read YKIEN_* variables; a `.env` file fills in what the environment does not set."""
        if environ is None:
            load_dotenv(".env", override=False)
            environ = dict(os.environ)

        def value(name: str, default: str = "") -> str:
            return environ.get(f"YKIEN_{name}", "").strip() or default

        return cls(
            database_url=value("DATABASE_URL", DEFAULT_DATABASE_URL),
            telegram_token=value("TELEGRAM_TOKEN"),
            telegram_api_url=value("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL).rstrip("/"),
            admin_ids=tuple(i.strip() for i in value("ADMIN_IDS").split(",") if i.strip()),
            pseudonym_key=value("PSEUDONYM_KEY"),
            language=value("LANGUAGE", "vi"),
            log_level=value("LOG_LEVEL", "INFO").upper(),
        )

    def __repr__(self) -> str:  # never print secrets in logs
        return f"Settings(database_url={self.database_url!r}, telegram={bool(self.telegram_token)})"
