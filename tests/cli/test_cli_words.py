"""The command line as a newcomer meets it: one language (argparse's words too), a command group
typed alone lists its commands, and `communes search` says what it did not show or refuse."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from bot.cli.main import main

ARGPARSE_ENGLISH = (
    "usage:", "options:", "show this help message and exit", "the following arguments are",
    "invalid int value", "invalid choice", "error:", "unrecognized arguments",
    "positional arguments",
)


def run(monkeypatch, tmp_path, language: str, *argv: str) -> tuple[int, str]:
    """`ykien argv…` in this process; (exit code, everything printed)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YKIEN_LANGUAGE", language)
    monkeypatch.setenv("YKIEN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
    monkeypatch.setenv("YKIEN_TELEGRAM_TOKEN", "")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(list(argv))
        except SystemExit as leaving:  # argparse leaves with an exit code
            code = int(leaving.code or 0)
    return code, out.getvalue()


@pytest.mark.parametrize("argv", [
    ("--help",), ("draft", "--help"), ("export",), ("draft", "create"),
    ("communes", "search", "x", "--limit", "abc"), ("drft",), ("export", "--out", "a", "b"),
])
def test_no_english_word_of_argparse_in_the_vietnamese_interface(monkeypatch, tmp_path, argv):
    code, said = run(monkeypatch, tmp_path, "vi", *argv)
    assert code in (0, 2), said
    assert "cách dùng: ykien" in said
    for english in ARGPARSE_ENGLISH:
        assert english not in said, (english, said)


def test_the_english_interface_keeps_argparse_words(monkeypatch, tmp_path):
    code, said = run(monkeypatch, tmp_path, "en", "export")
    assert code == 2 and "usage: ykien export" in said
    assert "the following arguments are required: --out" in said


@pytest.mark.parametrize(("argv", "listed"), [
    ((), ("run", "serve", "console", "draft", "export", "communes")),
    (("draft",), ("create", "list", "broadcast", "status")),
    (("communes",), ("search",)),
])
def test_a_command_group_alone_lists_its_commands(monkeypatch, tmp_path, argv, listed):
    code, said = run(monkeypatch, tmp_path, "vi", *argv)
    assert code == 2
    assert "còn thiếu" not in said and "lỗi" not in said  # a listing, not an error
    for command in listed:
        assert re.search(rf"^    {command}\b", said, re.M), (command, said)


def test_a_province_of_several_words_needs_no_quotes(monkeypatch, tmp_path):
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "hiep", "phuoc",
                     "--province", "ho", "chi", "minh")
    assert code == 0, said
    assert "Xã Hiệp Phước — Thành phố Hồ Chí Minh" in said
    assert all("Hồ Chí Minh" in line for line in said.splitlines())


def test_results_cut_at_the_limit_say_how_many_there_are(monkeypatch, tmp_path):
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "phuong", "1")
    lines = said.splitlines()
    assert code == 0 and len(lines) == 11, said
    assert lines[-1].startswith("Đã hiện 10 trong 89 kết quả") and "--limit 89" in lines[-1]
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "phuong", "1",
                     "--limit", "89")
    assert code == 0 and len(said.splitlines()) == 89  # all of them, and nothing to add


@pytest.mark.parametrize("limit", ["0", "-3", "1.5", "١٠", "100000"])
def test_a_limit_that_is_not_a_sensible_count_is_refused(monkeypatch, tmp_path, limit):
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "cam", "tu",
                     "--limit", limit)
    assert code == 2
    assert f"“{limit}” không hợp lệ: hãy ghi một số nguyên từ 1 đến 5.000." in said
    assert "Không tìm thấy" not in said


def test_an_unknown_province_is_named_as_such(monkeypatch, tmp_path):
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "cam", "tu",
                     "--province", "narnia")
    assert code == 1 and "Không có tỉnh/thành phố nào tên “narnia”" in said
    code, said = run(monkeypatch, tmp_path, "vi", "communes", "search", "cam", "tu",
                     "--province", "38")  # a code works too: Thanh Hóa
    assert code == 0 and "15148" in said


def test_system_messages_are_said_in_vietnamese_with_their_detail_after(monkeypatch, tmp_path):
    code, said = run(monkeypatch, tmp_path, "vi", "export", "--out", "missing/x.csv")
    assert code == 1
    assert "không có tệp hay thư mục này (No such file or directory)" in said
    (tmp_path / "bad.toml").write_text('title = "x\nsummary = 1\n', encoding="utf-8")
    code, said = run(monkeypatch, tmp_path, "vi", "draft", "create", "--file", "bad.toml")
    assert code == 2 and "tệp bị sai ở dòng 1, cột 11 (Illegal character" in said, said
    assert "(at line" not in said


def test_a_database_that_refuses_is_said_in_vietnamese(monkeypatch, tmp_path):
    monkeypatch.setenv("YKIEN_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YKIEN_LANGUAGE", "vi")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["draft", "list"])
    said = out.getvalue()
    assert code == 1, said
    # The system's own words follow, as the event loop gives them (uvloop's, else asyncio's).
    assert "bị từ chối kết nối" in said
    assert "Connection refused" in said or "Connect call failed" in said
    assert "Traceback" not in said
