"""The annual report of a consultation made only through the public paths, as a commune would
run it: the draft from a file with its issuer level (`ykien draft create`, `broadcast`),
residents on Telegram and Zalo saying whom they comment for in the chat, comments gathered at
a meeting and on paper (`ykien comment add`), every comment answered through the spreadsheet
(`ykien synthesis export` / `import`), the draft closed and its response published. Then
`ykien report` gives the figures worked out below, and `ykien export` gives them again."""

from __future__ import annotations

import csv
import re
from datetime import datetime

import openpyxl
from sqlalchemy import select

from handlers.events import Incoming, Kind
from storage.models import VIETNAM, PollOption
from tests.chat import BA_DINH, CAM_TU
from tests.cli.test_report_cli import BA_DINH_NAME, CAM_TU_NAME, figures, ykien

DRAFT_FILE = """
title = "Quy định giờ họp chợ"
issuer = "UBND tỉnh Thanh Hóa"
issuer_level = "tỉnh"
summary = "Chợ họp từ 5 giờ đến 11 giờ."
deadline = 2099-12-31T17:00:00

[targets]
communes = [15148, 4]

[poll]
question = "Bạn có đồng ý?"
options = ["Đồng ý", "Không đồng ý"]
"""


def on(channel: str, user: str, *, text: str = "", choice: str = "") -> Incoming:
    if choice:
        return Incoming(channel, user, Kind.CHOICE, choice=choice)
    return Incoming(channel, user, Kind.TEXT, text=text)


async def resident(service, channel: str, user: str, commune: int) -> None:
    await service.handle(on(channel, user, choice="agree:en"))
    await service.handle(on(channel, user, choice=f"commune:{commune}"))


async def comment(service, channel: str, user: str, draft: int, words: str) -> None:
    await service.handle(on(channel, user, choice=f"comment:{draft}"))
    await service.handle(on(channel, user, text=words))


