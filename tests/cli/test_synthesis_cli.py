"""`ykien synthesis …` on the known consultation of tests/results_data.py, run as a user would:
the spreadsheet round trip (a file with errors changes nothing, a second import changes
nothing), the synthesis table, and publishing the response to exactly the participants."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import openpyxl
from sqlalchemy import func, select, update

from bot.sending.worker import DeliveryWorker
from storage.models import (
    AuditEntry,
    CommentAnswer,
    CommentGroup,
    Delivery,
    Handling,
    Resident,
    utcnow,
)
from tests import ykien_process
from tests.conftest import cli_environment
from tests.results_data import Listening, comment, known_consultation, say


def ykien(sessionmaker, cwd, *args: str, language: str = "en") -> subprocess.CompletedProcess:
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    return ykien_process.run(args, text=True, cwd=cwd, timeout=120,
                             env={**cli_environment(url), "YKIEN_LANGUAGE": language})


def fill(source, target, answers: dict[int, tuple[str, str]], edits: dict[int, str] | None = None):
    """Write handling and explanation into rows of the exported sheet (row numbers as Excel
    shows them), and change comment cells."""
    book = openpyxl.load_workbook(source)
    sheet = book.worksheets[0]
    for row, (handling, explanation) in answers.items():
        sheet.cell(row, 4, handling)
        sheet.cell(row, 5, explanation)
    for row, text in (edits or {}).items():
        sheet.cell(row, 3, text)
    book.save(target)


async def answers(sessionmaker) -> dict[int, tuple[str, str]]:
    async with sessionmaker() as session:
        rows = await session.execute(select(CommentAnswer.comment_id, CommentAnswer.handling,
                                            CommentAnswer.explanation))
        return {row[0]: (row[1], row[2]) for row in rows.all()}


async def test_round_trip_in_excel(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    done = ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", str(draft),
                 "--out", "answers.xlsx", language="vi")
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "answers.xlsx").worksheets[0]
    rows = [[cell or "" for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["Số biên nhận", "Xã/Phường", "Góp ý", "Cách tiếp thu", "Giải trình",
                       "Số nhóm", "Nhóm"]
    assert [row[0] for row in rows[1:]] == [f"{draft}-{n}" for n in range(1, 6)]
    assert rows[2][2] == "'=SUM(A1) nên thu theo quý"  # neutralised, as in every export
    validation = sheet.data_validations.dataValidation[0]
    assert validation.type == "list" and "không tiếp thu" in validation.formula1
    # a second export does not replace the first without --force
    again = ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", str(draft),
                  "--out", "answers.xlsx")
    assert again.returncode == 1 and "--force" in again.stderr

    fill(tmp_path / "answers.xlsx", tmp_path / "filled.xlsx", {
        2: ("Đã tiếp thu", "Giữ mức phí."),
        3: ("Tiếp thu một phần", "Thu theo quý từ năm sau."),
        4: ("không tiếp thu", "Mức phí đã thấp nhất tỉnh."),
        5: ("ghi nhận / ngoài phạm vi dự thảo", ""),
    })
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "filled.xlsx", language="vi")
    assert done.returncode == 0, done.stderr
    stored = await answers(sessionmaker)
    assert sorted(handling for handling, _ in stored.values()) == sorted(
        [Handling.ACCEPTED, Handling.PARTLY_ACCEPTED, Handling.NOT_ACCEPTED, Handling.NOTED])
    assert "Mức phí đã thấp nhất tỉnh." in {text for _, text in stored.values()}
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "filled.xlsx")
    assert done.returncode == 0, done.stderr
    assert "4 answers read, 0 stored or changed" in done.stdout
    assert await answers(sessionmaker) == stored
    async with sessionmaker() as session:
        imports = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "answers_imported"))
    assert imports == 1  # the second import changed nothing, and recorded nothing

    table = ykien(sessionmaker, tmp_path, "synthesis", "table", "--draft", str(draft),
                  "--out", "table.xlsx")
    assert table.returncode == 0, table.stderr
    cells = [row for row in openpyxl.load_workbook(tmp_path / "table.xlsx").worksheets[0]
             .iter_rows(values_only=True)]
    assert cells[0][:6] == ("No.", "Commune", "Comment", "Identical comments", "Handling",
                            "Explanation")
    assert cells[1][2] == "Mức phí hợp lý." and cells[1][4] == "accepted"
    assert cells[5][4] == "not answered yet"


async def test_a_file_with_errors_changes_nothing(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    assert ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", str(draft),
                 "--out", "answers.xlsx").returncode == 0
    fill(tmp_path / "answers.xlsx", tmp_path / "bad.xlsx", {
        2: ("accepted", "Fine."),  # a good row: not stored either
        3: ("maybe", ""),
        4: ("not accepted", ""),
        5: ("", "An explanation alone"),
    }, edits={6: "Không đồng ý lắm."})
    book = openpyxl.load_workbook(tmp_path / "bad.xlsx")
    book.worksheets[0].append([f"{draft}-99", "", "?", "accepted", ""])
    book.worksheets[0].append([f"{draft}-1", "", "Mức phí hợp lý.", "accepted", ""])
    book.save(tmp_path / "bad.xlsx")
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "bad.xlsx")
    assert done.returncode == 1
    problems = done.stderr.splitlines()
    assert problems[0] == "Nothing was imported; 6 problems in bad.xlsx:"
    assert problems[1:] == [
        "  - row 3: “maybe” is not a handling: choose one of the list",
        f"  - row 4: comment {draft}-3 is not (or partly) accepted: say why in the explanation",
        f"  - row 5: comment {draft}-4 has an explanation but no handling",
        f"  - row 6: the words of comment {draft}-5 were changed: a comment is answered as the "
        "resident wrote it",
        f"  - row 7: there is no comment with the receipt number “{draft}-99”",
        f"  - row 8: comment {draft}-1 is on another row too",
    ]
    assert await answers(sessionmaker) == {}
    (tmp_path / "not.xlsx").write_text("receipt,handling\n")
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "not.xlsx")
    assert done.returncode == 1 and "not an XLSX workbook" in done.stderr


async def test_publishing_reaches_each_participant_once(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    draft = str(known.draft.id)
    await comment(service, "g", known.draft.id, "Cần thêm thùng rác.")
    await service.handle(say("c", "/stop"))  # voted, then stopped: gets nothing
    refused = ykien(sessionmaker, tmp_path, "synthesis", "publish", draft, "--summary", "Xong.")
    assert refused.returncode == 1 and "still open for comments" in refused.stderr
    assert ykien(sessionmaker, tmp_path, "draft", "close", draft).returncode == 0
    refused = ykien(sessionmaker, tmp_path, "synthesis", "publish", draft, "--summary", "Xong.")
    assert refused.returncode == 1 and "6 comments without an answer" in refused.stderr

    assert ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", draft,
                 "--out", "answers.xlsx").returncode == 0
    fill(tmp_path / "answers.xlsx", tmp_path / "filled.xlsx",
         {row: ("accepted", "") for row in range(2, 8)}
         | {4: ("not accepted", "Mức phí đã thấp nhất tỉnh.")})
    assert ykien(sessionmaker, tmp_path, "synthesis", "import", "filled.xlsx").returncode == 0
    refused = ykien(sessionmaker, tmp_path, "synthesis", "publish", draft, "--summary", "",)
    assert refused.returncode == 1 and "--summary" in refused.stderr
    done = ykien(sessionmaker, tmp_path, "synthesis", "publish", draft, "--summary",
                 "Phí giữ nguyên, thu theo quý.", "--link", "https://camtu.gov.vn/phi")
    assert done.returncode == 0, done.stderr
    # a, e, f, g took part and are here; b erased their data, c stopped
    assert "4 messages queued for 4 participants" in done.stdout
    again = ykien(sessionmaker, tmp_path, "synthesis", "publish", draft)
    assert again.returncode == 0 and "0 messages queued for 4 participants" in again.stdout

    async with sessionmaker() as session, session.begin():  # e: silent for 8 days
        await session.execute(update(Resident).where(Resident.platform_id == "e")
                              .values(last_seen_at=utcnow() - timedelta(days=8)))
    channel = Listening()
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert sorted(channel.texts) == ["a", "f", "g"]  # e's waits for Zalo's window
    held = ykien(sessionmaker, tmp_path, "synthesis", "status", draft)
    assert "3 sent, 0 waiting, 1 waiting for Zalo's window" in held.stdout
    await service.handle(say("e", "/help"))  # e writes again: their message goes
    await DeliveryWorker(sessionmaker, {"test": channel}).run_once()
    assert sorted(channel.texts) == ["a", "e", "f", "g"]
    assert all(len(texts) == 1 for texts in channel.texts.values())
    to_a = channel.texts["a"][0]
    assert "Phí giữ nguyên, thu theo quý." in to_a and "https://camtu.gov.vn/phi" in to_a
    assert f"Số {draft}-1: đã tiếp thu" in to_a  # in a's language: Vietnamese
    assert f"Số {draft}-2" in to_a and f"Số {draft}-4" not in to_a
    assert f"{draft}-" not in channel.texts["f"][0]  # voted only: the overall response
    assert "Phí giữ nguyên" in channel.texts["f"][0]
    status = ykien(sessionmaker, tmp_path, "synthesis", "status", draft)
    assert "6 of 6 comments answered" in status.stdout
    assert "4 sent, 0 waiting" in status.stdout
    async with sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.dedup_key.like(f"response:{draft}:%")))
    assert rows == 4


async def test_groups_in_the_spreadsheet_and_the_table(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    draft = str(known.draft.id)
    await comment(service, "c", known.draft.id, "muc phi hop ly")  # a's point, in other case
    await comment(service, "f", known.draft.id, "Mức phí hợp lý!!")
    long = "Đề nghị công khai danh sách hộ được miễn giảm phí vệ sinh " * 4  # over a name
    await comment(service, "a", known.draft.id, long.strip())
    grouped = ykien(sessionmaker, tmp_path, "groups", "compute", "--draft", draft)
    assert grouped.returncode == 0, grouped.stderr
    await comment(service, "d", known.draft.id, "Cần thêm thùng rác.")  # not grouped yet
    await comment(service, "g", known.draft.id, "cần thêm thùng rác")  # identical to d's
    async with sessionmaker() as session:
        groups = await session.scalar(select(func.count()).select_from(CommentGroup).where(
            CommentGroup.draft_id == known.draft.id))
    assert groups == 6  # the fee point (three comments) and five comments alone

    assert ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", draft,
                 "--out", "answers.xlsx").returncode == 0
    rows = list(openpyxl.load_workbook(tmp_path / "answers.xlsx").worksheets[0]
                .iter_rows(values_only=True))
    assert rows[0][5:] == ("Group no.", "Group")
    by_text = {row[2]: row for row in rows[1:]}
    fee = by_text["Mức phí hợp lý."][5]
    assert isinstance(fee, int) and by_text["Mức phí hợp lý."][6] == "Mức phí hợp lý."
    assert [row[5] for row in rows[1:]].count(fee) == 3
    assert by_text["muc phi hop ly"][5] == by_text["Mức phí hợp lý!!"][5] == fee
    assert by_text["Cần thêm thùng rác."][5:] == (None, None)  # not grouped yet

    # the group columns are not read back: a sorted, renamed group changes nothing
    book = openpyxl.load_workbook(tmp_path / "answers.xlsx")
    sheet = book.worksheets[0]
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row, 4, "accepted")
        sheet.cell(row, 7, "=HYPERLINK(1)")
    sheet.cell(2, 6, 999999)
    book.save(tmp_path / "filled.xlsx")
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "filled.xlsx")
    assert done.returncode == 0, done.stderr
    assert "10 answers read, 10 stored or changed" in done.stdout

    renamed = ykien(sessionmaker, tmp_path, "groups", "rename", str(fee), "Về mức phí",
                    "--draft", draft)
    assert renamed.returncode == 0, renamed.stderr
    table = ykien(sessionmaker, tmp_path, "synthesis", "table", "--draft", draft,
                  "--out", "table.xlsx")
    assert table.returncode == 0, table.stderr
    cells = list(openpyxl.load_workbook(tmp_path / "table.xlsx").worksheets[0]
                 .iter_rows(values_only=True))[1:]
    # one row per group, the largest first (by its name), then the two identical late
    # comments on one row
    assert len(cells) == groups + 1
    assert cells[0][2] == "Về mức phí" and cells[0][3] == 3
    assert cells[-1][2] == "Cần thêm thùng rác." and cells[-1][3] == 2
    assert sum(row[3] for row in cells) == 10
    assert long.strip() in [row[2] for row in cells]  # whole, not the group's shortened name


async def test_text_shaped_like_rich_text_stays_text(sessionmaker, service, tmp_path):
    """XlsxWriter writes a text "<r>…</r>" unescaped, as rich text it built: typed by a
    resident or an official, it would empty the cell or leave the workbook unreadable."""
    known = await known_consultation(sessionmaker, service)
    draft = known.draft.id
    await comment(service, "a", draft, "<r>Phí cao quá</r>")
    done = ykien(sessionmaker, tmp_path, "synthesis", "export", "--draft", str(draft),
                 "--out", "answers.xlsx")
    assert done.returncode == 0, done.stderr
    rows = list(openpyxl.load_workbook(tmp_path / "answers.xlsx").worksheets[0]
                .iter_rows(values_only=True))
    assert rows[-1][2] == "'<r>Phí cao quá</r>"  # neutralised, like a formula
    fill(tmp_path / "answers.xlsx", tmp_path / "filled.xlsx",
         {len(rows): ("accepted", "<r>Giảm phí</r>")})
    done = ykien(sessionmaker, tmp_path, "synthesis", "import", "filled.xlsx")
    assert done.returncode == 0, done.stderr
    assert "<r>Giảm phí</r>" in {text for _, text in (await answers(sessionmaker)).values()}
    table = ykien(sessionmaker, tmp_path, "synthesis", "table", "--draft", str(draft),
                  "--out", "table.xlsx")
    assert table.returncode == 0, table.stderr
    cells = list(openpyxl.load_workbook(tmp_path / "table.xlsx").worksheets[0]
                 .iter_rows(values_only=True))
    assert ("'<r>Phí cao quá</r>", "'<r>Giảm phí</r>") in {(row[2], row[5]) for row in cells}
