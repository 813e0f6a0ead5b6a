"""The officials' workspace under /admin/: its pages (one route table per area), their
templates (bot/web/templates, one base layout), the stylesheet and the progress script
(bot/web/static, served by us: no CDN), and the switch between Vietnamese and English.

`workspace_app` builds it, to mount at ADMIN_PATH (`ykien serve` does; tests call it with
their own settings). Signing in, sessions, CSRF and the security headers are bot/web/auth.py's.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.web import (
    answers,
    audit_log,
    downloads,
    draft_form,
    drafts,
    groups,
    moderation,
    offline,
    reminders,
    report,
    results,
)
from bot.web.auth import LANGUAGE_COOKIE, admin_app, public
from handlers.i18n import LANGUAGES
from handlers.officials import ADMIN_PATH

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
LANGUAGE_LIFETIME = 365 * 24 * 3600  # seconds


@public
async def static_file(request: web.Request) -> web.Response:
    """One of our few static files (the sign-in page uses the stylesheet too)."""
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES \
            or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=STATIC_TYPES[path.suffix])


@public
async def choose_language(request: web.Request) -> web.Response:
    """Remember the pages' language in a cookie, and go back where the person was."""
    language = request.match_info["language"]
    back = request.query.get("next", "")
    if not back.startswith(ADMIN_PATH + "/") or back.startswith("//") or "\\" in back:
        back = ADMIN_PATH + "/"  # only our own pages: never a redirect elsewhere
    response = web.Response(status=303, headers={"Location": back})
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, path=ADMIN_PATH, max_age=LANGUAGE_LIFETIME,
                            httponly=True, samesite="Lax")
    return response


ROUTES: list[web.RouteDef] = [
    *draft_form.ROUTES, *drafts.ROUTES, *results.ROUTES, *groups.ROUTES, *downloads.ROUTES,
    *audit_log.ROUTES, *answers.ROUTES, *moderation.ROUTES, *reminders.ROUTES,
    *report.ROUTES,
    *offline.ROUTES,
    web.get("/static/{name}", static_file),
    web.get("/language/{language}", choose_language),
]


def workspace_app(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
                  ) -> web.Application:
    """The workspace with its pages, to mount at ADMIN_PATH."""
    app = admin_app(sessionmaker, settings, routes=ROUTES)
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        default_helpers=False,
    )
    return app
