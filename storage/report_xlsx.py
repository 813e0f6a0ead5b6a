"""The annual report (storage.report) as an XLSX workbook: the totals, one row per commune, and
the drafts counted, with the columns of storage.report_table. Text cells are written as
text, never read as formulas, numbers or links, and neutralised (storage.export)."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from storage.export import neutralise
from storage.report import Report
from storage.report_table import (
    CODE,
    COMMUNE,
    DEFINITIONS,
    DRAFT_COLUMNS,
    DRAFTS_COUNTED,
    FIGURE,
    PER_COMMUNE,
    TITLE,
    TOTALS,
    VALUE,
    Column,
    Value,
    columns,
    commune_cells,
    draft_cells,
    period_line,
    place_line,
)

# Rows above the totals' header: the title, the period, the communes, the definitions.
HEAD_ROWS = 5


def write_report(out: str | IO[bytes], report: Report, place: str,
                 translate: Callable[[str], str] = str) -> None:
    from xlsxwriter import Workbook

    book = Workbook(out, {"strings_to_formulas": False, "strings_to_numbers": False,
                          "strings_to_urls": False})
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                            "text_wrap": True, "valign": "top"})
    percent = book.add_format({"num_format": "0%"})
    figures = columns(report, translate)

    def value(sheet: Any, row: int, column: int, found: Value, spec: Column) -> None:
        if found is None:
            sheet.write_string(row, column, "—")
        elif spec.share:
            sheet.write_number(row, column, found, percent)
        else:
            sheet.write_number(row, column, found)

    totals = book.add_worksheet(translate(TOTALS)[:31])
    totals.set_column(0, 0, 60)
    totals.set_column(1, 1, 12)
    totals.write_string(0, 0, neutralise(translate(TITLE)), book.add_format({"bold": True}))
    totals.write_string(1, 0, neutralise(period_line(report, translate)))
    totals.write_string(2, 0, neutralise(place_line(place, translate)))
    totals.write_string(3, 0, neutralise(translate(DEFINITIONS)))
    totals.write_row(HEAD_ROWS, 0, [translate(FIGURE), translate(VALUE)], bold)
    for index, spec in enumerate(figures, start=HEAD_ROWS + 1):
        totals.write_string(index, 0, neutralise(spec.label))
        value(totals, index, 1, spec.value(report.total), spec)

    communes = book.add_worksheet(translate(PER_COMMUNE)[:31])
    communes.set_column(0, 0, 28)
    communes.set_column(2, len(figures) + 1, 14)
    communes.write_row(0, 0, [translate(COMMUNE), translate(CODE),
                              *(neutralise(spec.label) for spec in figures)], bold)
    communes.freeze_panes(1, 2)
    for index, (code, found) in enumerate(report.per_commune.items(), start=1):
        name, code_text = commune_cells(code, translate)
        communes.write_string(index, 0, neutralise(name))
        communes.write_string(index, 1, code_text)
        for column, spec in enumerate(figures, start=2):
            value(communes, index, column, spec.value(found), spec)

    drafts = book.add_worksheet(translate(DRAFTS_COUNTED)[:31])
    drafts.write_row(0, 0, [translate(words) for words in DRAFT_COLUMNS], bold)
    drafts.set_column(1, 2, 40)
    drafts.set_column(3, 6, 14)
    for index, draft in enumerate(report.drafts, start=1):
        for column, cell in enumerate(draft_cells(draft, translate)):
            if isinstance(cell, int):
                drafts.write_number(index, column, cell)
            else:
                drafts.write_string(index, column, neutralise(cell))
    book.close()
