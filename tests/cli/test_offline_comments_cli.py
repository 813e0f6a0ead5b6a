"""`ykien comment add`, run as a user would, on the known consultation of tests/results_data.py:
a comment received offline gets the next receipt number, counts in `ykien results` (comments,
the breakdown by source and respondent; no person reached, no participant), is audit-logged,
may be entered after the deadline when it was received on time; and every bad input is
refused with its own words, storing nothing."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

from sqlalchemy import func, select

from bot.cli.comment import CATEGORIES, SOURCES
from storage.models import (
    OFFLINE_SOURCES,
    VIETNAM,
    AuditEntry,
    Comment,
    RespondentCategory,
    utcnow,
)
from tests import ykien_process
from tests.chat import BA_DINH, CAM_TU, make_draft
from tests.conftest import cli_environment
from tests.results_data import known_consultation
from tests.test_officials_results_chat import console_official


def ykien(sessionmaker, cwd, *args: str, input: str | None = None,
          language: str = "en") -> subprocess.CompletedProcess:
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    return ykien_process.run(args, text=True, cwd=cwd, timeout=120, input=input,
                             env={**cli_environment(url), "YKIEN_LANGUAGE": language})


async def comments(sessionmaker, draft_id: int) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(Comment)
                                    .where(Comment.draft_id == draft_id)) or 0


def test_the_parser_knows_every_offline_source_and_category():
    assert tuple(source.value for source in OFFLINE_SOURCES) == SOURCES
    assert tuple(category.value for category in RespondentCategory) == CATEGORIES


async def test_an_offline_comment_counts_in_the_results(sessionmaker, service, tmp_path):
    known = await known_consultation(sessionmaker, service)
    draft = str(known.draft.id)
    done = ykien(sessionmaker, tmp_path, "comment", "add", "--draft", draft, "--commune",
                 str(BA_DINH), "--source", "meeting", "--category", "organisation",
                 "--text", "  Cần thêm thùng rác\u200b ở chợ. ")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Recorded: comment no. {draft}-6 on “Phí vệ sinh”."
    read = ykien(sessionmaker, tmp_path, "comment", "add", "--draft", draft, "--commune",
                 str(CAM_TU), "--source", "phone", "--text", "-",
                 input="Nên thu phí theo quý.\n", language="vi")
    assert read.returncode == 0, read.stderr
    assert f"số {draft}-7" in read.stdout

    async with sessionmaker() as session:
        stored = (await session.scalars(select(Comment).where(Comment.number >= 6,
                                                              Comment.draft_id == int(draft))
                                        .order_by(Comment.number))).all()
        audit = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "comment_added").order_by(AuditEntry.id))).all()
    assert [(c.resident_id, c.channel, c.source, c.respondent_category, c.commune_code, c.text)
            for c in stored] == [
        (None, "", "meeting", "organisation", BA_DINH, "Cần thêm thùng rác ở chợ."),
        (None, "", "phone", "", CAM_TU, "Nên thu phí theo quý.")]
    assert [(row.via, row.draft_id, row.detail) for row in audit] == [
        ("cli", int(draft), f"{draft}-6; meeting; commune:00004"),
        ("cli", int(draft), f"{draft}-7; phone; commune:15148")]

    figures = ykien(sessionmaker, tmp_path, "results", draft, "--format", "json")
    assert figures.returncode == 0, figures.stderr
    found = json.loads(figures.stdout)
    total = found["total"]
    # 5 chat comments and 2 offline; nobody more reached, no more participants
    assert (total["comments"], total["reached"], total["participants"]) == (7, 7, 6)
    assert total["comments_by_source"] == {"chat": 5, "meeting": 1, "phone": 1, "paper": 0,
                                           "other": 0}
    assert total["offline_comments"] == 2
    assert total["comments_by_category"] == {"individual": 0, "organisation": 1,
                                             "business": 0, "": 6}
    by_code = {commune["code"]: commune for commune in found["communes"]}
    assert (by_code["00004"]["comments"], by_code["00004"]["offline_comments"]) == (2, 1)
    assert (by_code["15148"]["comments"], by_code["15148"]["offline_comments"]) == (5, 1)
    assert by_code["00004"]["participants"] == 2  # as before

    table = ykien(sessionmaker, tmp_path, "results", draft)
    assert table.returncode == 0, table.stderr
    assert "Comments: 7; votes: 4; took part: 6 of 7 persons reached" in table.stdout
    assert "Comments by source: chat 5, meeting 1, phone 1." in table.stdout
    assert "Comments by respondent: organisation 1, not said 6." in table.stdout


async def test_entered_after_the_deadline_when_received_on_time(sessionmaker, tmp_path):
    now = utcnow()
    draft = await make_draft(sessionmaker, "Chợ", (CAM_TU,), opens_at=now - timedelta(days=10),
                             deadline=now - timedelta(days=2))
    last_day = draft.deadline.astimezone(VIETNAM).date().isoformat()
    done = ykien(sessionmaker, tmp_path, "comment", "add", "--draft", str(draft.id),
                 "--commune", str(CAM_TU), "--source", "paper", "--text", "Đồng ý.",
                 "--received", last_day)
    assert done.returncode == 0, done.stderr
    async with sessionmaker() as session:
        stored = await session.scalar(select(Comment).where(Comment.draft_id == draft.id))
    assert stored is not None and stored.created_at <= draft.deadline
    assert stored.created_at.astimezone(VIETNAM).date().isoformat() == last_day


async def test_bad_input_is_refused_with_its_words(sessionmaker, service, tmp_path):
    now = utcnow()
    known = await known_consultation(sessionmaker, service)
    late = await make_draft(sessionmaker, "Chợ", (CAM_TU,), opens_at=now - timedelta(days=10),
                            deadline=now - timedelta(days=2))
    unsent = await make_draft(sessionmaker, "Đường", (CAM_TU,), open_now=False)
    before = await comments(sessionmaker, known.draft.id)

    def add(draft_id: int, *extra: str, commune: int = CAM_TU, text: str = "Ý kiến.",
            source: str = "meeting") -> subprocess.CompletedProcess:
        return ykien(sessionmaker, tmp_path, "comment", "add", "--draft", str(draft_id),
                     "--commune", str(commune), "--source", source, "--text", text, *extra)

    draft = known.draft.id
    opening_day = late.opens_at.astimezone(VIETNAM).date()
    closing_day = late.deadline.astimezone(VIETNAM).date()
    refused = {
        "source": (add(draft, source="email"), 2, "invalid choice: 'email'"),
        "category": (add(draft, "--category", "club"), 2, "invalid choice: 'club'"),
        "date": (add(draft, "--received", "27/11/2026"), 2,
                 "“27/11/2026” is not a date: write it as 2026-11-27."),
        "draft": (add(4242), 1, "There is no draft no. 4242."),
        "commune": (add(draft, commune=15151), 1,
                    f"Commune 15151 is not among the communes of draft no. {draft}."),
        "empty": (add(draft, text=" \u200b\u200e "), 1, "The comment is empty"),
        "too long": (add(draft, text="x" * 1001), 1,
                     "The comment is 1,001 characters long; a comment may have at most 1,000."),
        "not broadcast": (add(unsent.id), 1, f"Draft no. {unsent.id} was never broadcast"),
        "late": (add(late.id), 1, f"Draft no. {late.id} took comments until"),
        "received late": (add(late.id, "--received",
                              (closing_day + timedelta(days=1)).isoformat()), 1,
                          "give with --received the day the comment was received"),
        "received early": (add(late.id, "--received",
                               (opening_day - timedelta(days=1)).isoformat()), 1,
                           f"Draft no. {late.id} opened on"),
        "future": (add(draft, "--received", (now + timedelta(days=2)).astimezone(VIETNAM)
                       .date().isoformat()), 1, "has not come yet"),
    }
    for name, (done, code, words) in refused.items():
        assert (done.returncode, done.stdout) == (code, ""), (name, done.stderr)
        assert words in done.stderr, (name, done.stderr)
    assert await comments(sessionmaker, known.draft.id) == before
    assert await comments(sessionmaker, late.id) == 0
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "comment_added")) == 0
    # every problem at once
    both = add(draft, commune=15151, text="")
    assert both.returncode == 1 and len(both.stderr.strip().splitlines()) == 2


async def test_the_help_says_what_it_does(tmp_path, sessionmaker):
    done = ykien(sessionmaker, tmp_path, "comment", "add", "--help")
    assert done.returncode == 0
    assert "--source {meeting,phone,paper,other}" in done.stdout
    assert "--text - reads" in done.stdout or "- reads them from standard input" in done.stdout


async def test_chat_results_say_how_many_were_received_offline(sessionmaker, service, console,
                                                               tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    known = await known_consultation(sessionmaker, service)
    draft = str(known.draft.id)
    for commune, source in ((CAM_TU, "meeting"), (BA_DINH, "phone")):
        done = ykien(sessionmaker, tmp_path, "comment", "add", "--draft", draft, "--commune",
                     str(commune), "--source", source, "--text", "Ý kiến tại " + source)
        assert done.returncode == 0, done.stderr
    await console_official(sessionmaker, "cb")  # Cẩm Tú only
    shown = await console("cb").say(f"/results {draft}")
    assert "Comments: 5; votes: 2; took part: 4 of 5 persons reached (80%)." in shown
    assert "Of the comments, 1 was received offline (meeting 1)." in shown
    assert "phone" not in shown  # Ba Đình's is outside the scope
