"""`ykien report` on the known year of tests/report_data.py, run as a user would: every figure
in total and per commune, in Markdown and in the XLSX; a commune's and a province's report;
the period's edges; bad input; and the totals per commune recomputed from `ykien export`."""

from __future__ import annotations

import csv
import subprocess

import openpyxl
import pytest

from tests import ykien_process
from tests.conftest import cli_environment
from tests.report_data import EXPECTED, THANH_HOA, known_year

CAM_TU_NAME, BA_DINH_NAME = "Xã Cẩm Tú", "Phường Ba Đình"


def ykien(sessionmaker, cwd, *args: str, language: str = "en") -> subprocess.CompletedProcess:
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    return ykien_process.run(args, text=True, cwd=cwd, timeout=120,
                             env={**cli_environment(url), "YKIEN_LANGUAGE": language})


def tables(markdown: str) -> list[list[list[str]]]:
    """The Markdown's tables, each a list of rows of cells (the header first, no rule)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not line.startswith("|---"):
                current.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def figures(markdown: str) -> tuple[dict[str, str], dict[str, dict[str, str]], list[list[str]]]:
    """The totals by label, each commune's row by label, and the drafts' rows."""
    totals, communes, drafts = tables(markdown)
    header = communes[0]
    return ({label: value for label, value in totals[1:]},
            {row[0]: dict(zip(header, row, strict=True)) for row in communes[1:]}, drafts[1:])


async def test_every_figure_of_the_year(sessionmaker, tmp_path):
    ids = await known_year(sessionmaker)
    done = ykien(sessionmaker, tmp_path, "report", "--year", "2026")
    assert done.returncode == 0, done.stderr
    totals, communes, drafts = figures(done.stdout)
    assert "01/01/2026 to 31/12/2026" in done.stdout
    for label, (total, cam_tu, ba_dinh) in EXPECTED.items():
        assert totals[label] == str(total), label
        assert communes[CAM_TU_NAME][label] == str(cam_tu), label
        assert communes[BA_DINH_NAME][label] == str(ba_dinh), label
    # Only the drafts broadcast in 2026 (Vietnam time), in order; a reach without a commune
    # has a row of its own.
    assert [int(row[0]) for row in drafts] == [ids["D1"], ids["D2"], ids["D3"]]
    assert [row[3] for row in drafts] == ["national", "provincial", "commune"]
    assert [row[6] for row in drafts] == ["yes", "no", "no"]
    assert communes["no commune given"]["Residents reached (per draft)"] == "1"
    assert set(communes) == {CAM_TU_NAME, BA_DINH_NAME, "no commune given"}


async def test_the_xlsx_has_the_same_figures(sessionmaker, tmp_path):
    await known_year(sessionmaker)
    done = ykien(sessionmaker, tmp_path, "report", "--year", "2026", "--format", "xlsx",
                 "--out", "report.xlsx")
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    totals, communes, drafts = book.worksheets
    by_label = {row[0]: row[1] for row in totals.iter_rows(min_row=7, values_only=True)}
    rows = list(communes.iter_rows(values_only=True))
    per_commune = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    for label, (total, cam_tu, ba_dinh) in EXPECTED.items():
        if isinstance(total, str):  # the share: a fraction shown as a percentage
            assert (by_label[label], per_commune[CAM_TU_NAME][label],
                    per_commune[BA_DINH_NAME][label]) == (0.5, 0.5, 1.0)
            continue
        assert by_label[label] == total, label
        assert per_commune[CAM_TU_NAME][label] == cam_tu, label
        assert per_commune[BA_DINH_NAME][label] == ba_dinh, label
    assert per_commune[CAM_TU_NAME]["Code"] == "15148"
    assert drafts.max_row == 4  # the header and three drafts
    # Written again only with --force.
    again = ykien(sessionmaker, tmp_path, "report", "--format", "xlsx", "--out", "report.xlsx")
    assert again.returncode == 1 and "--force" in again.stderr
    forced = ykien(sessionmaker, tmp_path, "report", "--year", "2025", "--format", "xlsx",
                   "--out", "report.xlsx", "--force")
    assert forced.returncode == 0, forced.stderr
    sheet = openpyxl.load_workbook(tmp_path / "report.xlsx").worksheets[2]
    assert sheet.max_row == 2  # 2025: only D5


async def test_a_communes_and_a_provinces_report(sessionmaker, tmp_path):
    await known_year(sessionmaker)
    commune = ykien(sessionmaker, tmp_path, "report", "--year", "2026", "--commune", "15148")
    province = ykien(sessionmaker, tmp_path, "report", "--year", "2026", "--province",
                     str(THANH_HOA))
    for done in (commune, province):
        assert done.returncode == 0, done.stderr
        totals, communes, drafts = figures(done.stdout)
        assert set(communes) == {CAM_TU_NAME}  # Ba Đình's rows never appear
        for label, (_, cam_tu, _) in EXPECTED.items():
            assert totals[label] == str(cam_tu), label
            assert communes[CAM_TU_NAME][label] == str(cam_tu), label
        assert len(drafts) == 2
    assert "Communes: Xã Cẩm Tú" in commune.stdout
    assert "Communes: Tỉnh Thanh Hóa" in province.stdout


async def test_the_period_and_its_edges(sessionmaker, tmp_path):
    ids = await known_year(sessionmaker)
    # D3 went at 23:59 on 31 December, Vietnam time; D4 a minute later, in 2027.
    last_day = ykien(sessionmaker, tmp_path, "report", "--from", "31/12/2026", "--to",
                     "2026-12-31")
    assert last_day.returncode == 0, last_day.stderr
    assert [int(row[0]) for row in figures(last_day.stdout)[2]] == [ids["D3"]]
    new_year = ykien(sessionmaker, tmp_path, "report", "--year", "2027")
    assert [int(row[0]) for row in figures(new_year.stdout)[2]] == [ids["D4"]]
    # --from alone: to the end of its year.
    summer = ykien(sessionmaker, tmp_path, "report", "--from", "2026-05-01")
    assert [int(row[0]) for row in figures(summer.stdout)[2]] == [ids["D2"], ids["D3"]]


async def test_in_vietnamese_and_as_html(sessionmaker, tmp_path):
    await known_year(sessionmaker)
    done = ykien(sessionmaker, tmp_path, "report", "--year", "2026", language="vi")
    assert done.returncode == 0, done.stderr
    assert "Xã Cẩm Tú" in done.stdout and "Drafts communicated" not in done.stdout
    page = ykien(sessionmaker, tmp_path, "report", "--year", "2026", "--format", "html",
                 "--out", "report.html")
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "@media print" in html and "<td>Drafts communicated</td>" in html
    assert "Quy định phí vệ sinh" in html


@pytest.mark.parametrize(("args", "words"), [
    (("--from", "2026-13-01"), "is not a date"),
    (("--from", "yesterday"), "is not a date"),
    (("--from", "2026-10-01", "--to", "2026-09-30"), "ends (2026-09-30) before it starts"),
    (("--commune", "99999"), "no commune with code “99999”"),
    (("--commune", "Cẩm Tú"), "no commune with code"),
    (("--province", "99"), "no province with code “99”"),
    (("--province", "38", "--commune", "15148"), "not allowed with argument"),
    (("--format", "xlsx"), "--out"),
    (("--format", "pdf"), "invalid choice"),
    (("--year", "26"), "whole number from"),
])
async def test_bad_input(sessionmaker, tmp_path, args, words):
    done = ykien(sessionmaker, tmp_path, "report", *args)
    assert done.returncode == 2
    assert words in done.stderr, done.stderr
    assert not [path for path in tmp_path.iterdir() if not path.name.startswith("ykien.db")]


async def test_reproducible_from_the_export(sessionmaker, tmp_path):
    """Comments, hidden comments and votes per commune, counted again from `ykien export`
    filtered on the report's drafts and the commune code, as README says."""
    await known_year(sessionmaker)
    report = ykien(sessionmaker, tmp_path, "report", "--year", "2026")
    exported = ykien(sessionmaker, tmp_path, "export", "--out", "all.csv")
    assert report.returncode == 0 and exported.returncode == 0, exported.stderr
    totals, communes, drafts = figures(report.stdout)
    counted = {row[0] for row in drafts}
    with (tmp_path / "all.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Draft no."] in counted]
    for name, code in ((CAM_TU_NAME, "15148"), (BA_DINH_NAME, "00004")):
        mine = [row for row in rows if row["Commune code"] == code]
        assert str(sum(row["Kind"] == "comment" for row in mine)) \
            == communes[name]["Comments received"]
        assert str(sum(row["Kind"] == "comment" and row["Hidden"] != "" for row in mine)) \
            == communes[name]["Comments received: of which hidden"]
        assert str(sum(row["Kind"] == "vote" for row in mine)) \
            == communes[name]["Votes received"]
    assert str(sum(row["Kind"] == "comment" for row in rows)) == totals["Comments received"]
    assert str(sum(row["Kind"] == "vote" for row in rows)) == totals["Votes received"]


async def test_a_title_that_looks_like_a_formula_stays_text(sessionmaker, tmp_path):
    from sqlalchemy import update

    from storage.models import Draft

    ids = await known_year(sessionmaker)
    async with sessionmaker() as session:
        await session.execute(update(Draft).where(Draft.id == ids["D1"])
                              .values(title="=HYPERLINK(\"http://x\")", issuer="+84 UBND"))
        await session.commit()
    done = ykien(sessionmaker, tmp_path, "report", "--year", "2026", "--format", "xlsx",
                 "--out", "report.xlsx")
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "report.xlsx").worksheets[2]
    title, issuer = sheet.cell(2, 2), sheet.cell(2, 3)
    assert (title.value, title.data_type) == ("'=HYPERLINK(\"http://x\")", "s")
    assert issuer.value == "'+84 UBND"
