"""Signing in to the workspace through `ykien serve`: a sign-in link from the chat works once
and for ten minutes, opening it spends nothing (a preview robot's fetch), the button does; the
session cookie is signed, HttpOnly, SameSite=Lax (Secure on https) and lasts 12 hours in the
database, so a revoke or a sign-out holds across processes; every unsafe request needs the
session's CSRF token; refused links are rate-limited; tokens never reach a log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.config import Settings
from bot.web.auth import CSRF_FIELD, LOGIN_COOKIE, SECURITY_HEADERS, SESSION_COOKIE
from storage import roles
from storage.models import LoginLink, SignInFailure, WebSession, utcnow
from storage.roles import Role
from storage.sessions import FAILURE_LIMIT
from tests.chat import BA_DINH, CAM_TU
from tests.officials import (
    CHANNEL,
    agree,
    audit_rows,
    command_line,
    give_role,
    login_token,
    official,
    workspace_service,
    ykien,
)
from tests.web.serving import running_server

FORM_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Workspace:
    """A running `ykien serve` and the chat service of the same database."""

    url: str
    service: object
    sessionmaker: object


@pytest.fixture
async def workspace(sessionmaker, database_url) -> AsyncIterator[Workspace]:
    settings = Settings(database_url=database_url, public_url="http://ykien.test")
    async with running_server(settings) as url:
        yield Workspace(url, workspace_service(sessionmaker, public_url="http://ykien.test"),
                        sessionmaker)


def browser() -> aiohttp.ClientSession:
    # The server is at 127.0.0.1: a cookie jar refuses cookies of IP addresses unless unsafe.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(http: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientResponse:
    """Open the link, then press the page's button: the final response (after redirects)."""
    async with http.get(f"{url}/admin/login/{token}") as page:
        assert page.status == 200, await page.text()
        field = FORM_FIELD.search(await page.text())
    assert field
    async with http.post(f"{url}/admin/login/{token}", data={CSRF_FIELD: field.group(1)}) as done:
        await done.read()
        return done


