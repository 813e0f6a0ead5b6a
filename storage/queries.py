"""Reads and writes the conversation needs, one small function each.

None of them commits: the caller owns the transaction (one per update).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Table,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, raiseload
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import (
    Comment,
    CommentSource,
    Draft,
    DraftCommune,
    DraftMessage,
    DraftStatus,
    Person,
    PollOption,
    ProcessedUpdate,
    Resident,
    Vote,
    utcnow,
)


def affected(result: Any) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (typed access to the cursor's rowcount)."""
    return result.rowcount if isinstance(result, CursorResult) else 0


def dialect_insert(session: AsyncSession) -> Any:
    """The INSERT construct with ON CONFLICT support for the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def insert_unless_present(session: AsyncSession, model: type, **values: object) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when a row was added."""
    insert = dialect_insert(session)
    result = await session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return affected(result) == 1


def table_of(model: type) -> Table:
    """The Core table of a model, for statements built once (see `_FIRST_TIME`)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_VALUE = "value_"  # parameters named after no column: an UPDATE would set a column named so

# The statements every update runs, built once: building a statement and its cache key costs
# the event loop more than running it (0.67 ms against 0.2 ms a statement, on SQLite).
_PROCESSED = table_of(ProcessedUpdate)
_FIRST_TIME = {name: dialect.insert(_PROCESSED).on_conflict_do_nothing()
               for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
_FORGOTTEN = "forgotten chats"  # session.info: the chats `forget_chat` forgot, this transaction
_RESIDENT = (
    select(Resident)
    .where(Resident.channel == bindparam("of_channel"),
           Resident.platform_id == bindparam("of_chat"))
    .options(joinedload(Resident.person, innerjoin=True))
)
_DRAFT_FOR_COMMUNE = {
    with_options: (
        select(Draft)
        .join(DraftCommune, DraftCommune.draft_id == Draft.id)
        .where(Draft.id == bindparam("of_draft"),
               DraftCommune.commune_code == bindparam("of_commune"))
        # Drafts do not depend on the resident's pending changes: flushing them here would
        # write the resident row twice in one update.
        .execution_options(autoflush=False)
        .options(*(() if with_options else (raiseload(Draft.options),)))  # a comment: none
    )
    for with_options in (False, True)
}


async def record_update(
    session: AsyncSession, channel: str, update_id: str, platform_id: str, replies: str,
    now: datetime,
) -> bool:
    """Record an update of a chat as handled, with the replies it was given (encoded), to
    give them again should it come back before they were all sent; False, nothing written,
    when it was recorded before (a retried webhook). One statement, the transaction's last:
    a chat forgotten earlier in the transaction (`forget_chat`) is recorded without its id."""
    if (channel, platform_id) in session.info.get(_FORGOTTEN, ()):
        platform_id, replies = "", ""
    result = await session.execute(
        _FIRST_TIME[session.get_bind().dialect.name],
        {"channel": channel, "update_id": update_id, "platform_id": platform_id,
         "created_at": now, "replies": replies},
    )
    return affected(result) == 1


async def handled_before(session: AsyncSession, channel: str, update_id: str) -> bool:
    """Whether an update was recorded as handled (`record_update`)."""
    return await session.scalar(
        select(ProcessedUpdate.id)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id)
    ) is not None


async def replies_given(session: AsyncSession, channel: str, update_id: str) -> str:
    """The replies `record_update` kept for an update, unless a later update of its chat was
    handled since: a chat's updates are handled one after the other, each once the replies
    before it were sent, so those went out. "" then, or if none were kept or they were
    forgotten (a chat that declined or was erased is no longer known: its replies are)."""
    found = (await session.execute(
        select(ProcessedUpdate.id, ProcessedUpdate.platform_id, ProcessedUpdate.replies)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id)
    )).one_or_none()
    if found is None:
        return ""
    row_id, platform_id, replies = found
    if platform_id and await session.scalar(
        select(ProcessedUpdate.id).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.platform_id == platform_id,
            ProcessedUpdate.id > row_id,
        ).limit(1)
    ) is not None:
        return ""
    return replies


async def forget_chat(session: AsyncSession, channel: str, platform_id: str) -> None:
    """Forget which updates were a chat's and what it was told (a decline, an erasure): the
    update ids stay, so that a retry is still recognised. The update being handled, recorded
    last (`record_update`), is recorded so too."""
    session.info.setdefault(_FORGOTTEN, set()).add((channel, platform_id))
    await session.execute(
        update(ProcessedUpdate)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.platform_id == platform_id)
        .values(platform_id="", replies="")
    )


async def forget_updates_before(session: AsyncSession, before: datetime) -> int:
    """Drop update ids older than any platform retry, so the table stays small."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.created_at < before)
    )
    return affected(result)


