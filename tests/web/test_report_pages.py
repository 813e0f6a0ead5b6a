"""The annual report page of the workspace over HTTP, on the known year of tests/report_data.py:
each official sees their own communes only (another commune's rows never appear; a forged
commune outside the scope is refused), bad input is refused, and the downloads (XLSX,
printable HTML) carry the same figures and are audited."""

from __future__ import annotations

import html
import io
import re

import openpyxl
import pytest
from sqlalchemy import select

from storage.models import AuditEntry
from storage.roles import Role
from tests.report_data import EXPECTED, known_year
from tests.web.workspace import in_english, workspace

ROW = re.compile(r"<tr><td>([^<]*)</td><td class=\"number\">([^<]*)</td></tr>")


@pytest.fixture
async def place(sessionmaker, database_url):
    await known_year(sessionmaker)
    async with workspace(sessionmaker, database_url) as opened:
        yield opened



def totals(page_text: str) -> dict[str, str]:
    return {html.unescape(label): value for label, value in ROW.findall(page_text)}


async def audit_rows(sessionmaker) -> list[AuditEntry]:
    async with sessionmaker() as session:
        return list((await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "report_downloaded"))).all())


async def test_a_commune_official_sees_their_commune_only(place):
    official = await in_english(place.sign_in("cb"))  # Xã Cẩm Tú
    home = await official.get("/")
    assert 'href="/admin/report"' in home.text
    page = await official.get("/report", year="2026")
    assert page.status == 200, page.text
    found = totals(page.text)
    for label, (_, cam_tu, _) in EXPECTED.items():
        assert found[label] == str(cam_tu), label
    assert "Xã Cẩm Tú" in page.text
    assert "Phường Ba Đình" not in page.text and "Đèn đường" not in page.text
    # Asking for another commune, by a forged parameter, is refused; their own is shown.
    forged = await official.get("/report", year="2026", commune="4")
    assert forged.status == 403 and "outside your scope" in forged.text
    assert "Phường Ba Đình" not in forged.text
    own = await official.get("/report", year="2026", commune="15148")
    assert own.status == 200 and totals(own.text)["Comments received"] == "9"


async def test_a_province_official_and_an_admin(place):
    hanoi = await in_english(place.sign_in("hn", Role.OFFICIAL, "province:1"))
    page = await hanoi.get("/report", year="2026")
    found = totals(page.text)
    for label, (_, _, ba_dinh) in EXPECTED.items():
        assert found[label] == str(ba_dinh), label
    assert "Xã Cẩm Tú" not in page.text
    assert (await hanoi.get("/report", year="2026", commune="15148")).status == 403
    admin = await in_english(place.sign_in("ad", Role.ADMIN, "all"))
    everything = totals((await admin.get("/report", year="2026")).text)
    for label, (total, _, _) in EXPECTED.items():
        assert everything[label] == str(total), label
    narrowed = totals((await admin.get("/report", year="2026", commune="00004")).text)
    assert narrowed["Comments received"] == "4"


@pytest.mark.parametrize(("query", "status", "words"), [
    ({"year": "twenty"}, 400, "whole number"),
    ({"year": "2026", "from": "2026-02-30"}, 400, "is not a date"),
    ({"year": "2026", "from": "2026-10-01", "to": "2026-09-01"}, 400, "before it starts"),
    ({"year": "2026", "commune": "99999"}, 400, "no commune with code"),
    ({"year": "2026", "commune": "cam tu"}, 400, "no commune with code"),
])
async def test_bad_input(place, query, status, words):
    official = await in_english(place.sign_in("cb"))
    page = await official.get("/report", **query)
    assert page.status == status and words in page.text


async def test_downloads_are_the_same_figures_and_audited(place, sessionmaker):
    official = await in_english(place.sign_in("cb"))
    fields = {"year": "2026", "from": "", "to": "", "commune": ""}
    xlsx = await official.post("/report", {**fields, "format": "xlsx"})
    assert xlsx.status == 200, xlsx.text
    assert xlsx.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.body)).worksheets[0]
    by_label = {row[0]: row[1] for row in sheet.iter_rows(min_row=7, values_only=True)}
    assert by_label["Comments received"] == 9 and by_label["Votes received"] == 5
    printable = await official.post("/report", {**fields, "format": "html"})
    assert printable.status == 200 and "attachment" in printable.headers["Content-Disposition"]
    assert "@media print" in printable.text
    assert totals(printable.text)["Residents reached (per draft)"] == "6"
    rows = await audit_rows(sessionmaker)
    assert [row.detail.split()[0] for row in rows] == ["xlsx", "html"]
    assert all("communes: 15148" in row.detail for row in rows)
    # Refused: another commune, an unknown format, no CSRF token; none is audited.
    assert (await official.post("/report", {**fields, "commune": "4",
                                            "format": "xlsx"})).status == 403
    assert (await official.post("/report", {**fields, "format": "pdf"})).status == 400
    assert (await official.post("/report", {**fields, "format": "xlsx"},
                                csrf=False)).status == 403
    assert len(await audit_rows(sessionmaker)) == 2


async def test_in_vietnamese(place):
    official = await place.sign_in("cb")
    page = await official.get("/report", year="2026")
    assert page.status == 200
    assert "Báo cáo hằng năm" in page.text and "Số ý kiến nhận được" in page.text
    assert totals(page.text)["Số ý kiến nhận được"] == "9"
