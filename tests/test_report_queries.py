"""The annual report is a handful of GROUP BY queries, however many rows it counts: the same
number of statements for a year of 13 comments as for one with a thousand more."""

from __future__ import annotations

from sqlalchemy import event

from storage.models import Comment
from storage.report import Period, build_report
from tests.chat import CAM_TU
from tests.report_data import known_year


async def statements(sessionmaker) -> tuple[int, int]:
    """How many statements the report of 2026 ran, and the comments it counted."""
    engine = sessionmaker.kw["bind"].sync_engine
    seen: list[str] = []

    def count(*_: object) -> None:
        seen.append("")

    event.listen(engine, "before_cursor_execute", count)
    try:
        async with sessionmaker() as session:
            report = await build_report(session, Period.year(2026))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), report.total.comments.total


async def test_the_statements_do_not_grow_with_the_rows(sessionmaker):
    ids = await known_year(sessionmaker)
    few, counted = await statements(sessionmaker)
    assert counted == 13
    async with sessionmaker() as session:
        first = 1000
        session.add_all(Comment(draft_id=ids["D1"], number=first + n, resident_id=None,
                                commune_code=CAM_TU, text="thêm", channel="telegram",
                                respondent_category="individual") for n in range(1000))
        await session.commit()
    many, counted = await statements(sessionmaker)
    assert counted == 1013
    assert many == few <= 6
