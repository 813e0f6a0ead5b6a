"""`ykien backup` and `ykien restore` (issue 20, part 5), run as a separate process.

On SQLite: a backup taken while comments and broadcasts are being written is one consistent
state, and restores to a working bot; a restore checks the file, refuses while a process has
the database open, and keeps the database it replaces. On PostgreSQL both commands give the
pg_dump / pg_restore commands, and the pg_dump command given makes a backup, taken under the
same writes, that pg_restore brings back.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.service import ChatService
from handlers.onboarding import CONSENT_VERSION
from storage.db import open_database
from storage.drafts import broadcast
from storage.flood import CommentLimits
from storage.models import Comment, Delivery, Draft, Resident, utcnow
from storage.queries import add_residents_in_bulk
from tests import ykien_process
from tests.chat import CAM_TU, make_draft, press, text
from tests.conftest import POSTGRES_URL, cli_environment

RESIDENTS = 300  # subscribed to Cẩm Tú: each broadcast queues one message for each
WRITERS = 8  # residents commenting at the same time


def ykien(tmp_path: Path, database_url: str, *args: str, stdin: str = ""
          ) -> subprocess.CompletedProcess:
    return ykien_process.run(args, input=stdin, text=True, env=cli_environment(database_url),
                             cwd=tmp_path, timeout=120)


async def populate(url: str) -> None:
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        now = utcnow()
        await add_residents_in_bulk(session, [
            {"channel": "test", "platform_id": f"r{i}", "language": "en", "commune_code": CAM_TU,
             "consent_at": now, "consent_version": CONSENT_VERSION, "subscribed": True,
             "reachable": True, "notice_version": CONSENT_VERSION, "created_at": now}
            for i in range(RESIDENTS)])
        await session.commit()


async def awaiting_comment(url: str) -> int:
    """A console resident whose next text is a comment on the commented draft: its id."""
    async with open_database(url) as sessionmaker, sessionmaker() as session:
        draft = await session.scalar(select(Draft).where(Draft.title == "Commented on"))
        assert draft is not None
        now = utcnow()
        await add_residents_in_bulk(session, [{
            "channel": "console", "platform_id": "minh", "language": "en",
            "commune_code": CAM_TU, "consent_at": now, "consent_version": CONSENT_VERSION,
            "subscribed": True, "reachable": True, "notice_version": CONSENT_VERSION,
            "awaiting": f"comment:{draft.id}", "awaiting_since": now, "created_at": now}])
        await session.commit()
        return draft.id


async def write_until(url: str, done: asyncio.Event) -> tuple[int, int]:
    """Comments from WRITERS residents and one broadcast after another, until `done`: how
    many comments and broadcasts were committed."""
    async with open_database(url) as sessionmaker:
        draft = await make_draft(sessionmaker, title="Commented on")
        service = ChatService(sessionmaker, comment_limits=CommentLimits(10_000, 100_000))
        comments = broadcasts = 0

        async def comment(user: str) -> None:
            nonlocal comments
            while not done.is_set():
                await service.handle(press(user, f"comment:{draft.id}"))
                await service.handle(text(user, f"comment {comments}"))
                comments += 1

        async def broadcast_drafts() -> None:
            nonlocal broadcasts
            while not done.is_set():
                queued = await make_draft(sessionmaker, title=f"Broadcast {broadcasts}",
                                          open_now=False)
                async with sessionmaker() as session, session.begin():
                    await broadcast(session, await session.merge(queued), utcnow())
                broadcasts += 1

        await asyncio.gather(*(comment(f"r{i}") for i in range(WRITERS)), broadcast_drafts())
    return comments, broadcasts


async def while_writing(url: str, action) -> tuple[object, int, int]:
    """Run `action` (in a thread) once writes are under way; the writes go on until it ends."""
    done = asyncio.Event()
    writing = asyncio.create_task(write_until(url, done))
    try:
        async with open_database(url) as sessionmaker:
            # Under way: some comments and one broadcast committed (polled, not timed).
            while True:
                async with sessionmaker() as session:
                    written = await session.scalar(select(func.count()).select_from(Comment))
                    queued = await session.scalar(select(func.count()).select_from(Delivery))
                if written and queued:
                    break
                await asyncio.sleep(0.01)
        outcome = await asyncio.to_thread(action)
    finally:
        done.set()
        comments, broadcasts = await writing
    return outcome, comments, broadcasts


def consistent_counts(rows) -> None:
    """Every draft's receipt counter matches its comments, and every broadcast queued all
    its messages or none: a backup is one committed state, not a mixture."""
    for comment_count, comments, deliveries, status in rows:
        assert comment_count == comments
        assert deliveries in (0, RESIDENTS) or (status == "draft" and deliveries == 0)


SQLITE_COUNTS = """
    SELECT d.comment_count,
           (SELECT count(*) FROM comments c WHERE c.draft_id = d.id),
           (SELECT count(*) FROM deliveries x WHERE x.draft_id = d.id), d.status
    FROM drafts d"""


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "ykien.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def head_revision() -> str:
    """The newest migration's revision: the schema a backup of a current database has."""
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_a_backup_under_writes_is_consistent_and_restores_to_a_working_bot(
        tmp_path, sqlite_url):
    await populate(sqlite_url)
    target = tmp_path / "backup.db"
    done, comments, broadcasts = await while_writing(
        sqlite_url, lambda: ykien(tmp_path, sqlite_url, "backup", "--out", str(target)))
    assert done.returncode == 0, done.stderr
    assert f"schema {head_revision()}" in done.stdout and "personal data" in done.stdout
    assert target.stat().st_mode & 0o077 == 0  # only its owner reads it
    assert not Path(f"{target}-wal").exists()  # one self-contained file
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counts = copy.execute(SQLITE_COUNTS).fetchall()
        backed_up = copy.execute("SELECT count(*) FROM comments").fetchone()[0]
    consistent_counts(counts)
    # Taken while writing: the database went on after it.
    assert 0 < backed_up < comments and broadcasts >= 1

    # Restoring over the database is refused while a process has it open.
    async with open_database(sqlite_url) as sessionmaker, sessionmaker() as session:
        await session.scalar(select(func.count()).select_from(Resident))
        refused = ykien(tmp_path, sqlite_url, "restore", str(target), "--force")
        assert refused.returncode == 1
        assert "is open in another process" in refused.stderr
        assert await session.scalar(select(func.count()).select_from(Comment)) == comments
    restored = ykien(tmp_path, sqlite_url, "restore", str(target), "--force")
    assert restored.returncode == 0, restored.stderr
    kept = next(path for path in tmp_path.glob("ykien.db.replaced-*")
                if not path.name.endswith(("-wal", "-journal")))
    assert f"kept as {kept}" in restored.stdout
    with sqlite3.connect(kept) as old:  # the replaced database, whole, with what came after
        assert old.execute("SELECT count(*) FROM comments").fetchone()[0] == comments

    # A working bot: a resident comments, and the receipt follows the restored counter.
    draft_id = await awaiting_comment(sqlite_url)
    out = ykien(tmp_path, sqlite_url, "console", "--user", "minh",
                stdin="After the restore\n").stdout
    assert f"Received: your comment no. {draft_id}-{backed_up + 1}" in out
    status = ykien(tmp_path, sqlite_url, "draft", "status", "2")
    assert status.returncode == 0, status.stderr


