"""`ykien consent export` and `ykien purge`, run as a user would, on a known data set."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from bot.service import ChatService
from handlers.onboarding import CONSENT_VERSION
from storage.export import export_csv
from storage.models import Comment, ConsentEvent, Resident, Vote
from tests.chat import CHANNEL, button_for, press, scalar_count, subscribe, text
from tests.cli.test_cli import ykien  # noqa: F401 (the fixture)
from tests.retention_data import known_retention_set
from tests.web.platforms import everything_stored


def read_csv(path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


async def test_consent_export_keeps_agreements_stops_and_erasures(sessionmaker, ykien,  # noqa: F811
                                                                  tmp_path):
    service = ChatService(sessionmaker)
    await subscribe(service, "gone")
    await service.handle(text("gone", "/stop"))
    await service.handle(text("gone", "START"))
    asked = await service.handle(text("gone", "/delete"))
    await service.handle(press("gone", button_for(asked, "Yes, delete")))
    await subscribe(service, "stays")
    assert await scalar_count(sessionmaker, Resident) == 1

    ykien("consent", "export", "--out", "consent.csv")
    rows = read_csv(tmp_path / "consent.csv")
    assert list(rows[0]) == ["Person", "Event", "Chat app", "Notice version", "Time", "Detail"]
    events = [(row["Person"], row["Event"], row["Chat app"], row["Notice version"])
              for row in rows]
    gone, stays = events[0][0], events[-1][0]
    assert gone != stays and gone.startswith("C-")
    assert events == [
        (gone, "agreed", CHANNEL, CONSENT_VERSION),
        (gone, "stopped receiving drafts", CHANNEL, ""),
        (gone, "agreed", CHANNEL, CONSENT_VERSION),
        (gone, "data erased", CHANNEL, ""),
        (stays, "agreed", CHANNEL, CONSENT_VERSION),
    ]
    assert all(row["Time"].endswith("+07:00") for row in rows)
    stored = (tmp_path / "consent.csv").read_text("utf-8-sig")
    assert "gone" not in stored and "stays" not in stored  # no chat id

    refused = ykien("consent", "export", "--out", "consent.csv", check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    ykien("consent", "export", "--since", "2999-01-01", "--out", "consent.csv", "--force")
    assert read_csv(tmp_path / "consent.csv") == []
    bad = ykien("consent", "export", "--since", "yesterday", "--out", "x.csv", check=False)
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


async def counts(sessionmaker) -> tuple[int, int, int, int, int]:
    return (await scalar_count(sessionmaker, Resident),
            await scalar_count(sessionmaker, Comment),
            await scalar_count(sessionmaker, Comment, Comment.resident_id.is_(None)),
            await scalar_count(sessionmaker, Vote),
            await scalar_count(sessionmaker, Vote, Vote.resident_id.is_(None)))


async def test_purge_on_a_known_set_and_its_dry_run(sessionmaker, ykien, tmp_path):  # noqa: F811
    known = await known_retention_set(sessionmaker)
    before = await everything_stored(sessionmaker)
    assert await counts(sessionmaker) == (5, 3, 0, 2, 0)

    dry = ykien("purge", "--dry-run")
    assert "Dry run: nothing was changed" in dry.stdout
    assert "Retention period: 24 months" in dry.stdout
    for line in ("Comments made anonymous: 2", "Votes made anonymous: 2",
                 "Drafts concerned: 1", "Persons erased: 1 (1 chat)"):
        assert line in dry.stdout, dry.stdout
    assert await everything_stored(sessionmaker) == before

    done = ykien("purge")
    assert "Dry run" not in done.stdout and "Persons erased: 1 (1 chat)" in done.stdout
    assert await counts(sessionmaker) == (4, 3, 2, 2, 2)
    async with sessionmaker() as session:
        left = set((await session.scalars(select(Resident.platform_id))).all())
        comments = (await session.execute(
            select(Comment.draft_id, Comment.number, Comment.resident_id, Comment.text)
            .order_by(Comment.id))).all()
        erased = (await session.scalars(select(ConsentEvent).where(
            ConsentEvent.event == "erased"))).all()
        out = io.StringIO()
        await export_csv(session, out, known.old.id)
    assert left == {"a", "c", "d", "official"}
    # The receipts and texts stay; only the old draft's lost their link.
    assert [(d, n, r is None, t) for d, n, r, t in comments] == [
        (known.old.id, 1, True, "a on the old draft"),
        (known.old.id, 2, True, "b on the old draft"),
        (known.new.id, 1, False, "a on the new draft"),
    ]
    assert [(e.channel, e.detail) for e in erased] == [(CHANNEL, "retention")]
    exported = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    assert exported and all(row[7] == "anonymous" for row in exported)

    again = ykien("purge")  # nothing left to do
    assert "Comments made anonymous: 0" in again.stdout and "Persons erased: 0" in again.stdout

    longer = ykien("purge", env={"YKIEN_RETENTION_MONTHS": "1200"})
    assert "Retention period: 1,200 months" in longer.stdout
    wrong = ykien("purge", env={"YKIEN_RETENTION_MONTHS": "0"}, check=False)
    assert wrong.returncode == 2 and "YKIEN_RETENTION_MONTHS" in wrong.stderr
