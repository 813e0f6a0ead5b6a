"""Draft files as officials write them: every mistake named with its key, all at once.

Run through the command line's entry point (`ykien draft create --file …`), in process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from bot.cli.main import main
from tests.conftest import EXAMPLE_DRAFT

EXAMPLE = EXAMPLE_DRAFT.read_text(encoding="utf-8")
EXAMPLE_COMMUNES = 'communes = ["Xã Cẩm Tú, Thanh Hóa"]'
EXAMPLE_OPTIONS = 'options = ["Đồng ý", "Không đồng ý", "Ý kiến khác"]'
EXAMPLE_OPENS = "opens_at = 2026-01-01T08:00:00"
EXAMPLE_DEADLINE = "deadline = 2099-12-31T17:00:00"
EXAMPLE_LINK = 'link = "https://camtu.thanhhoa.gov.vn/du-thao/ve-sinh-moi-truong"'


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture
def create(tmp_path, monkeypatch, capsys):
    """`ykien draft create --file F` for a file made from the example with replacements."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    monkeypatch.setenv("YKIEN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'ykien.db'}")
    monkeypatch.setenv("YKIEN_LANGUAGE", "en")
    monkeypatch.setenv("YKIEN_TELEGRAM_TOKEN", "")

    def run(*replacements: tuple[str, str], path: str = "draft.toml") -> Done:
        text = EXAMPLE
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        if path == "draft.toml":
            (tmp_path / path).write_text(text, encoding="utf-8")
        code = main(["draft", "create", "--file", path])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return Done(code, captured.out, captured.err)

    return run


def refused(done: Done) -> str:
    assert done.code == 2, done
    assert "Draft not created" in done.err and done.out == ""
    return done.err


def test_the_example_is_accepted(create):
    done = create()
    assert done.code == 0, done.err
    assert "Created draft no. 1" in done.out and "for 1 commune." in done.out
    assert "15148  Xã Cẩm Tú — Tỉnh Thanh Hóa" in done.out


def test_a_string_where_a_list_belongs_is_not_taken_letter_by_letter(create):
    err = refused(create(
        (EXAMPLE_COMMUNES, 'communes = "Xã Cẩm Tú, Thanh Hóa"'),
        (EXAMPLE_OPTIONS, 'options = "Đồng ý"'),
    ))
    assert "targets.communes: must be a list in square brackets" in err
    assert "poll.options: must be a list in square brackets" in err


def test_a_number_where_a_list_or_text_belongs(create):
    err = refused(create(
        (EXAMPLE_OPTIONS, "options = 3"),
        (EXAMPLE_COMMUNES, "provinces = 38"),
        ('title = "Dự thảo Quy định giữ gìn vệ sinh môi trường khu dân cư"', "title = 2026"),
    ))
    assert "poll.options: must be a list in square brackets" in err
    assert "targets.provinces: must be a list in square brackets" in err
    assert "title: must be text in quotes" in err
    assert "3 problems" in err


@pytest.mark.parametrize(("opens", "deadline", "wrong"), [
    ("0001-01-01T00:00:00+07:00", "2099-12-31T17:00:00", "opens_at"),
    ("0001-01-01T03:00:00", "2099-12-31T17:00:00", "opens_at"),  # Vietnam time: year 0 in UTC
    ("2026-01-01T08:00:00", "9999-12-31T23:59:59-07:00", "deadline"),
])
def test_dates_at_the_ends_of_the_calendar(create, opens, deadline, wrong):
    err = refused(create(
        (EXAMPLE_OPENS, f"opens_at = {opens}"), (EXAMPLE_DEADLINE, f"deadline = {deadline}"),
    ))
    assert f"{wrong}: " in err and "out of the range of dates" in err


def test_a_date_must_be_a_date(create):
    err = refused(create((EXAMPLE_DEADLINE, 'deadline = "next friday"')))
    assert "deadline: must be a date and time, for example 2026-12-15T17:00:00" in err


def test_duplicate_poll_options_are_refused(create):
    err = refused(create((EXAMPLE_OPTIONS, 'options = ["Đồng ý", "Không", "Dong y"]')))
    assert "poll.options: “Dong y” is given twice" in err


