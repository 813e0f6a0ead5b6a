"""`ykien role grant|revoke|list|invite`, `ykien web login-link` and `ykien audit`: persons
named by their chats (never by a number), refusals in one line, and an audit row for every
official action, from every path."""

from __future__ import annotations

import re

from sqlalchemy import select

from storage import roles
from storage.models import RoleGrant
from tests.officials import (
    CHANNEL,
    LINK,
    agree,
    audit_rows,
    command_line,
    login_token,
    say,
    subscribe,
    workspace_service,
    ykien,
)

INVITE = re.compile(r"Invite code: ([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})")


async def test_grant_list_and_revoke_name_persons_by_their_chats(
        sessionmaker, database_url, monkeypatch, tmp_path, capsys):
    command_line(monkeypatch, database_url, tmp_path)
    service = workspace_service(sessionmaker)
    await agree(service, "cb")
    await agree(service, "qt")
    assert await ykien("role", "grant", "--chat", f"{CHANNEL}:cb", "--role", "official",
                       "--scope", "commune:15148") == 0
    assert "is now official of Xã Cẩm Tú — Tỉnh Thanh Hóa (commune 15148)" in (
        capsys.readouterr().out)
    assert await ykien("role", "grant", "--chat", f"{CHANNEL}:cb", "--role", "staff",
                       "--scope", "province:38") == 0
    assert await ykien("role", "grant", "--chat", f"{CHANNEL}:qt", "--role", "admin",
                       "--scope", "all") == 0
    assert await ykien("role", "grant", "--chat", f"{CHANNEL}:qt", "--role", "admin",
                       "--scope", "all") == 0
    assert "already is administrator of all communes: nothing changed" in (
        capsys.readouterr().out)
    assert await ykien("role", "list") == 0
    listed = capsys.readouterr().out
    assert listed.splitlines()[0] == f"{CHANNEL}:cb"
    assert "  official of Xã Cẩm Tú — Tỉnh Thanh Hóa (commune 15148), since " in listed
    assert "  staff member of Tỉnh Thanh Hóa (province 38), since " in listed
    assert f"\n{CHANNEL}:qt\n  administrator of all communes, since " in listed
    async with sessionmaker() as session:
        person_ids = {str(g.person_id) for g in (await session.scalars(select(RoleGrant))).all()}
    assert not any(re.search(rf"\b{person}\b", listed.replace("15148", "").replace("38", ""))
                   for person in person_ids)
    assert await ykien("role", "revoke", "--chat", f"{CHANNEL}:cb", "--role", "staff") == 0
    assert "is no longer staff member of Tỉnh Thanh Hóa" in capsys.readouterr().out
    assert await ykien("role", "revoke", "--chat", f"{CHANNEL}:cb", "--role", "staff") == 1
    assert "holds no such role: nothing changed" in capsys.readouterr().err
    assert await ykien("role", "revoke", "--chat", f"{CHANNEL}:cb") == 0
    async with sessionmaker() as session:
        left = await roles.grants_of(session, await roles.person_of_chat(session, (CHANNEL, "qt")))
        assert (await session.scalars(select(RoleGrant.role))).all() == ["admin"]
    assert left == {roles.Grant(roles.Role.ADMIN, roles.ALL)}
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.role, r.action, r.detail) for r in rows] == [
        ("cli", "admin", "role_granted", "official commune:15148"),
        ("cli", "admin", "role_granted", "staff province:38"),
        ("cli", "admin", "role_granted", "admin all"),
        ("cli", "admin", "role_revoked", "staff province:38"),
        ("cli", "admin", "role_revoked", "official commune:15148"),
    ]
    assert rows[0].subject == rows[1].subject != rows[2].subject
    assert all(row.subject.startswith("P-") and row.actor for row in rows)


async def test_a_chat_that_has_not_agreed_gets_no_role(sessionmaker, database_url, monkeypatch,
                                                       tmp_path, capsys):
    command_line(monkeypatch, database_url, tmp_path, public_url="https://ykien.example")
    for command in (["role", "grant", "--role", "staff", "--scope", "all"], ["role", "revoke"],
                    ["web", "login-link"]):
        assert await ykien(*command, "--chat", "telegram:404") == 1
        assert "No one has agreed to the privacy notice in the chat telegram:404" in (
            capsys.readouterr().err)
    assert await audit_rows(sessionmaker) == []


async def test_bad_chats_scopes_and_roles_are_refused_in_one_line(database_url, monkeypatch,
                                                                   tmp_path, capsys):
    command_line(monkeypatch, database_url, tmp_path)
    for arguments, says in (
        (["--chat", "123456", "--scope", "all"], "“123456” is not a chat"),
        (["--chat", "whatsapp:1", "--scope", "all"], "“whatsapp:1” is not a chat"),
        (["--chat", "telegram:1", "--scope", "commune:99999"], "There is no commune"),
        (["--chat", "telegram:1", "--scope", "province:99"], "There is no province"),
        (["--chat", "telegram:1", "--scope", "district:1"], "“district:1” is not a scope"),
    ):
        assert await ykien("role", "grant", "--role", "official", *arguments) == 2
        assert says in capsys.readouterr().err
    assert await ykien("role", "grant", "--chat", "telegram:1", "--role", "boss",
                       "--scope", "all") == 2
    assert await ykien("role", "invite", "--role", "staff", "--scope", "all",
                       "--hours", "0") == 2


