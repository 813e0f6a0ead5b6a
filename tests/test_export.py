"""CSV export: formulas neutralised, pseudonyms stable and keyed, times with their zone."""

from __future__ import annotations

import csv
import io

from handlers.events import Incoming, Kind
from handlers.i18n import translator
from storage.export import export_csv, neutralise
from tests.conftest import EXAMPLE_DRAFT, add_draft


def test_formula_cells_are_neutralised():
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx"):
        assert neutralise(dangerous).startswith("'")
    assert neutralise("Đồng ý") == "Đồng ý"


async def export(sessionmaker, key: bytes) -> list[dict]:
    async with sessionmaker() as session:
        out = io.StringIO()
        await export_csv(session, out, key=key)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


async def test_pseudonyms_are_stable_per_key_and_hide_the_account(sessionmaker, service):
    draft = await add_draft(sessionmaker)
    for user in ("84901234567", "84907654321"):
        await service.handle(Incoming("zalo", user, Kind.CHOICE, choice="agree:vi"))
        await service.handle(Incoming("zalo", user, Kind.CHOICE, choice="commune:15148"))
        await service.handle(Incoming("zalo", user, Kind.CHOICE, choice=f"comment:{draft.id}"))
        await service.handle(Incoming("zalo", user, Kind.TEXT, text="@cmd|' /C calc'!A0"))
    first = await export(sessionmaker, b"key-1")
    again = await export(sessionmaker, b"key-1")
    other = await export(sessionmaker, b"key-2")
    assert [r["Resident"] for r in first] == [r["Resident"] for r in again]
    assert len({r["Resident"] for r in first}) == 2
    assert {r["Resident"] for r in first}.isdisjoint({r["Resident"] for r in other})
    assert all("8490" not in r["Resident"] for r in first)
    assert all(r["Comment"].startswith("'@") for r in first)


async def test_the_generated_key_is_kept(sessionmaker, service):
    draft = await add_draft(sessionmaker)
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice="agree:vi"))
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice="commune:15148"))
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice=f"vote:{draft.options[0].id}"))
    first = await export(sessionmaker, b"")
    second = await export(sessionmaker, b"")
    assert first[0]["Resident"] == second[0]["Resident"]


async def subscribe_and_comment(service, user: str, draft_id: int, *comments: str) -> None:
    await service.handle(Incoming("t", user, Kind.CHOICE, choice="agree:en"))
    await service.handle(Incoming("t", user, Kind.CHOICE, choice="commune:15148"))
    for comment in comments:
        await service.handle(Incoming("t", user, Kind.CHOICE, choice=f"comment:{draft_id}"))
        await service.handle(Incoming("t", user, Kind.TEXT, text=comment))


async def test_a_formula_in_the_title_comes_out_as_text(sessionmaker, service, tmp_path):
    title = '=HYPERLINK("http://evil.example","Bấm vào đây")'
    path = tmp_path / "draft.toml"
    path.write_text(EXAMPLE_DRAFT.read_text(encoding="utf-8").replace(
        'title = "Dự thảo Quy định giữ gìn vệ sinh môi trường khu dân cư"', f"title = '{title}'"
    ), encoding="utf-8")
    draft = await add_draft(sessionmaker, path)
    await subscribe_and_comment(service, "1", draft.id, "Đồng ý với dự thảo.")
    rows = await export(sessionmaker, b"key")
    assert [row["Draft title"] for row in rows] == ["'" + title]


async def test_an_erased_resident_shows_as_anonymous_in_the_export_language(
    sessionmaker, service
):
    draft = await add_draft(sessionmaker)
    await subscribe_and_comment(service, "1", draft.id, "Phí hợp lý.")
    await subscribe_and_comment(service, "2", draft.id, "Phí cao quá.")
    await service.handle(Incoming("t", "1", Kind.CHOICE, choice="erase:yes"))
    async with sessionmaker() as session:
        out = io.StringIO()
        await export_csv(session, out, key=b"key", translate=translator("vi"))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    by_comment = {row["Góp ý"]: row["Người dân"] for row in rows}
    assert by_comment["Phí hợp lý."] == "ẩn danh"
    assert by_comment["Phí cao quá."].startswith("R-")


async def test_each_comment_carries_its_receipt_number(sessionmaker, service):
    draft = await add_draft(sessionmaker)
    await subscribe_and_comment(service, "1", draft.id, "một", "hai")
    await subscribe_and_comment(service, "2", draft.id, "ba")
    await service.handle(Incoming("t", "2", Kind.CHOICE, choice=f"vote:{draft.options[0].id}"))
    rows = await export(sessionmaker, b"key")
    assert list(rows[0])[:5] == ["Draft no.", "Draft title", "Kind", "Receipt no.", "Commune code"]
    assert [(row["Kind"], row["Receipt no."], row["Comment"]) for row in rows] == [
        ("comment", f"{draft.id}-1", "một"),
        ("comment", f"{draft.id}-2", "hai"),
        ("comment", f"{draft.id}-3", "ba"),
        ("vote", "", ""),
    ]
    assert {row["Commune code"] for row in rows} == {"15148"}
