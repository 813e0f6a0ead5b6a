"""CSV export: formulas neutralised, pseudonyms stable and keyed, times with their zone."""

from __future__ import annotations

import csv
import io

from handlers.events import Incoming, Kind
from storage.export import export_csv, neutralise
from tests.conftest import add_draft


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