async def test_an_invite_printed_works_once_in_the_chat(sessionmaker, database_url, monkeypatch,
                                                        tmp_path, capsys):
    command_line(monkeypatch, database_url, tmp_path)
    assert await ykien("role", "invite", "--role", "staff", "--scope", "commune:15148",
                       "--hours", "2") == 0
    printed = capsys.readouterr().out
    code = INVITE.search(printed).group(1)
    assert "becomes staff member of Xã Cẩm Tú" in printed and "It works once, until" in printed
    service = workspace_service(sessionmaker)
    await subscribe(service, "vt")
    assert "you are now staff member of" in (await service.handle(say("vt", code)))[0].text
    await subscribe(service, "vt2")
    assert "expired or was used" in (await service.handle(say("vt2", code)))[0].text
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.role, r.action, r.detail) for r in rows] == [
        ("cli", "admin", "invite_created", "staff commune:15148 hours:2"),
        ("chat", "staff", "invite_used", "staff commune:15148")]
    assert code.replace("-", "") not in printed.replace(code, "")  # shown once, grouped
    assert all(code.replace("-", "") not in row.detail for row in rows)


async def test_web_login_link_prints_a_link_for_a_role_holder(sessionmaker, database_url,
                                                              monkeypatch, tmp_path, capsys):
    service = workspace_service(sessionmaker, "boss")
    await agree(service, "boss")
    await agree(service, "dan")
    command_line(monkeypatch, database_url, tmp_path)
    assert await ykien("web", "login-link", "--chat", f"{CHANNEL}:boss") == 2
    assert "YKIEN_PUBLIC_URL is not set" in capsys.readouterr().err
    command_line(monkeypatch, database_url, tmp_path, public_url="https://ykien.example/",
                 admin_ids=f"{CHANNEL}:boss")
    assert await ykien("web", "login-link", "--chat", f"{CHANNEL}:dan") == 1
    assert "holds no role" in capsys.readouterr().err
    assert await ykien("web", "login-link", "--chat", f"{CHANNEL}:boss") == 0
    out = capsys.readouterr()
    link = LINK.search(out.out)
    assert link and out.out.startswith("https://ykien.example/admin/login/")
    assert "It works once, for 10 minutes" in out.err
    rows = await audit_rows(sessionmaker)
    assert [(r.via, r.role, r.action) for r in rows] == [("cli", "admin", "login_link")]
    assert rows[0].subject.startswith("P-")


async def test_admin_ids_are_listed_with_whether_they_agreed(sessionmaker, database_url,
                                                             monkeypatch, tmp_path, capsys):
    await agree(workspace_service(sessionmaker), "boss")
    command_line(monkeypatch, database_url, tmp_path,
                 admin_ids=f"{CHANNEL}:boss, telegram:777")
    assert await ykien("role", "list") == 0
    listed = capsys.readouterr().out
    assert "Administrators of all communes through YKIEN_ADMIN_IDS:" in listed
    assert f"  {CHANNEL}:boss\n" in listed
    assert "  telegram:777  (has not agreed to the privacy notice there yet)" in listed


async def test_a_bad_admin_ids_setting_is_named_with_what_it_takes(database_url, monkeypatch,
                                                                   tmp_path, capsys):
    command_line(monkeypatch, database_url, tmp_path, admin_ids="123456,zalo:8734")
    assert await ykien("role", "list") == 2
    err = capsys.readouterr().err
    assert "YKIEN_ADMIN_IDS is “123456,zalo:8734”, which is not valid" in err
    assert "telegram:123456,zalo:8734" in err


async def test_the_audit_log_lists_every_action_from_every_path(
        sessionmaker, database_url, monkeypatch, tmp_path, capsys):
    """Grant, revoke, invite made and used, sign-in links from chat and command line, a
    session started and ended: one row each, listed by `ykien audit`, `--since` filtering."""
    command_line(monkeypatch, database_url, tmp_path, public_url="http://ykien.test")
    service = workspace_service(sessionmaker, public_url="http://ykien.test")
    await agree(service, "cb")
    assert await ykien("role", "invite", "--role", "official", "--scope", "commune:15148") == 0
    code = INVITE.search(capsys.readouterr().out).group(1)
    await service.handle(say("cb", code))
    await login_token(service, "cb")
    assert await ykien("web", "login-link", "--chat", f"{CHANNEL}:cb") == 0
    assert await ykien("role", "grant", "--chat", f"{CHANNEL}:cb", "--role", "staff",
                       "--scope", "all") == 0
    assert await ykien("role", "revoke", "--chat", f"{CHANNEL}:cb", "--role", "staff") == 0
    capsys.readouterr()
    assert await ykien("audit") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Time", "From", "Who", "Role", "Action", "Draft", "Person",
                                "Detail"]
    actions = [line.split("  ") for line in lines[1:]]
    assert len(actions) == 6
    listed = "\n".join(lines)
    for words in ("invite code made", "invite code used", "sign-in link given", "role granted",
                  "role revoked"):
        assert words in listed
    assert f"chat:{CHANNEL}" in listed and " cli " in listed
    assert await ykien("audit", "--since", "2999-01-01") == 0
    assert capsys.readouterr().out.strip() == "Nothing in the audit log since then."
    assert await ykien("audit", "--since", "2000-01-01 08:00") == 0
    assert len(capsys.readouterr().out.splitlines()) == 7
    assert await ykien("audit", "--since", "yesterday") == 2
    assert "“yesterday” is not a date" in capsys.readouterr().err


def test_the_chat_apps_of_chat_pairs_are_the_channels_that_store_chats():
    from bot.channels.console import ConsoleChannel
    from bot.channels.registry import CHANNELS
    from bot.config import CHAT_CHANNELS, chat_pair

    assert set(CHAT_CHANNELS) == {entry.name for entry in CHANNELS} | {ConsoleChannel.name}
    assert chat_pair(" Telegram : 123456 ") == ("telegram", "123456")
    for bad in ("telegram:", ":1", "telegram 1", "telegram:1 2", "zalo_oa:1",
                "telegram:" + "9" * 65):
        assert chat_pair(bad) is None
