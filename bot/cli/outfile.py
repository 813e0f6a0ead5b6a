"""Where a command writes its output file: never over the database, never over an existing
file unless asked (--force), never in place of anything but a regular file (a device, a named
pipe or a symbolic link is refused: `--out -` streams), and never a half-written file
(written beside the target and renamed over it only on success)."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from handlers.i18n import Translator

# Files SQLite keeps beside the database: overwriting any of them corrupts it.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def database_files(database_url: str) -> list[Path]:
    """The SQLite database file and its companions, resolved; [] for a server database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except ArgumentError:
        return []
    database = url.database or ""
    if not url.drivername.startswith("sqlite") or database in ("", ":memory:"):
        return []
    database = database.removeprefix("file:")  # the URI form, sqlite:///file:ykien.db?uri=true
    main_file = Path(database).resolve()
    return [main_file.with_name(main_file.name + suffix) for suffix in SQLITE_COMPANIONS]


def is_database_file(target: Path, database_url: str) -> bool:
    resolved = target.resolve()  # through symbolic links and ".."
    for database_file in database_files(database_url):
        if resolved == database_file:
            return True
        if target.exists() and database_file.exists() and target.samefile(database_file):
            return True  # a hard link
    return False


def export_refusal(target: Path, force: bool, database_url: str, t: Translator) -> str | None:
    """Why the export must not write to target, or None when it may."""
    if is_database_file(target, database_url):
        return t(
            "{path} is the database (YKIEN_DATABASE_URL): writing the export there would "
            "destroy it. Choose another file name.", path=str(target),
        )
    if target.is_dir():
        return t("{path} is a folder; give a file name, such as {example}.",
                 path=str(target), example=str(target / "comments.csv"))
    if _something_else_there(target):
        # Renaming over it would put a file in place of a device (as root, /dev/null), a
        # pipe or a link, not write through it; streaming does that, and says what it means.
        return t(
            "{path} is not a regular file (a device, a named pipe or a symbolic link), so "
            "the export does not replace it. To send the export there, write it to standard "
            "output: --out - > {path}", path=str(target),
        )
    if target.exists() and not force:
        return t("{path} already exists. Choose another file name, or add --force to "
                 "replace it.", path=str(target))
    return None


def _something_else_there(target: Path) -> bool:
    """Something other than a regular file is at target (a dangling link included)."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode)


class Refused(Exception):
    """The target became one the command must not write to while it was writing."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replaced_on_success(target: Path, refusal: Callable[[], str | None]) -> Iterator[TextIO]:
    """A CSV file written beside target and renamed over it only when all went well.

    A failed export leaves the previous file as it was, never a truncated one. `refusal` is
    asked again just before the rename (something may have appeared at target meanwhile):
    a reason raises Refused, and nothing is replaced.
    """
    # utf-8-sig writes the BOM that makes Excel read Vietnamese correctly.
    with _written_beside(target, refusal) as descriptor, \
            open(descriptor, "w", encoding="utf-8-sig", newline="") as handle:
        yield handle


@contextmanager
def bytes_replaced_on_success(target: Path, refusal: Callable[[], str | None]
                              ) -> Iterator[BinaryIO]:
    """`replaced_on_success` for a binary file (a chart, a spreadsheet)."""
    with _written_beside(target, refusal) as descriptor, open(descriptor, "wb") as handle:
        yield handle


@contextmanager
def _written_beside(target: Path, refusal: Callable[[], str | None]) -> Iterator[int]:
    """A temporary file's descriptor beside target, renamed over target once the caller
    has written and closed it, unless `refusal` now gives a reason."""
    import tempfile  # here: every command's parser imports this module

    mode = target.stat().st_mode if target.exists() else 0o666 & ~_current_umask()
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as error:  # name the file asked for, not the temporary one
        raise OSError(error.errno, error.strerror, str(target)) from error
    try:
        yield descriptor
        os.chmod(temporary, mode & 0o7777)
        reason = refusal()
        if reason:
            raise Refused(reason)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def standard_output() -> Iterator[TextIO]:
    """Standard output as UTF-8 with BOM, whatever the terminal's encoding."""
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8-sig", newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()  # leave sys.stdout's buffer open


def csv_output(target: Path | None, refusal: Callable[[], str | None]
               ) -> AbstractContextManager[TextIO]:
    """Where a CSV goes: the file target (replaced on success), or standard output (None)."""
    return standard_output() if target is None else replaced_on_success(target, refusal)


def say_written(count: int, target: Path | None, t: Translator) -> None:
    """How many rows went where; on standard error when the rows went to standard output."""
    print(t.plural(
        "Wrote {count} row to {path}.", "Wrote {count} rows to {path}.", count,
        path=t("standard output") if target is None else str(target),
    ), file=sys.stderr if target is None else sys.stdout)
