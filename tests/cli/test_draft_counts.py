"""`ykien draft list` and `draft status` count what residents got: a draft reaches a resident
by its broadcast and also when they subscribe or ask for open drafts (issue 17, item 4)."""

from __future__ import annotations

from tests.conftest import add_draft
from tests.officials import command_line, ykien


async def printed(capsys, *argv: str) -> str:
    """What `ykien argv…` printed, once it has succeeded."""
    capsys.readouterr()  # what came before is not this command's
    assert await ykien(*argv) == 0
    return capsys.readouterr().out


async def test_residents_reached_by_subscribing_are_counted(
    monkeypatch, database_url, sessionmaker, console, tmp_path, capsys
):
    command_line(monkeypatch, database_url, tmp_path)
    await console("early").say("/start", "1", "cam tu", "1")
    await add_draft(sessionmaker)  # queued for the one subscriber
    await console("early").say("1", "Nên thu gom rác buổi sáng.")  # delivered, then commented
    for late in ("late1", "late2"):  # subscribe after the broadcast: shown the open draft
        await console(late).say("/start", "1", "cam tu", "1")
    listing = await printed(capsys, "draft", "list")
    assert "reached 3 residents (broadcast: 1/1 sent), 1 comment, 0 votes" in listing, listing
    status = await printed(capsys, "draft", "status", "1")
    assert "Deadline: 31 Dec 2099, 17:00. Reached 3; 1 comment, 0 votes." in status, status
