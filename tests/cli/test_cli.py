"""The `ykien` command line, run as a user would: a separate process on a real database."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import sqlite3
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from handlers.events import Incoming, Kind
from storage.models import Delivery, Draft, utcnow
from tests import ykien_process
from tests.conftest import EXAMPLE_DRAFT, cli_environment


@pytest.fixture
def ykien(tmp_path, database_url):
    base_env = cli_environment(database_url)

    def run(
        *args: str, stdin: str = "", check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        done = ykien_process.run(
            args, input=stdin, text=True, env={**base_env, **(env or {})}, cwd=tmp_path,
            timeout=120,
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
    # Codes as the government's list writes them: five digits.
    out = ykien("communes", "search", "phuong ba dinh", "--limit", "1").stdout
    assert out == "00004  Phường Ba Đình — Thành phố Hà Nội\n"
    assert ykien("communes", "search", "zzzzqqq", check=False).returncode == 1


def test_draft_create_broadcast_console_and_export(ykien, tmp_path):
    ykien("db", "upgrade")
    # A resident subscribes in the console before the draft exists.
    ykien("console", "--user", "minh", stdin="/start\n1\ncam tu\n1\n")
    out = ykien("draft", "create", "--file", str(EXAMPLE_DRAFT)).stdout
    assert "no. 1" in out
    assert "1 new message queued" in ykien("draft", "broadcast", "1").stdout
    assert "0 new messages queued" in ykien("draft", "broadcast", "1").stdout  # never twice
    out = ykien("console", "--user", "minh", stdin="1\nPhí hợp lý.\n/drafts\n2\n").stdout
    assert "Dự thảo Quy định giữ gìn vệ sinh môi trường" in out
    listing = ykien("draft", "list").stdout
    # Reached: the one subscriber, by the broadcast (and only once, though /drafts showed it).
    assert "1 commune, reached 1 resident (broadcast: 1/1 sent), 1 comment, 1 vote" in listing

    assert "Wrote 2 rows" in ykien("export", "--draft", "1", "--out", "comments.csv").stdout
    raw = (tmp_path / "comments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the UTF-8 Vietnamese right
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:5] == ["Draft no.", "Draft title", "Kind", "Receipt no.", "Commune code"]
    assert [(row[2], row[3], row[9], row[10]) for row in rows[1:]] == [
        ("comment", "1-1", "Phí hợp lý.", ""), ("vote", "", "", "Đồng ý")
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
    (tmp_path / "folder.toml").mkdir()
    done = ykien("draft", "create", "--file", "folder.toml", check=False)
    assert done.returncode == 2 and "folder.toml is a folder, not a file." in done.stderr
    assert "YKIEN_DATABASE_URL" not in done.stderr


def test_the_draft_file_is_given_bare_or_named_once(ykien):
    assert "Created draft no. 1" in ykien("draft", "create", str(EXAMPLE_DRAFT)).stdout
    assert "Created draft no. 2" in ykien("draft", "create", "--file", str(EXAMPLE_DRAFT)).stdout
    for wrong in ((), (str(EXAMPLE_DRAFT), "--file", str(EXAMPLE_DRAFT))):
        done = ykien("draft", "create", *wrong, check=False)
        assert done.returncode == 2 and "FILE" in done.stderr and "Traceback" not in done.stderr
    assert "Created draft no. 3" not in ykien("draft", "list").stdout


def test_run_without_a_channel_explains_and_falls_back_to_the_console(ykien):
    done = ykien("run", stdin="/start\n")
    assert "YKIEN_TELEGRAM_TOKEN" in done.stderr and "@BotFather" in done.stderr
    assert "/delete" in done.stdout  # the greeting, from the console


def test_webhook_delete_without_a_bot_says_which_settings_name_one(ykien):
    done = ykien("webhook", "delete", check=False)
    assert done.returncode == 2
    assert "YKIEN_TELEGRAM_TOKEN" in done.stderr and "YKIEN_ZALO_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_draft(ykien):
    for command in ("broadcast", "close"):
        done = ykien("draft", command, "99", check=False)
        assert done.returncode == 1 and "There is no draft no. 99." in done.stderr


def test_examples_exist():
    assert Path(EXAMPLE_DRAFT).exists()


def test_an_unreachable_database_is_explained_without_a_traceback(ykien):
    done = ykien("draft", "list", check=False, env={
        "YKIEN_DATABASE_URL": "postgresql+asyncpg://nobody:secret@127.0.0.1:1/x"})
    assert done.returncode == 1
    assert "YKIEN_DATABASE_URL" in done.stderr and "secret" not in done.stderr
    assert "Traceback" not in done.stderr


# --- export: never destroy a file, never the database ----------------------------------------


def export_header(path: Path) -> list[str]:
    return next(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))


def leftovers(folder: Path) -> list[str]:
    """Temporary files an export left behind."""
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_export_does_not_replace_a_file_unless_forced(ykien, tmp_path):
    ykien("db", "upgrade")
    previous = tmp_path / "comments.csv"
    previous.write_text("last week's export", encoding="utf-8")
    done = ykien("export", "--out", "comments.csv", check=False)
    assert done.returncode == 1
    assert "comments.csv already exists" in done.stderr and "--force" in done.stderr
    assert previous.read_text(encoding="utf-8") == "last week's export"

    assert "Wrote 0 rows to comments.csv." in ykien(
        "export", "--out", "comments.csv", "--force").stdout
    assert export_header(previous)[:4] == ["Draft no.", "Draft title", "Kind", "Receipt no."]
    assert leftovers(tmp_path) == []


def test_export_replaces_only_a_regular_file_even_with_force(ykien, tmp_path):
    ykien("db", "upgrade")
    real = tmp_path / "real.csv"
    real.write_text("last week's export", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to(real)
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(tmp_path / "pipe.csv")
    for target in ("link.csv", "dangling.csv", "pipe.csv"):
        for force in ([], ["--force"]):
            done = ykien("export", "--out", target, *force, check=False)
            assert done.returncode == 1, (target, force)
            assert f"{target} is not a regular file" in done.stderr
            assert "--out -" in done.stderr  # the way to stream it there
            assert "--force" not in done.stderr  # it would not help
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "dangling.csv").is_symlink()
    assert os.readlink(tmp_path / "link.csv") == str(real)
    assert real.read_text(encoding="utf-8") == "last week's export"
    assert stat.S_ISFIFO((tmp_path / "pipe.csv").lstat().st_mode)
    assert not (tmp_path / "nowhere.csv").exists()
    assert leftovers(tmp_path) == []


def test_export_never_replaces_a_device_not_even_as_root(ykien, tmp_path):
    """As root, `--out /dev/null --force` once put a world-writable CSV file in its place."""
    ykien("db", "upgrade")
    if os.geteuid() == 0:  # a null device of our own first: a failure here spares /dev/null
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        done = ykien("export", "--out", str(device), "--force", check=False)
        assert done.returncode == 1 and f"{device} is not a regular file" in done.stderr
        assert stat.S_ISCHR(device.lstat().st_mode)
    before = os.lstat("/dev/null")
    done = ykien("export", "--out", "/dev/null", "--force", check=False)
    assert done.returncode == 1 and "/dev/null is not a regular file" in done.stderr
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    streamed = ykien("export", "--out", "-")  # streaming is the way to write through one
    assert streamed.stdout.startswith("\ufeffDraft no.,")


async def test_a_pipe_appearing_at_the_target_during_the_export_is_not_replaced(
    tmp_path, database_url, monkeypatch
):
    import storage.export
    from bot.cli.main import main

    target = tmp_path / "comments.csv"
    real_export = storage.export.export_csv

    async def export_while_a_pipe_appears(*args, **kwargs):
        count = await real_export(*args, **kwargs)
        os.mkfifo(target)  # after the check before writing, before the rename
        return count

    monkeypatch.setattr(storage.export, "export_csv", export_while_a_pipe_appears)
    for name, value in cli_environment(database_url).items():
        monkeypatch.setenv(name, value)
    argv = ["export", "--out", str(target), "--force"]
    assert await asyncio.wait_for(asyncio.to_thread(main, argv), 60) == 1
    assert stat.S_ISFIFO(target.lstat().st_mode)
    assert leftovers(tmp_path) == []


def test_export_never_writes_over_the_database(ykien, tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("only an SQLite database is a file")
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(tmp_path / "ykien.db")
    os.link(tmp_path / "ykien.db", tmp_path / "hard.csv")
    for target in ("ykien.db", "ykien.db-wal", "ykien.db-shm", "ykien.db-journal",
                   "sub/../ykien.db", str(tmp_path / "ykien.db"), "link.csv", "hard.csv"):
        for force in ([], ["--force"]):
            done = ykien("export", "--out", target, *force, check=False)
            assert done.returncode == 1, target
            assert f"{target} is the database (YKIEN_DATABASE_URL)" in done.stderr
    assert "no. 1 [not sent yet]" in ykien("draft", "list").stdout
    with sqlite3.connect(tmp_path / "ykien.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_failed_export_leaves_the_previous_file(ykien, tmp_path):
    ykien("db", "upgrade")
    previous = tmp_path / "comments.csv"
    previous.write_text("last week's export", encoding="utf-8")
    done = ykien("export", "--draft", "99", "--out", "comments.csv", "--force", check=False)
    assert done.returncode == 1
    assert "There is no draft no. 99; nothing was written." in done.stderr
    assert previous.read_text(encoding="utf-8") == "last week's export"
    assert leftovers(tmp_path) == []


def test_an_export_failing_halfway_leaves_the_previous_file(ykien, tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the broken row is written with sqlite3")
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    with sqlite3.connect(tmp_path / "ykien.db") as db:  # a row the export cannot read
        db.execute("INSERT INTO comments (draft_id, number, text, created_at) "
                   "VALUES (1, 1, 'x', 'not a time')")
    done = ykien("export", "--out", "new.csv", check=False)
    assert done.returncode != 0
    assert not (tmp_path / "new.csv").exists()  # not a file cut short after its header
    previous = tmp_path / "comments.csv"
    previous.write_text("last week's export", encoding="utf-8")
    done = ykien("export", "--out", "comments.csv", "--force", check=False)
    assert done.returncode != 0
    assert previous.read_text(encoding="utf-8") == "last week's export"
    assert leftovers(tmp_path) == []


def test_export_to_standard_output(ykien, tmp_path):
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    done = ykien("export", "--draft", "1", "--out", "-")
    assert done.stdout.startswith("\ufeffDraft no.,Draft title,Kind,Receipt no.,")
    assert "Wrote 0 rows to standard output." in done.stderr
    assert not (tmp_path / "-").exists()


def test_export_of_a_draft_that_does_not_exist(ykien, tmp_path):
    done = ykien("export", "--draft", "7", "--out", "new.csv", check=False)
    assert done.returncode == 1 and "There is no draft no. 7" in done.stderr
    assert "0 rows" not in done.stdout + done.stderr
    assert not (tmp_path / "new.csv").exists()


def test_a_file_problem_names_the_file_not_the_database(ykien):
    done = ykien("export", "--out", "missing/comments.csv", check=False)
    assert done.returncode == 1
    assert "Cannot use the file missing/comments.csv: No such file or directory" in done.stderr
    assert "YKIEN_DATABASE_URL" not in done.stderr and "Traceback" not in done.stderr


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value", "accepted"), [
    ("YKIEN_LOG_LEVEL", "loud", "DEBUG, INFO, WARNING, ERROR"),
    ("YKIEN_LANGUAGE", "fr", "vi, en"),
    ("YKIEN_CONVERSATION_TIMEOUT_MINUTES", "0", "1"),
    ("YKIEN_WEBHOOK_LEASE_SECONDS", "1", "2"),
])
def test_an_invalid_setting_is_named_with_what_it_accepts(ykien, variable, value, accepted):
    done = ykien("draft", "list", check=False, env={variable: value})
    assert done.returncode == 2
    assert f"{variable}" in done.stderr and f"“{value}”" in done.stderr
    assert accepted in done.stderr and ".env" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


# --- drafts: effective state, closing, broadcasting ------------------------------------------


def draft_file(tmp_path: Path, name: str, **values: str) -> str:
    """The example draft with some top-level values replaced."""
    text = EXAMPLE_DRAFT.read_text(encoding="utf-8")
    for key, value in values.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def listed_states(listing: str) -> dict[int, str]:
    return {int(n): state for n, state in re.findall(r"^no\. (\d+) \[([^\]]+)\]", listing, re.M)}


async def set_deadline_passed(sessionmaker, draft_id: int) -> None:
    async with sessionmaker() as session:
        await session.execute(update(Draft).where(Draft.id == draft_id)
                              .values(deadline=utcnow() - timedelta(minutes=1)))
        await session.commit()


async def test_draft_list_shows_the_state_at_this_moment(ykien, tmp_path, sessionmaker):
    example = str(EXAMPLE_DRAFT)
    later = draft_file(tmp_path, "later.toml", opens_at="2099-01-01T08:00:00")
    for file in (example, example, later, example, example):
        ykien("draft", "create", "--file", file)
    for number in ("2", "3", "4", "5"):
        ykien("draft", "broadcast", number)
    await set_deadline_passed(sessionmaker, 2)
    done = ykien("draft", "close", "5")
    assert "Closed draft no. 5" in done.stdout
    assert listed_states(ykien("draft", "list").stdout) == {
        1: "not sent yet", 2: "closed", 3: "scheduled", 4: "open", 5: "closed",
    }
    assert "Draft no. 5 was already closed." in ykien("draft", "close", "5").stdout
    async with sessionmaker() as session:
        closed = await session.get(Draft, 5)
        assert closed is not None and closed.status == "closed" and closed.closed_at is not None


async def test_a_closed_draft_is_not_broadcast(ykien, service, sessionmaker):
    for user in ("u1", "u2"):
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="agree:en"))
        await service.handle(Incoming("test", user, Kind.CHOICE, choice="commune:15148"))
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    ykien("draft", "create", "--file", str(EXAMPLE_DRAFT))
    await set_deadline_passed(sessionmaker, 1)
    ykien("draft", "close", "2")
    for number in ("1", "2"):
        done = ykien("draft", "broadcast", number, check=False)
        assert done.returncode == 1
        assert f"Draft no. {number} is closed; it cannot be broadcast." in done.stderr
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0
