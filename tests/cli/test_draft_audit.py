"""Every draft action taken on the command line is written to the audit log, named by the
operating-system user who ran it, as the workspace's and the chat's actions are."""

from __future__ import annotations

from storage.audit import AuditAction, Via
from tests.chat import subscribe
from tests.conftest import EXAMPLE_DRAFT
from tests.officials import audit_rows, command_line, ykien


async def test_each_draft_command_writes_one_audit_row(
    monkeypatch, database_url, sessionmaker, service, tmp_path
):
    command_line(monkeypatch, database_url, tmp_path)
    monkeypatch.setenv("USER", "tuphap")  # getpass reads it first
    await subscribe(service, "resident")
    for argv in (
        ("draft", "create", "--file", str(EXAMPLE_DRAFT)),
        ("draft", "broadcast", "1", "--no-wait"),
        ("draft", "pause", "1"),
        ("draft", "pause", "1"),  # already paused: nothing done, nothing written
        ("draft", "resume", "1"),
        ("draft", "retry", "1"),
        ("draft", "cancel", "1"),
        ("draft", "close", "1"),
        ("draft", "close", "1"),  # already closed
        ("draft", "status", "1"),  # reading writes nothing
    ):
        assert await ykien(*argv) in (0, 1), argv
    rows = await audit_rows(sessionmaker)
    assert [row.action for row in rows] == [
        AuditAction.DRAFT_CREATED, AuditAction.BROADCAST, AuditAction.PAUSED,
        AuditAction.RESUMED, AuditAction.RETRIED, AuditAction.CANCELLED, AuditAction.CLOSED,
    ]
    assert {(row.via, row.actor, row.draft_id) for row in rows} == {(Via.CLI, "tuphap", 1)}
    assert rows[1].detail == "1"  # one message queued for the one subscriber
