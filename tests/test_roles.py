"""Roles and scopes (storage.roles): what an official, a staff member and an admin may see
and do, on drafts for one commune or several, and for a draft id guessed at random; who
YKIEN_ADMIN_IDS makes an admin; and the audit log that survives the person."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from storage import audit, roles
from storage.audit import Actor, AuditAction, Via
from storage.models import AuditEntry, Draft, RoleGrant, utcnow
from storage.roles import Authority, Grant, Permission, Role, Scope
from tests.chat import BA_DINH, CAM_TU, joined, make_draft
from tests.officials import CHANNEL, agree, official, press, say, workspace_service

NGOC_HA = 8  # Phường Ngọc Hà, Hà Nội (province 1), like Ba Đình
THANH_HOA = 38  # Cẩm Tú's province


async def authority(sessionmaker, person_id: int, admin_chats=frozenset()) -> Authority:
    async with sessionmaker() as session:
        return await roles.authority_of(session, person_id, admin_chats)


async def access(sessionmaker, who: Authority, permission: Permission, draft_id: int):
    async with sessionmaker() as session:
        return await roles.draft_access(session, who, permission, draft_id)


async def visible(sessionmaker, who: Authority) -> set[int]:
    async with sessionmaker() as session:
        return set((await session.scalars(roles.visible_drafts(who))).all())


async def test_a_commune_official_sees_their_communes_and_acts_on_their_drafts_only(
        service, sessionmaker):
    person = await official(service, "cb", Role.OFFICIAL, f"commune:{CAM_TU}")
    own = await make_draft(sessionmaker, "Cẩm Tú only", (CAM_TU,))
    shared = await make_draft(sessionmaker, "Cẩm Tú and Ba Đình", (CAM_TU, BA_DINH))
    other = await make_draft(sessionmaker, "Ba Đình only", (BA_DINH,))
    who = await authority(sessionmaker, person)
    assert who.communes() == {CAM_TU}
    assert await visible(sessionmaker, who) == {own.id, shared.id}
    for permission in Permission.READ, Permission.EXPORT, Permission.EDIT, Permission.BROADCAST:
        assert await access(sessionmaker, who, permission, own.id) == {CAM_TU}
        assert await access(sessionmaker, who, permission, other.id) is None
    # On a draft for several communes: their own rows only, and no edit or broadcast.
    assert await access(sessionmaker, who, Permission.READ, shared.id) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.EXPORT, shared.id) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.EDIT, shared.id) is None
    assert await access(sessionmaker, who, Permission.BROADCAST, shared.id) is None
    assert not who.may(Permission.MANAGE)
    assert who.role_for(Permission.BROADCAST, {CAM_TU}) is Role.OFFICIAL


async def test_a_guessed_draft_id_is_refused_as_a_missing_one(service, sessionmaker):
    person = await official(service, "cb", Role.OFFICIAL, f"commune:{CAM_TU}")
    other = await make_draft(sessionmaker, "Ba Đình only", (BA_DINH,))
    who = await authority(sessionmaker, person)
    for guess in (other.id, other.id + 1, 2**31 - 1):
        for permission in Permission:
            assert await access(sessionmaker, who, permission, guess) is None


async def test_a_province_scope_holds_every_commune_of_the_province(service, sessionmaker):
    person = await official(service, "cb", Role.OFFICIAL, f"province:{THANH_HOA}")
    in_province = await make_draft(sessionmaker, "Cẩm Tú", (CAM_TU,))
    in_hanoi = await make_draft(sessionmaker, "Ba Đình", (BA_DINH,))
    who = await authority(sessionmaker, person)
    assert CAM_TU in who.communes() and BA_DINH not in who.communes()
    assert len(who.communes()) == 166
    assert await access(sessionmaker, who, Permission.BROADCAST, in_province.id) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.READ, in_hanoi.id) is None


async def test_staff_read_and_export_but_never_edit_or_broadcast(service, sessionmaker):
    person = await official(service, "vt", Role.STAFF, f"commune:{CAM_TU}")
    draft = await make_draft(sessionmaker, "Cẩm Tú", (CAM_TU,))
    who = await authority(sessionmaker, person)
    assert await access(sessionmaker, who, Permission.READ, draft.id) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.EXPORT, draft.id) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.EDIT, draft.id) is None
    assert await access(sessionmaker, who, Permission.BROADCAST, draft.id) is None
    assert who.role_for(Permission.EXPORT, {CAM_TU}) is Role.STAFF


async def test_several_roles_and_scopes_add_up_under_the_role_that_allows(service, sessionmaker):
    person = await official(service, "cb", Role.STAFF, f"commune:{BA_DINH}")
    await roles_granted(sessionmaker, person, Grant(Role.OFFICIAL, Scope.parse("commune:15148")))
    both = await make_draft(sessionmaker, "both", (CAM_TU, BA_DINH))
    hanoi = await make_draft(sessionmaker, "Hà Nội", (BA_DINH, NGOC_HA))
    who = await authority(sessionmaker, person)
    assert who.communes() == {CAM_TU, BA_DINH}
    assert who.communes(Permission.BROADCAST) == {CAM_TU}
    assert await access(sessionmaker, who, Permission.READ, both.id) == {CAM_TU, BA_DINH}
    assert await access(sessionmaker, who, Permission.READ, hanoi.id) == {BA_DINH}
    assert await access(sessionmaker, who, Permission.BROADCAST, both.id) is None
    assert who.role == Role.OFFICIAL  # the highest held
    assert who.role_for(Permission.READ, {BA_DINH}) is Role.STAFF


async def roles_granted(sessionmaker, person_id: int, *grants: Grant) -> None:
    async with sessionmaker() as session:
        for grant in grants:
            await roles.grant(session, person_id, grant, utcnow())
        await session.commit()


async def test_an_admin_of_all_may_everything_even_a_draft_without_communes(
        service, sessionmaker):
    person = await official(service, "qt", Role.ADMIN, "all")
    draft = await make_draft(sessionmaker, "nowhere", ())
    who = await authority(sessionmaker, person)
    assert who.communes() is None and who.may(Permission.MANAGE)
    assert await access(sessionmaker, who, Permission.BROADCAST, draft.id) == frozenset()
    assert await visible(sessionmaker, who) == set()  # no commune: nobody's list shows it
    commune_admin = await official(service, "xa", Role.ADMIN, f"commune:{CAM_TU}")
    assert await access(sessionmaker, await authority(sessionmaker, commune_admin),
                        Permission.EDIT, draft.id) is None


async def test_a_resident_holds_nothing(service, sessionmaker):
    await agree(service, "dan")
    draft = await make_draft(sessionmaker, "Cẩm Tú", (CAM_TU,))
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, (CHANNEL, "dan"))
    who = await authority(sessionmaker, person)
    assert not who.holds_a_role and who.role is None and who.communes() == frozenset()
    assert await visible(sessionmaker, who) == set()
    assert await access(sessionmaker, who, Permission.READ, draft.id) is None


async def test_admin_ids_make_the_chats_persons_admins_of_all_once_they_agree(sessionmaker):
    service = workspace_service(sessionmaker, "boss")
    # Before agreeing there is no person: /login is a stranger's unknown command.
    before = joined(await service.handle(say("boss", "/login")))
    assert "https://" not in before
    await agree(service, "boss")
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, (CHANNEL, "boss"))
    who = await authority(sessionmaker, person, service.workspace.admin_chats)
    assert who.grants == {Grant(Role.ADMIN, roles.ALL)}
    assert "/admin/login/" in joined(await service.handle(say("boss", "/login")))
    # Another chat of the same service is no admin; nor is this one without the setting.
    await agree(service, "someone")
    assert "/admin/login/" not in joined(await service.handle(say("someone", "/login")))
    assert not (await authority(sessionmaker, person)).holds_a_role


async def test_scopes_are_read_and_written_as_the_command_line_does():
    assert Scope.parse("all") == roles.ALL and str(roles.ALL) == "all"
    assert str(Scope.parse("commune:00004")) == "commune:00004" == str(Scope.parse("commune:4"))
    assert Scope.parse(" Province:38 ") == Scope(roles.ScopeKind.PROVINCE, 38)
    for bad, problem in (("everywhere", "shape"), ("commune:", "shape"), ("commune:1x", "shape"),
                         ("all:1", "shape"), ("commune:99999", "unknown_commune"),
                         ("province:99", "unknown_province"), ("commune:١٢", "shape")):
        with pytest.raises(roles.ScopeError) as refused:
            Scope.parse(bad)
        assert refused.value.problem == problem


async def test_erasure_takes_the_roles_and_the_audit_log_keeps_a_pseudonym(service, sessionmaker):
    person = await official(service, "cb")
    async with sessionmaker() as session:
        await audit.record(session, Actor(Via.CHAT, person, Role.OFFICIAL, CHANNEL),
                           AuditAction.LOGIN_LINK, utcnow(), draft_id=7)
        await session.commit()
        named = await audit.pseudonym(session, person)
    await service.handle(say("cb", "/delete"))
    await service.handle(press("cb", "erase:yes"))
    async with sessionmaker() as session:
        assert (await session.scalars(select(RoleGrant))).all() == []
        row = await session.scalar(select(AuditEntry))
    assert row.actor == named and len(named) == 14 and named.startswith("P-")
    assert (row.via, row.channel, row.role, row.action, row.draft_id) == (
        "chat", CHANNEL, "official", "login_link", 7)


async def test_the_audit_log_is_append_only(service, sessionmaker):
    person = await official(service, "cb")
    async with sessionmaker() as session:
        await audit.record(session, Actor(Via.WEB, person, Role.OFFICIAL),
                           AuditAction.SESSION_STARTED, utcnow())
        await session.commit()
    for statement in (update(AuditEntry).values(actor="someone else"), delete(AuditEntry)):
        async with sessionmaker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(statement)
    async with sessionmaker() as session:
        if session.get_bind().dialect.name == "postgresql":
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text("TRUNCATE audit_log"))
    async with sessionmaker() as session:
        assert [row.actor for row in (await session.scalars(select(AuditEntry))).all()] == [
            await audit.pseudonym(session, person)]


async def test_a_draft_deleted_keeps_its_audit_rows(service, sessionmaker):
    person = await official(service, "cb")
    draft = await make_draft(sessionmaker)
    async with sessionmaker() as session:
        await audit.record(session, Actor(Via.WEB, person, Role.OFFICIAL),
                           AuditAction.SESSION_STARTED, utcnow(), draft_id=draft.id)
        await session.execute(delete(Draft).where(Draft.id == draft.id))
        await session.commit()
        assert (await session.scalar(select(AuditEntry.draft_id))) == draft.id

