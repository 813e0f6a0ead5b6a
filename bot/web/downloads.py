"""Downloads: comments and votes as CSV or XLSX, of one draft or of all, limited to the
communes the person may export, pseudonymised with the key `ykien export` uses.

The file is written to a temporary file first and then streamed in chunks: memory stays flat
however large it is, and a failure shows an error page instead of a cut-off download. The
download is an action (a POST with the form's CSRF token) and is audited.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from enum import StrEnum
from typing import IO

from aiohttp import web
from sqlalchemy import select

from bot.web.auth import WORKSPACE, page_translator, signed_in
from bot.web.pages import (
    draft_in_scope,
    forbidden,
    path_id,
    record,
    refusal,
    render,
    session_of,
)
from storage import roles
from storage.audit import AuditAction
from storage.export import export_csv
from storage.export_xlsx import export_xlsx
from storage.keys import pseudonym_key
from storage.models import VIETNAM, Draft, utcnow
from storage.roles import Permission

CHUNK = 256 * 1024
DRAFTS_LISTED = 50


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


CONTENT_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


async def downloads_page(request: web.Request) -> web.Response:
    authority = signed_in(request).authority
    if not authority.may(Permission.EXPORT):
        raise forbidden(request, Permission.EXPORT)
    async with session_of(request) as session:
        drafts = (await session.execute(
            select(Draft.id, Draft.title)
            .where(Draft.id.in_(roles.visible_drafts(authority, Permission.EXPORT)))
            .order_by(Draft.id.desc()).limit(DRAFTS_LISTED))).all()
    return render(request, "downloads.html", {"drafts": drafts, "formats": list(Format)})


async def _written(request: web.Request, draft_id: int | None, chosen: Format,
                   communes: frozenset[int] | None) -> IO[bytes]:
    """The export in a temporary file, read from its start."""
    settings = request.app[WORKSPACE].settings
    t = page_translator(request)
    async with session_of(request) as session, session.begin():
        key = await pseudonym_key(session, settings.pseudonym_key)  # may store a new key
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, or here on failure)
    try:
        async with session_of(request) as session:
            if chosen is Format.XLSX:
                await export_xlsx(session, spooled, draft_id, key, translate=t,
                                  communes=communes)
            else:
                # utf-8-sig: the BOM that makes Excel read Vietnamese correctly (as the CLI).
                text = io.TextIOWrapper(spooled, encoding="utf-8-sig", newline="")
                await export_csv(session, text, draft_id, key, translate=t, communes=communes)
                text.flush()
                text.detach()
        spooled.seek(0)
        return spooled
    except BaseException:
        spooled.close()
        raise


async def _download(request: web.Request, draft_id: int | None) -> web.StreamResponse:
    post = await request.post()
    try:
        chosen = Format(str(post.get("format", "")))
    except ValueError:
        raise refusal(request, 400, page_translator(request)(
            "Choose CSV or XLSX.")) from None
    authority = signed_in(request).authority
    role = authority.role_for(Permission.EXPORT)
    if role is None:
        raise forbidden(request, Permission.EXPORT)
    communes = authority.communes(Permission.EXPORT)
    if draft_id is not None:
        async with session_of(request) as session:
            found = await draft_in_scope(request, session, Permission.EXPORT)
            role = found.role
    spooled = await _written(request, draft_id, chosen, communes)
    try:
        async with session_of(request) as session, session.begin():
            await record(request, session, role, AuditAction.EXPORTED, draft_id,
                         detail=f"{chosen}; communes: "
                                + ("all" if communes is None else str(len(communes))))
        stamp = utcnow().astimezone(VIETNAM).strftime("%Y%m%d-%H%M")
        name = f"ykien-{draft_id if draft_id is not None else 'all'}-{stamp}.{chosen}"
        response = web.StreamResponse(headers={
            "Content-Type": CONTENT_TYPES[chosen],
            "Content-Disposition": f'attachment; filename="{name}"',
        })
        await response.prepare(request)
        while chunk := await asyncio.to_thread(spooled.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        spooled.close()


async def download_all(request: web.Request) -> web.StreamResponse:
    return await _download(request, None)


async def download_draft(request: web.Request) -> web.StreamResponse:
    return await _download(request, path_id(request))


ROUTES = [
    web.get("/downloads", downloads_page),
    web.post("/downloads", download_all),
    web.post(r"/drafts/{id:\d+}/download", download_draft),
]
