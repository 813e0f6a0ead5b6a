"""storage.xlsx_rows writes a worksheet's rows as XlsxWriter's own write_number/write_string
would, byte for byte: the same workbook is built both ways, with awkward texts (control
characters, XlsxWriter's own _xHHHH_ escapes, XML's special characters, spaces at either end,
line breaks, an empty text, one longer than a cell holds), numbers, gaps between cells, and
formats first used in the last row; every part of the two files must be equal but the
creation time. The one difference by design: a text shaped like XlsxWriter's rich text
("<r>…</r>"), which XlsxWriter writes unescaped and so breaks the workbook, is written as
text and reads back as typed."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime

import pytest
from openpyxl import load_workbook
from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from storage.xlsx_rows import Cell, FastRows

AWKWARD = ["plain", " leading", "trailing ", "line\nbreak", "tab\there", "a & b < c > d",
           'quote "x"', "bell\x07 and nul\x00", "_x0041_ literal", "\ufffe\uffff", "",
           "Tiếng Việt có dấu", "=1+2", "emoji 🙂" * 5000, "x" * 40_000]
NUMBERS = [0, 7, -3, 0.1, 1 / 3, 46_000.123456789, 2**53, 1e20]

Rows = list[list[tuple[int, float | str, str | None]]]  # (column, value, format name)


def rows_of_everything() -> Rows:
    rows: Rows = []
    for index, text in enumerate(AWKWARD):
        number = NUMBERS[index % len(NUMBERS)]
        rows.append([(0, number, None), (1, text, None), (3, text, "wrap"),
                     (4, number, "date")])
    rows.append([(0, 1, None), (6, "only at the end", "late")])  # a format first used last
    return rows


def workbook(write: Callable[[Worksheet, dict[str, Format], Rows], None], rows: Rows
             ) -> bytes:
    out = io.BytesIO()
    book = Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                          "strings_to_numbers": False, "strings_to_urls": False})
    formats = {"header": book.add_format({"bold": True}),
               "date": book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"}),
               "wrap": book.add_format({"text_wrap": True}),
               "late": book.add_format({"italic": True})}
    sheet = book.add_worksheet("Rows")
    sheet.set_row(0, 30)
    sheet.write_row(0, 0, ["a", "b", "c", "d", "e", "f", "g"], formats["header"])
    write(sheet, formats, rows)
    other = book.add_worksheet("Other")  # a second sheet, written the usual way after
    other.write_string(0, 0, "after", formats["late"])
    book.set_properties({"created": datetime(2026, 1, 1)})
    book.close()
    return out.getvalue()


def with_xlsxwriter(sheet: Worksheet, formats: dict[str, Format], rows: Rows) -> None:
    for row, cells in enumerate(rows, start=1):
        for column, value, name in cells:
            style = formats[name] if name else None
            if isinstance(value, str):
                sheet.write_string(row, column, value, style)
            else:
                sheet.write_number(row, column, value, style)


def with_fast_rows(sheet: Worksheet, formats: dict[str, Format], rows: Rows) -> None:
    fast = FastRows(sheet)
    for row, cells in enumerate(rows, start=1):
        given: list[Cell] = [(column, value, formats[name] if name else None, row % 2 == 0)
                             for column, value, name in cells]
        fast.write(row, given)
    fast.close()


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_rows_written_whole_make_the_same_workbook_as_xlsxwriter():
    rows = rows_of_everything()
    expected, written = parts(workbook(with_xlsxwriter, rows)), parts(workbook(with_fast_rows,
                                                                                  rows))
    assert list(written) == list(expected)
    for name in expected:
        assert written[name] == expected[name], name


def test_the_same_text_in_many_rows_is_written_the_same_each_time():
    rows: Rows = [[(0, row, None), (1, AWKWARD[row % 4], "wrap")] for row in range(50)]
    assert parts(workbook(with_fast_rows, rows)) == parts(workbook(with_xlsxwriter, rows))


def test_a_text_shaped_like_rich_text_stays_text_and_the_workbook_readable():
    typed = "<r>x & y</r>"
    rows: Rows = [[(0, 1, None), (1, typed, None)]]
    with pytest.raises(Exception, match="not well-formed"):  # XlsxWriter's own output
        load_workbook(io.BytesIO(workbook(with_xlsxwriter, rows)))
    sheet = load_workbook(io.BytesIO(workbook(with_fast_rows, rows)))["Rows"]
    assert sheet["B2"].value == typed


def test_only_a_constant_memory_sheet_is_taken():
    book = Workbook(io.BytesIO())
    with pytest.raises(ValueError, match="constant-memory"):
        FastRows(book.add_worksheet())
    book.close()