def run(sessionmaker, cwd, *args: str) -> str:
    done = ykien(sessionmaker, cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_consultation_made_through_the_public_paths(sessionmaker, service, tmp_path):
    (tmp_path / "draft.toml").write_text(DRAFT_FILE, encoding="utf-8")
    created = run(sessionmaker, tmp_path, "draft", "create", "--file", "draft.toml")
    draft = int(re.search(r"draft no\. (\d+)", created).group(1))  # type: ignore[union-attr]
    await resident(service, "telegram", "t1", CAM_TU)
    await resident(service, "zalo", "z1", BA_DINH)
    run(sessionmaker, tmp_path, "draft", "broadcast", str(draft))

    # t1 says first whom they comment for (/category), then comments and votes: both are
    # recorded as an individual's. z1 comments first (recorded as "not said"), is asked, says
    # "business", and comments again.
    await service.handle(on("telegram", "t1", text="/category"))
    await service.handle(on("telegram", "t1", choice="category:individual"))
    await comment(service, "telegram", "t1", draft, "Nên họp chợ sớm hơn")
    async with sessionmaker() as session:
        agree = await session.scalar(select(PollOption.id).where(
            PollOption.draft_id == draft, PollOption.position == 0))
    await service.handle(on("telegram", "t1", choice=f"vote:{agree}"))
    await comment(service, "zalo", "z1", draft, "Cần chỗ để xe")
    await service.handle(on("zalo", "z1", choice="category:business"))
    await comment(service, "zalo", "z1", draft, "Thu phí thấp")
    run(sessionmaker, tmp_path, "comment", "add", "--draft", str(draft), "--commune",
        str(CAM_TU), "--source", "meeting", "--category", "organisation", "--text",
        "Hội nghị thôn đề nghị giữ giờ cũ")
    run(sessionmaker, tmp_path, "comment", "add", "--draft", str(draft), "--commune",
        str(BA_DINH), "--source", "paper", "--text", "Phiếu góp ý: đồng ý")

    # Every comment answered in the spreadsheet, the draft closed, the response published.
    run(sessionmaker, tmp_path, "synthesis", "export", "--draft", str(draft),
        "--out", "answers.xlsx")
    book = openpyxl.load_workbook(tmp_path / "answers.xlsx")
    sheet = book.worksheets[0]
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row, 4, "accepted")
        sheet.cell(row, 5, "Đã tiếp thu.")
    book.save(tmp_path / "filled.xlsx")
    assert "5 answers read, 5 stored" in run(sessionmaker, tmp_path, "synthesis", "import",
                                             "filled.xlsx")
    # The synthesis table says who commented, as drafting bodies' tables do.
    run(sessionmaker, tmp_path, "synthesis", "table", "--draft", str(draft), "--out", "t.xlsx")
    table = list(openpyxl.load_workbook(tmp_path / "t.xlsx").worksheets[0]
                 .iter_rows(values_only=True))
    assert table[0][6] == "Who commented"
    assert {row[2]: row[6] for row in table[1:]} == {
        "Nên họp chợ sớm hơn": "Individual 1",
        "Cần chỗ để xe": "not said 1",
        "Thu phí thấp": "Business 1",
        "Hội nghị thôn đề nghị giữ giờ cũ": "Organisation 1\nVillage meeting 1",
        "Phiếu góp ý: đồng ý": "not said 1\nPaper 1",
    }
    run(sessionmaker, tmp_path, "draft", "close", str(draft))
    run(sessionmaker, tmp_path, "synthesis", "publish", str(draft), "--summary",
        "Giữ giờ họp chợ, thu phí thấp.")

    year = str(datetime.now(VIETNAM).year)
    totals, communes, drafts = figures(run(sessionmaker, tmp_path, "report", "--year", year))
    assert [row[0] for row in drafts] == [str(draft)]
    expected = {  # label: (total, Cẩm Tú, Ba Đình)
        "Drafts communicated": (1, 1, 1),
        "Drafts communicated: provincial": (1, 1, 1),
        "Comments received": (5, 2, 3),
        "Comments received: Telegram": (1, 1, 0),
        "Comments received: Zalo OA": (2, 0, 2),
        "Comments received: of which gathered offline": (2, 1, 1),
        "Comments received: village meetings": (1, 1, 0),
        "Comments received: on paper": (1, 0, 1),
        "Comments received: individuals": (1, 1, 0),
        "Comments received: organisations": (1, 1, 0),
        "Comments received: businesses": (1, 0, 1),
        "Comments received: category not said": (2, 0, 2),
        "Votes received": (1, 1, 0),
        "Votes received: individuals": (1, 1, 0),
        "Comments answered": (5, 2, 3),
        "Responses published": (1, 1, 1),
        "Drafts closed": (1, 1, 1),
        "Closed drafts with a published response": ("100%", "100%", "100%"),
    }
    for label, (total, cam_tu, ba_dinh) in expected.items():
        assert totals[label] == str(total), label
        assert communes[CAM_TU_NAME][label] == str(cam_tu), label
        assert communes[BA_DINH_NAME][label] == str(ba_dinh), label

    # The same figures again from the export, by its columns, as README says.
    run(sessionmaker, tmp_path, "export", "--draft", str(draft), "--out", "all.csv")
    with (tmp_path / "all.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    comments = [row for row in rows if row["Kind"] == "comment"]
    for column, value, label in (
        ("Chat app", "Telegram", "Comments received: Telegram"),
        ("Chat app", "Zalo OA", "Comments received: Zalo OA"),
        ("Source", "Village meeting", "Comments received: village meetings"),
        ("Source", "Paper", "Comments received: on paper"),
        ("Commenting as", "Individual", "Comments received: individuals"),
        ("Commenting as", "Organisation", "Comments received: organisations"),
        ("Commenting as", "Business", "Comments received: businesses"),
        ("Commenting as", "", "Comments received: category not said"),
    ):
        assert str(sum(row[column] == value for row in comments)) == totals[label], label
    assert str(len(comments)) == totals["Comments received"]
    assert str(sum(row["Kind"] == "vote" for row in rows)) == totals["Votes received"]
