"""Comments and votes as an XLSX workbook: a summary sheet, a sheet of comments, one of votes.

The rows are the CSV export's (storage.export: the same query, the same neutralised title,
commune cells and pseudonyms), streamed in batches into XlsxWriter in constant-memory mode:
each row goes to a temporary file as soon as the next one starts, so memory stays flat
however many rows there are. Rows are written whole, as the XML XlsxWriter itself would
write (storage.xlsx_rows): its per-cell bookkeeping was most of the time. Times are real
Excel dates (numbers formatted as dates) in Vietnam time, to the second as in the CSV. Text
cells are written as text, never read as formulas, numbers or links, and neutralised as the
CSV's are, for whoever saves them as CSV.
A sheet holds at most 1,048,576 rows: more continue on a second sheet ("Comments (2)").

Writing a batch is CPU work: it runs in a worker thread, so a server's event loop keeps
answering meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.charts import commune_name
from storage.export import (
    ANONYMOUS,
    BATCH,
    COLUMNS,
    FORWARDED_MARK,
    KINDS,
    ExportCells,
    export_query,
    export_titles,
    hidden_words,
    neutralise,
    widen,
)
from storage.keys import pseudonym_key
from storage.models import VIETNAM
from storage.results import DraftResults, Figures, draft_results
from storage.text import N_
from storage.xlsx_rows import Cell, FastRows

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

# The most rows a sheet holds (Excel's limit), the header included.
SHEET_ROWS = 1_048_576
EXCEL_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's dates (valid from March 1900)
DAY = timedelta(days=1)

SUMMARY, COMMENTS, VOTES = N_("Summary"), N_("Comments"), N_("Votes")
(DRAFT_NO, TITLE, KIND, RECEIPT, CODE, COMMUNE, PROVINCE, RESIDENT, TIME, COMMENT, VOTE,
 FORWARDED, HIDDEN, CHAT_APP, COMMENTING_AS, SOURCE) = COLUMNS
COMMENT_COLUMNS = (DRAFT_NO, TITLE, RECEIPT, CODE, COMMUNE, PROVINCE, RESIDENT, TIME, COMMENT,
                   FORWARDED, HIDDEN, CHAT_APP, COMMENTING_AS, SOURCE)
VOTE_COLUMNS = (DRAFT_NO, TITLE, CODE, COMMUNE, PROVINCE, RESIDENT, TIME, VOTE, CHAT_APP,
                COMMENTING_AS, SOURCE)
FIGURE_COLUMNS = (N_("Reached"), N_("Waiting for Zalo's window"), N_("Unreachable"),
                  N_("Comments"), N_("Votes"), N_("Took part"), N_("Participation"))
ALL_COMMUNES = N_("All communes")
# Column widths in characters, by header (the rest get their header's length).
WIDTHS = {DRAFT_NO: 9, TITLE: 40, RECEIPT: 10, CODE: 10, COMMUNE: 24, PROVINCE: 22,
          RESIDENT: 16, TIME: 19, COMMENT: 80, VOTE: 24}
DATE_FORMAT = "dd/mm/yyyy hh:mm:ss"


class _Sheet:
    """One kind of rows, on as many sheets as it needs: a new one, with the header again,
    when a sheet is full. Its rows are written whole (storage.xlsx_rows)."""

    def __init__(self, book: Workbook, name: str, headers: list[str], header: Format,
                 opened: list[FastRows]) -> None:
        self.book, self.name, self.headers, self.header = book, name, headers, header
        self.opened = opened  # every sheet's rows, in the workbook's order
        self.sheets = 0
        self.row = SHEET_ROWS  # no sheet yet: the first row opens one
        self.current: Worksheet | None = None
        self.rows: FastRows | None = None

    def write(self, cells: list[Cell]) -> None:
        """The next row, its cells in column order."""
        if self.row >= SHEET_ROWS:
            self._finish()
            self._open()
        assert self.rows is not None
        self.rows.write(self.row, cells)
        self.row += 1

    def _open(self) -> None:
        self.sheets += 1
        name = self.name if self.sheets == 1 else f"{self.name} ({self.sheets})"
        sheet = self.current = self.book.add_worksheet(name[:31])
        for column, header in enumerate(self.headers):
            sheet.set_column(column, column, WIDTHS.get(header, max(len(header) + 2, 10)))
        sheet.write_row(0, 0, self.headers, self.header)
        sheet.freeze_panes(1, 0)
        self.rows = FastRows(sheet)
        self.opened.append(self.rows)
        self.row = 1

    def _finish(self) -> None:
        if self.current is not None:
            self.current.autofilter(0, 0, max(self.row - 1, 1), len(self.headers) - 1)

    def close(self) -> None:
        """A kind with no rows still gets its sheet, with the header."""
        if self.current is None:
            self._open()
        self._finish()


def _hour_serial(utc_hour: str) -> float | None:
    """For "2026-01-31 23" (a UTC hour), Excel's serial of that hour in Vietnam time, or None
    when the offset changes within the hour (then each time is converted on its own)."""
    start = datetime.fromisoformat(utc_hour + ":00:00").replace(tzinfo=UTC)
    end = start + timedelta(hours=1) - timedelta(microseconds=1)
    if start.astimezone(VIETNAM).utcoffset() != end.astimezone(VIETNAM).utcoffset():
        return None
    return (start.astimezone(VIETNAM).replace(tzinfo=None) - EXCEL_EPOCH) / DAY


def _serial(at: str) -> float:
    """Excel's serial of a UTC time given as text ("2026-01-31 23:59:59[.…]"), in Vietnam
    time, to the second."""
    hour = _cached_hour_serial(at[:13])
    if hour is None:
        local = datetime.fromisoformat(at[:19]).replace(tzinfo=UTC).astimezone(VIETNAM)
        return (local.replace(tzinfo=None) - EXCEL_EPOCH) / DAY
    return hour + (int(at[14:16]) * 60 + int(at[17:19])) / 86400


_cached_hour_serial = cache(_hour_serial)


class _Writer:
    """Rows of `export_query` (the wide shape) into the comments and votes sheets."""

    def __init__(self, book: Workbook, cells: ExportCells, translate: Callable[[str], str],
                 opened: list[FastRows]) -> None:
        self.cells = cells
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                                  "text_wrap": True, "valign": "top"})
        self.date = book.add_format({"num_format": DATE_FORMAT})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.comments = _Sheet(book, translate(COMMENTS),
                               [translate(name) for name in COMMENT_COLUMNS], header, opened)
        self.votes = _Sheet(book, translate(VOTES),
                            [translate(name) for name in VOTE_COLUMNS], header, opened)
        self.titles = cache(cells.title)
        self.places = cache(cells.place)
        self.people = cache(cells.pseudonym)
        self.labels = cache(neutralise)
        self.origins = cache(cells.origin_cells)

    def write(self, rows: Sequence[Any]) -> None:
        date, wrap = self.date, self.wrap
        for draft, kind, receipt, code, person, at, text, vote, forwarded, origin in rows:
            comment = kind == "comment"
            cells: list[Cell] = [(0, int(draft), None, False),
                                 (1, self.titles(draft), None, True)]
            column = 2
            if comment:
                cells.append((2, receipt, None, False))
                column = 3
            for cell in self.places(code):
                cells.append((column, cell, None, True))
                column += 1
            person_cell = self.people(person)
            if person_cell:  # none for a comment gathered offline
                cells.append((column, person_cell, None, True))
            cells.append((column + 1, _serial(at), date, False))
            if comment:
                cells.append((column + 2, neutralise(text), wrap, False))
                ends = [*self.cells.mark_cells(forwarded), *self.origins(origin)]
            else:
                cells.append((column + 2, self.labels(vote), None, True))
                ends = list(self.origins(origin))
            for place, cell in enumerate(ends, start=3):
                if cell:
                    cells.append((column + place, cell, None, True))
            (self.comments if comment else self.votes).write(cells)
        if self.people.cache_info().currsize > 200_000:  # as the CSV's pseudonym cache
            self.people.cache_clear()

    def close(self) -> None:
        self.comments.close()
        self.votes.close()


def _summary(book: Workbook, results: list[DraftResults], translate: Callable[[str], str]
             ) -> FastRows:
    """One row per draft (all its communes), then one per commune: figures and votes per
    option, the options of every draft side by side (drafts sharing a label share its column)."""
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                              "text_wrap": True, "valign": "top"})
    bold = book.add_format({"bold": True})
    percent = book.add_format({"num_format": "0.0%"})
    bold_percent = book.add_format({"num_format": "0.0%", "bold": True})
    labels: list[str] = []
    for found in results:
        labels += [option.label for option in found.options if option.label not in labels]
    headers = [translate(name) for name in (DRAFT_NO, TITLE, CODE, COMMUNE, PROVINCE)]
    headers += [translate(name) for name in FIGURE_COLUMNS]
    headers += [neutralise(label) for label in labels]
    sheet = book.add_worksheet(translate(SUMMARY)[:31])
    for column, name in enumerate(headers):
        sheet.set_column(column, column, WIDTHS.get(name, max(min(len(name), 30) + 2, 10)))
    sheet.set_column(5, 5 + len(FIGURE_COLUMNS) - 1, 12)
    sheet.set_row(0, 30)
    sheet.write_row(0, 0, headers, header)
    sheet.freeze_panes(1, 2)
    rows = FastRows(sheet)
    row = 1

    def write(cells: list[Cell], values: Figures, found: DraftResults, style: Format | None,
              rate: Format) -> None:
        """The row, with its figures: in column order, a column written twice (two options
        with one label) holding the last, as XlsxWriter keeps it."""
        for column, value in enumerate((values.reached, values.held, values.unreachable,
                                        values.comments, values.voters, values.participants)):
            cells.append((5 + column, value, style, False))
        if values.participation is not None:
            cells.append((5 + 6, values.participation, rate, False))
        for option, count in zip(found.options, values.votes, strict=True):
            cells.append((5 + len(FIGURE_COLUMNS) + labels.index(option.label), count, style,
                          False))
        by_column = {cell[0]: cell for cell in cells}
        rows.write(row, [by_column[column] for column in sorted(by_column)])

    for found in results:
        title = neutralise(found.title)
        write([(0, found.draft_id, bold, False), (1, title, bold, True),
               (3, translate(ALL_COMMUNES), bold, True)], found.total, found, bold,
              bold_percent)
        row += 1
        for entry in found.communes:
            place = ExportCells.place("" if entry.code is None else str(entry.code))
            write([(0, found.draft_id, None, False), (1, title, None, True),
                   (2, place[0], None, True),
                   (3, place[1] or commune_name(entry.code, translate), None, True),
                   (4, place[2], None, True)], entry.figures, found, None, percent)
            row += 1
    if row > 1:
        sheet.autofilter(0, 0, row - 1, len(headers) - 1)
    return rows


async def export_xlsx(
    session: AsyncSession,
    out: str | IO[bytes],
    draft_id: int | None = None,
    key: bytes = b"",
    translate: Callable[[str], str] = str,
    batch: int = BATCH,
    communes: Collection[int] | None = None,
) -> int:
    """Write the workbook to `out` (a file name or a binary file); returns the comment and
    vote rows written. `communes`: only the drafts, figures and rows of these communes."""
    from xlsxwriter import Workbook

    secret = key or await pseudonym_key(session)
    titles = {draft: title for draft, title in
              (await session.execute(export_titles(draft_id, communes))).all()}
    scope = None if communes is None else frozenset(communes)
    results = [found for draft in titles
               if (found := await draft_results(session, draft, scope)) is not None]
    cells = ExportCells(titles, {kind: translate(word) for kind, word in KINDS.items()},
                        translate(ANONYMOUS), secret, translate(FORWARDED_MARK),
                        hidden_words(translate), translate)
    book = Workbook(out, {
        "constant_memory": True,
        # Text stays text: never a formula, a number or a link.
        "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
    })
    count = 0
    opened = [_summary(book, results, translate)]
    writer = _Writer(book, cells, translate, opened)
    if titles:
        connection = await session.connection()
        dialect = connection.dialect.name
        query = export_query(draft_id, dialect, last_draft=max(titles), communes=communes)
        stream = await connection.stream(query.execution_options(yield_per=batch))
        async for partition in stream.partitions():
            rows = widen(partition) if dialect == "sqlite" else partition
            await asyncio.to_thread(writer.write, rows)
            count += len(rows)
    writer.close()
    # Each sheet's last row goes out now, sheet by sheet, as XlsxWriter writes its own at
    # close: formats first used there are numbered in the same order.
    for rows in opened:
        rows.close()
    # Zipping the sheets' temporary files into the workbook: CPU and disk, in a thread too.
    # (After a failure the workbook is not closed: its temporary files go with it.)
    await asyncio.to_thread(book.close)
    return count

