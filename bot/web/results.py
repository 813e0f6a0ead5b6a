"""A draft's results page (storage.results' figures, as `ykien results` shows them, by commune)
and its chart as a PNG (storage.charts), both within the official's communes; the chart at
the signed address `/results` gives a Zalo Bot (storage.chart_links); and the draft's
comments, newest first, a page at a time, searchable."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import NoReturn

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import WORKSPACE, page_translator, public
from bot.web.moderation import moderation_context
from bot.web.pages import InScope, draft_in_scope, page_number, render, session_of
from handlers.breakdown import breakdown_lines, participation, source_words, vote_share
from handlers.i18n import LANGUAGES, translator
from handlers.officials import ADMIN_PATH, CHARTS_PATH
from storage import chart_links, roles
from storage.chart_links import ChartRefused
from storage.charts import commune_name, results_png
from storage.comments import comments_page
from storage.drafts import STATE_WORDS, commune_code_text
from storage.models import CommentSource, utcnow
from storage.results import DraftResults, Figures, draft_results
from storage.roles import Permission

log = logging.getLogger(__name__)

COMMENTS_PER_PAGE = 20
SEARCH_LIMIT = 200  # characters of a search


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    code: str
    name: str
    figures: Figures
    rate: str  # participation as a percentage, "–" while nobody was reached
    offline: int = 0  # of the comments, those received offline


async def _results(session: AsyncSession, found: InScope) -> DraftResults:
    results = await draft_results(session, found.draft.id, found.scope)
    assert results is not None  # the draft was found in this session
    return results


async def results_page(request: web.Request) -> web.Response:
    t = page_translator(request)
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        results = await _results(session, found)
    rows = [Row(commune_code_text(entry.code) if entry.code is not None else "",
                commune_name(entry.code, t), entry.figures, participation(entry.figures, t),
                entry.breakdown.offline_comments)
            for entry in results.communes]
    total = results.total
    shares = [vote_share(count, total, t) for count in total.votes]
    return render(request, "results.html", {
        "draft": found.draft, "results": results, "rows": rows,
        "total": Row("", t("Total"), total, participation(total, t),
                     results.breakdown.offline_comments),
        "breakdown": breakdown_lines(results.breakdown, t),
        "votes": list(zip(results.options, total.votes, shares, strict=True)),
        "state_words": t(STATE_WORDS[results.state]),
        "ways": [(way.value, count) for way, count in total.reached_by_way.items() if count],
    })


async def results_chart(request: web.Request) -> web.Response:
    """The chart (PNG), drawn in a worker thread: matplotlib's CPU work keeps the server
    answering."""
    t = page_translator(request)
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        results = await _results(session, found)
    png = await asyncio.to_thread(results_png, results, t, t.language)
    return web.Response(body=png, content_type="image/png")


@public
async def linked_chart(request: web.Request) -> web.Response:
    """The chart at a signed, expiring address the bot gave a Zalo Bot's sendPhoto (see
    storage.chart_links): no session, since the platform fetches it; drawn now, within the
    scope the official holds now. A bad, expired or out-of-scope token learns nothing."""
    workspace = request.app[WORKSPACE]
    admins = workspace.settings.admin_chats
    now = utcnow()
    async with workspace.sessionmaker() as session, session.begin():
        asked = await chart_links.chart_request(session, request.match_info["token"], now,
                                                admins)
        if isinstance(asked, ChartRefused):
            _refuse_chart(asked)
        authority = await roles.authority_of(session, asked.person_id, admins)
        scope = await roles.draft_access(session, authority, Permission.READ, asked.draft_id)
        if scope is None:
            _refuse_chart("the draft is out of the person's scope, or gone")
        results = await draft_results(session, asked.draft_id, scope, now)
    assert results is not None  # draft_access found the draft in this transaction
    t = translator(asked.language if asked.language in LANGUAGES else None)
    png = await asyncio.to_thread(results_png, results, t, t.language)
    return web.Response(body=png, content_type="image/png")


def _refuse_chart(why: str) -> NoReturn:
    """410 for an expired address, 404 for any other: a guess learns nothing."""
    log.info("workspace: a chart address was refused: %s", why)
    raise web.HTTPGone() if why == ChartRefused.EXPIRED else web.HTTPNotFound()


async def comments(request: web.Request) -> web.Response:
    search = request.query.get("q", "").strip()[:SEARCH_LIMIT]
    page = page_number(request)
    t = page_translator(request)
    async with session_of(request) as session:
        found = await draft_in_scope(request, session)
        listed = await comments_page(session, found.draft.id, found.scope, search,
                                     (page - 1) * COMMENTS_PER_PAGE, COMMENTS_PER_PAGE)
    return render(request, "comments.html", {
        "draft": found.draft, "search": search, "page": page, "total": listed.total,
        "pages": max(1, -(-listed.total // COMMENTS_PER_PAGE)),
        "comments": [(row.receipt, commune_name(row.commune_code, t), row.created_at, row.text)
                     for row in listed.rows],
        "offline": ["" if row.source == CommentSource.CHAT else t(
            source_words().get(row.source, row.source)) for row in listed.rows],
        **moderation_context(request, found, listed.rows, t),
    })


ROUTES = [
    web.get(r"/drafts/{id:\d+}/results", results_page),
    web.get(r"/drafts/{id:\d+}/results.png", results_chart),
    web.get(r"/drafts/{id:\d+}/comments", comments),
    web.get(CHARTS_PATH.removeprefix(ADMIN_PATH) + "{token}.png", linked_chart),
]
