"""Comments and votes as CSV, streamed in batches, residents pseudonymised.

The export is one SQL query (comments and votes with their residents, in draft and time
order) whose rows arrive as text: on PostgreSQL through `COPY (query) TO STDOUT`, which the
server streams while we write (and may plan in parallel, which a cursor may not); from an
SQLite file through `fetchmany` batches on a connection of its own, the whole export in a
worker thread; elsewhere through a SQLAlchemy stream. Each batch becomes CSV text in one
list comprehension, so memory stays flat however many rows there are. What repeats is looked
up once, already neutralised and quoted: a draft's title, a commune's name and province, a
person's pseudonym (an HMAC, the costliest cell: kept for the most recent `PSEUDONYM_CACHE`
persons), a vote's label, the Vietnam time of each hour. A batch holding anything the fast
path does not recognise (a time in an unexpected shape, an offset change within an hour) is
written by the plain row-by-row path instead, through `csv.writer`, which gives the same
bytes.

On PostgreSQL the server does more (`_copy_query`): COPY sends each line as CSV already
(title, commune, comment and vote cells neutralised and quoted in SQL) but for the two cells
that must come from this process: the pseudonym (the key never goes to the server) and the
Vietnam hour (from Python's time zone data, as on the row-by-row path). Each COPY chunk is
split on its tabs, those two cells are looked up, and the chunk is written as bytes: no
per-row parsing, decoding or encoding.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import os
import re
import sqlite3
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import Subquery, type_coerce

from storage import communes
from storage.db import SQLITE_BUSY_TIMEOUT, in_memory
from storage.drafts import CODE_DIGITS, commune_code_text
from storage.keys import pseudonym_key
from storage.models import (
    VIETNAM,
    Comment,
    CommentSource,
    Draft,
    DraftCommune,
    PollOption,
    Resident,
    Vote,
)
from storage.moderation import REASON_WORDS, ModerationReason
from storage.respondents import CATEGORY_WORDS, CHANNEL_NAMES, SOURCE_WORDS
from storage.text import N_

# Cells starting with these are formulas to Excel and LibreOffice (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Header and value words go through the caller's translator (the catalogue lives in handlers).
COLUMNS = (
    N_("Draft no."), N_("Draft title"), N_("Kind"), N_("Receipt no."), N_("Commune code"),
    N_("Commune"), N_("Province"), N_("Resident"), N_("Time"), N_("Comment"), N_("Vote"),
    N_("Forwarded"), N_("Hidden"), N_("Chat app"), N_("Commenting as"), N_("Source"),
)
KINDS = {"comment": N_("comment"), "vote": N_("vote")}
ANONYMOUS = N_("anonymous")
# In the Forwarded column: the comment is someone else's words the resident passed on.
FORWARDED_MARK = N_("yes")
# The resident cell of a comment or vote gathered offline (no chat, no person): left empty.
OFFLINE_PERSON = "offline"
# Between the chat app, the category and the source in the query's one "origin" cell.
ORIGIN_SEPARATOR = "|"

# Rows fetched and written at a time: large enough that the per-batch costs (a round trip,
# a thread hop, a greenlet switch) vanish, small enough to keep memory flat (~10 MB).
BATCH = 10_000
# Pseudonyms kept between batches; the cache is emptied when it grows past this.
PSEUDONYM_CACHE = 200_000


def hidden_words(translate: Callable[[str], str]) -> dict[str, str]:
    """What the Hidden column says for each reason, in the export's language."""
    return {reason.value: translate(words) for reason, words in REASON_WORDS.items()}


def neutralise(value: str) -> str:
    """Make a cell that a spreadsheet would run as a formula plain text; and one that
    XlsxWriter would take for rich text it built ("<r>…</r>", written unescaped, which
    empties the cell or leaves the workbook unreadable) plain text too."""
    if value.startswith(FORMULA_STARTS) or _rich_looking(value):
        return "'" + value
    return value


