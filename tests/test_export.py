"""CSV export: formulas neutralised, pseudonyms stable and keyed, times with their zone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

import storage.export as export_module
from handlers.events import Incoming, Kind
from handlers.i18n import translator
from storage.db import open_database
from storage.export import (
    COLUMNS,
    copy_text_rows,
    csv_cell,
    export_csv,
    free_text_cell,
    neutralise,
)
from storage.models import VIETNAM, Comment, Draft, Person, PollOption, Resident, Vote
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


# ---------------------------------------------------------------- the whole table, exactly

UTC_ = UTC
KEY = b"key"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC_)


async def small_database(sessionmaker) -> tuple[int, int]:
    """Two drafts; comments and votes from two residents, one erased, with formula-like cells."""
    async with sessionmaker() as session:
        fees = Draft(title="Phí vệ sinh, 2026", issuer="UBND", summary="s", scope="all",
                     opens_at=at("2026-01-01 00:00:00"), deadline=at("2027-01-01 00:00:00"))
        evil = Draft(title='=HYPERLINK("http://x.example")', issuer="UBND", summary="s",
                     scope="all", opens_at=at("2026-01-01 00:00:00"),
                     deadline=at("2027-01-01 00:00:00"))
        session.add_all([fees, evil])
        await session.flush()
        agree = PollOption(draft_id=fees.id, position=0, label="Đồng ý")
        formula = PollOption(draft_id=fees.id, position=1, label="=Không")
        first, second = Person(), Person()
        session.add_all([first, second])
        await session.flush()
        one = Resident(channel="telegram", platform_id="111", commune_code=15148,
                       person_id=first.id,
                       consent_at=at("2026-01-01 00:00:00"), consent_version="1")
        two = Resident(channel="zalo", platform_id="222", commune_code=4, person_id=second.id,
                       consent_at=at("2026-01-01 00:00:00"), consent_version="1")
        session.add_all([agree, formula, one, two])
        await session.flush()
        session.add_all([
            Comment(draft_id=fees.id, number=1, resident_id=one.id, commune_code=15148,
                    text="-5% thôi", created_at=at("2026-03-01 16:59:59.900000")),
            Comment(draft_id=fees.id, number=2, resident_id=two.id, commune_code=4,
                    text='Dòng 1\nDòng "2", hết', forwarded=True,
                    created_at=at("2026-03-01 17:00:00"),
                    hidden_reason="abusive", hidden_at=at("2026-03-05 00:00:00")),
            # erased resident; same time as a vote: the comment comes first
            Comment(draft_id=fees.id, number=3, resident_id=None, commune_code=None,
                    text="@SUM(A1)", created_at=at("2026-03-02 01:02:03.456789")),
            Vote(draft_id=fees.id, resident_id=one.id, option_id=formula.id,
                 commune_code=15148, created_at=at("2026-03-01 00:00:00"),
                 updated_at=at("2026-03-02 01:02:03.456789")),
            Vote(draft_id=fees.id, resident_id=None, option_id=agree.id, commune_code=4,
                 created_at=at("2026-03-03 00:00:00"), updated_at=at("2026-03-03 00:00:00")),
            # before 1975 Vietnam time was UTC+8: the row-by-row path writes it
            Comment(draft_id=evil.id, number=1, resident_id=two.id, commune_code=26734,
                    text="\tx", created_at=at("1970-01-01 00:00:00")),
            Comment(draft_id=evil.id, number=2, resident_id=one.id, commune_code=0,
                    text="", created_at=at("2026-12-31 23:59:59"),
                    hidden_reason="spam", hidden_at=at("2027-01-01 00:00:00")),
        ])
        await session.commit()
        return fees.id, evil.id


def expected_table(fees: int, evil: int) -> list[list[str]]:
    # HMAC-SHA256(b"key", "person:1"), (…, "person:2"): first 12 hex digits (pseudonyms are
    # per person, so linked chats share one)
    one, two, anonymous = "R-8bd3cdd1fe08", "R-be58045cae71", "anonymous"
    cam_tu = ["15148", "Xã Cẩm Tú", "Tỉnh Thanh Hóa"]
    ba_dinh = ["00004", "Phường Ba Đình", "Thành phố Hà Nội"]
    fees_title, evil_title = "Phí vệ sinh, 2026", '\'=HYPERLINK("http://x.example")'
    return [
        list(COLUMNS),
        [str(fees), fees_title, "comment", f"{fees}-1", *cam_tu, one,
         "2026-03-01T23:59:59+07:00", "'-5% thôi", "", "", ""],
        [str(fees), fees_title, "comment", f"{fees}-2", *ba_dinh, two,
         "2026-03-02T00:00:00+07:00", 'Dòng 1\nDòng "2", hết', "", "yes", "abusive"],
        [str(fees), fees_title, "comment", f"{fees}-3", "", "", "", anonymous,
         "2026-03-02T08:02:03+07:00", "'@SUM(A1)", "", "", ""],
        [str(fees), fees_title, "vote", "", *cam_tu, one,
         "2026-03-02T08:02:03+07:00", "", "'=Không", "", ""],
        [str(fees), fees_title, "vote", "", *ba_dinh, anonymous,
         "2026-03-03T07:00:00+07:00", "", "Đồng ý", "", ""],
        [str(evil), evil_title, "comment", f"{evil}-1", "26734", "", "", two,
         "1970-01-01T08:00:00+08:00", "'\tx", "", "", ""],
        [str(evil), evil_title, "comment", f"{evil}-2", "00000", "", "", one,
         "2027-01-01T06:59:59+07:00", "", "", "", "spam"],
    ]


async def export_text(sessionmaker, **options) -> str:
    async with sessionmaker() as session:
        out = io.StringIO(newline="")
        count = await export_csv(session, out, key=KEY, **options)
    text = out.getvalue()
    assert count == len(list(csv.reader(io.StringIO(text, newline="")))) - 1
    return text


async def test_the_export_is_exactly_the_expected_table(sessionmaker):
    fees, evil = await small_database(sessionmaker)
    text = await export_text(sessionmaker)
    assert list(csv.reader(io.StringIO(text, newline=""))) == expected_table(fees, evil)
    # and byte for byte what csv.writer writes for that table
    reference = io.StringIO(newline="")
    csv.writer(reference).writerows(expected_table(fees, evil))
    assert text == reference.getvalue()


async def test_a_database_in_memory_exports_the_same_table():
    """A file is exported from a worker thread on its own connection; a database in memory
    has no file to open, so it goes through the session's own connection."""
    async with open_database("sqlite+aiosqlite://") as in_memory:
        fees, evil = await small_database(in_memory)
        text = await export_text(in_memory)
    assert list(csv.reader(io.StringIO(text, newline=""))) == expected_table(fees, evil)


