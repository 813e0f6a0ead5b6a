"""The officials' workspace, its door: signing in with a one-time link from the chat, the
session cookie, CSRF tokens, and the security headers of everything under /admin/.

`admin_app` builds the sub-application that bot/web/server.py mounts at /admin. Every route
in it needs a signed-in person who holds a role, unless its handler is marked `@public`; a
POST (any method but GET, HEAD and OPTIONS) also needs the session's CSRF token: put
`csrf_token(request)` in a hidden form field named `csrf_token` (or send it in the
X-CSRF-Token header). A handler finds who is signed in with `signed_in(request)` (their
`Authority` says what they may see: storage.roles) and the database with
`sessionmaker_of(request)`; the pages add their routes through `admin_app(routes=...)`.

Sign-in links are opened twice: a GET shows a page with a button and spends nothing (a chat
app's preview robot may fetch the link), the button's POST spends the link and starts a
session. Refused links (wrong, expired, used) are counted per client: after FAILURE_LIMIT in
FAILURE_WINDOW the client waits. Tokens never reach a log (the server keeps no access log).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from handlers.i18n import LANGUAGES, Translator, translator
from handlers.officials import ADMIN_PATH, grant_words
from storage import audit, keys, roles, sessions
from storage.audit import Actor, AuditAction, Via
from storage.models import utcnow
from storage.roles import Authority

log = logging.getLogger(__name__)

SESSION_COOKIE = "ykien_session"
LOGIN_COOKIE = "ykien_login"  # pairs the sign-in page with its button's POST
LANGUAGE_COOKIE = "ykien_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_ROUTE = "/login/{token}"
SECURITY_HEADERS = {
    # Everything from us, no inline script or style, never inside another site's frame.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    # Not "no-referrer": browsers would then send "Origin: null" with our own forms.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",  # pages of comments and figures stay off shared caches
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WorkspaceContext:
    """What the workspace's handlers share: the database, the settings, the cookie key."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    key: bytes = b""  # read from the database on first use (storage.keys.WEB_KEY)

    @property
    def secure(self) -> bool:
        """Cookies only over https, when the workspace is published on https."""
        return self.settings.public_url.startswith("https://")


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request's session, with what they may do."""

    person_id: int
    authority: Authority
    token: str  # the session's own token (never shown: the cookie carries it signed)


WORKSPACE = web.AppKey("ykien_workspace", WorkspaceContext)
SIGNED_IN = web.RequestKey("ykien_signed_in", SignedIn)
_PUBLIC = "_ykien_public"


def public(handler: Handler) -> Handler:
    """Mark a route as open without signing in (the sign-in pages themselves)."""
    setattr(handler, _PUBLIC, True)
    return handler


def sessionmaker_of(request: web.Request) -> async_sessionmaker[AsyncSession]:
    return request.app[WORKSPACE].sessionmaker


def signed_in(request: web.Request) -> SignedIn:
    """Who is signed in (every route not marked @public has someone)."""
    return request[SIGNED_IN]


def page_translator(request: web.Request) -> Translator:
    """The pages' language: Vietnamese unless the browser chose English."""
    language = request.cookies.get(LANGUAGE_COOKIE, "")
    return translator(language if language in LANGUAGES else None)


def csrf_token(request: web.Request) -> str:
    """The token every form of this session must send back (in the field `csrf_token`)."""
    return _mac(request.app[WORKSPACE].key, "csrf", signed_in(request).token)


