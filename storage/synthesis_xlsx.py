"""The answers in Excel, both ways, and the synthesis table as a workbook.

The answering sheet (`ykien synthesis export`) lists a draft's comments with empty (or
already given) handling and explanation columns, the handling chosen from a drop-down list,
then each comment's group (storage.groups: its number and name, to sort by; reading ignores
them); `read_answer_sheet` + `import_answers` take it back (`ykien synthesis import`): every problem
of the file is found first, and any problem changes nothing. An answer imported again as it
is changes nothing either. Text cells are written as text and neutralised (storage.export).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.answers import (
    HANDLING_WORDS,
    Answer,
    AnsweredComment,
    AnswerError,
    AnswerProblem,
    SynthesisRow,
    answer_comments,
    parse_handling,
)
from storage.charts import commune_name
from storage.export import neutralise, unneutralise
from storage.groups import GroupRef
from storage.models import Comment, Handling
from storage.moderation import SHOWN
from storage.respondents import CATEGORY_WORDS, NOT_SAID, SOURCE_WORDS
from storage.text import N_

ANSWER_SHEET = N_("Answers")
SYNTHESIS_SHEET = N_("Synthesis")
RECEIPT, COMMUNE, COMMENT, HANDLING, EXPLANATION = (
    N_("Receipt no."), N_("Commune"), N_("Comment"), N_("Handling"), N_("Explanation"))
ANSWER_COLUMNS = (RECEIPT, COMMUNE, COMMENT, HANDLING, EXPLANATION)
# After the columns read back, so that a file written before them still reads the same.
GROUP_NUMBER, GROUP = N_("Group no."), N_("Group")
GROUP_COLUMNS = (GROUP_NUMBER, GROUP)
NUMBER, COUNT = N_("No."), N_("Identical comments")
WHO = N_("Who commented")
SYNTHESIS_COLUMNS = (NUMBER, COMMUNE, COMMENT, COUNT, HANDLING, EXPLANATION, WHO)
WIDTHS = {RECEIPT: 11, COMMUNE: 24, COMMENT: 70, HANDLING: 28, EXPLANATION: 60, NUMBER: 6,
          COUNT: 10, GROUP_NUMBER: 9, GROUP: 40, WHO: 28}
MAX_ROWS = 1_048_575  # Excel's rows, less the header
CHOOSE_FROM_LIST = N_("Choose one of the handlings of the list.")
NOT_ANSWERED_YET = N_("not answered yet")


def _book(out: str | IO[bytes]) -> Any:
    from xlsxwriter import Workbook

    return Workbook(out, {"strings_to_formulas": False, "strings_to_numbers": False,
                          "strings_to_urls": False})


def _sheet(book: Any, name: str, headers: Sequence[str], translate: Callable[[str], str]
           ) -> tuple[Any, Any]:
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                              "text_wrap": True, "valign": "top"})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    sheet = book.add_worksheet(translate(name)[:31])
    for column, name in enumerate(headers):
        sheet.set_column(column, column, WIDTHS.get(name, 14), wrap)
    sheet.write_row(0, 0, [translate(name) for name in headers], header)
    sheet.freeze_panes(1, 0)
    return sheet, wrap


def handling_choices(translate: Callable[[str], str]) -> list[str]:
    return [translate(HANDLING_WORDS[handling]) for handling in Handling]


def write_answer_sheet(out: str | IO[bytes], comments: Sequence[AnsweredComment],
                       translate: Callable[[str], str] = str,
                       groups: Mapping[int, GroupRef] | None = None) -> None:
    """The comments with their handling (a drop-down list) and explanation, to fill in, and
    their group (`groups`: each grouped comment's, by id) to sort by."""
    book = _book(out)
    columns = ANSWER_COLUMNS + GROUP_COLUMNS
    sheet, wrap = _sheet(book, ANSWER_SHEET, columns, translate)
    for row, comment in enumerate(comments, start=1):
        sheet.write_string(row, 0, comment.receipt)
        sheet.write_string(row, 1, neutralise(commune_name(comment.commune_code, translate)))
        sheet.write_string(row, 2, neutralise(comment.text), wrap)
        if comment.handling is not None:
            sheet.write_string(row, 3, translate(HANDLING_WORDS[comment.handling]))
        if comment.explanation:
            sheet.write_string(row, 4, neutralise(comment.explanation), wrap)
        if (group := (groups or {}).get(comment.id)) is not None:
            sheet.write_number(row, 5, group.id)
            sheet.write_string(row, 6, neutralise(group.label), wrap)
    sheet.data_validation(1, 3, MAX_ROWS, 3, {
        "validate": "list", "source": handling_choices(translate),
        "error_title": translate(HANDLING),
        "error_message": translate(CHOOSE_FROM_LIST),
    })
    sheet.autofilter(0, 0, max(len(comments), 1), len(columns) - 1)
    book.close()


def write_synthesis_table(out: str | IO[bytes], title: str, rows: Sequence[SynthesisRow],
                          translate: Callable[[str], str] = str) -> None:
    """The table drafting bodies publish: number, commune, comment (with how many said the
    same), handling, explanation."""
    book = _book(out)
    sheet, wrap = _sheet(book, SYNTHESIS_SHEET, SYNTHESIS_COLUMNS, translate)
    sheet.set_header("&C" + neutralise(title).replace("&", "&&"))
    for index, row in enumerate(rows, start=1):
        sheet.write_number(index, 0, row.number)
        sheet.write_string(index, 1, neutralise(communes_text(row, translate)), wrap)
        sheet.write_string(index, 2, neutralise(row.text), wrap)
        sheet.write_number(index, 3, row.count)
        handling, explanation = answer_cells(row, translate)
        sheet.write_string(index, 4, handling, wrap)
        sheet.write_string(index, 5, neutralise(explanation), wrap)
        sheet.write_string(index, 6, respondents_text(row, translate), wrap)
    book.close()


def communes_text(row: SynthesisRow, translate: Callable[[str], str]) -> str:
    return ", ".join(commune_name(code, translate) for code in row.commune_codes)


def respondents_text(row: SynthesisRow, translate: Callable[[str], str]) -> str:
    """Who said it: "Individual 2, Organisation 1" (whom they commented for), then the
    comments gathered offline by source ("Village meeting 1"), one line each."""
    def listed(counts: tuple[tuple[str, int], ...], words: Mapping[Any, str]) -> str:
        return ", ".join(f"{translate(words.get(key, key) or NOT_SAID)} {count}"
                         for key, count in counts)

    lines = [listed(row.respondents, CATEGORY_WORDS), listed(row.offline, SOURCE_WORDS)]
    return "\n".join(line for line in lines if line)


def answer_cells(row: SynthesisRow, translate: Callable[[str], str]) -> tuple[str, str]:
    """The handling and explanation cells of a row: the group's answer (each one, on its own
    line, if its comments were answered differently); "unanswered" for what is not."""
    handlings = [translate(HANDLING_WORDS[handling]) for handling, _ in row.answers]
    explanations = [explanation for _, explanation in row.answers if explanation]
    if row.unanswered:
        handlings.append(translate(NOT_ANSWERED_YET))
    return "\n".join(dict.fromkeys(handlings)), "\n".join(dict.fromkeys(explanations))


# ---- reading it back ---------------------------------------------------------------------


class ImportProblem(StrEnum):
    UNREADABLE = "unreadable"  # not an XLSX workbook
    LAYOUT = "layout"  # not the answering sheet's columns
    RECEIPT = "receipt"  # no such comment
    DUPLICATE = "duplicate"  # the same comment on two rows
    HANDLING = "handling"  # not one of the list
    EDITED = "edited"  # the comment's words were changed
    NO_HANDLING = "no_handling"  # an explanation, but no handling
    NO_EXPLANATION = "no_explanation"
    TOO_LONG = "too_long"


@dataclass(frozen=True)
class ImportIssue:
    row: int  # the spreadsheet's row number (1: the header)
    problem: ImportProblem
    value: str = ""


@dataclass(frozen=True)
class SheetRow:
    row: int
    receipt: str
    comment: str
    handling: str
    explanation: str


class ImportRefused(Exception):
    def __init__(self, issues: list[ImportIssue]) -> None:
        super().__init__(f"{len(issues)} problems")
        self.issues = issues


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\r\n", "\n")


def read_answer_sheet(source: str | IO[bytes],
                      translations: Sequence[Callable[[str], str]] = (str,)) -> list[SheetRow]:
    """The rows of an answering sheet, its header in any of the languages (English always);
    ImportRefused when it is not one."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        book = load_workbook(source, read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise ImportRefused([ImportIssue(0, ImportProblem.UNREADABLE, str(error))]) from error
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [_cell(value).strip() for value in next(rows, ())][:len(ANSWER_COLUMNS)]
        languages: list[Callable[[str], str]] = [str, *translations]
        expected = [[translate(name) for name in ANSWER_COLUMNS] for translate in languages]
        if header not in expected:
            raise ImportRefused([ImportIssue(1, ImportProblem.LAYOUT, " | ".join(header))])
        found = []
        for number, values in enumerate(rows, start=2):
            cells = [_cell(value) for value in values][:len(ANSWER_COLUMNS)]
            cells += [""] * (len(ANSWER_COLUMNS) - len(cells))
            if not any(cell.strip() for cell in cells):
                continue
            found.append(SheetRow(number, cells[0].strip(), cells[2], cells[3].strip(),
                                  cells[4]))
        return found
    finally:
        book.close()


def _receipt(text: str) -> tuple[int, int] | None:
    draft, dash, number = text.partition("-")
    if not dash or not all(part.isascii() and part.isdigit() and len(part) < 10
                           for part in (draft, number)):
        return None
    return int(draft), int(number)


@dataclass(frozen=True)
class Imported:
    answered: int  # rows with an answer
    changed: int  # answers stored or changed (0 when the file was imported already)
    drafts: tuple[int, ...]


async def import_answers(session: AsyncSession, rows: Sequence[SheetRow], now: datetime,
                         translations: Sequence[Callable[[str], str]] = (str,)) -> Imported:
    """Store the answers of the rows: every row checked first, ImportRefused listing every
    problem (and nothing stored) if any."""
    issues: list[ImportIssue] = []
    seen: set[tuple[int, int]] = set()
    wanted: list[tuple[SheetRow, tuple[int, int]]] = []
    for row in rows:
        receipt = _receipt(row.receipt)
        if receipt is None:
            issues.append(ImportIssue(row.row, ImportProblem.RECEIPT, row.receipt))
        elif receipt in seen:
            issues.append(ImportIssue(row.row, ImportProblem.DUPLICATE, row.receipt))
        else:
            seen.add(receipt)
            wanted.append((row, receipt))
    stored: dict[tuple[int, int], tuple[int, str]] = {}
    for draft_id in {draft for draft, _ in seen}:
        numbers = sorted(number for draft, number in seen if draft == draft_id)
        for start in range(0, len(numbers), 500):
            found = await session.execute(
                select(Comment.number, Comment.id, Comment.text)
                .where(Comment.draft_id == draft_id, SHOWN,
                       Comment.number.in_(numbers[start:start + 500])))
            stored.update({(draft_id, number): (id_, text) for number, id_, text in found})
    answers: list[tuple[int, int, Answer]] = []  # (draft, comment id, answer)
    for row, receipt in wanted:
        if receipt not in stored:
            issues.append(ImportIssue(row.row, ImportProblem.RECEIPT, row.receipt))
            continue
        comment_id, text = stored[receipt]
        if row.comment not in (text, neutralise(text)):
            issues.append(ImportIssue(row.row, ImportProblem.EDITED, row.receipt))
        if not row.handling:
            if row.explanation.strip():
                issues.append(ImportIssue(row.row, ImportProblem.NO_HANDLING, row.receipt))
            continue
        handling = parse_handling(row.handling, translations)
        if handling is None:
            issues.append(ImportIssue(row.row, ImportProblem.HANDLING, row.handling))
            continue
        explanation = unneutralise(row.explanation)  # as neutralised on the way out
        try:
            answers.append((receipt[0], comment_id, Answer.checked(handling, explanation)))
        except AnswerError as error:
            problem = (ImportProblem.TOO_LONG if error.problem is AnswerProblem.TOO_LONG
                       else ImportProblem.NO_EXPLANATION)
            issues.append(ImportIssue(row.row, problem, row.receipt))
    if issues:
        raise ImportRefused(sorted(issues, key=lambda issue: issue.row))
    changed = 0
    for draft_id, comment_id, answer in answers:
        changed += await answer_comments(session, draft_id, [comment_id], answer, now)
    return Imported(len(answers), changed, tuple(sorted({draft for draft, _ in seen})))
