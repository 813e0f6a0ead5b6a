"""Comments and votes as CSV, streamed in batches, residents pseudonymised.

The export is one SQL query (comments and votes with their residents, in draft and time
order) whose rows arrive as text: on PostgreSQL through `COPY (query) TO STDOUT`, which the
server streams while we write (and may plan in parallel, which a cursor may not); on SQLite
through `fetchmany` batches read one ahead in aiosqlite's thread; elsewhere through a
SQLAlchemy stream. Each batch becomes CSV text in one list comprehension, so memory stays
flat however many rows there are. What repeats is looked up once, already neutralised and
quoted: a draft's title, a commune's name and province, a resident's pseudonym (an HMAC, the
costliest cell: kept for the most recent `PSEUDONYM_CACHE` residents), a vote's label, the
Vietnam time of each hour. A batch holding anything the fast path does not recognise (a time
in an unexpected shape, an offset change within an hour) is written by the plain row-by-row
path instead, through `csv.writer`, which gives the same bytes.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Select, String, case, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import type_coerce

from storage import communes
from storage.drafts import commune_code_text
from storage.models import VIETNAM, AppSetting, Comment, Draft, PollOption, Resident, Vote
from storage.text import N_

PSEUDONYM_KEY = "pseudonym_key"
# Cells starting with these are formulas to Excel and LibreOffice (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Header and value words go through the caller's translator (the catalogue lives in handlers).
COLUMNS = (
    N_("Draft no."), N_("Draft title"), N_("Kind"), N_("Receipt no."), N_("Commune code"),
    N_("Commune"), N_("Province"), N_("Resident"), N_("Time"), N_("Comment"), N_("Vote"),
)
KINDS = {"comment": N_("comment"), "vote": N_("vote")}
ANONYMOUS = N_("anonymous")

# Rows fetched and written at a time: large enough that the per-batch costs (a round trip,
# a thread hop, a greenlet switch) vanish, small enough to keep memory flat (~10 MB).
BATCH = 10_000
# Pseudonyms kept between batches; the cache is emptied when it grows past this.
PSEUDONYM_CACHE = 200_000


def neutralise(value: str) -> str:
    """Make a cell that a spreadsheet would run as a formula plain text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


async def pseudonym_key(session: AsyncSession, configured: str = "") -> bytes:
    """The configured key, else one generated on first use and kept in the database."""
    if configured:
        return configured.encode()
    stored = await session.get(AppSetting, PSEUDONYM_KEY)
    if stored is None:
        stored = AppSetting(key=PSEUDONYM_KEY, value=secrets.token_hex(32))
        session.add(stored)
        await session.commit()
    return stored.value.encode()


def pseudonymiser(key: bytes, anonymous: str) -> Callable[[str | None, str | None], str]:
    """A stable keyed pseudonym per resident: the same person gets the same id in every export."""

    def pseudonym(channel: str | None, platform_id: str | None) -> str:
        if channel is None or platform_id is None:
            return anonymous  # the resident erased their data
        # The first 6 bytes of HMAC-SHA256 in hex (= the first 12 hex digits), one C call.
        digest = hmac.digest(key, f"{channel}:{platform_id}".encode(), hashlib.sha256)
        return "R-" + digest[:6].hex()

    return pseudonym


def receipt_number(draft_id: int, number: int | None) -> str:
    """A comment's receipt as the resident was told it: "3-17" is draft 3, its 17th comment."""
    return f"{draft_id}-{number}" if number is not None else ""


