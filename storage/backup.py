"""Backing up and restoring an SQLite database while keeping it whole.

A backup is taken with SQLite's online backup API in one step: it reads one consistent
snapshot (WAL lets the bot keep writing meanwhile), is written beside the target, checked, and
only then renamed to the target's name; the copy is a single file (no WAL beside it) readable
only by its owner. A restore checks the file first (SQLite's integrity check, and a schema
this version knows: the same or older, which the next start migrates), refuses while any
process has the database open, and keeps the replaced database beside it.

"Has the database open" is read from the lock every SQLite connection in WAL mode holds while
open: a shared lock on the "dead man switch" byte of the `-shm` file (byte 128 in SQLite's
unix VFS). Taking that byte exclusively succeeds only when no other process holds it, and
holding it while the files are swapped keeps a starting process out (it waits, then opens
the restored database).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from storage.db import SQLITE_BUSY_TIMEOUT

SHM_DEAD_MAN_SWITCH = 128  # UNIX_SHM_DMS in SQLite's os_unix.c: (22 + 8) * 4 + 8
COMPANIONS = ("-wal", "-journal")  # what belongs to a database file and moves with it


class Unusable(StrEnum):
    MISSING = "missing"  # no such file
    NOT_A_DATABASE = "not a database"  # not an SQLite file at all
    DAMAGED = "damaged"  # the integrity check failed
    NOT_YKIEN = "not ykien"  # an SQLite file without our schema
    NEWER = "newer"  # a schema this version does not know (made by a newer ykien)
    IN_USE = "in use"  # a process has the database open


class BackupError(Exception):
    def __init__(self, problem: Unusable, path: Path, detail: str = "") -> None:
        super().__init__(f"{path}: {problem}{': ' + detail if detail else ''}")
        self.problem, self.path, self.detail = problem, path, detail


@dataclass(frozen=True)
class Checked:
    path: Path
    revision: str  # the schema's migration (alembic_version)
    size: int  # bytes


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return {script.revision for script in ScriptDirectory.from_config(
        alembic_config()).walk_revisions()}


def check(path: Path) -> Checked:
    """The backup file's schema revision, once SQLite's integrity check has passed; raises
    BackupError saying what is wrong with it."""
    if not path.is_file():
        raise BackupError(Unusable.MISSING, path)
    # Read-only and immutable: nothing is written beside a file that is only looked at.
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(Unusable.DAMAGED, path, "; ".join(problems[:3]))
            try:
                found = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            except sqlite3.OperationalError:
                raise BackupError(Unusable.NOT_YKIEN, path) from None
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) or "not a database" in str(error):
            raise BackupError(Unusable.NOT_A_DATABASE, path, str(error)) from None
        raise BackupError(Unusable.DAMAGED, path, str(error)) from None
    if len(found) != 1:
        raise BackupError(Unusable.NOT_YKIEN, path)
    revision = str(found[0][0])
    if revision not in known_revisions():
        raise BackupError(Unusable.NEWER, path, revision)
    return Checked(path, revision, path.stat().st_size)


def back_up(database: Path, target: Path) -> Checked:
    """Copy the live database to target (a new file, or one the caller may replace)."""
    if not database.is_file():
        raise BackupError(Unusable.MISSING, database)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".part")  # mode 0600: it holds personal data
    os.close(descriptor)
    temporary = Path(name)
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT)) as source, \
                contextlib.closing(sqlite3.connect(temporary)) as copy:
            source.backup(copy)  # all pages in one step: one snapshot, however busy
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        _sync(temporary)
        checked = check(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return Checked(target, checked.revision, checked.size)


def restore(backup: Path, database: Path, now: datetime) -> tuple[Checked, Path | None]:
    """Put the checked backup in place of the database; the replaced one (with its WAL) is
    kept beside it, renamed with the time: (the backup checked, where the old one is)."""
    checked = check(backup)
    descriptor, name = tempfile.mkstemp(dir=database.parent, prefix=f".{database.name}.",
                                        suffix=".part")
    os.close(descriptor)
    temporary = Path(name)
    try:
        shutil.copyfile(backup, temporary)
        _sync(temporary)
        with _nobody_else_has(database):
            kept = _keep(database, now)
            try:
                os.replace(temporary, database)
            except BaseException:
                if kept is not None:  # the database goes back where it was
                    _move(kept, database)
                raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return checked, kept


def _keep(database: Path, now: datetime) -> Path | None:
    """Move the database (and its WAL or journal) aside under a name with the time."""
    if not database.exists():
        return None
    stamp = now.strftime("%Y%m%d-%H%M%S")
    kept = database.with_name(f"{database.name}.replaced-{stamp}")
    number = 1
    while kept.exists():
        number += 1
        kept = database.with_name(f"{database.name}.replaced-{stamp}-{number}")
    _move(database, kept)
    return kept


def _move(database: Path, to: Path) -> None:
    """Rename a database file with its WAL or journal (the WAL first: SQLite reads a WAL
    only beside its database)."""
    for suffix in COMPANIONS:
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            os.rename(companion, to.with_name(to.name + suffix))
    os.rename(database, to)


@contextlib.contextmanager
def _nobody_else_has(database: Path) -> Iterator[None]:
    """Hold the database's dead man switch exclusively (BackupError IN_USE if a process has
    it open); its shared-memory file goes on leaving (SQLite makes it again)."""
    shm = database.with_name(database.name + "-shm")
    descriptor = os.open(shm, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DEAD_MAN_SWITCH)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                raise BackupError(Unusable.IN_USE, database) from None
            raise
        yield
        shm.unlink(missing_ok=True)  # still locked by us: nobody opened it meanwhile
    finally:
        os.close(descriptor)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