def test_unknown_keys_are_refused_with_a_suggestion(create):
    err = refused(create(
        (EXAMPLE_OPENS, "open_at = 2026-01-01T08:00:00"),
        ("[targets]", "[targets]\nprovince = [\"Thanh Hóa\"]"),
        ("[poll]", "[poll]\ncolour = \"red\""),
    ))
    assert "open_at: unknown key (did you mean opens_at?)" in err
    assert "targets.province: unknown key (did you mean provinces?)" in err
    assert "poll.colour: unknown key\n" in err


@pytest.mark.parametrize("link", [
    "javascript:alert(document.cookie)", "ftp://example.org/draft.pdf", "https://",
    "http:///path-only", "https://exa mple.org", "https://[::1",
])
def test_only_web_links_are_accepted(create, link):
    err = refused(create((EXAMPLE_LINK, f'link = "{link}"')))
    assert "link: must be a web address starting with http:// or https://" in err


def test_a_folder_is_named_as_a_folder(create, tmp_path):
    (tmp_path / "drafts").mkdir()
    err = refused(create(path="drafts"))
    assert "drafts is a folder, not a file." in err
    assert "YKIEN_DATABASE_URL" not in err


def test_an_unreadable_path_gets_its_real_cause(create, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    err = refused(create(path="notes.txt/draft.toml"))
    assert "Cannot read notes.txt/draft.toml: Not a directory." in err
    assert "YKIEN_DATABASE_URL" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_without_read_permission(create, tmp_path):
    locked = tmp_path / "locked.toml"
    locked.write_text(EXAMPLE, encoding="utf-8")
    locked.chmod(0)
    err = refused(create(path="locked.toml"))
    assert "Cannot read locked.toml: Permission denied." in err


@pytest.mark.parametrize("given", ['"00004"', "4", '"15148", 4'])
def test_official_codes_as_numbers_or_five_digits(create, given):
    done = create((EXAMPLE_COMMUNES, f"communes = [{given}]"))
    assert done.code == 0, done.err
    assert "00004  Phường Ba Đình — Thành phố Hà Nội" in done.out


@pytest.mark.parametrize("given", ['"4"', '"0004"', '"15 148"', '"１５１４８"', '"000004"'])
def test_strings_that_look_like_codes_but_are_not(create, given):
    err = refused(create((EXAMPLE_COMMUNES, f"communes = [{given}]")))
    assert f"targets.communes (item 1): “{given.strip(chr(34))}” is not a commune code" in err
    assert 'codes are written with 5 digits, such as "00004"' in err


def test_unknown_codes_and_shared_names_are_shown_with_five_digits(create):
    err = refused(create((EXAMPLE_COMMUNES, 'communes = [15148, 99999, 7, "ba dinh"]')))
    assert "targets.communes (item 2): there is no commune with code 99999" in err
    assert "targets.communes (item 3): there is no commune with code 00007" in err
    assert "targets.communes (item 4): “ba dinh” does not name exactly one commune" in err
    assert "00004 Phường Ba Đình — Thành phố Hà Nội" in err


def test_commune_names_still_work(create):
    done = create((EXAMPLE_COMMUNES, 'communes = ["Phường Ba Đình, Hà Nội", "cam tu thanh hoa"]'))
    assert done.code == 0, done.err
    assert "for 2 communes." in done.out
    assert "00004  Phường Ba Đình" in done.out and "15148  Xã Cẩm Tú" in done.out


def test_a_summary_too_long_is_listed_with_the_other_problems(create):
    err = refused(create(
        (EXAMPLE_DEADLINE, "deadline = 2020-01-01"),
        ('summary = """', 'summary = """' + "Nội dung dự thảo rất dài. " * 120),
    ))
    assert "Draft not created; 2 problems in draft.toml:" in err, err
    assert "  - deadline: must be in the future" in err
    assert "Shorten the summary by" in err


def test_a_title_too_long_is_not_blamed_on_the_summary(create):
    err = refused(create(('title = "Dự thảo', 'title = "' + "Dài " * 900 + 'Dự thảo')))
    assert "Draft not created; 1 problem in draft.toml:" in err, err
    assert "title: has 3" in err and "Shorten the summary" not in err


def test_every_problem_is_listed_at_once(create):
    err = refused(create(
        ('title = "Dự thảo', 'title = "' + "Dài " * 60 + 'Dự thảo'),
        (EXAMPLE_LINK, 'link = "javascript:void(0)"'),
        (EXAMPLE_DEADLINE, "deadline = 2020-01-01"),
        (EXAMPLE_COMMUNES, 'communes = ["0004"]'),
        (EXAMPLE_OPTIONS, 'options = ["Có"]'),
        ("[poll]", "[poll]\nquestoin = \"?\""),
    ))
    assert "Draft not created; 6 problems in draft.toml:" in err
    for problem in (
        "  - title: has 294 characters; the limit is 200",
        "  - link: must be a web address",
        "  - deadline: must be in the future",
        "  - targets.communes (item 1): “0004” is not a commune code",
        "  - poll.options: a poll needs 2 to 10 options; this one has 1",
        "  - poll.questoin: unknown key (did you mean question?)",
    ):
        assert problem in err


def test_the_checks_kept_from_before(create):
    err = refused(create(
        (EXAMPLE_OPENS, "opens_at = 2099-12-31T18:00:00"),
        ('issuer = "UBND xã Cẩm Tú"', 'issuer = "   "'),
    ))
    assert "deadline: must be after the opening time (opens_at)" in err
    assert "issuer: is empty" in err
    err = refused(create((EXAMPLE_COMMUNES, "")))
    assert "targets: the draft has no target" in err


def test_problems_are_in_the_language_of_the_command_line(create, monkeypatch):
    monkeypatch.setenv("YKIEN_LANGUAGE", "vi")
    done = create((EXAMPLE_COMMUNES, 'communes = ["tan thanh"]'))
    assert done.code == 2
    assert "targets.communes (mục 1): “tan thanh” không chỉ đúng một xã/phường" in done.err
    assert "Chưa tạo được dự thảo" in done.err


EXAMPLE_LEVEL = 'issuer_level = "commune"'


@pytest.mark.parametrize(("given", "stored"), [
    ('"national"', "national"), ('"Provincial"', "provincial"), ('"tỉnh"', "provincial"),
    ('"Xã"', "commune"), ('""', ""),
])
def test_the_issuer_level_is_stored(create, given, stored, tmp_path):
    import sqlite3

    done = create((EXAMPLE_LEVEL, f"issuer_level = {given}"))
    assert done.code == 0, done.err
    with sqlite3.connect(tmp_path / "ykien.db") as database:
        assert database.execute("SELECT issuer_level FROM drafts").fetchall() == [(stored,)]


def test_without_an_issuer_level_it_is_not_stated(create, tmp_path):
    import sqlite3

    done = create((EXAMPLE_LEVEL, ""))
    assert done.code == 0 and "The level of the issuing body is not stated" in done.out
    with sqlite3.connect(tmp_path / "ykien.db") as database:
        assert database.execute("SELECT issuer_level FROM drafts").fetchall() == [("",)]
    assert "not stated" not in create().out


def test_a_misspelt_issuer_level_is_named_with_a_suggestion(create, monkeypatch):
    err = refused(create((EXAMPLE_LEVEL, 'issuer_level = "provincal"')))
    assert ("issuer_level: “provincal” is not a level: write national, provincial or commune "
            "(did you mean provincial?)") in err
    err = refused(create((EXAMPLE_LEVEL, 'issuer_level = "district"')))
    assert "issuer_level: “district” is not a level: write national, provincial or commune\n" \
        in err
    err = refused(create((EXAMPLE_LEVEL, "issuer_level = 3")))
    assert "issuer_level: must be text in quotes" in err
    monkeypatch.setenv("YKIEN_LANGUAGE", "vi")
    err = create((EXAMPLE_LEVEL, 'issuer_level = "provincal"')).err
    assert "issuer_level: “provincal” không phải là một cấp" in err