async def get_resident(session: AsyncSession, channel: str, platform_id: str) -> Resident | None:
    """The chat's resident with their person (whom they answer for), in one query."""
    return await session.scalar(_RESIDENT, {"of_channel": channel, "of_chat": platform_id})


async def add_resident(
    session: AsyncSession, channel: str, platform_id: str, language: str, consent_version: str,
    now: datetime,
) -> Resident:
    """Create the resident (a new person) at the moment of consent: when and which notice."""
    person = Person(created_at=now)
    session.add(person)
    await session.flush()
    resident = Resident(
        channel=channel, platform_id=platform_id, person_id=person.id, language=language,
        consent_at=now,
        consent_version=consent_version, notice_version=consent_version, subscribed=True,
        reachable=True, last_seen_at=now,
    )
    session.add(resident)
    await session.flush()
    set_committed_value(resident, "person", person)
    return resident


async def add_residents_in_bulk(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert many residents at once, each a person of their own (imports, tests, benchmarks)."""
    if not rows:
        return
    now = utcnow()
    person_ids = (await session.scalars(
        insert(Person).returning(Person.id, sort_by_parameter_order=True),
        [{"created_at": row.get("created_at", now)} for row in rows],
    )).all()
    await session.execute(insert(Resident), [
        {**row, "person_id": person_id} for row, person_id in zip(rows, person_ids, strict=True)
    ])


def still_open(now: datetime) -> Any:
    """Drafts whose votes can still change (so an erased vote may be cast again)."""
    return select(Draft.id).where(Draft.status != DraftStatus.CLOSED, Draft.deadline > now)


def _identities(resident: Resident) -> Any:
    """The ids of every identity of the resident's person (linked chats), as a subquery."""
    return select(Resident.id).where(Resident.person_id == resident.person_id)


async def erase_resident(
    session: AsyncSession, resident: Resident, now: datetime, chats: int
) -> bool:
    """Delete a person, with every chat identity linked to them, as the privacy notice says;
    `chats` is how many the person was told would go. False, deleting nothing, when they
    have another number by now (a chat linked since they were asked).

    Comments stay without any link to them. Votes on drafts still open are deleted, so a
    person who comes back votes once, not twice; votes on closed drafts (which nobody can
    cast again) stay without any link. What their chats were told is forgotten.
    """
    await lock_person(session, resident)  # a link waits, or is counted here
    person_id = resident.person_id
    ids = list((await session.scalars(_identities(resident))).all())
    if len(ids) != chats:
        return False
    await session.execute(
        update(Comment).where(Comment.resident_id.in_(ids)).values(resident_id=None)
    )
    await session.execute(
        delete(Vote).where(Vote.resident_id.in_(ids), Vote.draft_id.in_(still_open(now)))
    )
    await session.execute(
        update(Vote).where(Vote.resident_id.in_(ids)).values(resident_id=None)
    )
    await session.execute(delete(DraftMessage).where(DraftMessage.resident_id.in_(ids)))
    for identity in (await session.scalars(select(Resident).where(Resident.id.in_(ids)))).all():
        await forget_chat(session, identity.channel, identity.platform_id)
        await session.delete(identity)
    await session.flush()
    # Its link codes and wrong guesses go with it (ON DELETE CASCADE).
    await session.execute(delete(Person).where(Person.id == person_id))
    return True


def _open_at(now: datetime) -> tuple[Any, ...]:
    return (Draft.status == DraftStatus.OPEN, Draft.opens_at <= now, Draft.deadline > now)


async def open_drafts(session: AsyncSession, commune_code: int, now: datetime) -> Sequence[Draft]:
    """Drafts a commune can comment on now, soonest deadline first."""
    return (
        await session.scalars(
            select(Draft)
            .join(DraftCommune, DraftCommune.draft_id == Draft.id)
            .where(DraftCommune.commune_code == commune_code, *_open_at(now))
            .order_by(Draft.deadline, Draft.id)
        )
    ).all()


async def get_draft(session: AsyncSession, draft_id: int) -> Draft | None:
    return await session.get(Draft, draft_id)


async def draft_for_commune(
    session: AsyncSession, draft_id: int, commune_code: int, with_options: bool = False
) -> Draft | None:
    """The draft if it exists and targets this commune, in one query (poll options on request)."""
    return await session.scalar(_DRAFT_FOR_COMMUNE[with_options],
                                {"of_draft": draft_id, "of_commune": commune_code})


async def get_option(session: AsyncSession, option_id: int) -> PollOption | None:
    return await session.get(PollOption, option_id)


# The longest comment stored, in characters (a person is told the limit when over it).
COMMENT_LIMIT = 1000


async def add_comment(
    session: AsyncSession, draft: Draft, resident: Resident, text: str, now: datetime,
    *, forwarded: bool = False,
) -> Comment:
    """Store a comment with the next receipt number of its draft.

    The draft's counter hands out the numbers: its row lock (PostgreSQL) or the write lock
    (SQLite) gives concurrent comments on one draft distinct numbers. Every comment on the
    draft waits for that lock until the commit, so call this as late in a transaction as
    possible (in a conversation only the update's record follows, `record_update`). On
    PostgreSQL, taking the number and storing the comment is one statement.
    """
    values = {"resident_id": resident.id,
              "commune_code": resident.commune_code, "text": text, "forwarded": forwarded,
              "created_at": now, "hidden_reason": "", "hidden_note": "",
              **recorded_with(resident)}
    # No autoflush: writing pending changes is the caller's, before this (a row written now
    # would be written while the counter is held).
    with session.no_autoflush:
        comment_id, number = await add_numbered_comment(session, draft.id, values)
    return Comment(id=comment_id, number=number, draft_id=draft.id, **values)


async def add_numbered_comment(session: AsyncSession, draft_id: int,
                               values: dict[str, Any]) -> tuple[int, int]:
    """Store a comment of the draft (its columns but the number: `values`) with the draft's
    next receipt number: its (id, number). See add_comment on the draft's counter; call this
    as the last step of a transaction too (comments gathered offline: storage.offline)."""
    row = await _store_numbered(session, {"draft_id": draft_id, **values})
    return row.id, row.number


def recorded_with(resident: Resident) -> dict[str, str]:
    """What a comment or vote records of how it came, as it is when written (the figures
    outlive the person's erasure): the chat app, whom the person answers for, the chat.
    `resident` was read with its person (get_resident)."""
    return {"channel": resident.channel,
            "respondent_category": resident.person.respondent_category,
            "source": CommentSource.CHAT.value}


async def _store_numbered(session: AsyncSession, values: dict[str, Any]) -> Any:
    """The new comment's (id, number): the draft's counter taken, the comment stored."""
    if session.get_bind().dialect.name == "postgresql":
        return (await session.execute(
            _numbered_insert(tuple(values)),
            {f"{_VALUE}{name}": value for name, value in values.items()})).one()
    number = (await session.execute(_COUNTER, {"of_draft": values["draft_id"]})).scalar_one()
    return (await session.execute(_INSERT_COMMENT, {**values, "number": number})).one()


_COMMENTS, _DRAFTS = table_of(Comment), table_of(Draft)
# Built once (see _FIRST_TIME): the draft's counter taken, and the comment stored with it.
_COUNTER = (
    update(_DRAFTS)
    .where(_DRAFTS.c.id == bindparam("of_draft"))
    .values(comment_count=_DRAFTS.c.comment_count + 1)
    .returning(_DRAFTS.c.comment_count)
)
_INSERT_COMMENT = insert(_COMMENTS).returning(_COMMENTS.c.id, _COMMENTS.c.number)




@functools.cache
def _numbered_insert(columns: tuple[str, ...]) -> Any:
    """PostgreSQL: the counter taken and the comment of these columns stored in one
    statement, built once per set of columns (its parameters: _VALUE + column)."""
    taken = (
        update(_DRAFTS)
        .where(_DRAFTS.c.id == bindparam(f"{_VALUE}draft_id", type_=_DRAFTS.c.id.type))
        .values(comment_count=_DRAFTS.c.comment_count + 1)
        .returning(_DRAFTS.c.comment_count)
        .cte("taken")
    )
    return insert(_COMMENTS).from_select(
        [*columns, "number"],
        select(*(bindparam(f"{_VALUE}{name}", type_=_COMMENTS.c[name].type)
                 for name in columns),
               taken.c.comment_count),
    ).returning(_COMMENTS.c.id, _COMMENTS.c.number)


async def comments_of(
    session: AsyncSession, resident: Resident, limit: int
) -> Sequence[tuple[Comment, str]]:
    """A person's latest comments (from every linked chat) with their drafts' titles."""
    rows = await session.execute(
        select(Comment, Draft.title)
        .join(Draft, Draft.id == Comment.draft_id)
        .where(Comment.resident_id.in_(_identities(resident)))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(limit)
    )
    return [(comment, title) for comment, title in rows.all()]


async def count_comments_of(session: AsyncSession, resident: Resident) -> int:
    return await session.scalar(
        select(func.count()).select_from(Comment)
        .where(Comment.resident_id.in_(_identities(resident)))
    ) or 0


async def _lock_persons(session: AsyncSession, person_ids: Iterable[int]) -> set[int]:
    """Hold these persons until the transaction ends; returns the ids that still exist.

    Whatever belongs to a person as a whole (one vote per poll, the chats joined by a link,
    an erasure) is read and changed only under this lock, so two chats of one person on two
    servers take turns. PostgreSQL: the persons' row locks, in ascending order (two holders
    never wait for each other); SQLite has no row locks: a write takes the database's write
    lock, which serialises processes, and the reads after it see every commit before it.
    Nothing is flushed first: a chat's row written before the lock would be held while
    waiting for it, and a link moving that chat would wait in turn.
    """
    found: set[int] = set()
    with session.no_autoflush:
        for person_id in sorted(set(person_ids)):
            if session.get_bind().dialect.name == "postgresql":
                locked = await session.scalar(
                    select(Person.id).where(Person.id == person_id).with_for_update())
            else:
                locked = await session.scalar(
                    update(Person).where(Person.id == person_id)
                    .values(created_at=Person.created_at).returning(Person.id)
                    .execution_options(synchronize_session=False))
            if locked is not None:
                found.add(locked)
    return found


async def lock_person(session: AsyncSession, resident: Resident, *others: int) -> set[int]:
    """Hold the resident's person, and the persons `others`, until the transaction ends (see
    _lock_persons); returns which of them still exist.

    A link committed while this waited may have moved the chat to another person: then
    that one is held too, and `resident.person_id` is brought up to date.
    """
    while True:
        person_id = resident.person_id
        held = await _lock_persons(session, [person_id, *others])
        with session.no_autoflush:
            current = await session.scalar(
                select(Resident.person_id).where(Resident.id == resident.id))
        if current is None or current == person_id:
            return held
        set_committed_value(resident, "person_id", current)
        if "person" not in inspect(resident).unloaded:  # read with its person: that one
            set_committed_value(resident, "person", await session.get(Person, current))


async def _person_votes(session: AsyncSession, draft_id: int, resident: Resident
                        ) -> Sequence[Vote]:
    """The votes of the resident's person on a draft (one, unless two chats raced), newest first."""
    return (await session.scalars(
        select(Vote)
        .where(Vote.draft_id == draft_id, Vote.resident_id.in_(_identities(resident)))
        .order_by(Vote.updated_at.desc(), Vote.id.desc())
    )).all()


async def options_chosen(session: AsyncSession, resident: Resident, draft_ids: Sequence[int]
                         ) -> dict[int, int]:
    """The option the resident's person votes for now on each of these drafts that has one
    (draft id -> option id; the latest, should two chats have raced)."""
    if not draft_ids:
        return {}
    rows = await session.execute(
        select(Vote.draft_id, Vote.option_id)
        .where(Vote.draft_id.in_(draft_ids), Vote.resident_id.in_(_identities(resident)))
        .order_by(Vote.updated_at, Vote.id))
    return {draft_id: option_id for draft_id, option_id in rows.all()}


async def cast_vote(
    session: AsyncSession, draft: Draft, option: PollOption, resident: Resident, now: datetime
) -> tuple[int | None, bool]:
    """Record or change the person's one vote: the option it had before (None if none) and
    whether anything changed.

    A vote cast from another of the person's chats is replaced (moved to this chat), and
    any other is deleted in the same transaction: one vote per person per poll. Two chats of
    one person voting at once, or a chat voting while a link joins it to another person,
    take turns on the person (lock_person), so the second sees what the first did.
    """
    await lock_person(session, resident)
    votes = await _person_votes(session, draft.id, resident)
    vote, others = (votes[0], votes[1:]) if votes else (None, [])
    previous = vote.option_id if vote is not None else None
    for other in others:
        await session.delete(other)
    if others:
        await session.flush()  # before the kept vote may take this chat's (draft, resident)
    if vote is None:
        vote = Vote(
            draft_id=draft.id,
            resident_id=resident.id,
            option_id=option.id,
            commune_code=resident.commune_code,
            created_at=now,
            updated_at=now,
            **recorded_with(resident),
        )
        session.add(vote)
    elif vote.option_id == option.id:
        return previous, False
    else:
        vote.resident_id = resident.id
        vote.option_id = option.id
        vote.updated_at = now
        # A changed vote is counted as cast now: from this chat, for whom they answer now.
        for name, value in recorded_with(resident).items():
            setattr(vote, name, value)
    await session.flush()
    return previous, True


async def remember_message(
    session: AsyncSession, resident: Resident, message_id: str, draft_id: int
) -> None:
    await insert_unless_present(
        session, DraftMessage, resident_id=resident.id, message_id=message_id, draft_id=draft_id
    )


async def draft_of_message(
    session: AsyncSession, resident: Resident, message_id: str
) -> int | None:
    return await session.scalar(
        select(DraftMessage.draft_id).where(
            DraftMessage.resident_id == resident.id, DraftMessage.message_id == message_id
        )
    )
