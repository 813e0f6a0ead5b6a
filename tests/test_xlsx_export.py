"""The XLSX export read back cell by cell with openpyxl: the same rows, pseudonyms and
neutralised cells as the CSV export, real dates in Vietnam time, a summary sheet with the
results' figures, styled and frozen headers; `ykien export` choosing and refusing formats."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import datetime

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select

import storage.export_xlsx as export_xlsx_module
from handlers.i18n import translator
from storage.export import export_csv
from storage.export_xlsx import export_xlsx
from storage.models import VIETNAM, Comment, utcnow
from storage.moderation import ModerationReason, hide_comment
from tests import ykien_process
from tests.conftest import cli_environment
from tests.results_data import known_consultation

KEY = b"xlsx-test-key"


def values(sheet: Worksheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


async def workbook(sessionmaker, draft_id: int | None = None, language: str = "vi"):
    out = io.BytesIO()
    async with sessionmaker() as session:
        count = await export_xlsx(session, out, draft_id, KEY, translate=translator(language))
    return count, openpyxl.load_workbook(io.BytesIO(out.getvalue()))


async def csv_rows(sessionmaker, draft_id: int) -> list[list[str]]:
    out = io.StringIO()
    async with sessionmaker() as session:
        await export_csv(session, out, draft_id, KEY, translate=translator("vi"))
    return list(csv.reader(io.StringIO(out.getvalue())))[1:]


async def test_comments_and_votes_read_back_as_the_csv_has_them(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    async with sessionmaker() as session, session.begin():
        spam = await session.scalar(select(Comment.id).where(Comment.text == "Phí cao quá."))
        assert await hide_comment(session, known.draft.id, spam, ModerationReason.SPAM, "",
                                  utcnow())
    count, book = await workbook(sessionmaker, known.draft.id)
    assert count == 5 + 4  # the hidden comment too
    assert book.sheetnames == ["Tổng hợp", "Góp ý", "Phiếu"]
    comments, votes = values(book["Góp ý"]), values(book["Phiếu"])
    assert comments[0] == ["Số dự thảo", "Tên dự thảo", "Số biên nhận", "Mã xã",
                           "Xã/Phường", "Tỉnh/Thành phố", "Người dân", "Thời gian", "Góp ý",
                           "Chuyển tiếp", "Đã ẩn", "Ứng dụng trò chuyện", "Góp ý với tư cách",
                           "Nguồn"]
    # how each came (chat app, whom for, source), as the CSV has them
    by_csv = await csv_rows(sessionmaker, known.draft.id)
    origins = [row[-3:] for row in comments[1:]]
    for row in comments[1:]:
        del row[-3:]
    assert origins == [[cell or None for cell in r[13:16]] for r in by_csv if r[2] == "góp ý"]
    assert {origin[2] for origin in origins} == {"Ứng dụng trò chuyện"}
    vote_origins = [row[-3:] for row in votes[1:]]
    for row in votes[1:]:
        del row[-3:]
    assert vote_origins == [[cell or None for cell in r[13:16]] for r in by_csv
                            if r[2] == "biểu quyết"]
    # the hidden and forwarded marks as the CSV has them, then the other cells
    hidden = [row.pop() for row in comments[1:]]
    assert hidden == [r[12] or None for r in await csv_rows(sessionmaker, known.draft.id)
                      if r[2] == "góp ý"]
    assert hidden.count("quảng cáo, rác") == 1
    forwarded = [row.pop() for row in comments[1:]]
    assert forwarded == [r[11] or None for r in await csv_rows(sessionmaker, known.draft.id)
                         if r[2] == "góp ý"]
    assert votes[0][-4:] == ["Biểu quyết", "Ứng dụng trò chuyện", "Góp ý với tư cách", "Nguồn"]

    # every cell as the CSV export writes it, times as dates instead of text
    from_csv = await csv_rows(sessionmaker, known.draft.id)
    expected_comments = [[int(r[0]), r[1], r[3], r[4], r[5], r[6], r[7], r[8], r[9]]
                         for r in from_csv if r[2] == "góp ý"]
    expected_votes = [[int(r[0]), r[1], r[4], r[5], r[6], r[7], r[8], r[10]]
                      for r in from_csv if r[2] == "biểu quyết"]
    assert len(expected_comments) == 5 and len(expected_votes) == 4

    def text_times(rows: list[list]) -> list[list]:
        # the date cell, shown as the CSV's ISO text (Vietnam time, to the second)
        return [[*row[:-2], row[-2].strftime("%Y-%m-%dT%H:%M:%S+07:00"), row[-1]]
                for row in rows]

    assert text_times(comments[1:]) == expected_comments
    assert text_times(votes[1:]) == expected_votes
    assert [row[2] for row in comments[1:]] == [f"{known.draft.id}-{n}" for n in range(1, 6)]
    assert "'=SUM(A1) nên thu theo quý" in [row[-1] for row in comments[1:]]
    assert "ẩn danh" in [row[6] for row in comments[1:]]  # b erased their data
    assert all(row[6].startswith("R-") or row[6] == "ẩn danh" for row in comments[1:])

    # real dates: the comment's stored UTC time, in Vietnam time, to the second
    async with sessionmaker() as session:
        first = await session.scalar(select(Comment).where(
            Comment.draft_id == known.draft.id, Comment.number == 1))
    shown = book["Góp ý"]["H2"]
    assert isinstance(shown.value, datetime) and shown.is_date
    assert shown.number_format == "dd/mm/yyyy hh:mm:ss"
    assert shown.value == first.created_at.astimezone(VIETNAM).replace(
        tzinfo=None, microsecond=0)


async def test_headers_are_styled_frozen_and_columns_sized(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    _, book = await workbook(sessionmaker, known.draft.id, "en")
    for sheet in book.worksheets:
        assert sheet.freeze_panes in ("A2", "C2")
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet["A1"].fill.fgColor.rgb.endswith("DDEBF7")
    comments = book["Comments"]
    assert comments.column_dimensions["I"].width > 70  # the comment
    assert comments.column_dimensions["B"].width >= 40  # the title
    assert comments.auto_filter.ref == "A1:N6"  # through the marks and how each came


async def test_the_summary_sheet_has_the_results_figures(sessionmaker, service):
    known = await known_consultation(sessionmaker, service)
    _, book = await workbook(sessionmaker, None, "en")  # every draft
    rows = values(book["Summary"])
    assert rows[0] == ["Draft no.", "Draft title", "Commune code", "Commune", "Province",
                       "Reached", "Waiting for Zalo's window", "Unreachable", "Comments",
                       "Votes", "Took part", "Participation", "Đồng ý", "Không đồng ý",
                       "Yes", "No"]
    draft = known.draft.id
    assert rows[1][:12] == [draft, "Phí vệ sinh", None, "All communes", None,
                            7, 1, 1, 5, 4, 6, pytest.approx(6 / 7)]
    assert rows[1][12:] == [3, 1, None, None]
    assert rows[2] == [draft, "Phí vệ sinh", "00004", "Phường Ba Đình", "Thành phố Hà Nội",
                       2, 0, 1, 1, 2, 2, 1, 1, 1, None, None]
    assert rows[3][2:12] == ["00008", "Phường Ngọc Hà", "Thành phố Hà Nội",
                             0, 0, 0, 0, 0, 0, None]  # no rate while nobody was reached
    assert rows[4][2:13] == ["15148", "Xã Cẩm Tú", "Tỉnh Thanh Hóa", 5, 1, 0, 4, 2, 4, 0.8, 2]
    other = [row for row in rows[1:] if row[0] == known.other.id]
    assert other[0][1] == "Giờ họp chợ" and other[0][5] == 5
    assert book["Summary"]["L2"].number_format == "0.0%"


async def test_a_full_sheet_continues_on_the_next(sessionmaker, service, monkeypatch):
    known = await known_consultation(sessionmaker, service)
    monkeypatch.setattr(export_xlsx_module, "SHEET_ROWS", 3)  # a header and two rows
    _, book = await workbook(sessionmaker, known.draft.id, "en")
    assert book.sheetnames == ["Summary", "Comments", "Comments (2)", "Comments (3)",
                               "Votes", "Votes (2)"]
    receipts = [row[2] for name in ("Comments", "Comments (2)", "Comments (3)")
                for row in values(book[name])[1:]]
    assert receipts == [f"{known.draft.id}-{n}" for n in range(1, 6)]
    assert values(book["Comments (3)"])[0][0] == "Draft no."


async def test_an_empty_database_gives_the_three_sheets_with_headers(sessionmaker):
    count, book = await workbook(sessionmaker, None, "en")
    assert count == 0
    assert [len(values(sheet)) for sheet in book.worksheets] == [1, 1, 1]


def ykien(database_url: str, cwd, *args: str) -> subprocess.CompletedProcess:
    return ykien_process.run(args, cwd=cwd, env=cli_environment(database_url), timeout=120)


async def test_ykien_export_chooses_the_format_and_refuses_a_mismatch(sessionmaker, service,
                                                                      tmp_path):
    known = await known_consultation(sessionmaker, service)
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    draft = str(known.draft.id)
    done = ykien(url, tmp_path, "export", "--draft", draft, "--out", "kq.xlsx")
    assert done.returncode == 0, done.stderr
    assert b"Wrote 9 rows to kq.xlsx." in done.stdout
    assert openpyxl.load_workbook(tmp_path / "kq.xlsx").sheetnames == [
        "Summary", "Comments", "Votes"]
    assert not list(tmp_path.glob("*.part"))

    again = ykien(url, tmp_path, "export", "--draft", draft, "--out", "kq.xlsx")
    assert again.returncode == 1 and b"already exists" in again.stderr

    for args in (["--out", "kq.csv", "--format", "xlsx"], ["--out", "b.xlsx", "--format", "csv"]):
        refused = ykien(url, tmp_path, "export", "--draft", draft, *args)
        assert refused.returncode == 1 and b"does not end in ." in refused.stderr
    assert not (tmp_path / "kq.csv").exists() and not (tmp_path / "b.xlsx").exists()

    done = ykien(url, tmp_path, "export", "--draft", draft, "--out", "kq.csv")
    assert done.returncode == 0 and (tmp_path / "kq.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    piped = ykien(url, tmp_path, "export", "--draft", draft, "--format", "xlsx", "--out", "-")
    assert piped.returncode == 0, piped.stderr
    streamed = openpyxl.load_workbook(io.BytesIO(piped.stdout))
    assert len(values(streamed["Comments"])) == 6