def _utc_text(at: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The time as UTC text starting "YYYY-MM-DD HH:MM:SS" (what follows the seconds varies)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", at), "YYYY-MM-DD HH24:MI:SS")
    # SQLite keeps UTC times as text already ("2026-01-31 23:59:59.123456"): read it raw.
    return type_coerce(at, String)


def _text(value: Any) -> ColumnElement[Any]:
    return cast(value, String)


def export_query(draft_id: int | None, dialect: str = "sqlite", last_draft: int | None = None
                 ) -> Select[Any]:
    """The export's rows in order, every column text and none NULL: draft no., kind, receipt
    number ("3-17", "" for a vote), commune code ("" if none), "channel:platform id" ("" once
    the resident erased their data), time as UTC text, comment ("" for a vote), vote label
    ("" for a comment). Titles are not repeated on every row: the export looks them up once.
    `last_draft` leaves out drafts created after the export looked the titles up.
    """
    person = case((Resident.id.is_(None), ""),
                  else_=Resident.channel + ":" + Resident.platform_id)
    comments = (
        select(
            Comment.draft_id, literal("comment").label("kind"),
            (_text(Comment.draft_id) + "-" + _text(Comment.number)).label("receipt"),
            func.coalesce(_text(Comment.commune_code), "").label("code"),
            person.label("person"), Comment.created_at.label("at"),
            Comment.text, literal("").label("vote"), Comment.id.label("row_id"),
        )
        .outerjoin(Resident, Resident.id == Comment.resident_id)
    )
    votes = (
        select(
            Vote.draft_id, literal("vote").label("kind"), literal("").label("receipt"),
            func.coalesce(_text(Vote.commune_code), "").label("code"),
            person.label("person"), Vote.updated_at.label("at"),
            literal("").label("text"), PollOption.label.label("vote"), Vote.id.label("row_id"),
        )
        .join(PollOption, PollOption.id == Vote.option_id)
        .outerjoin(Resident, Resident.id == Vote.resident_id)
    )
    if draft_id is not None:
        comments = comments.where(Comment.draft_id == draft_id)
        votes = votes.where(Vote.draft_id == draft_id)
    if last_draft is not None:
        # "+ 0": a bound on the draft must not turn the full scan into a slower index walk.
        comments = comments.where(Comment.draft_id + 0 <= last_draft)
        votes = votes.where(Vote.draft_id + 0 <= last_draft)
    both = union_all(comments, votes).subquery()
    return (
        select(
            both.c.draft_id, both.c.kind, both.c.receipt, both.c.code, both.c.person,
            _utc_text(both.c.at, dialect).label("at"), both.c.text, both.c.vote,
        )
        .order_by(both.c.draft_id, both.c.at, both.c.kind, both.c.row_id)
    )


class _Cache(dict[Any, Any]):
    """A dictionary that computes a missing value once: `cache[key]` stays a C-level lookup."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.compute(key)
        return value


def csv_cell(value: str) -> str:
    """A cell as `csv.writer` (excel dialect, QUOTE_MINIMAL) writes it among other cells."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def free_text_cell(value: str | None) -> str:
    """A comment as a cell: neutralised, then quoted if need be (one call per row)."""
    if value is None:
        return ""
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


class _UnusualTime(ValueError):
    """A time the fast path cannot format: the batch is written row by row instead."""


_UTC_HOUR = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}")
_HOUR = timedelta(hours=1)


def _vietnam_hour(utc_hour: str) -> tuple[str, str]:
    """For "2026-01-31 23" (a UTC hour): ("2026-02-01T06", "+07:00"), its Vietnam hour and
    offset, valid for every second of that hour. Raises _UnusualTime when they are not (an
    offset in minutes, or a change of offset within the hour)."""
    if not _UTC_HOUR.fullmatch(utc_hour):
        raise _UnusualTime(utc_hour)
    start = datetime.fromisoformat(utc_hour + ":00:00").replace(tzinfo=UTC)
    offset = start.astimezone(VIETNAM).utcoffset()
    end_offset = (start + _HOUR - timedelta(microseconds=1)).astimezone(VIETNAM).utcoffset()
    if offset is None or offset != end_offset or offset % _HOUR:
        raise _UnusualTime(utc_hour)
    local = start.astimezone(VIETNAM).isoformat(timespec="seconds")  # 2026-02-01T06:00:00+07:00
    return local[:13], local[19:]


def _iso(value: datetime | str) -> str:
    """A time as Vietnam time ISO 8601 to the second: "2026-02-01T06:59:59+07:00"."""
    if isinstance(value, str):  # UTC text from the query
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(VIETNAM).isoformat(timespec="seconds")


# COPY's text format: tab between columns, newline after rows, these escaped by a backslash.
_COPY_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_unescape(match: re.Match[str]) -> str:
    return _COPY_ESCAPES.get(match.group(1), match.group(1))


def copy_text_rows(text: str) -> list[list[str]]:
    """Rows of PostgreSQL COPY text format (whole lines, without the last newline)."""
    return [
        line.split("\t") if "\\" not in line
        else [_COPY_ESCAPE.sub(_copy_unescape, cell) for cell in line.split("\t")]
        for line in text.split("\n")
    ]


