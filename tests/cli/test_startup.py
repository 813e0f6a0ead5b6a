"""Short commands start quickly: `ykien communes search` imports neither the web server, nor
python-telegram-bot, nor the Zalo channels, nor the settings' pydantic, nor an event loop; it
reads the commune index and the catalogue back from caches that a damaged or missing file
never breaks, and once they are warm it loads nothing of Babel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from babel.numbers import format_decimal

from bot import config
from bot.cli import language
from bot.cli.language import configured_language
from bot.config import Settings
from handlers.i18n import LANGUAGES, translator
from tests.conftest import ROOT

# What `communes search` must not pay for at start-up.
HEAVY = ("bot.web", "telegram", "bot.channels", "bot.sending", "sqlalchemy", "alembic",
         "aiohttp", "pydantic", "pydantic_settings", "bot.config", "asyncio")

PROBE = """
import contextlib, io, json, sys
from bot.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out, \\
        contextlib.redirect_stderr(io.StringIO()) as err:
    try:
        code = main(sys.argv[1:])
    except SystemExit as leaving:  # argparse's help and errors
        code = leaving.code
print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                  "modules": sorted(sys.modules)}))
"""


def search_in_fresh_process(cache_home, *argv: str, language: str = "en") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YKIEN_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache_home), YKIEN_LANGUAGE=language)
    done = subprocess.run([sys.executable, "-c", PROBE, *(argv or ("communes", "search", "cam",
                                                                   "tu"))],
                          env=env, capture_output=True, text=True, timeout=60, check=True,
                          cwd=cache_home)
    return json.loads(done.stdout.splitlines()[-1])


def among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def test_communes_search_imports_no_channel_no_web_server_no_settings(tmp_path):
    result = search_in_fresh_process(tmp_path)
    assert result["code"] == 0 and "15148  Xã Cẩm Tú" in result["out"]
    assert among(result["modules"], HEAVY) == []


def test_with_warm_caches_communes_search_and_help_load_nothing_of_babel(tmp_path):
    search_in_fresh_process(tmp_path, language="vi")  # compiles the catalogue with Babel
    warm = search_in_fresh_process(tmp_path, "communes", "search", "phuong", "1", language="vi")
    assert warm["code"] == 0 and "Đã hiện 10 trong 89 kết quả" in warm["err"]
    assert among(warm["modules"], ("babel", *HEAVY)) == []
    # Numbers are written as Babel writes them in Vietnamese ("5.000"), without Babel.
    refused = search_in_fresh_process(tmp_path, "communes", "search", "x", "--limit", "0",
                                      language="vi")
    assert refused["code"] == 2 and "từ 1 đến 5.000" in refused["err"]
    assert among(refused["modules"], ("babel", *HEAVY)) == []
    for argv in (("--help",), ("communes", "search", "--help")):
        helped = search_in_fresh_process(tmp_path, *argv, language="vi")
        assert helped["code"] == 0 and "cách dùng: ykien" in helped["out"]
        assert among(helped["modules"], ("babel", *HEAVY)) == []


def test_a_damaged_catalogue_cache_is_compiled_again(tmp_path):
    first = search_in_fresh_process(tmp_path, "communes", "search", "zzzzqq", language="vi")
    cached = list((tmp_path / "ykien").glob("messages-vi-*.marshal"))
    assert len(cached) == 1
    cached[0].write_bytes(b"not a catalogue")
    again = search_in_fresh_process(tmp_path, "communes", "search", "zzzzqq", language="vi")
    assert again["out"] == first["out"] == "Không tìm thấy xã/phường nào.\n"
    assert cached[0].stat().st_size > 10_000


def test_the_commune_index_cache_is_written_and_a_damaged_one_rebuilt(tmp_path):
    first = search_in_fresh_process(tmp_path)
    cached = list((tmp_path / "ykien").glob("communes-*.marshal"))
    assert len(cached) == 1 and cached[0].stat().st_size > 100_000
    cached[0].write_bytes(b"not a pickle")
    again = search_in_fresh_process(tmp_path)
    assert again["out"] == first["out"]
    assert cached[0].stat().st_size > 100_000  # rebuilt and written again
    assert list((tmp_path / "ykien").glob("tmp*")) == []  # no half-written file left


def test_a_new_build_removes_the_older_builds_of_its_file_and_nothing_else(tmp_path):
    folder = tmp_path / "ykien"
    folder.mkdir()
    older = [folder / f"communes-{'0' * 24}.marshal", folder / f"messages-vi-{'a1' * 12}.marshal"]
    kept = [folder / f"messages-en-{'b2' * 12}.marshal",  # another language's catalogue
            folder / "communes-notes.marshal",  # not a build's name
            folder / f"communes-{'0' * 24}.txt", folder / "README"]
    for path in older + kept:
        path.write_bytes(b"an earlier version's file")
    assert "15148  Xã Cẩm Tú" in search_in_fresh_process(tmp_path, language="vi")["out"]
    built = {path.name.rsplit("-", 1)[0] for path in folder.glob("*-*.marshal")
             if path not in kept}
    assert built == {"communes", "messages-vi"}
    assert [path for path in older if path.exists()] == []
    assert all(path.read_bytes() == b"an earlier version's file" for path in kept)


def test_an_unwritable_cache_folder_costs_nothing_but_time(tmp_path):
    (tmp_path / "ykien").write_text("a file where the folder would go", encoding="utf-8")
    assert "15148  Xã Cẩm Tú" in search_in_fresh_process(tmp_path)["out"]


@pytest.mark.parametrize(("environment", "dotenv"), [
    ({}, None),
    ({"YKIEN_LANGUAGE": "en"}, None),
    ({"YKIEN_LANGUAGE": " EN "}, None),
    ({}, "YKIEN_LANGUAGE=en\n"),
    ({"YKIEN_LANGUAGE": ""}, "YKIEN_LANGUAGE=en\n"),  # empty: .env decides
    ({"YKIEN_LANGUAGE": "  "}, "YKIEN_LANGUAGE=en\n"),  # blank: the default
    ({"YKIEN_LANGUAGE": "vi"}, "YKIEN_LANGUAGE=en\n"),  # the environment wins
    ({"ykien_language": "en"}, None),  # names in any case
    ({}, "ykien_language='en'\n"),
    ({}, "YKIEN_LANGUAGE=\n"),
])
def test_the_quick_reading_of_the_language_agrees_with_the_settings(
        monkeypatch, tmp_path, environment, dotenv):
    for name in [name for name in os.environ if name.upper().startswith("YKIEN_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    assert translator(configured_language()).language == Settings.from_env().language


def test_the_quick_reading_names_what_the_settings_name():
    assert (language.VARIABLE, language.ENV_FILE) == (config.PREFIX + "LANGUAGE", config.ENV_FILE)


def test_a_bad_language_is_still_refused_with_the_other_bad_settings(tmp_path):
    (tmp_path / ".env").write_text("YKIEN_LOG_LEVEL=loud\n", encoding="utf-8")
    result = search_in_fresh_process(tmp_path, language="french")
    assert result["code"] == 2 and result["out"] == ""
    lines = result["err"].splitlines()
    assert len(lines) == 2 and "YKIEN_LANGUAGE" in lines[0] + lines[1]


@pytest.mark.parametrize("language_code", LANGUAGES)
def test_whole_numbers_are_written_as_babel_writes_them(language_code):
    t = translator(language_code)
    for value in (0, 7, -7, 999, 1000, -1000, 5000, 12_345, 1_234_567, -98_765_432, 10**12):
        assert t.number(value) == format_decimal(value, locale=language_code)
    assert t.number(1234.5) == format_decimal(1234.5, locale=language_code)