async def test_restore_checks_the_file_and_changes_nothing_when_refused(tmp_path, sqlite_url):
    assert ykien(tmp_path, sqlite_url, "backup", "--out", "good.db").returncode == 0
    database = Path(make_url(sqlite_url).database or "")
    before = database.read_bytes()

    def refused(name: str, *extra: str) -> str:
        done = ykien(tmp_path, sqlite_url, "restore", name, *extra)
        assert done.returncode != 0
        assert database.read_bytes() == before and not list(tmp_path.glob("*.replaced-*"))
        return done.stderr

    assert "add --force" in refused("good.db")
    assert "does not exist" in refused("missing.db", "--force")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert "is not an SQLite database" in refused("junk.db", "--force")
    with sqlite3.connect(tmp_path / "other.db") as other:
        other.execute("CREATE TABLE notes (x)")
    assert "not one of ykien" in refused("other.db", "--force")
    shutil.copyfile(tmp_path / "good.db", tmp_path / "newer.db")
    with sqlite3.connect(tmp_path / "newer.db") as newer:
        newer.execute("UPDATE alembic_version SET version_num = '9999'")
    assert "made by a newer version of ykien (schema 9999" in refused("newer.db", "--force")
    damaged = bytearray((tmp_path / "good.db").read_bytes())
    damaged[4096 * 3:4096 * 3 + 512] = b"\xff" * 512  # a page of a table, scribbled over
    (tmp_path / "damaged.db").write_bytes(bytes(damaged))
    message = refused("damaged.db", "--force")
    assert "is damaged" in message or "is not an SQLite database" in message