async def test_one_draft_only(sessionmaker):
    fees, evil = await small_database(sessionmaker)
    text = await export_text(sessionmaker, draft_id=evil)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        row for row in expected_table(fees, evil) if row[0] in (str(evil), "Draft no.")
    ]


async def test_the_row_by_row_path_writes_the_same_bytes(sessionmaker, monkeypatch):
    await small_database(sessionmaker)
    fast = await export_text(sessionmaker)

    def refuse(utc_hour: str):
        raise export_module._UnusualTime(utc_hour)

    monkeypatch.setattr(export_module, "_vietnam_hour", refuse)
    with pytest.raises(export_module._UnusualTime):
        await export_text(sessionmaker)  # the offset is read up front
    monkeypatch.undo()
    calls: list[str] = []
    real = export_module._vietnam_hour

    def every_hour_refused_after_the_first(utc_hour: str):
        calls.append(utc_hour)
        if len(calls) > 1:
            raise export_module._UnusualTime(utc_hour)
        return real(utc_hour)

    monkeypatch.setattr(export_module, "_vietnam_hour", every_hour_refused_after_the_first)
    assert await export_text(sessionmaker) == fast
    assert len(calls) > 1


async def test_more_rows_than_a_batch_come_out_once_each_in_order(sessionmaker):
    async with sessionmaker() as session:
        draft = Draft(title="Lớn", issuer="UBND", summary="s", scope="all",
                      opens_at=at("2026-01-01 00:00:00"), deadline=at("2027-01-01 00:00:00"))
        session.add(draft)
        await session.flush()
        option = PollOption(draft_id=draft.id, position=0, label="Đồng ý")
        session.add(option)
        await session.flush()
        start = at("2026-02-01 00:00:00")
        await session.execute(insert(Comment), [
            {"draft_id": draft.id, "number": n, "resident_id": None, "commune_code": 15148,
             "text": f"góp ý {n}, \"số\" {n}", "created_at": start + timedelta(seconds=2 * n)}
            for n in range(1, 2001)
        ])
        await session.execute(insert(Vote), [
            {"draft_id": draft.id, "resident_id": None, "option_id": option.id,
             "commune_code": 4, "created_at": start,
             "updated_at": start + timedelta(seconds=8 * n + 1)}
            for n in range(1, 501)
        ])
        await session.commit()
    text = await export_text(sessionmaker, batch=1000)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 2500
    # comment n at 2n s, vote n at 8n + 1 s: merged by time
    expected = sorted(
        [(2 * n, "comment", n) for n in range(1, 2001)]
        + [(8 * n + 1, "vote", n) for n in range(1, 501)]
    )
    assert [(row["Kind"], row["Receipt no."], row["Comment"]) for row in rows] == [
        (kind, f"{draft.id}-{n}" if kind == "comment" else "",
         f'góp ý {n}, "số" {n}' if kind == "comment" else "")
        for _, kind, n in expected
    ]
    times = [
        (start + timedelta(seconds=seconds)).astimezone(VIETNAM).isoformat(timespec="seconds")
        for seconds, _, _ in expected
    ]
    assert [row["Time"] for row in rows] == times


@given(st.text(alphabet=st.sampled_from(list('ab,"\r\n\t=+-@ \'\\ếđ')), max_size=12))
def test_cells_are_quoted_as_csv_writer_quotes_them(value):
    written = io.StringIO(newline="")
    csv.writer(written).writerow([value, value])
    assert written.getvalue() == f"{csv_cell(value)},{csv_cell(value)}\r\n"
    assert free_text_cell(value) == csv_cell(neutralise(value))


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab\t\n\r\\ế\b\f\v")), max_size=6),
                min_size=1, max_size=4))
def test_copy_text_format_is_read_back(cells):
    escape = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f",
              "\v": "\\v"}
    line = "\t".join("".join(escape.get(c, c) for c in cell) for cell in cells)
    assert copy_text_rows(line) == [cells]
