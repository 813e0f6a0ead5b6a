"""Settings from the environment (and a `.env` file where the bot runs), by pydantic-settings.

Every variable is `YKIEN_` + the field's name in capitals. A value that cannot be used becomes a
`ConfigError` naming each bad variable with what it accepts, in words the command line
translates; pydantic's own messages never reach the user.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

import annotated_types
from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from storage import DEFAULT_DATABASE_URL
from storage.text import N_

PREFIX = "YKIEN_"
ENV_FILE = ".env"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_ZALO_API_URL = "https://openapi.zalo.me"
DEFAULT_ZALO_OAUTH_URL = "https://oauth.zaloapp.com"
DEFAULT_ZALO_BOT_API_URL = "https://bot-api.zaloplatforms.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LANGUAGES = ("vi", "en")
SWITCH = ("0", "1")

# What a bad value of each kind of setting is told it must be (catalogue texts).
WHOLE_NUMBER = N_("a whole number from {low} to {high}")
NUMBER = N_("a number from {low} to {high}")
CHAT_PAIRS = N_("chat app:user id pairs separated by commas, such as "
                "telegram:123456,zalo:8734 (chat apps: telegram, zalo, zalobot, console)")
# The names chats are stored under (bot/channels/registry.py, and the console).
CHAT_CHANNELS = ("telegram", "zalo", "zalobot", "console")
MAX_USER_ID = 64  # Resident.platform_id


def chat_pair(text: str) -> tuple[str, str] | None:
    """A chat written "telegram:123456" as (channel, user id); None when it is not one."""
    channel, colon, user_id = text.strip().partition(":")
    channel, user_id = channel.strip().lower(), user_id.strip()
    if (not colon or channel not in CHAT_CHANNELS or not user_id or len(user_id) > MAX_USER_ID
            or any(c.isspace() or c == "," for c in user_id)):
        return None
    return channel, user_id


@dataclass(frozen=True)
class Problem:
    """One setting the bot cannot use: which variable, its value, and what it accepts."""

    variable: str
    value: str
    expected: str = ""  # marked for the catalogue: the CLI translates it with `values`
    choices: tuple[str, ...] = ()
    low: float = 0
    high: float = 0


class ConfigError(ValueError):
    """Settings the bot cannot use; `problems` has one entry per bad variable."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.variable}={p.value!r}" for p in problems))
        self.problems = problems


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
    reminder_days: int = 2  # remind who has not taken part this long before a deadline (0: never)
    idle_seconds: float = 1.0  # how often an idle worker looks for new work


def _whole(default: int, low: int, high: int) -> Any:
    return Field(default, ge=low, le=high)