async def test_backup_never_overwrites_without_force_nor_writes_over_the_database(
        tmp_path, sqlite_url):
    (tmp_path / "there.db").write_text("mine")
    done = ykien(tmp_path, sqlite_url, "backup", "--out", "there.db")
    assert done.returncode == 1 and "already exists" in done.stderr
    assert (tmp_path / "there.db").read_text() == "mine"
    database = make_url(sqlite_url).database or ""
    done = ykien(tmp_path, sqlite_url, "backup", "--out", database, "--force")
    assert done.returncode == 1 and "is the database" in done.stderr
    forced = ykien(tmp_path, sqlite_url, "backup", "--out", "there.db", "--force")
    assert forced.returncode == 0 and (tmp_path / "there.db").read_bytes().startswith(b"SQLite")


def test_on_postgresql_both_commands_give_the_pg_commands(tmp_path):
    url = "postgresql+asyncpg://ykien:s3cret@db.example:5432/ykien"
    backup = ykien(tmp_path, url, "backup", "--out", "ykien.dump")
    restore = ykien(tmp_path, url, "restore", "ykien.dump", "--force")
    assert backup.returncode == restore.returncode == 2
    assert ("pg_dump --format=custom --file=ykien.dump postgresql://ykien@db.example:5432/ykien"
            in backup.stderr)
    assert ("pg_restore --clean --if-exists --no-owner "
            "--dbname=postgresql://ykien@db.example:5432/ykien ykien.dump" in restore.stderr)
    assert "s3cret" not in backup.stderr + restore.stderr
    assert not (tmp_path / "ykien.dump").exists()


def given_command(stderr: str) -> list[str]:
    return shlex.split(next(line for line in stderr.splitlines() if line.startswith("  ")))


@pytest.mark.postgres
async def test_the_pg_dump_given_backs_up_under_writes_and_restores(tmp_path, request):
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    from tests.conftest import _drop_postgres_database, _postgres_database

    source_url, source = await _postgres_database(template=request.getfixturevalue(
        "postgres_template"))
    target_url, target = await _postgres_database()
    try:
        await populate(source_url)
        dump = tmp_path / "ykien.dump"
        command = given_command(ykien(tmp_path, source_url, "backup", "--out",
                                      str(dump)).stderr)
        env = {**os.environ, "PGPASSWORD": make_url(POSTGRES_URL).password or ""}
        done, comments, _ = await while_writing(
            source_url, lambda: subprocess.run(command, env=env, capture_output=True,
                                               text=True, timeout=120))
        assert done.returncode == 0, done.stderr
        restore = given_command(ykien(tmp_path, target_url, "restore", str(dump)).stderr)
        loaded = subprocess.run(restore, env=env, capture_output=True, text=True, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        async with open_database(target_url) as sessionmaker, sessionmaker() as session:
            rows = (await session.execute(select(
                Draft.comment_count,
                select(func.count()).where(Comment.draft_id == Draft.id).scalar_subquery(),
                select(func.count()).where(Delivery.draft_id == Draft.id).scalar_subquery(),
                Draft.status))).all()
            backed_up = await session.scalar(select(func.count()).select_from(Comment))
        consistent_counts(rows)
        assert 0 < (backed_up or 0) < comments
        draft_id = await awaiting_comment(target_url)
        out = ykien(tmp_path, target_url, "console", "--user", "minh",
                    stdin="After the restore\n").stdout
        assert f"Received: your comment no. {draft_id}-" in out
    finally:
        await _drop_postgres_database(source)
        await _drop_postgres_database(target)
