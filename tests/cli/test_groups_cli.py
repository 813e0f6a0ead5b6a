"""`ykien groups …` as a user runs it (a separate process): compute with progress, list,
show, the corrections with their audit rows and refusals; and the similar-points
suggestions, with the optional extra and (imports blocked) without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sqlalchemy import select

from storage.models import AuditEntry, GroupMembership
from tests import ykien_process
from tests.conftest import ROOT, add_draft, cli_environment
from tests.grouping_data import LABELLED, add_comments


def ykien(database_url: str, cwd, *args: str, language: str = "en"
          ) -> subprocess.CompletedProcess:
    return ykien_process.run(
        args, text=True, cwd=cwd, timeout=300,
        env={**cli_environment(database_url), "YKIEN_LANGUAGE": language})


def url_of(sessionmaker) -> str:
    return sessionmaker.kw["bind"].url.render_as_string(hide_password=False)


async def _groups(sessionmaker, draft_id) -> dict[int, int]:
    async with sessionmaker() as session:
        return dict((await session.execute(
            select(GroupMembership.comment_id, GroupMembership.group_id)
            .where(GroupMembership.draft_id == draft_id))).all())


async def test_compute_list_show_and_correct(sessionmaker, tmp_path):
    draft = await add_draft(sessionmaker)
    ids = await add_comments(sessionmaker, draft, [text for _point, text in LABELLED])
    url, number = url_of(sessionmaker), str(draft.id)
    done = ykien(url, tmp_path, "groups", "compute", "--draft", number)
    assert done.returncode == 0, done.stderr
    assert "fingerprints: 15 of 15" in done.stdout
    assert (f"Draft no. {number}: 15 comments grouped (0 joined existing groups, 8 new "
            "groups); 8 groups in all.") in done.stdout
    assert "Suggestion" not in done.stdout and "extra" not in done.stdout  # it is installed
    grouped = await _groups(sessionmaker, draft.id)
    morning, road = grouped[ids[0]], grouped[ids[10]]

    listed = ykien(url, tmp_path, "groups", "list", "--draft", number, language="vi")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == f"Nhóm {morning} · 5 ý kiến · Phường Ba Đình, Xã Cẩm Tú"
    assert lines[1] == "  Nên thu gom rác vào buổi sáng!"
    assert "8 trên 8 nhóm; 0 ý kiến chưa được nhóm." in listed.stdout
    mine = ykien(url, tmp_path, "groups", "show", str(morning), "--draft", number,
                 "--scope", "commune:15148")
    assert mine.returncode == 0, mine.stderr
    assert [line.split(" · ")[0].strip() for line in mine.stdout.splitlines()[1:]] == [
        f"{number}-1", f"{number}-3", f"{number}-5"]  # the other commune's are not shown

    moved = ykien(url, tmp_path, "groups", "move", f"{number}-11", "--to", str(morning),
                  "--draft", number)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == f"Comment no. 11 moved to group {morning}."
    split = ykien(url, tmp_path, "groups", "split", str(morning), "11", "--draft", number)
    assert split.returncode == 0, split.stderr
    renamed = ykien(url, tmp_path, "groups", "rename", str(road), "Sửa đường làng",
                    "--draft", number)
    assert renamed.returncode == 0, renamed.stderr
    merged = ykien(url, tmp_path, "groups", "merge", str(road), str(morning), "--draft", number)
    assert merged.stdout.strip() == f"Merged into group {road}: 5 comments moved."
    after = await _groups(sessionmaker, draft.id)
    # the morning comments joined the road ones; comment 11 (moved, then split off) did not
    assert after[ids[0]] == after[ids[4]] == after[ids[11]] == road
    assert after[ids[10]] not in (road, morning) and list(after.values()).count(
        after[ids[10]]) == 1
    async with sessionmaker() as session:
        audit = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [row.action for row in audit] == [
        "groups_computed", "comment_moved", "group_split", "group_renamed", "groups_merged"]
    assert audit[0].detail == "comments: 15; new groups: 8" and audit[0].via == "cli"


async def test_refusals_change_nothing(sessionmaker, tmp_path):
    draft = await add_draft(sessionmaker)
    other = await add_draft(sessionmaker, send=False)
    await add_comments(sessionmaker, draft, ["Nên thu gom rác", "Đường làng hỏng"])
    await add_comments(sessionmaker, other, ["Chợ xã"])
    url, number = url_of(sessionmaker), str(draft.id)
    assert ykien(url, tmp_path, "groups", "compute", "--draft", number).returncode == 0
    assert ykien(url, tmp_path, "groups", "compute", "--draft", str(other.id)).returncode == 0
    before = await _groups(sessionmaker, draft.id)
    theirs = next(iter((await _groups(sessionmaker, other.id)).values()))
    mine = sorted(set(before.values()))
    for args, code, said in [
        (("compute", "--draft", "999"), 1, "There is no draft no. 999."),
        (("show", str(theirs), "--draft", number), 1, f"There is no group no. {theirs}"),
        (("merge", str(mine[0]), str(theirs), "--draft", number), 1,
         f"There is no group no. {theirs}"),
        (("move", "7", "--to", str(mine[1]), "--draft", number), 1,
         "Comment no. 7 is not in this draft"),
        (("move", f"{other.id}-1", "--to", str(mine[1]), "--draft", number), 2,
         "is not a comment number"),
        (("move", "١", "--to", str(mine[1]), "--draft", number), 2, "is not a comment number"),
        (("split", str(mine[0]), "1", "--draft", number), 1, "not none or all"),
        (("rename", str(mine[0]), " \u200b ", "--draft", number), 1, "Write a name"),
        (("list", "--draft", "x"), 2, "is not valid: write a whole number"),
    ]:
        done = ykien(url, tmp_path, "groups", *args)
        assert done.returncode == code, (args, done.stderr)
        assert said in done.stderr, (args, done.stderr)
    assert await _groups(sessionmaker, draft.id) == before
    async with sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions == ["groups_computed", "groups_computed"]


async def test_similar_points_are_suggested_with_the_extra(sessionmaker, tmp_path):
    draft = await add_draft(sessionmaker)
    await add_comments(sessionmaker, draft, [
        "Đường làng bị hỏng, cần sửa đường gấp", "Đề nghị sửa đường làng trước mùa mưa",
        "Nên thu gom rác vào buổi sáng", "Thu gom rác buổi sáng sớm thì tốt hơn",
        "Cần lắp thêm đèn đường ở thôn 3", "Chợ xã nên mở cửa sớm hơn"])
    url, number = url_of(sessionmaker), str(draft.id)
    assert ykien(url, tmp_path, "groups", "compute", "--draft", number).returncode == 0
    grouped = await _groups(sessionmaker, draft.id)
    assert len(set(grouped.values())) == 6  # suggestions are not applied
    listed = ykien(url, tmp_path, "groups", "list", "--draft", number).stdout
    road, rubbish = (sorted(grouped.values())[i] for i in (0, 2))
    assert (f"Suggestion: groups {road}, {road + 1} may make one point (duong, mua, lang, "
            "sua, gap): Đường làng bị hỏng, cần sửa đường gấp") in listed
    assert f"Suggestion: groups {rubbish}, {rubbish + 1} may make one point" in listed
    assert listed.count("Suggestion") == 2


BLOCKED = textwrap.dedent("""
    import importlib.abc, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("underthesea", "sklearn"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    from bot.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


async def test_without_the_extra_near_duplicates_still_work(sessionmaker, tmp_path):
    draft = await add_draft(sessionmaker)
    ids = await add_comments(sessionmaker, draft, [
        "Nên thu gom rác vào buổi sáng", "nen thu gom rac buoi sang",
        "Thu gom rác buổi sáng sớm thì tốt hơn"])
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, "groups", "compute", "--draft", str(draft.id)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**cli_environment(url_of(sessionmaker)), "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert ("Suggestions of similar points need the optional extra: pip install "
            "'ykien[grouping]' (missing: sklearn)") in done.stdout
    grouped = await _groups(sessionmaker, draft.id)
    assert grouped[ids[0]] == grouped[ids[1]] != grouped[ids[2]]