def _mac(key: bytes, purpose: str, value: str) -> str:
    digest = hmac.digest(key, f"{purpose}:{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signed_cookie(key: bytes, token: str) -> str:
    return f"{token}.{_mac(key, 'session', token)}"


def _unsigned(key: bytes, value: str) -> str | None:
    token, dot, signature = value.rpartition(".")
    if not dot or not hmac.compare_digest(signature, _mac(key, "session", token)):
        return None
    return token


async def _key(workspace: WorkspaceContext) -> bytes:
    if not workspace.key:
        async with workspace.sessionmaker() as session, session.begin():
            workspace.key = await keys.generated_key(session, keys.WEB_KEY)
    return workspace.key


def _client(request: web.Request, key: bytes) -> str:
    """Who is asking, as a keyed hash (no address is stored). Behind a reverse proxy on the
    same host (the README's Caddy or nginx), the address the proxy added last."""
    address = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        local = ipaddress.ip_address(address).is_loopback
    except ValueError:
        local = False
    if local and forwarded:
        address = forwarded.rsplit(",", 1)[-1].strip()
    return _mac(key, "client", address)[:32]


def _same_origin(request: web.Request) -> bool:
    """A browser's Origin, when it sends one, must be ours (the public address or the host
    asked for)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc
    public_host = urlsplit(request.app[WORKSPACE].settings.public_url).netloc
    return bool(host) and host in (request.host, public_host)


def page(t: Translator, title: str, body: str, status: int = 200) -> web.Response:
    """A plain page (the workspace's templates replace these); `body` is HTML, escaped by
    the caller."""
    document = (
        f'<!doctype html><html lang="{t.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="{ADMIN_PATH}/static/workspace.css"></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=document, content_type="text/html", status=status)


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _form(action: str, field: str, value: str, label: str) -> str:
    return (f'<form method="post" action="{html.escape(action)}">'
            f'<input type="hidden" name="{field}" value="{html.escape(value)}">'
            f'<button type="submit">{html.escape(label)}</button></form>')


def _refused(t: Translator, status: int, text: str) -> web.Response:
    return page(t, t("Ý kiến: officials' workspace"), _paragraph(text), status)


def _sign_in_needed(t: Translator) -> web.Response:
    return _refused(t, 401, t(
        "You are not signed in. Type /login to the bot, in the chat where you are an "
        "official, and open the link it sends."))


async def _who(request: web.Request) -> SignedIn | None:
    """The signed-in person of the request's session cookie: None without a cookie, with a
    forged or ended one, or once the person holds no role any more."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    workspace = request.app[WORKSPACE]
    token = _unsigned(await _key(workspace), cookie)
    if token is None:
        return None
    async with workspace.sessionmaker() as session:
        person_id = await sessions.session_person(session, token, utcnow())
        if person_id is None:
            return None
        authority = await roles.authority_of(session, person_id, workspace.settings.admin_chats)
    if not authority.holds_a_role:
        return None
    return SignedIn(person_id, authority, token)


@web.middleware
async def _signed_in_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    who = await _who(request)
    if who is not None:
        request[SIGNED_IN] = who
    if getattr(request.match_info.handler, _PUBLIC, False):
        return await handler(request)
    t = page_translator(request)
    if who is None:
        return _sign_in_needed(t)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            sent = str((await request.post()).get(CSRF_FIELD, ""))
        if not _same_origin(request) or not hmac.compare_digest(sent, csrf_token(request)):
            log.warning("workspace: a %s to %s without a valid CSRF token was refused",
                        request.method, request.path)
            return _refused(t, 403, t("This form has expired. Go back, reload the page "
                                      "and try again."))
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


# ---- the routes ------------------------------------------------------------------------------


async def _too_many(session: AsyncSession, client: str, t: Translator) -> web.Response | None:
    failures = await sessions.recent_failures(session, client, utcnow())
    if len(failures) < sessions.FAILURE_LIMIT:
        return None
    log.info("workspace: sign-in refused for client %s: too many refused links", client)
    return _refused(t, 429, t(
        "Too many sign-in attempts from this device. Try again after {time}.",
        time=t.datetime(failures[-sessions.FAILURE_LIMIT] + sessions.FAILURE_WINDOW)))


async def _link_refused(session: AsyncSession, client: str, t: Translator) -> web.Response:
    await sessions.record_failure(session, client, utcnow())
    log.info("workspace: a wrong, expired or used sign-in link from client %s", client)
    return _refused(t, 404, t(
        "This sign-in link is wrong, has expired or was used already. Type /login to the "
        "bot for a new one."))


@public
async def login_page(request: web.Request) -> web.Response:
    """GET of a sign-in link: a button, nothing spent."""
    workspace = request.app[WORKSPACE]
    t = page_translator(request)
    client = _client(request, await _key(workspace))
    async with workspace.sessionmaker() as session, session.begin():
        refused = await _too_many(session, client, t)
        if refused is not None:
            return refused
        if await sessions.login_link_person(session, request.match_info["token"],
                                            utcnow()) is None:
            return await _link_refused(session, client, t)
    pairing = secrets.token_urlsafe(16)
    response = page(t, t("Sign in to the officials' workspace"), _paragraph(t(
        "Tap the button to sign in. The link then stops working; you stay signed in on this "
        "device for {hours} hours, or until you sign out.",
        hours=t.number(int(sessions.SESSION_LIFETIME.total_seconds() // 3600)),
    )) + _form(request.path, CSRF_FIELD, pairing, t("Sign in")))
    response.set_cookie(LOGIN_COOKIE, pairing, path=ADMIN_PATH + "/login/",
                        max_age=int(sessions.LOGIN_LINK_LIFETIME.total_seconds()),
                        httponly=True, samesite="Strict", secure=workspace.secure)
    return response


@public
async def login(request: web.Request) -> web.Response:
    """POST from the sign-in page's button: spend the link, start a session."""
    workspace = request.app[WORKSPACE]
    t = page_translator(request)
    key = await _key(workspace)
    client = _client(request, key)
    sent = str((await request.post()).get(CSRF_FIELD, ""))
    pairing = request.cookies.get(LOGIN_COOKIE, "")
    if not _same_origin(request) or not pairing or not hmac.compare_digest(sent, pairing):
        log.warning("workspace: a sign-in POST not from its own page was refused")
        return _refused(t, 403, t("This page has expired. Open the link from the chat "
                                  "again."))
    now = utcnow()
    async with workspace.sessionmaker() as session, session.begin():
        refused = await _too_many(session, client, t)
        if refused is not None:
            return refused
        person_id = await sessions.spend_login_link(session, request.match_info["token"], now)
        if person_id is None:
            return await _link_refused(session, client, t)
        authority = await roles.authority_of(session, person_id, workspace.settings.admin_chats)
        if not authority.holds_a_role:
            log.info("workspace: a sign-in link of a person without a role was refused")
            return _refused(t, 403, t("You no longer hold a role in the officials' "
                                      "workspace."))
        token = await sessions.start_session(session, person_id, now)
        await audit.record(session, Actor(Via.WEB, person_id, authority.role),
                           AuditAction.SESSION_STARTED, now)
    log.info("workspace: a session started")
    response = web.Response(status=303, headers={"Location": ADMIN_PATH + "/"})
    response.set_cookie(SESSION_COOKIE, _signed_cookie(key, token), path=ADMIN_PATH,
                        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
                        httponly=True, samesite="Lax", secure=workspace.secure)
    response.del_cookie(LOGIN_COOKIE, path=ADMIN_PATH + "/login/")
    return response


async def home(request: web.Request) -> web.Response:
    """Who is signed in, and the sign-out button (the workspace's pages take over here)."""
    t = page_translator(request)
    who = signed_in(request)
    held = "".join(f"<li>{html.escape(grant_words(grant, t))}</li>"
                   for grant in sorted(who.authority.grants))
    return page(t, t("Ý kiến: officials' workspace"),
                _paragraph(t("You are signed in as:")) + f"<ul>{held}</ul>"
                + _form(ADMIN_PATH + "/logout", CSRF_FIELD, csrf_token(request), t("Sign out")))


async def logout(request: web.Request) -> web.Response:
    workspace = request.app[WORKSPACE]
    who = signed_in(request)
    now = utcnow()
    async with workspace.sessionmaker() as session, session.begin():
        if await sessions.end_session(session, who.token):
            await audit.record(session, Actor(Via.WEB, who.person_id, who.authority.role),
                               AuditAction.SESSION_ENDED, now, detail="sign-out")
    t = page_translator(request)
    response = page(t, t("Signed out"), _paragraph(t(
        "You are signed out. To sign in again, type /login to the bot.")))
    response.del_cookie(SESSION_COOKIE, path=ADMIN_PATH)
    return response


def admin_app(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
              routes: Sequence[web.RouteDef] = ()) -> web.Application:
    """The workspace, to mount at ADMIN_PATH: the sign-in routes, `routes`, and a home page
    unless `routes` has one."""
    app = web.Application(middlewares=[_signed_in_only])
    app[WORKSPACE] = WorkspaceContext(sessionmaker, settings)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get(LOGIN_ROUTE, login_page)
    app.router.add_post(LOGIN_ROUTE, login)
    app.router.add_post("/logout", logout)
    app.router.add_routes(routes)
    if not any(isinstance(route, web.RouteDef) and route.path == "/" for route in routes):
        app.router.add_get("/", home)
    return app