async def _sqlite_batches(
    connection: AsyncConnection, sql: str, batch: int
) -> AsyncIterator[list[Any]]:
    """Rows `batch` at a time through aiosqlite, the next batch read while this one is written."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    cursor = await driver.execute(sql)
    pending = asyncio.ensure_future(cursor.fetchmany(batch))
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(cursor.fetchmany(batch))
            await asyncio.sleep(0)  # let it hand the fetch to aiosqlite's thread first
            yield rows
    finally:
        if not pending.done():
            await asyncio.wait([pending])
        await cursor.close()


async def export_csv(
    session: AsyncSession,
    out: TextIO,
    draft_id: int | None = None,
    key: bytes = b"",
    translate: Callable[[str], str] = str,
    batch: int = BATCH,
) -> int:
    """Write comments and votes as CSV to `out` (open it with encoding utf-8-sig). Returns rows.

    The bytes are those `csv.writer` writes (excel dialect: "," between cells, "\\r\\n" after
    each row, cells quoted only when they need it); the rows are built as text directly, with
    the cells that repeat (title, kind, commune, pseudonym, vote) quoted once in the caches.
    """
    secret = key or await pseudonym_key(session)
    anonymous = translate(ANONYMOUS)
    kinds = {kind: translate(word) for kind, word in KINDS.items()}
    buffer = io.StringIO()  # the header, and batches that take the plain path
    writer = csv.writer(buffer)
    writer.writerow([translate(column) for column in COLUMNS])
    out.write(buffer.getvalue())
    buffer.seek(0)
    buffer.truncate()
    connection = await session.connection()
    titles_query = select(Draft.id, Draft.title)
    if draft_id is not None:
        titles_query = titles_query.where(Draft.id == draft_id)
    titles = {draft: title for draft, title in await connection.execute(titles_query)}
    if not titles:
        return 0

    def pseudonym(person: str) -> str:
        if not person:
            return anonymous  # the resident erased their data
        digest = hmac.digest(secret, person.encode(), hashlib.sha256)
        return "R-" + digest[:6].hex()

    def place(code: str) -> tuple[str, str, str]:
        if not code:
            return "", "", ""
        number = int(code)
        commune = communes.get_commune(number) if number else None
        if commune is None:
            return commune_code_text(number), "", ""
        return commune_code_text(number), commune.name, commune.province.name

    def title(draft: int | str) -> str:
        return neutralise(titles.get(int(draft), ""))  # "" if created during the export

    # Each cache holds cells already neutralised and quoted, joined by commas where adjacent.
    heads = _Cache(lambda head: ",".join(
        (str(head[0]), csv_cell(title(head[0])), csv_cell(kinds[head[1]]))
    ))
    places = _Cache(lambda code: ",".join(csv_cell(cell) for cell in place(code)))
    people = _Cache(lambda person: csv_cell(pseudonym(person)))
    labels = _Cache(lambda label: csv_cell(neutralise(label)))
    offset = _vietnam_hour("2026-01-01 00")[1]  # "+07:00": an hour with another goes plain

    def hour(utc_hour: str) -> str:
        local, its_offset = _vietnam_hour(utc_hour)
        if its_offset != offset:
            raise _UnusualTime(utc_hour)
        return local

    hours = _Cache(hour)

    def fast(rows: Sequence[Any]) -> str:
        return "".join([
            f"{heads[draft, kind]},{receipt},{places[code]},{people[person]},"
            f"{hours[at[:13]]}{at[13:19]}{offset},"
            f"{free_text_cell(text)},{labels[vote]}\r\n"
            for draft, kind, receipt, code, person, at, text, vote in rows
        ])

    def plain(rows: Sequence[Any]) -> str:
        # The same cells row by row through csv.writer, for a batch the fast path refused.
        writer.writerows([
            [draft, title(draft), kinds[kind], receipt, *place(code), pseudonym(person),
             _iso(at), neutralise(text), neutralise(vote)]
            for draft, kind, receipt, code, person, at, text, vote in rows
        ])
        written = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return written

    count = 0

    def write(rows: Sequence[Any]) -> None:
        nonlocal count
        try:
            out.write(fast(rows))
        except (_UnusualTime, TypeError, IndexError, ValueError):
            out.write(plain(rows))
        count += len(rows)
        if len(people) > PSEUDONYM_CACHE:
            people.clear()

    dialect = connection.dialect
    query = export_query(draft_id, dialect.name, last_draft=max(titles))
    # The only values in the query are numbers and constants: safe to write inline.
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        tail = b""

        async def sink(chunk: bytes) -> None:
            nonlocal tail
            data = tail + chunk  # a chunk may end inside a row, even inside a character
            end = data.rfind(b"\n")
            if end < 0:
                tail = data
                return
            tail = data[end + 1:]
            write(copy_text_rows(data[:end].decode()))

        await driver.copy_from_query(sql, output=sink, format="text")
        if tail:
            write(copy_text_rows(tail.rstrip(b"\n").decode()))
    elif dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        async for rows in _sqlite_batches(connection, sql, batch):
            write(rows)
    else:
        result = await connection.stream(query.execution_options(yield_per=batch))
        async for partition in result.partitions():
            write(partition)
    return count