async def home(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(f"{url}/admin/") as response:
        return response.status, await response.text()


async def test_a_link_opened_by_a_preview_robot_still_signs_the_official_in_once(workspace):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with aiohttp.ClientSession() as robot:  # fetches the page, presses nothing
        for _ in range(2):
            async with robot.get(f"{workspace.url}/admin/login/{token}") as page:
                assert page.status == 200
    async with browser() as http:
        signed = await sign_in(http, workspace.url, token)
        assert signed.status == 200 and signed.url.path == "/admin/"
        status, page = await home(http, workspace.url)
        assert status == 200 and "Xã Cẩm Tú — Tỉnh Thanh Hóa" in page
    async with browser() as other:  # once: the same link in another browser
        async with other.get(f"{workspace.url}/admin/login/{token}") as again:
            assert again.status == 404
        async with other.post(f"{workspace.url}/admin/login/{token}",
                              data={CSRF_FIELD: "x"}, cookies={LOGIN_COOKIE: "x"}) as again:
            assert again.status == 404
        assert (await home(other, workspace.url))[0] == 401
    rows = await audit_rows(workspace.sessionmaker)
    assert [(r.via, r.role, r.action) for r in rows] == [
        ("chat", "official", "login_link"), ("web", "official", "session_started")]
    assert rows[0].actor == rows[1].actor


async def test_an_expired_link_is_refused(workspace):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with browser() as http:
        async with http.get(f"{workspace.url}/admin/login/{token}") as page:
            field = FORM_FIELD.search(await page.text())
        async with workspace.sessionmaker() as session:
            await session.execute(update(LoginLink).values(
                expires_at=utcnow() - timedelta(seconds=1)))
            await session.commit()
        async with http.post(f"{workspace.url}/admin/login/{token}",
                             data={CSRF_FIELD: field.group(1)}) as refused:
            assert refused.status == 404
            assert "/login" in await refused.text()
        assert (await home(http, workspace.url))[0] == 401


async def test_the_session_is_the_links_person_with_their_scope_only(workspace):
    await official(workspace.service, "cam_tu", Role.OFFICIAL, f"commune:{CAM_TU}")
    await official(workspace.service, "ba_dinh", Role.STAFF, f"commune:{BA_DINH:05d}")
    token = await login_token(workspace.service, "ba_dinh")
    async with browser() as http:
        await sign_in(http, workspace.url, token)
        page = (await home(http, workspace.url))[1]
    assert "Phường Ba Đình" in page and "Cẩm Tú" not in page


async def test_a_link_of_a_person_whose_role_went_meanwhile_signs_no_one_in(workspace):
    person = await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with workspace.sessionmaker() as session:
        await roles.revoke(session, person)
        await session.commit()
    async with browser() as http:
        signed = await sign_in(http, workspace.url, token)
        assert signed.status == 403
        assert (await home(http, workspace.url))[0] == 401


async def test_the_session_cookie(sessionmaker, database_url):
    for public_url, secure in (("https://ykien.example.gov.vn", True),
                               ("http://ykien.test", False)):
        service = workspace_service(sessionmaker, public_url=public_url)
        user = f"cb-{secure}"
        await official(service, user)
        token = await login_token(service, user)
        settings = Settings(database_url=database_url, public_url=public_url)
        async with running_server(settings) as url, browser() as http:
            async with http.get(f"{url}/admin/login/{token}") as page:
                field = FORM_FIELD.search(await page.text())
            # (a Secure cookie is not sent back over http: the browser is given it here)
            async with http.post(f"{url}/admin/login/{token}", data={CSRF_FIELD: field.group(1)},
                                 cookies={LOGIN_COOKIE: field.group(1)},
                                 allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/admin/"
                cookie = next(SimpleCookie(header)[SESSION_COOKIE]
                              for header in response.headers.getall("Set-Cookie")
                              if header.startswith(SESSION_COOKIE + "="))
        assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
        assert cookie["path"] == "/admin" and cookie["max-age"] == str(12 * 3600)
        assert bool(cookie["secure"]) is secure
        assert token not in cookie.value  # a session token of its own, signed
    async with sessionmaker() as session:
        for row in (await session.scalars(select(WebSession))).all():
            assert row.expires_at - row.created_at == timedelta(hours=12)


async def test_an_expired_session_is_signed_out(workspace):
    await official(workspace.service, "cb")
    async with browser() as http:
        await sign_in(http, workspace.url, await login_token(workspace.service, "cb"))
        assert (await home(http, workspace.url))[0] == 200
        async with workspace.sessionmaker() as session:
            await session.execute(update(WebSession).values(
                expires_at=utcnow() - timedelta(seconds=1)))
            await session.commit()
        assert (await home(http, workspace.url))[0] == 401


async def test_a_forged_or_altered_cookie_signs_no_one_in(workspace):
    await official(workspace.service, "cb")
    async with browser() as http:
        await sign_in(http, workspace.url, await login_token(workspace.service, "cb"))
        value = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
    token, _, signature = value.rpartition(".")
    # The first character is changed (the last of base64 may carry only unused bits), and
    # always to another one.
    def altered(text: str) -> str:
        return ("B" if text[0] != "B" else "C") + text[1:]

    for forged in (token, f"{token}.{altered(signature)}", f"{altered(token)}.{signature}",
                   "x.y"):
        async with browser() as other, other.get(f"{workspace.url}/admin/",
                             cookies={SESSION_COOKIE: forged}) as response:
            assert response.status == 401


async def test_revoking_a_role_ends_the_session_on_every_server(workspace, database_url,
                                                                monkeypatch, tmp_path):
    await official(workspace.service, "cb")  # and staff: one of two roles is revoked below
    await give_role(workspace.sessionmaker, "cb", Role.STAFF, "province:38")
    settings = Settings(database_url=database_url, public_url="http://ykien.test")
    async with running_server(settings) as second, browser() as http:
        await sign_in(http, workspace.url, await login_token(workspace.service, "cb"))
        cookie = {SESSION_COOKIE: next(c.value for c in http.cookie_jar
                                       if c.key == SESSION_COOKIE)}
        async with http.get(f"{second}/admin/", cookies=cookie) as there:
            assert there.status == 200  # the session lives in the database, not a process
        command_line(monkeypatch, database_url, tmp_path)
        assert await ykien("role", "revoke", "--chat", f"{CHANNEL}:cb", "--role", "staff") == 0
        for url in (workspace.url, second):
            async with http.get(f"{url}/admin/", cookies=cookie) as refused:
                assert refused.status == 401
    rows = await audit_rows(workspace.sessionmaker)
    assert [(r.via, r.action, r.detail) for r in rows][-2:] == [
        ("cli", "role_revoked", "staff province:38"), ("cli", "session_ended", "revoke: 1")]


async def test_signing_out_needs_the_csrf_token_and_ends_the_session(workspace):
    await official(workspace.service, "cb")
    async with browser() as http:
        await sign_in(http, workspace.url, await login_token(workspace.service, "cb"))
        page = (await home(http, workspace.url))[1]
        csrf = FORM_FIELD.search(page).group(1)
        for refused in ({}, {CSRF_FIELD: "wrong"}, {CSRF_FIELD: csrf[:-1]}):
            async with http.post(f"{workspace.url}/admin/logout", data=refused) as response:
                assert response.status == 403
        async with http.post(f"{workspace.url}/admin/logout", data={CSRF_FIELD: csrf},
                             headers={"Origin": "https://evil.example"}) as response:
            assert response.status == 403
        assert (await home(http, workspace.url))[0] == 200  # still signed in
        async with http.post(f"{workspace.url}/admin/logout", data={CSRF_FIELD: csrf}) as out:
            assert out.status == 200
        assert (await home(http, workspace.url))[0] == 401
    async with workspace.sessionmaker() as session:
        assert (await session.scalars(select(WebSession))).all() == []
    rows = await audit_rows(workspace.sessionmaker)
    assert [(r.via, r.role, r.action, r.detail) for r in rows][-1] == (
        "web", "official", "session_ended", "sign-out")


async def test_the_sign_in_button_works_only_from_its_own_page(workspace):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with browser() as http:
        # Posted from elsewhere (a forged form): no pairing cookie, or another site's Origin.
        async with http.post(f"{workspace.url}/admin/login/{token}",
                             data={CSRF_FIELD: "anything"}) as forged:
            assert forged.status == 403
        async with http.get(f"{workspace.url}/admin/login/{token}") as page:
            field = FORM_FIELD.search(await page.text()).group(1)
        async with http.post(f"{workspace.url}/admin/login/{token}", data={CSRF_FIELD: field},
                             headers={"Origin": "https://evil.example"}) as forged:
            assert forged.status == 403
        # The link was not spent by those: the page's own button still signs in.
        async with http.post(f"{workspace.url}/admin/login/{token}",
                             data={CSRF_FIELD: field}) as signed:
            assert signed.status == 200 and signed.url.path == "/admin/"


async def test_refused_links_are_rate_limited_per_client(workspace):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with browser() as http:
        for n in range(FAILURE_LIMIT):
            async with http.get(f"{workspace.url}/admin/login/guess{n}") as guess:
                assert guess.status == 404
        async with http.get(f"{workspace.url}/admin/login/{token}") as limited:
            assert limited.status == 429
        # Behind a proxy on this host, each client counts on its own.
        async with http.get(f"{workspace.url}/admin/login/{token}",
                            headers={"X-Forwarded-For": "203.0.113.7"}) as other_client:
            assert other_client.status == 200
    async with workspace.sessionmaker() as session:
        clients = set((await session.scalars(select(SignInFailure.client))).all())
    assert len(clients) == 1 and "127.0.0.1" not in next(iter(clients))


async def test_security_headers_on_every_response(workspace):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with browser() as http:
        responses = []
        for method, path in (("GET", f"/admin/login/{token}"), ("GET", "/admin/login/wrong"),
                             ("GET", "/admin/"), ("POST", "/admin/logout")):
            async with http.request(method, workspace.url + path) as response:
                responses.append(response)
        await sign_in(http, workspace.url, token)
        async with http.get(workspace.url + "/admin/no-such-page") as response:
            responses.append(response)
    assert [r.status for r in responses] == [200, 404, 401, 401, 404]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp


async def test_tokens_never_reach_the_log(workspace, caplog):
    await official(workspace.service, "cb")
    token = await login_token(workspace.service, "cb")
    async with browser() as http:
        await sign_in(http, workspace.url, token)
        session_cookie = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
        async with http.get(f"{workspace.url}/admin/login/{token}") as spent:
            assert spent.status == 404
    logged = caplog.text
    assert "sign-in link given" in logged and "a session started" in logged
    assert token not in logged and session_cookie.split(".")[0] not in logged


async def test_a_resident_has_no_way_in(workspace):
    await agree(workspace.service, "dan")
    async with browser() as http:
        assert (await home(http, workspace.url))[0] == 401
        async with http.get(f"{workspace.url}/admin/login/anything") as guess:
            assert guess.status == 404
