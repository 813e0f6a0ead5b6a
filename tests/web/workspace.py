"""The officials' workspace under aiohttp's test server (the app from bot.web.workspace's
factory, mounted at /admin as `ykien serve` mounts it), and people signed in to it through
the chat: /login, then the link's page and its button."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.service import ChatService
from bot.web.auth import CSRF_FIELD
from bot.web.workspace import workspace_app
from handlers.officials import ADMIN_PATH
from storage.roles import Role
from tests.officials import login_token, official, workspace_service

PUBLIC_URL = "http://ykien.test"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    body: bytes = b""
    location: str = ""  # where a 303 sends the browser

    def problems(self) -> list[str]:
        """The problems shown beside the form's fields."""
        return re.findall(r'<p class="problem" id="problem-[^"]*">([^<]*)</p>', self.text)


@dataclass
class Visitor:
    """A browser's cookies on the workspace, signed in or not."""

    http: aiohttp.ClientSession
    url: str  # the server's, without /admin
    csrf: str = ""

    async def get(self, path: str, **params: str) -> Page:
        async with self.http.get(self.url + ADMIN_PATH + path, params=params,
                                 allow_redirects=False) as response:
            body = await response.read()
            return Page(response.status, body.decode(errors="replace"), response.headers, body,
                        response.headers.get("Location", ""))

    async def post(self, path: str, data: dict[str, str] | list[tuple[str, str]] | None = None,
                   *, csrf: bool = True) -> Page:
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            fields.append((CSRF_FIELD, self.csrf))
        async with self.http.post(self.url + ADMIN_PATH + path, data=fields,
                                  allow_redirects=False) as response:
            body = await response.read()
            return Page(response.status, body.decode(errors="replace"), response.headers, body,
                        response.headers.get("Location", ""))


@dataclass
class Workspace:
    url: str
    service: ChatService  # the chat, where officials type /login
    sessionmaker: async_sessionmaker[AsyncSession]
    visitors: list[Visitor] = field(default_factory=list)

    def visitor(self) -> Visitor:
        # The server is at 127.0.0.1: a cookie jar refuses an IP address's cookies unless unsafe.
        visitor = Visitor(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)),
                          self.url)
        self.visitors.append(visitor)
        return visitor

    async def sign_in(self, user: str, role: Role = Role.OFFICIAL,
                      scope: str = "commune:15148") -> Visitor:
        """A person of chat `user` given `role` in `scope`, signed in through /login."""
        await official(self.service, user, role, scope)
        return await self.sign_in_again(user)

    async def sign_in_again(self, user: str) -> Visitor:
        token = await login_token(self.service, user)
        visitor = self.visitor()
        page = await visitor.get(f"/login/{token}")
        pairing = FORM_TOKEN.search(page.text)
        assert page.status == 200 and pairing, page.text
        signed = await visitor.post(f"/login/{token}", {CSRF_FIELD: pairing.group(1)},
                                    csrf=False)
        assert signed.status == 303, signed.text
        home = await visitor.get("/")
        assert home.status == 200, home.text
        found = FORM_TOKEN.search(home.text)
        assert found
        visitor.csrf = found.group(1)
        return visitor


@contextlib.asynccontextmanager
async def workspace(sessionmaker: async_sessionmaker[AsyncSession], database_url: str,
                    **settings: object) -> AsyncIterator[Workspace]:
    """The workspace app on a test server of 127.0.0.1, as `ykien serve` mounts it."""
    configured = Settings(database_url=database_url, public_url=PUBLIC_URL, **settings)
    root = web.Application()
    root.add_subapp(ADMIN_PATH, workspace_app(sessionmaker, configured))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    place = Workspace(str(server.make_url("")).rstrip("/"),
                      workspace_service(sessionmaker, public_url=PUBLIC_URL), sessionmaker)
    try:
        yield place
    finally:
        for visitor in place.visitors:
            await visitor.http.close()
        await server.close()


async def in_english(signing_in):
    """The visitor signing in, with the pages in English."""
    visitor = await signing_in
    assert (await visitor.get("/language/en", next="/admin/")).status == 303
    return visitor
