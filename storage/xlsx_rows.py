"""Rows written straight into an XlsxWriter worksheet in constant-memory mode, as the XML that
XlsxWriter's own write_number/write_string would write, byte for byte (but for one fix,
below), at about a fifth of the cost: XlsxWriter spends most of its ~30 µs a row checking
and storing each cell before formatting it (tests/test_xlsx_rows.py compares the two).

This leans on XlsxWriter's constant-memory internals (the sheet's temporary file `fh`, its
`previous_row` and dimensions, `_write_single_row`, a format's `_get_xf_index`), so
pyproject.toml bounds its version, and the comparison test is the first to fail should they
change.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate, xl_col_to_name
from xlsxwriter.xmlwriter import XMLwriter, xml_escapes

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

STRING_LIMIT = 32_767  # UTF-16 units in a cell, as XlsxWriter truncates


def number_cell(value: float, style: str = "") -> str:
    """A number cell's XML after its `<c r="A1"`."""
    return f"{style}><v>{value:.16G}</v></c>"


def string_cell(value: str, style: str = "") -> str:
    """An in-line string cell's XML after its `<c r="A1"` (XlsxWriter's escapes: control
    characters as _xHHHH_, whitespace kept, &, < and > as entities)."""
    if len(value) > STRING_LIMIT // 2 and _utf16_len(value) > STRING_LIMIT:
        value = _utf16_truncate(value, STRING_LIMIT)
    value = XMLwriter._escape_control_characters(value)
    # Unlike XlsxWriter, which writes a text "<r>…</r>" unescaped (it takes it for rich text
    # it built), which left the whole workbook unreadable: a resident could type it.
    preserve = ' xml:space="preserve"' if _preserve_whitespace(value) else ""
    if xml_escapes.search(value):
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'{style} t="inlineStr"><is><t{preserve}>{value}</t></is></c>'


# One cell: its column, its value (a number, or a text) and its format; `repeats` when the
# same value comes back often (a title, a commune, a pseudonym): its XML is then kept.
Cell = tuple[int, "float | str", "Format | None", bool]
KEPT_TEXTS = 100_000  # texts whose XML is kept at once (the least used go first)


class FastRows:
    """Whole rows of one worksheet, after what XlsxWriter holds (the header). Rows must come
    in increasing order, and nothing else may be written to the sheet's cells afterwards;
    `close` before the workbook is closed.

    Like XlsxWriter, the last row given waits until the next one (or `close`): a format is
    numbered when the first row using it is written out, so the workbook's formats are
    numbered in the same order as XlsxWriter's own writes would number them."""

    def __init__(self, sheet: Worksheet) -> None:
        if not sheet.constant_memory:
            raise ValueError("FastRows writes only to a constant-memory worksheet")
        self.sheet = sheet
        self.columns = [xl_col_to_name(column) for column in range(64)]
        self._header_written = False
        self._pending: tuple[int, list[Cell]] | None = None
        self._styles: dict[int, str] = {}
        self._text = lru_cache(maxsize=KEPT_TEXTS)(string_cell)

    def write(self, row: int, cells: list[Cell]) -> None:
        """Row `row` (0-based), its cells in column order."""
        self._write_header()
        if self._pending is not None:
            self._write_out(*self._pending)
        self._pending = (row, cells)

    def close(self) -> None:
        """Write out the last row."""
        self._write_header()
        if self._pending is not None:
            self._write_out(*self._pending)
            self._pending = None

    def _write_header(self) -> None:
        if not self._header_written:
            self.sheet._write_single_row(self.sheet.previous_row + 1)
            self._header_written = True

    def _style(self, cell_format: Format | None) -> str:
        if cell_format is None:
            return ""
        style = self._styles.get(id(cell_format))
        if style is None:
            style = self._styles[id(cell_format)] = f' s="{cell_format._get_xf_index()}"'
        return style

    def _write_out(self, row: int, cells: list[Cell]) -> None:
        sheet = self.sheet
        number = row + 1
        columns, text, style = self.columns, self._text, self._style
        parts = [f'<row r="{number}">']
        for column, value, cell_format, repeats in cells:
            parts.append(f'<c r="{columns[column]}{number}"')
            if isinstance(value, str):
                parts.append((text if repeats else string_cell)(value, style(cell_format)))
            else:
                parts.append(number_cell(value, style(cell_format)))
        parts.append("</row>")
        sheet.fh.write("".join(parts))
        # What XlsxWriter's own writes would have noted: the sheet's extent, the last row.
        sheet.dim_rowmax = row if sheet.dim_rowmax is None else max(sheet.dim_rowmax, row)
        last = cells[-1][0]
        sheet.dim_colmax = last if sheet.dim_colmax is None else max(sheet.dim_colmax, last)
        sheet.previous_row = number
