"""Comments and votes as CSV, streamed row by row, residents pseudonymised."""

from __future__ import annotations

import csv
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Row, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from storage import communes
from storage.drafts import commune_code_text
from storage.models import VIETNAM, AppSetting, Comment, Draft, PollOption, Resident, Vote
from storage.text import N_

PSEUDONYM_KEY = "pseudonym_key"
# Cells starting with these are formulas to Excel and LibreOffice (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Header and value words go through the caller's translator (the catalogue lives in handlers).
COLUMNS = (
    N_("Draft no."), N_("Draft title"), N_("Kind"), N_("Receipt no."), N_("Commune code"),
    N_("Commune"), N_("Province"), N_("Resident"), N_("Time"), N_("Comment"), N_("Vote"),
)
KINDS = {"comment": N_("comment"), "vote": N_("vote")}
ANONYMOUS = N_("anonymous")


def neutralise(value: str) -> str:
    """Make a cell that a spreadsheet would run as a formula plain text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


async def pseudonym_key(session: AsyncSession, configured: str = "") -> bytes:
    """The configured key, else one generated on first use and kept in the database."""
    if configured:
        return configured.encode()
    stored = await session.get(AppSetting, PSEUDONYM_KEY)
    if stored is None:
        stored = AppSetting(key=PSEUDONYM_KEY, value=secrets.token_hex(32))
        session.add(stored)
        await session.commit()
    return stored.value.encode()


def pseudonymiser(key: bytes, anonymous: str) -> Callable[[str | None, str | None], str]:
    """A stable keyed pseudonym per resident: the same person gets the same id in every export."""

    def pseudonym(channel: str | None, platform_id: str | None) -> str:
        if channel is None or platform_id is None:
            return anonymous  # the resident erased their data
        digest = hmac.new(key, f"{channel}:{platform_id}".encode(), hashlib.sha256)
        return "R-" + digest.hexdigest()[:12]

    return pseudonym


def receipt_number(draft_id: int, number: int | None) -> str:
    """A comment's receipt as the resident was told it: "3-17" is draft 3, its 17th comment."""
    return f"{draft_id}-{number}" if number is not None else ""


async def _rows(session: AsyncSession, draft_id: int | None) -> AsyncIterator[Row[Any]]:
    comments = (
        select(
            Comment.draft_id, literal("comment").label("kind"), Comment.number,
            Comment.commune_code,
            Resident.channel, Resident.platform_id, Comment.created_at.label("at"),
            Comment.text, null().label("vote"), Comment.id.label("row_id"),
        )
        .outerjoin(Resident, Resident.id == Comment.resident_id)
    )
    votes = (
        select(
            Vote.draft_id, literal("vote").label("kind"), null().label("number"),
            Vote.commune_code,
            Resident.channel, Resident.platform_id, Vote.updated_at.label("at"),
            null().label("text"), PollOption.label.label("vote"), Vote.id.label("row_id"),
        )
        .join(PollOption, PollOption.id == Vote.option_id)
        .outerjoin(Resident, Resident.id == Vote.resident_id)
    )
    if draft_id is not None:
        comments = comments.where(Comment.draft_id == draft_id)
        votes = votes.where(Vote.draft_id == draft_id)
    both = union_all(comments, votes).subquery()
    query = (
        select(both, Draft.title)
        .join(Draft, Draft.id == both.c.draft_id)
        .order_by(both.c.draft_id, both.c.at, both.c.kind, both.c.row_id)
    )
    result = await session.stream(query.execution_options(yield_per=1000))
    async for row in result:
        yield row


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):  # SQLite hands back the union's times as text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(VIETNAM).isoformat(timespec="seconds")


async def export_csv(
    session: AsyncSession,
    out: TextIO,
    draft_id: int | None = None,
    key: bytes = b"",
    translate: Callable[[str], str] = str,
) -> int:
    """Write comments and votes as CSV to `out` (open it with encoding utf-8-sig). Returns rows."""
    pseudonym = pseudonymiser(key or await pseudonym_key(session), translate(ANONYMOUS))
    kinds = {kind: translate(word) for kind, word in KINDS.items()}
    writer = csv.writer(out)
    writer.writerow([translate(column) for column in COLUMNS])
    count = 0
    async for row in _rows(session, draft_id):
        commune = communes.get_commune(row.commune_code) if row.commune_code else None
        writer.writerow([
            row.draft_id,
            neutralise(row.title),
            kinds[row.kind],
            receipt_number(row.draft_id, row.number),
            commune_code_text(row.commune_code) if row.commune_code is not None else "",
            commune.name if commune else "",
            commune.province.name if commune else "",
            pseudonym(row.channel, row.platform_id),
            _iso(row.at),
            neutralise(row.text or ""),
            neutralise(row.vote or ""),
        ])
        count += 1
    return count
