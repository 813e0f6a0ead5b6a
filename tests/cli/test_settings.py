"""Settings as an administrator writes them: in the environment or a .env file, every bad value
named at once in the user's language, with what it accepts; nothing of pydantic shows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.config import Settings
from tests import ykien_process
from tests.conftest import ROOT


def ykien(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("YKIEN_")}
    return ykien_process.run(
        args, cwd=cwd, text=True, env={**clean, "PYTHONPATH": str(ROOT), **env}, timeout=60
    )


def test_every_bad_value_is_named_at_once_in_vietnamese(tmp_path):
    done = ykien(tmp_path, {
        "YKIEN_LOG_LEVEL": "loud", "YKIEN_DELIVERY_CONCURRENCY": "٣٠",
        "YKIEN_TELEGRAM_MESSAGES_PER_SECOND": "nan", "YKIEN_ZALO_PROMOTION": "yes",
        "YKIEN_CONVERSATION_TIMEOUT_MINUTES": "5.5",
    }, "draft", "list")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 5, done.stderr
    assert any("YKIEN_LOG_LEVEL" in line and "“loud”" in line and "DEBUG, INFO" in line
               for line in lines)
    assert any("YKIEN_DELIVERY_CONCURRENCY" in line and "từ 1 đến 1.000" in line
               for line in lines)
    assert any("YKIEN_ZALO_PROMOTION" in line and "0, 1" in line for line in lines)
    assert all("hợp lệ" in line and ".env" in line for line in lines)
    for word in ("pydantic", "validation error", "Input should", "Traceback", "type="):
        assert word not in done.stderr


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text(
        "YKIEN_LANGUAGE=en\nYKIEN_LOG_LEVEL=shout\nSOMETHING_ELSE=1\n", encoding="utf-8")
    done = ykien(tmp_path, {}, "draft", "list")
    # The language of .env is used for the message about the other bad value.
    assert done.returncode == 2 and "YKIEN_LOG_LEVEL is “shout”" in done.stderr
    fixed = ykien(tmp_path, {"YKIEN_LOG_LEVEL": "warning",
                             "YKIEN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/y.db"},
                  "draft", "list")
    assert fixed.returncode == 0, fixed.stderr
    assert "No drafts yet" in fixed.stdout or "draft" in fixed.stdout.lower()


def test_blank_values_mean_the_default(monkeypatch):
    for name in list(os.environ):
        if name.startswith("YKIEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    monkeypatch.setenv("YKIEN_DATABASE_URL", "   ")
    monkeypatch.setenv("YKIEN_LANGUAGE", " EN ")
    monkeypatch.setenv("YKIEN_ADMIN_IDS", "telegram:1, zalo:2,")
    monkeypatch.setenv("YKIEN_TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("YKIEN_DELIVERY_MAX_ATTEMPTS", "")
    settings = Settings.from_env()
    assert settings.database_url == "sqlite+aiosqlite:///ykien.db"
    assert settings.language == "en"
    assert settings.admin_ids == ("telegram:1", "zalo:2")
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.delivery.max_attempts == 12


def test_settings_built_directly_read_nothing_from_the_environment(monkeypatch):
    monkeypatch.setenv("YKIEN_TELEGRAM_TOKEN", "123:from-the-environment")
    assert Settings().telegram_token == ""
    assert Settings(telegram_token="1:given").telegram_token == "1:given"


@pytest.mark.parametrize("secret", ["123456:SECRET-token", "s3cret-zalo"])
def test_secrets_never_appear_in_the_settings_shown(secret):
    settings = Settings(telegram_token=secret, zalo_app_secret=secret, zalo_bot_token=secret,
                        secret_key=secret, pseudonym_key=secret)
    assert secret not in repr(settings) and secret not in str(settings)
    assert secret not in f"{settings}"
