"""Group commit (bot/web/groupcommit.py): what is submitted together is written in one
transaction, each caller gets its own result, and a failure reaches exactly the callers whose
items it held, without a write that never gets a connection spinning."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.groupcommit import GroupCommit
from storage.db import make_engine, make_sessionmaker, open_database

BOUND = 30.0


async def test_what_is_submitted_together_is_one_write_with_a_result_each(database_url):
    async with open_database(database_url) as sessionmaker:
        batches: list[list[int]] = []

        async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
            assert await session.scalar(text("SELECT 1")) == 1  # inside its transaction
            batches.append(list(items))
            return [item * 10 for item in items]

        commit = GroupCommit(sessionmaker, write)
        assert await asyncio.gather(*(commit.submit(n) for n in range(5))) == [0, 10, 20, 30, 40]
        assert batches == [[0, 1, 2, 3, 4]]
        assert await commit.submit(7) == 70  # alone: written at once, without waiting
        assert batches[-1] == [7] and (commit.writes, commit.items) == (2, 6)


async def test_a_lingering_write_takes_what_comes_one_at_a_time_meanwhile(database_url):
    """Records of updates handled come one by one (each once its replies are sent): told to
    linger, the write waits for them and takes them together; untold, each goes alone."""
    async with open_database(database_url) as sessionmaker:
        batches: list[list[int]] = []

        async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
            batches.append(list(items))
            return list(items)

        for linger, expected in ((BOUND, [[0, 1, 2, 3, 4]]), (0.0, [[n] for n in range(5)])):
            batches.clear()
            commit = GroupCommit(sessionmaker, write, linger=linger, max_batch=5)
            submitted = []
            for n in range(5):  # each after the previous one's write had its chance to start
                submitted.append(asyncio.create_task(commit.submit(n)))
                if not linger:
                    await submitted[-1]
                await asyncio.sleep(0)
            async with asyncio.timeout(BOUND):  # the fifth fills the batch: no lingering on
                assert await asyncio.gather(*submitted) == [0, 1, 2, 3, 4]
            assert batches == expected
        lingering = GroupCommit(sessionmaker, write, linger=BOUND)
        left = asyncio.create_task(lingering.submit(9))
        await asyncio.sleep(0)
        async with asyncio.timeout(BOUND / 2):  # a stop writes it at once
            await lingering.close()
            assert await left == 9


async def test_a_failed_write_fails_its_callers_only(database_url):
    async with open_database(database_url) as sessionmaker:

        async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
            if 3 in items:
                raise ValueError("item 3 cannot be written")
            return list(items)

        commit = GroupCommit(sessionmaker, write)
        results = await asyncio.gather(*(commit.submit(n) for n in (1, 3)),
                                       return_exceptions=True)
        assert all(isinstance(result, ValueError) for result in results)
        assert await commit.submit(4) == 4  # the next write goes on


async def test_without_a_database_the_callers_fail_instead_of_waiting():
    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
    try:
        async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
            raise AssertionError("never reached: there is no connection")

        commit = GroupCommit(make_sessionmaker(engine), write)
        async with asyncio.timeout(BOUND):
            results = await asyncio.gather(*(commit.submit(n) for n in range(3)),
                                           return_exceptions=True)
            await commit.close()
        assert all(isinstance(result, SQLAlchemyError | OSError) for result in results), results
    finally:
        await engine.dispose()



async def test_a_write_of_one_statement_goes_without_begin_and_commit_on_postgresql(
    database_url
):
    """On PostgreSQL, one statement is its own transaction: BEGIN and COMMIT around it would
    be two more round trips before the 200. Writes of several statements keep them."""
    postgres = database_url.startswith("postgresql")
    async with open_database(database_url) as sessionmaker:
        seen: list[bool] = []

        async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
            assert await session.scalar(text("SELECT 1")) == 1
            if postgres:
                raw = await (await session.connection()).get_raw_connection()
                seen.append(raw.driver_connection.is_in_transaction())
            return list(items)

        for one_statement in (False, True):
            commit = GroupCommit(sessionmaker, write, one_statement=one_statement)
            assert await asyncio.gather(*(commit.submit(n) for n in range(3))) == [0, 1, 2]
        assert seen == ([True, False] if postgres else [])
