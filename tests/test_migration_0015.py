"""Migrations 0014 (each comment's and vote's channel, category and source; whom a person
answers for; a draft's issuer level) and 0015 (SQLite never reuses a person's or a chat's
number): down to 0013 and up again on SQLite and PostgreSQL, keeping every row; and, through
the chat, an erased person's number is never given to someone new."""

from __future__ import annotations

from sqlalchemy import inspect, select, text

from storage.db import make_engine, upgrade
from storage.models import Comment, Person, Resident
from tests.chat import CHANNEL, button_for, make_draft, press, subscribe
from tests.chat import text as say
from tests.test_migration_0007 import downgrade_to


async def test_down_to_0013_and_up_again_keeps_every_row(service, sessionmaker, database_url):
    await subscribe(service, "u1")
    await subscribe(service, "u2")
    draft = await make_draft(sessionmaker)
    await service.handle(press("u1", f"comment:{draft.id}"))
    await service.handle(say("u1", "Nên mở thêm giờ làm việc buổi tối"))
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to("0013"))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("comments")})
        assert "source" not in columns
        await upgrade(engine)
        async with engine.connect() as connection:
            persons = (await connection.execute(text("SELECT count(*) FROM persons"))).scalar()
            chats = (await connection.execute(text("SELECT count(*) FROM residents"))).scalar()
            comment = (await connection.execute(text(
                "SELECT channel, source, respondent_category FROM comments"))).one()
    finally:
        await engine.dispose()
    assert (persons, chats) == (2, 2)
    # What could be known is filled in: the chat's app, and that it came through the chat.
    assert tuple(comment) == (CHANNEL, "chat", "")


async def test_an_erased_persons_number_is_never_given_again(service, sessionmaker):
    await subscribe(service, "u1")
    await subscribe(service, "u2")  # the highest number: SQLite would hand it out again
    async with sessionmaker() as session:
        erased_person, erased_chat = (await session.execute(
            select(Resident.person_id, Resident.id).where(Resident.platform_id == "u2"))).one()
    asked = await service.handle(say("u2", "/delete"))
    await service.handle(press("u2", button_for(asked, "Yes, delete")))
    await subscribe(service, "u3")
    async with sessionmaker() as session:
        person, chat = (await session.execute(
            select(Resident.person_id, Resident.id).where(Resident.platform_id == "u3"))).one()
        assert await session.get(Person, erased_person) is None
        assert await session.scalar(select(Comment.id)) is None
    assert person > erased_person and chat > erased_chat