def unneutralise(value: str) -> str:
    """The text a neutralised cell came from (a cell read back from an exported sheet)."""
    return value[1:] if value.startswith("'") and neutralise(value[1:]) == value else value


def _rich_looking(value: str) -> bool:
    return value.startswith("<r>") and value.endswith("</r>")


# What a pseudonym is computed from: the person, so their linked chats share one.
PERSON_PREFIX = "person:"


def person_reference(person_id: int) -> str:
    return f"{PERSON_PREFIX}{person_id}"


def pseudonymiser(key: bytes, anonymous: str) -> Callable[[int | None], str]:
    """A stable keyed pseudonym per person: the same person gets the same id in every export,
    whichever of their linked chats they wrote from."""

    def pseudonym(person_id: int | None) -> str:
        if person_id is None:
            return anonymous  # the resident erased their data
        # The first 6 bytes of HMAC-SHA256 in hex (= the first 12 hex digits), one C call.
        digest = hmac.digest(key, person_reference(person_id).encode(), hashlib.sha256)
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


def _no_person(source: Any) -> ColumnElement[Any]:
    """The resident cell of a row without a chat: "" once erased, OFFLINE_PERSON when it was
    gathered offline (nobody to name, not even as anonymous)."""
    return case((source == CommentSource.CHAT.value, ""), else_=OFFLINE_PERSON)


def _origin(row: Any) -> ColumnElement[Any]:
    """How a row came, as one text: "telegram|business|chat" (`ExportCells.origin_cells`)."""
    return (row.c.channel + ORIGIN_SEPARATOR + row.c.category + ORIGIN_SEPARATOR
            + row.c.source)


def _marks(forwarded: Any, hidden_reason: Any) -> ColumnElement[Any]:
    """A comment's marks as one code: "1" if forwarded, then the reason it was hidden
    ("", "1", "spam", "1spam"…); `ExportCells.mark_cells` turns it into the two cells."""
    return case((forwarded, "1"), else_="") + hidden_reason


def mark_codes() -> list[str]:
    """Every code `_marks` can give."""
    reasons = ["", *(reason.value for reason in ModerationReason)]
    return [*reasons, *("1" + reason for reason in reasons)]


def export_query(draft_id: int | None, dialect: str = "sqlite", last_draft: int | None = None,
                 communes: Collection[int] | None = None) -> Select[Any]:
    """The export's rows in order, every column text and none NULL: draft no., kind, receipt
    number ("3-17", "" for a vote), commune code ("" if none), "person:<person id>" ("" once
    the resident erased their data), time as UTC text, comment ("" for a vote), vote label
    ("" for a comment), its marks (`_marks`: forwarded, hidden), and how it came (`_origin`:
    "telegram|business|chat"). A row without a chat has "" as its resident once the resident
    erased their data, OFFLINE_PERSON when gathered offline. Titles are not repeated on
    every row: the export looks them up once. `last_draft` leaves out drafts created after
    the export looked the titles up; `communes` keeps only the rows sent from these communes
    (an official's scope).

    On SQLite the rows are leaner (`_sqlite_query`): building each value costs more there
    than the SQL saves.
    """
    if dialect == "sqlite":
        return _sqlite_query(draft_id, last_draft, communes)
    # Pseudonyms are per person, so a person's linked chats (Telegram, Zalo) share one.
    def person(source: Any) -> ColumnElement[Any]:
        return case((Resident.id.is_(None), _no_person(source)),
                    else_=literal(PERSON_PREFIX) + _text(Resident.person_id))

    comments = (
        select(
            Comment.draft_id, literal("comment").label("kind"),
            (_text(Comment.draft_id) + "-" + _text(Comment.number)).label("receipt"),
            func.coalesce(_text(Comment.commune_code), "").label("code"),
            person(Comment.source).label("person"), Comment.created_at.label("at"),
            Comment.text, literal("").label("vote"), Comment.id.label("row_id"),
            _marks(Comment.forwarded, Comment.hidden_reason).label("forwarded"),
            *_origin_columns(Comment),
        )
        .outerjoin(Resident, Resident.id == Comment.resident_id)
    )
    votes = (
        select(
            Vote.draft_id, literal("vote").label("kind"), literal("").label("receipt"),
            func.coalesce(_text(Vote.commune_code), "").label("code"),
            person(Vote.source).label("person"), Vote.updated_at.label("at"),
            literal("").label("text"), PollOption.label.label("vote"), Vote.id.label("row_id"),
            literal("").label("forwarded"), *_origin_columns(Vote),
        )
        .join(PollOption, PollOption.id == Vote.option_id)
        .outerjoin(Resident, Resident.id == Vote.resident_id)
    )
    both = _both(comments, votes, draft_id, last_draft, communes)
    return (
        select(
            both.c.draft_id, both.c.kind, both.c.receipt, both.c.code, both.c.person,
            _utc_text(both.c.at, dialect).label("at"), both.c.text, both.c.vote,
            both.c.forwarded, _origin(both).label("origin"),
        )
        .order_by(both.c.draft_id, both.c.at, both.c.kind, both.c.row_id)
    )


