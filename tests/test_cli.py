"""The `ykien` command line, run as a user would: a separate process on a real database."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_DRAFT, ROOT


@pytest.fixture
def ykien(tmp_path, database_url):
    base_env = {
        **os.environ,
        "YKIEN_DATABASE_URL": database_url,
        "YKIEN_TELEGRAM_TOKEN": "",
        "YKIEN_LANGUAGE": "en",
        "PYTHONPATH": str(ROOT),
    }

    def run(
        *args: str, stdin: str = "", check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
            env={**base_env, **(env or {})}, cwd=tmp_path, timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


def test_help_everywhere(ykien):
    for args in ([], ["draft"], ["draft", "create"], ["export"], ["communes", "search"],
                 ["db"], ["console"], ["run"]):
        done = ykien(*args, "--help")
        assert "usage: ykien" in done.stdout


def test_communes_search(ykien):
    out = ykien("communes", "search", "cam", "luong").stdout
    assert "15148  Xã Cẩm Tú — Tỉnh Thanh Hóa" in out and "Xã Cẩm Lương" in out
    assert ykien("communes", "search", "zzzzqqq", check=False).returncode == 1


def test_draft_create_broadcast_console_and_export(ykien, tmp_path):
    ykien("db", "upgrade")
    # A resident subscribes in the console before the draft exists.
    ykien("console", "--user", "minh", stdin="/start\n1\ncam tu\n1\n")
    out = ykien("draft", "create", "--file", str(EXAMPLE_DRAFT)).stdout
    assert "no. 1" in out
    assert "1 new messages queued" in ykien("draft", "broadcast", "1").stdout
    assert "0 new messages queued" in ykien("draft", "broadcast", "1").stdout  # never twice
    out = ykien("console", "--user", "minh", stdin="1\nPhí hợp lý.\n/drafts\n2\n").stdout
    assert "Dự thảo Quy định giữ gìn vệ sinh môi trường" in out
    listing = ykien("draft", "list").stdout
    assert "1/1 sent, 1 comments" in listing

    ykien("export", "--draft", "1", "--out", "comments.csv")
    raw = (tmp_path / "comments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the UTF-8 Vietnamese right
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["Draft no.", "Draft title", "Kind"]
    assert [(row[2], row[8], row[9]) for row in rows[1:]] == [
        ("comment", "Phí hợp lý.", ""), ("vote", "", "Đồng ý")
    ]
    assert "minh" not in raw.decode("utf-8-sig")


def test_draft_file_mistakes_are_explained(ykien, tmp_path):
    too_long = EXAMPLE_DRAFT.read_text(encoding="utf-8").replace(
        'summary = """', 'summary = """' + "Rất dài. " * 260
    )
    (tmp_path / "long.toml").write_text(too_long, encoding="utf-8")
    done = ykien("draft", "create", "--file", "long.toml", check=False)
    assert done.returncode == 2
    assert "2,000" in done.stderr and "Shorten the summary by" in done.stderr
    done = ykien("draft", "create", "--file", "missing.toml", check=False)
    assert done.returncode == 2 and "File not found" in done.stderr
    (tmp_path / "bad.toml").write_text('title = "x"\n[targets]\ncommunes = ["tan thanh"]\n')
    done = ykien("draft", "create", "--file", "bad.toml", check=False)
    assert "does not name exactly one commune" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_without_a_channel_explains_and_falls_back_to_the_console(ykien):
    done = ykien("run", stdin="/start\n")
    assert "YKIEN_TELEGRAM_TOKEN" in done.stderr and "@BotFather" in done.stderr
    assert "/delete" in done.stdout  # the greeting, from the console


def test_unknown_draft(ykien):
    done = ykien("draft", "broadcast", "99", check=False)
    assert done.returncode == 2 and "no draft no. 99" in done.stderr


def test_examples_exist():
    assert Path(EXAMPLE_DRAFT).exists()


def test_an_unreachable_database_is_explained_without_a_traceback(ykien):
    done = ykien("draft", "list", check=False, env={
        "YKIEN_DATABASE_URL": "postgresql+asyncpg://nobody:secret@127.0.0.1:1/x"})
    assert done.returncode == 1
    assert "YKIEN_DATABASE_URL" in done.stderr and "secret" not in done.stderr
    assert "Traceback" not in done.stderr
