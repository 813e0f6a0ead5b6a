"""Short commands start quickly: `ykien communes search` imports neither the web server, nor
python-telegram-bot, nor the Zalo channels, and reads the commune index back from a cache
that a damaged or missing file never breaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# What `communes search` must not pay for at start-up.
HEAVY = ("bot.web", "telegram", "bot.channels.zalo_oa", "bot.channels.zalo_bot",
         "bot.channels.telegram", "bot.sending", "sqlalchemy", "alembic", "aiohttp")

PROBE = """
import contextlib, io, json, sys
from bot.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["communes", "search", "cam", "tu"])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def search_in_fresh_process(cache_home) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YKIEN_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache_home), YKIEN_LANGUAGE="en")
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=60, check=True, cwd=cache_home)
    return json.loads(done.stdout.splitlines()[-1])


def test_communes_search_imports_no_channel_and_no_web_server(tmp_path):
    result = search_in_fresh_process(tmp_path)
    assert result["code"] == 0 and "15148  Xã Cẩm Tú" in result["out"]
    loaded = [m for m in result["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []


def test_the_commune_index_cache_is_written_and_a_damaged_one_rebuilt(tmp_path):
    first = search_in_fresh_process(tmp_path)
    cached = list((tmp_path / "ykien").glob("communes-*.pickle"))
    assert len(cached) == 1 and cached[0].stat().st_size > 100_000
    cached[0].write_bytes(b"not a pickle")
    again = search_in_fresh_process(tmp_path)
    assert again["out"] == first["out"]
    assert cached[0].stat().st_size > 100_000  # rebuilt and written again
    assert list((tmp_path / "ykien").glob("tmp*")) == []  # no half-written file left


def test_an_unwritable_cache_folder_costs_nothing_but_time(tmp_path):
    (tmp_path / "ykien").write_text("a file where the folder would go", encoding="utf-8")
    assert "15148  Xã Cẩm Tú" in search_in_fresh_process(tmp_path)["out"]
