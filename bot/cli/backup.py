"""`ykien backup --out F` and `ykien restore F --force`: SQLite's online backup, and a checked
restore that keeps the replaced database (storage.backup); on PostgreSQL, the pg_dump and
pg_restore commands to use instead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.command import AddCommand, Subcommands
from bot.cli.outfile import database_files, export_refusal
from handlers.i18n import N_, Translator

if TYPE_CHECKING:
    from bot.config import Settings


def add_backup_commands(commands: Subcommands, add: AddCommand, t: Translator) -> None:
    backup = add("backup", t("copy the database to a file while the bot keeps running "
                             "(SQLite; on PostgreSQL it shows the pg_dump command)"), cmd_backup)
    backup.add_argument("--out", required=True, metavar=t("FILE"),
                        help=t("the backup file to write"))
    backup.add_argument("--force", action="store_true",
                        help=t("replace the file if it exists"))
    restore = add("restore", t("put a backup in place of the database (SQLite; on PostgreSQL "
                               "it shows the pg_restore command)"), cmd_restore)
    restore.add_argument("file", metavar=t("FILE"), help=t("the backup file"))
    restore.add_argument("--force", action="store_true",
                         help=t("really replace the database (it is kept beside it)"))


def libpq_url(database_url: str) -> str:
    """The database's address as pg_dump and pg_restore take it, without the password."""
    from sqlalchemy.engine import URL, make_url

    given = make_url(database_url)
    return URL.create("postgresql", username=given.username, host=given.host, port=given.port,
                      database=given.database, query=given.query).render_as_string()


def use_instead(message: str, file: Path, settings: Settings, t: Translator) -> int:
    """On PostgreSQL: say which command to run (the file and address shell-quoted); nothing
    was done, so the exit code says so."""
    import shlex

    print(t(message, file=shlex.quote(str(file)),
            url=shlex.quote(libpq_url(settings.database_url))), file=sys.stderr)
    return 2


def explain(error: Exception, t: Translator) -> str:
    from storage.backup import BackupError, Unusable

    assert isinstance(error, BackupError)
    path = str(error.path)
    if error.problem is Unusable.MISSING:
        return t("{path} does not exist or is not a file.", path=path)
    if error.problem is Unusable.NOT_A_DATABASE:
        return t("{path} is not an SQLite database ({reason}).", path=path, reason=error.detail)
    if error.problem is Unusable.DAMAGED:
        return t("{path} is damaged: SQLite's integrity check found: {reason}.", path=path,
                 reason=error.detail)
    if error.problem is Unusable.NOT_YKIEN:
        return t("{path} is an SQLite database, but not one of ykien (it has no schema "
                 "version).", path=path)
    if error.problem is Unusable.NEWER:
        return t("{path} was made by a newer version of ykien (schema {revision}, which this "
                 "version does not know). Restore it with that version or a later one.",
                 path=path, revision=error.detail)
    return t("The database {path} is open in another process (a bot, a worker or a command). "
             "Stop every ykien process that uses it, then restore again.", path=path)


async def cmd_backup(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.backup import BackupError, back_up

    files = database_files(settings.database_url)
    target = Path(args.out)
    if not files:
        return use_instead(N_(
            "The database is PostgreSQL: back it up with pg_dump, which takes a consistent "
            "snapshot while the bot keeps writing (the password comes from PGPASSWORD or "
            "~/.pgpass):\n  pg_dump --format=custom --file={file} {url}"), target, settings, t)
    if reason := export_refusal(target, args.force, settings.database_url, t):
        print(reason, file=sys.stderr)
        return 1
    try:
        done = back_up(files[0], target)
    except BackupError as error:
        print(explain(error, t), file=sys.stderr)
        return 1
    print(t("Backed up {database} to {path} ({size} bytes, schema {revision}). It holds "
            "personal data: keep it as safe as the database, and YKIEN_SECRET_KEY apart from "
            "it.", database=str(files[0]), path=str(done.path), size=t.number(done.size),
            revision=done.revision))
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings, t: Translator) -> int:
    from storage.backup import BackupError, check, restore
    from storage.models import utcnow

    files = database_files(settings.database_url)
    backup = Path(args.file)
    if not files:
        return use_instead(N_(
            "The database is PostgreSQL: stop every ykien process, then restore with "
            "pg_restore (ykien migrates an older backup when it starts again):\n"
            "  pg_restore --clean --if-exists --no-owner --dbname={url} {file}"),
            backup, settings, t)
    database = files[0]
    try:
        checked = check(backup)
        if not args.force:
            print(t("{path} is a sound backup (schema {revision}). Restoring it replaces the "
                    "database {database}, which is kept beside it; to do it, add --force.",
                    path=str(backup), revision=checked.revision, database=str(database)),
                  file=sys.stderr)
            return 2
        checked, kept = restore(backup, database, utcnow())
    except BackupError as error:
        print(explain(error, t), file=sys.stderr)
        return 1
    print(t("Restored {path} (schema {revision}) as the database {database}.",
            path=str(backup), revision=checked.revision, database=str(database)))
    if kept is not None:
        print(t("The database it replaced is kept as {kept}.", kept=str(kept)))
    return 0