class Settings(BaseSettings):
    """The bot's settings. Built directly (tests) from what it is given; `from_env` reads."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="ignore", str_strip_whitespace=True,
        env_ignore_empty=True, validate_default=False,
    )

    database_url: str = DEFAULT_DATABASE_URL
    telegram_token: str = ""
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    admin_ids: Annotated[tuple[str, ...], NoDecode] = ()
    pseudonym_key: str = ""
    # Fernet keys, comma-separated (the first seals): storage.sealing. Checked at start.
    secret_key: str = ""
    language: Literal["vi", "en"] = "vi"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Silence after which a waiting step (a comment, a commune search) is forgotten.
    conversation_timeout_minutes: int = _whole(30, 1, 10080)
    # Telegram's global pace (messages/s for the whole bot); 0 = no limit (paid broadcasts,
    # a local Bot API server).
    telegram_messages_per_second: float = Field(30.0, ge=0, le=100_000, allow_inf_nan=False)
    telegram_webhook_secret: str = ""
    public_url: str = ""  # where the platforms reach `ykien serve` (https://…)
    # How long a `ykien serve` process holds a webhook update it is handling (renewed while
    # it lives); if it dies, another process takes the update over after this long.
    webhook_lease_seconds: int = _whole(10, 2, 3600)
    # Zalo Official Account (Open API v3): the app, its OA secret key (webhook signatures)
    # and the first token pair (the database keeps newer pairs once refreshed).
    zalo_app_id: str = ""
    zalo_app_secret: str = ""
    zalo_oa_secret: str = ""
    zalo_access_token: str = ""
    zalo_refresh_token: str = ""
    zalo_api_url: str = DEFAULT_ZALO_API_URL
    zalo_oauth_url: str = DEFAULT_ZALO_OAUTH_URL
    # Broadcast (promotion) messages for residents outside the 7-day window (verified OAs):
    # written 0 or 1 in the environment.
    zalo_promotion: bool = False
    # Zalo Bot platform (the Telegram-like API): token and webhook secret.
    zalo_bot_token: str = ""
    zalo_bot_webhook_secret: str = ""
    zalo_bot_api_url: str = DEFAULT_ZALO_BOT_API_URL
    # The outbox (see DeliveryConfig).
    delivery_concurrency: int = _whole(64, 1, 1000)
    delivery_lease_seconds: int = _whole(120, 5, 3600)
    delivery_retry_base_seconds: int = _whole(30, 1, 3600)
    delivery_retry_cap_seconds: int = _whole(3600, 1, 7 * 24 * 3600)
    delivery_max_attempts: int = _whole(12, 1, 100)
    outbox_retention_days: int = _whole(90, 1, 3650)
    # Flood control (storage.flood): comments one person may send a minute and an hour.
    comments_per_minute: int = _whole(5, 1, 1000)
    comments_per_hour: int = _whole(30, 1, 100_000)
    # Comments and votes of drafts closed this long lose their link to persons; persons
    # silent and unsubscribed this long are erased (storage.retention).
    retention_months: int = _whole(24, 1, 1200)
    # Days before a draft's deadline to remind its silent subscribers (0: no reminders).
    reminder_days: int = _whole(2, 0, 60)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built directly, settings are exactly what the caller gave; `from_env` reads.
        return (init_settings,)

    @classmethod
    def from_env(cls) -> Settings:
        """Read YKIEN_* variables; a `.env` file fills in what the environment does not set.

        Raises ConfigError listing every variable whose value cannot be used.
        """
        try:
            return _FromEnvironment(_env_file=ENV_FILE)
        except ValidationError as error:
            given = {**dotenv_values(ENV_FILE), **os.environ}  # to show what was written
            raise ConfigError(_problems(error, given)) from None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        # "  " in the environment means the default, as an empty value does.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator("language", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("telegram_api_url", "public_url", "zalo_api_url", "zalo_oauth_url",
                     "zalo_bot_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("admin_ids")
    @classmethod
    def _chat_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        pairs = [chat_pair(part) for part in value]
        if any(pair is None for pair in pairs):
            raise ValueError("not channel:user_id pairs")
        return tuple(f"{channel}:{user_id}" for channel, user_id in filter(None, pairs))

    @property
    def admin_chats(self) -> frozenset[tuple[str, str]]:
        """YKIEN_ADMIN_IDS as (channel, user id) pairs: these chats' persons are admins of
        everything, once they have agreed to the privacy notice."""
        return frozenset(filter(None, map(chat_pair, self.admin_ids)))

    @field_validator("zalo_promotion", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if isinstance(value, str):  # only 0 or 1: "yes" or "off" would be a guess
            if value.strip() not in SWITCH:
                raise ValueError("0 or 1")
            return value.strip() == "1"
        return value

    @field_validator(
        "conversation_timeout_minutes", "webhook_lease_seconds", "delivery_concurrency",
        "delivery_lease_seconds", "delivery_retry_base_seconds", "delivery_retry_cap_seconds",
        "delivery_max_attempts", "outbox_retention_days", "telegram_messages_per_second",
        "comments_per_minute", "comments_per_hour", "retention_months", "reminder_days",
        mode="before",
    )
    @classmethod
    def _ascii_number(cls, value: Any) -> Any:
        # Python reads "٣٠" or "３０" as 30; a setting written that way is more likely a slip.
        if isinstance(value, str) and not value.strip().isascii():
            raise ValueError("not an ASCII number")
        return value

    @property
    def conversation_timeout(self) -> timedelta:
        return timedelta(minutes=self.conversation_timeout_minutes)

    @property
    def delivery(self) -> DeliveryConfig:
        return DeliveryConfig(
            concurrency=self.delivery_concurrency,
            lease_seconds=self.delivery_lease_seconds,
            retry_base_seconds=self.delivery_retry_base_seconds,
            retry_cap_seconds=self.delivery_retry_cap_seconds,
            max_attempts=self.delivery_max_attempts,
            retention_days=self.outbox_retention_days,
            reminder_days=self.reminder_days,
        )

    def __repr__(self) -> str:  # never print secrets in logs
        return (
            f"Settings(database_url={self.database_url!r}, telegram={bool(self.telegram_token)}, "
            f"zalo_oa={bool(self.zalo_app_id)}, zalo_bot={bool(self.zalo_bot_token)})"
        )

    __str__ = __repr__


class _FromEnvironment(Settings):
    """The settings as the environment and the `.env` file give them (the environment wins)."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, dotenv_settings)


def _problems(error: ValidationError, given: Mapping[str, str | None]) -> list[Problem]:
    """One Problem per bad variable, with what its field accepts (read from the field)."""
    problems: list[Problem] = []
    for detail in error.errors():
        name = str(detail["loc"][0]) if detail["loc"] else ""
        field = Settings.model_fields.get(name)
        if field is None:
            continue
        variable = PREFIX + name.upper()
        value = (given.get(variable) or str(detail.get("input", ""))).strip()
        if any(p.variable == variable for p in problems):
            continue
        if name == "admin_ids":
            problems.append(Problem(variable, value, CHAT_PAIRS))
            continue
        choices = typing.get_args(field.annotation) if name != "zalo_promotion" else SWITCH
        if choices:
            problems.append(Problem(variable, value, choices=tuple(map(str, choices))))
            continue
        low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), 0)
        high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), 0)
        expected = WHOLE_NUMBER if field.annotation is int else NUMBER
        problems.append(Problem(variable, value, expected, low=low, high=high))  # type: ignore[arg-type]
    return problems
