"""Settings from the environment (and a `.env` file beside where the bot runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from dotenv import load_dotenv

from storage.db import DEFAULT_DATABASE_URL
from storage.text import N_

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_ZALO_API_URL = "https://openapi.zalo.me"
DEFAULT_ZALO_OAUTH_URL = "https://oauth.zaloapp.com"
DEFAULT_ZALO_BOT_API_URL = "https://bot-api.zaloplatforms.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LANGUAGES = ("vi", "en")


class ConfigError(ValueError):
    """A setting has a value the bot cannot use; says which variable and what it accepts."""

    def __init__(
        self, variable: str, value: str, expected: str, choices: tuple[str, ...] = (),
        **values: object,
    ) -> None:
        super().__init__(f"YKIEN_{variable}={value!r}: {expected.format(**values)}")
        self.variable = f"YKIEN_{variable}"
        self.value = value
        self.expected = expected  # marked for the catalogue: the CLI translates it
        self.choices = choices
        self.values = values  # the placeholders of `expected`


@dataclass(frozen=True)
class DeliveryConfig:
    """How the outbox is worked: durations in seconds, so tests can shrink minutes to moments."""

    # Messages in flight at once, per worker. By Little's law, paid broadcasts (1,000/s) over
    # 50 ms round trips need 50 in flight; each costs only a pending request.
    concurrency: int = 64
    lease_seconds: float = 120.0  # a claimed row returns to the queue if its worker dies
    retry_base_seconds: float = 30.0  # first wait after a temporary failure; doubles each time
    retry_cap_seconds: float = 3600.0  # the longest wait between two attempts
    max_attempts: int = 12  # then the row is failed (an expiry may end it sooner)
    retention_days: int = 90  # finished rows older than this are purged
    idle_seconds: float = 1.0  # how often an idle worker looks for new work


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
    # Telegram's global pace (messages/s for the whole bot); 0 = no limit (paid broadcasts,
    # a local Bot API server).
    telegram_messages_per_second: float = 30.0
    telegram_webhook_secret: str = ""
    public_url: str = ""  # where the platforms reach `ykien serve` (https://…)
    # How long a `ykien serve` process holds a webhook update it is handling (renewed while
    # it lives); if it dies, another process takes the update over after this long.
    webhook_lease_seconds: int = 10
    # Zalo Official Account (Open API v3): the app, its OA secret key (webhook signatures)
    # and the first token pair (the database keeps newer pairs once refreshed).
    zalo_app_id: str = ""
    zalo_app_secret: str = ""
    zalo_oa_secret: str = ""
    zalo_access_token: str = ""
    zalo_refresh_token: str = ""
    zalo_api_url: str = DEFAULT_ZALO_API_URL
    zalo_oauth_url: str = DEFAULT_ZALO_OAUTH_URL
    # Broadcast (promotion) messages for residents outside the 7-day window (verified OAs).
    zalo_promotion: bool = False
    # Zalo Bot platform (the Telegram-like API): token and webhook secret.
    zalo_bot_token: str = ""
    zalo_bot_webhook_secret: str = ""
    zalo_bot_api_url: str = DEFAULT_ZALO_BOT_API_URL
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)

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

        def whole(name: str, default: int, low: int, high: int) -> int:
            raw = value(name, str(default))
            if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
                raise ConfigError(name, raw, N_("a whole number from {low} to {high}"),
                                  low=low, high=high)
            return int(raw)

        def rate(name: str, default: float) -> float:
            raw = value(name, str(default))
            try:
                number = float(raw)
            except ValueError:
                number = -1.0
            if not raw.isascii() or not 0 <= number <= 100_000:
                raise ConfigError(name, raw, N_("a number from {low} to {high}"),
                                  low=0, high=100_000)
            return number

        delivery = DeliveryConfig(
            concurrency=whole("DELIVERY_CONCURRENCY", 64, 1, 1000),
            lease_seconds=whole("DELIVERY_LEASE_SECONDS", 120, 5, 3600),
            retry_base_seconds=whole("DELIVERY_RETRY_BASE_SECONDS", 30, 1, 3600),
            retry_cap_seconds=whole("DELIVERY_RETRY_CAP_SECONDS", 3600, 1, 7 * 24 * 3600),
            max_attempts=whole("DELIVERY_MAX_ATTEMPTS", 12, 1, 100),
            retention_days=whole("OUTBOX_RETENTION_DAYS", 90, 1, 3650),
        )

        return cls(
            database_url=value("DATABASE_URL", DEFAULT_DATABASE_URL),
            telegram_token=value("TELEGRAM_TOKEN"),
            telegram_api_url=value("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL).rstrip("/"),
            admin_ids=tuple(i.strip() for i in value("ADMIN_IDS").split(",") if i.strip()),
            pseudonym_key=value("PSEUDONYM_KEY"),
            language=choice("LANGUAGE", "vi", LANGUAGES),
            log_level=choice("LOG_LEVEL", "INFO", LOG_LEVELS),
            conversation_timeout_minutes=whole("CONVERSATION_TIMEOUT_MINUTES", 30, 1, 10080),
            telegram_messages_per_second=rate("TELEGRAM_MESSAGES_PER_SECOND", 30),
            telegram_webhook_secret=value("TELEGRAM_WEBHOOK_SECRET"),
            public_url=value("PUBLIC_URL").rstrip("/"),
            webhook_lease_seconds=whole("WEBHOOK_LEASE_SECONDS", 10, 2, 3600),
            zalo_app_id=value("ZALO_APP_ID"),
            zalo_app_secret=value("ZALO_APP_SECRET"),
            zalo_oa_secret=value("ZALO_OA_SECRET"),
            zalo_access_token=value("ZALO_ACCESS_TOKEN"),
            zalo_refresh_token=value("ZALO_REFRESH_TOKEN"),
            zalo_api_url=value("ZALO_API_URL", DEFAULT_ZALO_API_URL).rstrip("/"),
            zalo_oauth_url=value("ZALO_OAUTH_URL", DEFAULT_ZALO_OAUTH_URL).rstrip("/"),
            zalo_promotion=choice("ZALO_PROMOTION", "0", ("0", "1")) == "1",
            zalo_bot_token=value("ZALO_BOT_TOKEN"),
            zalo_bot_webhook_secret=value("ZALO_BOT_WEBHOOK_SECRET"),
            zalo_bot_api_url=value("ZALO_BOT_API_URL", DEFAULT_ZALO_BOT_API_URL).rstrip("/"),
            delivery=delivery,
        )

    @property
    def conversation_timeout(self) -> timedelta:
        return timedelta(minutes=self.conversation_timeout_minutes)

    def __repr__(self) -> str:  # never print secrets in logs
        return (
            f"Settings(database_url={self.database_url!r}, telegram={bool(self.telegram_token)}, "
            f"zalo_oa={bool(self.zalo_app_id)}, zalo_bot={bool(self.zalo_bot_token)})"
        )