def _origin_columns(model: type[Comment] | type[Vote]) -> list[ColumnElement[Any]]:
    """The chat app, the respondent category and the source, as written with the row."""
    return [model.channel.label("channel"), model.respondent_category.label("category"),
            model.source.label("source")]


def _both(comments: Select[*tuple[Any, ...]], votes: Select[*tuple[Any, ...]],
          draft_id: int | None, last_draft: int | None,
          communes: Collection[int] | None = None) -> Subquery:
    """Comments and votes, of one draft or all up to `last_draft`, from `communes` if given,
    as one subquery."""
    if communes is not None:
        comments = comments.where(Comment.commune_code.in_(sorted(communes)))
        votes = votes.where(Vote.commune_code.in_(sorted(communes)))
    if draft_id is not None:
        comments = comments.where(Comment.draft_id == draft_id)
        votes = votes.where(Vote.draft_id == draft_id)
    if last_draft is not None:
        # "+ 0": a bound on the draft must not turn the full scan into a slower index walk.
        comments = comments.where(Comment.draft_id + 0 <= last_draft)
        votes = votes.where(Vote.draft_id + 0 <= last_draft)
    return union_all(comments, votes).subquery()


def _sqlite_query(draft_id: int | None, last_draft: int | None,
                  communes: Collection[int] | None = None) -> Select[Any]:
    """`export_query`'s rows with fewer and cheaper values, as SQLite hands them out one
    Python object each: draft no. × 2 + 1 for a vote, comment number ("" for a vote),
    commune code ("" if none), person id ("" once erased), time as UTC text, comment ("" for
    a vote), vote label ("" for a comment), its marks, how it came (`_origin`)."""
    comments = (
        select(
            Comment.draft_id, literal(0).label("vote_kind"), Comment.number,
            func.coalesce(Comment.commune_code, "").label("code"),
            func.coalesce(Resident.person_id, _no_person(Comment.source)).label("person"),
            Comment.created_at.label("at"), Comment.text, literal("").label("vote"),
            Comment.id.label("row_id"),
            _marks(Comment.forwarded, Comment.hidden_reason).label("forwarded"),
            *_origin_columns(Comment),
        )
        .outerjoin(Resident, Resident.id == Comment.resident_id)
    )
    votes = (
        select(
            Vote.draft_id, literal(1).label("vote_kind"), literal("").label("number"),
            func.coalesce(Vote.commune_code, "").label("code"),
            func.coalesce(Resident.person_id, _no_person(Vote.source)).label("person"),
            Vote.updated_at.label("at"), literal("").label("text"),
            PollOption.label.label("vote"), Vote.id.label("row_id"),
            literal("").label("forwarded"), *_origin_columns(Vote),
        )
        .join(PollOption, PollOption.id == Vote.option_id)
        .outerjoin(Resident, Resident.id == Vote.resident_id)
    )
    both = _both(comments, votes, draft_id, last_draft, communes)
    return (
        select(
            (both.c.draft_id * 2 + both.c.vote_kind).label("head"), both.c.number,
            both.c.code, both.c.person, _utc_text(both.c.at, "sqlite").label("at"),
            both.c.text, both.c.vote, both.c.forwarded, _origin(both).label("origin"),
        )
        .order_by(both.c.draft_id, both.c.at, both.c.vote_kind, both.c.row_id)
    )


