"""`ykien draft list` and `draft status` count what residents got: a draft reaches a resident
by its broadcast and also when they subscribe or ask for open drafts (issue 17, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import io

from bot.cli.main import main
from tests.conftest import add_draft
from tests.officials import command_line


async def ykien(*argv: str) -> str:
    """`ykien argv…` in a thread (it runs an event loop of its own); what it printed."""
    def run() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(list(argv)) == 0
        return out.getvalue()

    return await asyncio.wait_for(asyncio.to_thread(run), 60)


async def test_residents_reached_by_subscribing_are_counted(
    monkeypatch, database_url, sessionmaker, console, tmp_path
):
    command_line(monkeypatch, database_url, tmp_path)
    await console("early").say("/start", "1", "cam tu", "1")
    await add_draft(sessionmaker)  # queued for the one subscriber
    await console("early").say("1", "Nên thu gom rác buổi sáng.")  # delivered, then commented
    for late in ("late1", "late2"):  # subscribe after the broadcast: shown the open draft
        await console(late).say("/start", "1", "cam tu", "1")
    listing = await ykien("draft", "list")
    assert "reached 3 residents (broadcast: 1/1 sent), 1 comment, 0 votes" in listing, listing
    status = await ykien("draft", "status", "1")
    assert "Deadline: 31 Dec 2099, 17:00. Reached 3; 1 comment, 0 votes." in status, status