def export_titles(draft_id: int | None, communes: Collection[int] | None = None
                  ) -> Select[int, str]:
    """The drafts an export covers (id, title): one, or all; only those with a target
    commune among `communes` when given, so a scoped export names no other commune's draft."""
    query = select(Draft.id, Draft.title).order_by(Draft.id)
    if draft_id is not None:
        query = query.where(Draft.id == draft_id)
    if communes is not None:
        query = query.where(Draft.id.in_(select(DraftCommune.draft_id).where(
            DraftCommune.commune_code.in_(sorted(communes)))))
    return query


def _person_key(person: int | str) -> str:
    """`export_query`'s resident cell from SQLite's person id ("" once erased)."""
    if isinstance(person, str) and person in ("", OFFLINE_PERSON):
        return person
    return person_reference(int(person))


def widen(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """SQLite's leaner rows (`_sqlite_query`) as `export_query`'s other shape."""
    return [
        (head >> 1, "vote" if head & 1 else "comment",
         "" if number == "" else receipt_number(head >> 1, number),
         str(code), _person_key(person), at, text, vote, forwarded, origin)
        for head, number, code, person, at, text, vote, forwarded, origin in rows
    ]


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


def _sql_cell(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL for `free_text_cell` (PostgreSQL): neutralised, then quoted if need be. The
    cheapest functions per row: ascii() of the first character, strpos()."""
    neutral = case(
        (func.ascii(value).in_([ord(start) for start in FORMULA_STARTS]), literal("'") + value),
        else_=value,
    )
    # "'" adds nothing that needs quotes: the value decides
    needs_quotes = or_(*(func.strpos(value, special) > 0 for special in (",", '"', "\n", "\r")))
    quoted = literal('"') + func.replace(neutral, '"', '""') + literal('"')
    return case((needs_quotes, quoted), else_=neutral)


def _copy_query(rows: Select[Any], heads: dict[int, tuple[str, str]], kinds: dict[str, str],
                offset: str, marks: dict[str, str],
                origin_words: Sequence[dict[str, str]]) -> Select[Any]:
    """The export's rows as PostgreSQL writes most of each line, in four text columns: the
    cells before the resident's ("3,Title,comment,3-17,15148,Xã …,Tỉnh …,"), the resident as
    `export_query` gives it, the UTC hour "YYYY-MM-DD HH", and the rest (":MM:SS+07:00,
    comment,vote,forwarded,hidden,chat app,commenting as,source", `offset` being the usual
    one, `marks` the forwarded and hidden cells after their commas, by `_marks`' code,
    `origin_words` the words of each chat app, RespondentCategory and CommentSource). The
    export turns the resident into their pseudonym (the key never leaves this process) and
    the UTC hour into Vietnam's. `heads` holds each draft's first three cells per kind."""
    both = rows.get_final_froms()[0]  # the union of comments and votes
    utc = func.timezone("UTC", both.c.at)
    head = values(column("draft_id", Integer), column("comment", String),
                  column("vote", String), name="heads").data(
        [(draft, comment, vote) for draft, (comment, vote) in heads.items()])
    known = [commune for commune in communes.communes() if commune.code]
    place = values(column("code", String), column("cell", String), name="places").data([
        (str(commune.code), ",".join(csv_cell(cell) for cell in (
            commune_code_text(commune.code), commune.name, commune.province.name)))
        for commune in known
    ])
    code = both.c.code
    code_text = case(
        (code == "", ""),
        (or_(code.startswith("-"), func.length(code) >= CODE_DIGITS), code),
        else_=func.lpad(code, CODE_DIGITS, "0"),
    )
    comment = both.c.kind == "comment"
    # A draft missing from `heads` (none should be) keeps its number and kind, no title.
    missing = cast(both.c.draft_id, String) + ",," + case(
        (comment, csv_cell(kinds["comment"])), else_=csv_cell(kinds["vote"]))
    before = (
        func.coalesce(case((comment, head.c.comment), else_=head.c.vote), missing)
        + "," + both.c.receipt + ","
        + func.coalesce(place.c.cell, code_text + ",,") + ","
    )
    # a comment has no vote, a vote no comment: one cell to work out per row
    after = case((comment, "," + _sql_cell(both.c.text) + ","),
                 else_=",," + _sql_cell(both.c.vote)) + case(
        *((both.c.forwarded == code, literal(cells)) for code, cells in marks.items()),
        else_=",,")
    # the chat app, the category and the source: known values in words, others as they are
    for value, words in zip((both.c.channel, both.c.category, both.c.source), origin_words,
                            strict=True):
        after = after + "," + case(
            *((value == key, literal(csv_cell(cell))) for key, cell in words.items()),
            else_=_sql_cell(value))
    return (
        select(before.label("before"), func.coalesce(cast(both.c.person, String), "")
               .label("person"),
               func.to_char(utc, "YYYY-MM-DD HH24").label("hour"),
               (func.to_char(utc, ":MI:SS") + offset + after).label("after"))
        .select_from(both.outerjoin(head, head.c.draft_id == both.c.draft_id)
                     .outerjoin(place, place.c.code == code))
        # the same order as export_query's
        .order_by(both.c.draft_id, both.c.at, both.c.kind, both.c.row_id)
    )


_COPY_ESCAPE_BYTES = re.compile(rb"\\(.)", re.DOTALL)
_COPY_ESCAPES_BYTES = {ord(key): value.encode() for key, value in _COPY_ESCAPES.items()}


def _copy_unescape_bytes(match: re.Match[bytes]) -> bytes:
    return _COPY_ESCAPES_BYTES.get(match.group(1)[0], match.group(1))


def _binary(out: TextIO) -> Any:
    """The byte stream under `out` when writing bytes there gives what writing text would
    (UTF-8; and "\\n" written as is, whatever `newline` the file was opened with), else None."""
    encoding = (getattr(out, "encoding", None) or "").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8", "utf-8-sig") or os.linesep != "\n":
        return None
    return getattr(out, "buffer", None)


_COPY_ESCAPES_BACK = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _sqlite_file(connection: AsyncConnection) -> str | None:
    """The file of the SQLite database behind `connection`; None for one in memory."""
    database = connection.engine.url.database
    if database is None or in_memory(database) or database.startswith("file:"):
        return None  # ("file:" URIs are opened by the session's own connection)
    return database


def _write_sqlite_file(path: str, sql: str, batch: int,
                       write: Callable[[Sequence[Any]], None]) -> None:
    """Run `sql` on its own connection to the file and `write` its rows, `batch` at a time.

    Called in a worker thread, so the whole export runs there while the event loop waits:
    fetching through aiosqlite instead hands the GIL to and fro between its thread and the
    loop for every row (SQLite releases it for each step) and took half as long again.
    """
    database = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT)
    try:
        database.execute("PRAGMA query_only=ON")
        cursor = database.execute(sql)
        while rows := cursor.fetchmany(batch):
            write(rows)
    finally:
        database.close()


class ExportCells:
    """The cells every export shows the same way (CSV and XLSX): a draft's title neutralised,
    a commune's code, name and province, a resident's pseudonym, the forwarded and hidden
    marks."""

    def __init__(self, titles: dict[int, str], kinds: dict[str, str], anonymous: str,
                 secret: bytes, forwarded: str = "yes",
                 hidden: dict[str, str] | None = None,
                 translate: Callable[[str], str] = str) -> None:
        self.titles, self.kinds, self.anonymous, self.secret = titles, kinds, anonymous, secret
        self.forwarded = neutralise(forwarded)  # the mark of a forwarded comment
        # why a comment was hidden, by ModerationReason (the words of the reason)
        self.hidden = {reason: neutralise(words) for reason, words in (hidden or {}).items()}
        # how a row came, in words: by chat app, RespondentCategory and CommentSource
        self.origin_words = tuple(
            {key: neutralise(translate(words)) for key, words in table.items()}
            for table in (CHANNEL_NAMES, CATEGORY_WORDS, SOURCE_WORDS))

    def mark_cells(self, code: str | int) -> tuple[str, str]:
        """The Forwarded and Hidden cells of a `_marks` code."""
        code = str(code)
        reason = code.removeprefix("1")
        hidden = self.hidden.get(reason, reason) if reason else ""
        return (self.forwarded if code.startswith("1") else ""), hidden

    def origin_cells(self, origin: str) -> tuple[str, str, str]:
        """The Chat app, Commenting as and Source cells of an `_origin` text (a value
        of no known kind as it is, neutralised)."""
        parts = origin.split(ORIGIN_SEPARATOR)
        if len(parts) != 3:
            return neutralise(origin), "", ""
        channel, category, source = (
            words.get(part, neutralise(part)) for words, part in zip(
                self.origin_words, parts, strict=True))
        return channel, category, source

    def pseudonym(self, person: str) -> str:
        if person == OFFLINE_PERSON:
            return ""  # gathered offline: no one to name
        if not person:
            return self.anonymous  # the resident erased their data
        digest = hmac.digest(self.secret, person.encode(), hashlib.sha256)
        return "R-" + digest[:6].hex()

    @staticmethod
    def place(code: str) -> tuple[str, str, str]:
        if not code:
            return "", "", ""
        number = int(code)
        commune = communes.get_commune(number) if number else None
        if commune is None:
            return commune_code_text(number), "", ""
        return commune_code_text(number), commune.name, commune.province.name

    def title(self, draft: int | str) -> str:
        return neutralise(self.titles.get(int(draft), ""))  # "" if created during the export


class CsvLines(ExportCells):
    """The export's CSV lines from its query's rows, the cells that repeat (title, kind,
    commune, pseudonym, vote, Vietnam hour) cached already neutralised and quoted, joined by
    commas where adjacent."""

    def __init__(self, titles: dict[int, str], kinds: dict[str, str], anonymous: str,
                 secret: bytes, forwarded: str = "yes",
                 hidden: dict[str, str] | None = None,
                 translate: Callable[[str], str] = str) -> None:
        super().__init__(titles, kinds, anonymous, secret, forwarded, hidden, translate)
        # The Chat app, Commenting as and Source cells, each after a comma, by `_origin`.
        self.origins = _Cache(lambda origin: "".join(
            "," + csv_cell(cell) for cell in self.origin_cells(origin)))
        # The Forwarded and Hidden cells, each after a comma, by the query's code.
        self.marks = {code: "".join("," + csv_cell(cell) for cell in self.mark_cells(code))
                      for code in mark_codes()}
        self.heads = _Cache(lambda head: ",".join(
            (str(head[0]), csv_cell(self.title(head[0])), csv_cell(kinds[head[1]]))
        ))
        self.places = _Cache(lambda code: ",".join(csv_cell(cell) for cell in self.place(code)))
        self.people = _Cache(lambda person: csv_cell(self.pseudonym(person)))
        self.labels = _Cache(lambda label: csv_cell(neutralise(label)))
        # "+07:00": a batch with an hour of another offset goes the plain way
        self.offset = _vietnam_hour("2026-01-01 00")[1]
        self.hours = _Cache(self.hour)
        # SQLite's leaner rows (_sqlite_query): the same cells from other keys. A comment's
        # head ends with its receipt's "3-", followed by its number; a vote's number is "".
        self.leads = _Cache(lambda head: (
            self.heads[head >> 1, "vote"] + "," if head & 1
            else self.heads[head >> 1, "comment"] + f",{head >> 1}-"
        ))
        self.places_by_code = _Cache(lambda code: self.places[str(code)])
        self.people_by_id = _Cache(lambda person: self.people[_person_key(person)])
        self.buffer = io.StringIO()  # for batches that take the plain path
        self.writer = csv.writer(self.buffer)

    def hour(self, utc_hour: str) -> str:
        local, its_offset = _vietnam_hour(utc_hour)
        if its_offset != self.offset:
            raise _UnusualTime(utc_hour)
        return local

    def text(self, rows: Sequence[Any], *, lean: bool) -> str:
        """The lines of a batch of rows (`_sqlite_query`'s if `lean`, else `export_query`'s)."""
        try:
            written = self._lean(rows) if lean else self._wide(rows)
        except (_UnusualTime, TypeError, IndexError, ValueError):
            written = self._plain(widen(rows) if lean else rows)
        if len(self.people) > PSEUDONYM_CACHE:
            self.people.clear()
            self.people_by_id.clear()
        return written

    def _wide(self, rows: Sequence[Any]) -> str:
        heads, places, people, hours, labels, offset = (
            self.heads, self.places, self.people, self.hours, self.labels, self.offset)
        marks, origins = self.marks, self.origins
        return "".join([
            f"{heads[draft, kind]},{receipt},{places[code]},{people[person]},"
            f"{hours[at[:13]]}{at[13:19]}{offset},"
            f"{free_text_cell(text)},{labels[vote]}{marks[forwarded]}{origins[origin]}\r\n"
            for draft, kind, receipt, code, person, at, text, vote, forwarded, origin in rows
        ])

    def _lean(self, rows: Sequence[Any]) -> str:
        leads, places, people, hours, labels, offset = (
            self.leads, self.places_by_code, self.people_by_id, self.hours, self.labels,
            self.offset)
        marks, origins = self.marks, self.origins
        return "".join([
            f"{leads[head]}{number},{places[code]},{people[person]},"
            f"{hours[at[:13]]}{at[13:19]}{offset},"
            f"{free_text_cell(text)},{labels[vote]}{marks[forwarded]}{origins[origin]}\r\n"
            for head, number, code, person, at, text, vote, forwarded, origin in rows
        ])

    def _plain(self, rows: Sequence[Any]) -> str:
        # The same cells row by row through csv.writer, for a batch the fast path refused.
        self.writer.writerows([
            [draft, self.title(draft), self.kinds[kind], receipt, *self.place(code),
             self.pseudonym(person), _iso(at), neutralise(text), neutralise(vote),
             *self.mark_cells(forwarded), *self.origin_cells(origin)]
            for draft, kind, receipt, code, person, at, text, vote, forwarded, origin in rows
        ])
        written = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return written


async def export_csv(
    session: AsyncSession,
    out: TextIO,
    draft_id: int | None = None,
    key: bytes = b"",
    translate: Callable[[str], str] = str,
    batch: int = BATCH,
    communes: Collection[int] | None = None,
) -> int:
    """Write comments and votes as CSV to `out` (open it with encoding utf-8-sig). Returns rows.
    `communes`: only the drafts and rows of these communes (an official's scope).

    The bytes are those `csv.writer` writes (excel dialect: "," between cells, "\\r\\n" after
    each row, cells quoted only when they need it); the rows are built as text directly, with
    the cells that repeat (title, kind, commune, pseudonym, vote) quoted once in the caches.
    """
    secret = key or await pseudonym_key(session)
    anonymous = translate(ANONYMOUS)
    kinds = {kind: translate(word) for kind, word in KINDS.items()}
    header = io.StringIO()
    csv.writer(header).writerow([translate(column) for column in COLUMNS])
    out.write(header.getvalue())
    connection = await session.connection()
    titles = {draft: title for draft, title in await connection.execute(
        export_titles(draft_id, communes))}
    if not titles:
        return 0

    lines = CsvLines(titles, kinds, anonymous, secret, translate(FORWARDED_MARK),
                     hidden_words(translate), translate)
    heads, pseudonym, hour, offset = lines.heads, lines.pseudonym, lines.hour, lines.offset
    count = 0
    lean = connection.dialect.name == "sqlite"

    def write(rows: Sequence[Any]) -> None:
        nonlocal count
        out.write(lines.text(rows, lean=lean))
        count += len(rows)

    dialect = connection.dialect
    query = export_query(draft_id, dialect.name, last_draft=max(titles), communes=communes)
    # The only values in the query are numbers and constants: safe to write inline.
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        # PostgreSQL writes each line but the pseudonym and the Vietnam hour (see
        # _copy_query); here each row costs two dictionary lookups, the rest is done on
        # whole chunks of bytes, written as they are when `out` is a UTF-8 file.
        copy_sql = str(_copy_query(
            query, {draft: (heads[draft, "comment"], heads[draft, "vote"]) for draft in titles},
            kinds, offset, lines.marks, lines.origin_words,
        ).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        # Cells go back into COPY text escaped, so that unescaping the whole chunk restores them.
        copy_people = _Cache(lambda person: (csv_cell(pseudonym(
            _COPY_ESCAPE.sub(_copy_unescape, person.decode()))).translate(_COPY_ESCAPES_BACK)
            + ",").encode())
        copy_hours = _Cache(lambda utc_hour: hour(utc_hour.decode()).encode())
        usual = len(":MM:SS" + offset)
        binary = _binary(out)

        def unusual_times(parts: list[bytes]) -> None:
            # Row by row: an hour the lookup refused gets its time worked out on its own.
            for at in range(2, len(parts) - 1, 3):
                utc_hour, rest = parts[at], parts[at + 1]
                try:
                    parts[at] = copy_hours[utc_hour]
                except _UnusualTime:
                    parts[at] = _iso(f"{utc_hour.decode()}{rest[:6].decode()}").encode()
                    parts[at + 1] = rest[usual:]

        def write_copy(data: bytes) -> None:
            # Rows "before<TAB>person<TAB>hour<TAB>rest<NL>"; tabs, newlines and backslashes
            # within a value come escaped, so these split the chunk exactly.
            nonlocal count
            rows = data.count(b"\n")
            parts = data.split(b"\t")
            if len(parts) != 3 * rows + 1:
                raise ValueError(f"COPY gave {len(parts)} cells for {rows} rows")
            parts[1::3] = [copy_people[person] for person in parts[1::3]]
            try:
                parts[2::3] = [copy_hours[utc_hour] for utc_hour in parts[2::3]]
            except _UnusualTime:
                unusual_times(parts)
            data = b"".join(parts).replace(b"\n", b"\r\n")  # raw newlines end rows only
            if b"\\" in data:
                data = _COPY_ESCAPE_BYTES.sub(_copy_unescape_bytes, data)
            if binary is None:
                out.write(data.decode())
            else:
                binary.write(data)
            count += rows
            if len(copy_people) > PSEUDONYM_CACHE:
                copy_people.clear()

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
            write_copy(data[:end + 1])

        if binary is not None:
            out.flush()  # the header, and the BOM, before the bytes that follow
        await driver.copy_from_query(copy_sql, output=sink, format="text")
        if tail:
            write_copy(tail + b"\n")
    elif (path := _sqlite_file(connection) if lean else None) is not None:
        await asyncio.to_thread(_write_sqlite_file, path, sql, batch, write)
    else:
        result = await connection.stream(query.execution_options(yield_per=batch))
        async for partition in result.partitions():
            write(partition)
    return count
