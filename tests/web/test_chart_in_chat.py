"""/results in a Zalo chat gives the chart as well as the figures, through `ykien serve` and
the fake platforms: the Zalo OA uploads the PNG and sends it as an image message; the Zalo
Bot, whose sendPhoto takes only an address, sends a signed, expiring address of ours, which
the fake platform fetches (through the "reverse proxy" from YKIEN_PUBLIC_URL to the server).

That address is attacked too: another draft's number put in it, a changed signature, a
malformed or Unicode-digit token, an expired token, a genuinely signed token for a draft the
official may not see, and the same address after the official's role was revoked: each
gets a 4xx and no chart. Without YKIEN_PUBLIC_URL the Zalo Bot gets the figures and a line
saying why there is no chart. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from bot.channels.zalo_bot import ZaloBotChannel
from handlers.events import LinkedPicture, Reply
from handlers.officials import CHARTS_PATH
from storage import chart_links, roles
from storage.models import utcnow
from storage.roles import Grant, Role, Scope
from tests.channels.test_conformance import join
from tests.chat import BA_DINH, CAM_TU, joined, make_draft
from tests.officials import official, say, workspace_service
from tests.web.platforms import PUBLIC_URL, all_platforms

pytestmark = pytest.mark.usefixtures("brisk_chats")

PNG = b"\x89PNG\r\n\x1a\n"
OFFICIAL = "7101"


async def official_in(platforms, channel: str, sessionmaker) -> int:
    """A Cẩm Tú resident of `channel` (in English) made an official of Cẩm Tú; their person."""
    driver = platforms.driver(channel, sessionmaker)
    await join(driver, OFFICIAL)
    async with sessionmaker() as session:
        person = await roles.person_of_chat(session, (channel, OFFICIAL))
        assert person is not None
        await roles.grant(session, person, Grant(Role.OFFICIAL, Scope.parse(
            f"commune:{CAM_TU}")), utcnow())
        await session.commit()
    return person


async def test_the_zalo_oa_uploads_the_chart_and_sends_it_as_an_image(database_url,
                                                                      sessionmaker):
    async with all_platforms(database_url) as platforms:
        await official_in(platforms, "zalo", sessionmaker)
        draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU, BA_DINH))
        driver = platforms.driver("zalo", sessionmaker)
        await driver.text(OFFICIAL, f"/results {draft.id}")
        figures = await driver.expect(OFFICIAL, "Reached")
        fake = platforms.zalo
        await fake.wait_for(lambda: any(call.attachment_id for call in fake.messages(OFFICIAL)))
    assert f"Draft no. {draft.id}" in figures
    [upload] = [call for call in fake.calls if call.path == "/v2.0/oa/upload/image"]
    assert upload.answer["error"] == 0 and upload.headers["access_token"] in fake.access_tokens
    [image] = [call for call in fake.messages(OFFICIAL) if call.attachment_id]
    assert image.attachment_id == upload.answer["data"]["attachment_id"]
    assert image.path == "/v3.0/oa/message/cs"
    chart = fake.images[image.attachment_id]
    assert chart.startswith(PNG) and len(chart) > 10_000
    # The figures come first, then the chart.
    texts = [call for call in fake.messages(OFFICIAL) if "Reached" in call.text]
    assert fake.messages(OFFICIAL).index(texts[-1]) < fake.messages(OFFICIAL).index(image)


async def test_a_refused_upload_leaves_the_figures_and_sends_no_image(database_url,
                                                                      sessionmaker):
    async with all_platforms(database_url) as platforms:
        await official_in(platforms, "zalo", sessionmaker)
        draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU,))
        fake = platforms.zalo
        fake.fail_next(-201, path="/v2.0/oa/upload/image")  # Zalo refuses the image
        since = len(fake.calls)
        driver = platforms.driver("zalo", sessionmaker)
        await driver.text(OFFICIAL, f"/results {draft.id}")
        await driver.expect(OFFICIAL, "Reached")
        await fake.wait_for(lambda: any(call.path == "/v2.0/oa/upload/image"
                                        for call in fake.calls[since:]))
    assert not any(call.attachment_id for call in fake.calls)
    assert fake.images == {}


async def chart_address(platforms, sessionmaker, draft_id: int) -> str:
    """/results on the Zalo Bot; the address of the photo the platform was sent (fetched)."""
    fake = platforms.zalobot
    fake.proxied[PUBLIC_URL] = platforms.url  # the reverse proxy in front of the server
    since = len(fake.calls)
    await platforms.driver("zalobot", sessionmaker).text(OFFICIAL, f"/results {draft_id}")
    photo = await fake.wait_for(lambda call: call.method == "sendPhoto"
                                and call.chat_id == OFFICIAL, since=since, timeout=20)
    assert photo.ok, photo.error
    return photo.params["photo"]


async def fetch(http: aiohttp.ClientSession, server: str, address: str) -> tuple[int, bytes]:
    assert address.startswith(PUBLIC_URL + CHARTS_PATH), address
    async with http.get(server + address.removeprefix(PUBLIC_URL)) as response:
        return response.status, await response.read()


async def test_the_zalo_bot_is_sent_a_signed_chart_address_that_the_platform_fetches(
        database_url, sessionmaker):
    async with all_platforms(database_url) as platforms:
        await official_in(platforms, "zalobot", sessionmaker)
        draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU, BA_DINH))
        address = await chart_address(platforms, sessionmaker, draft.id)
        fake = platforms.zalobot
        [photo] = fake.photos_to(OFFICIAL)
        figures = fake.texts_to(OFFICIAL)[-1]
        status, again = await fetch(platforms.http, platforms.url, address)
    assert "Reached" in figures and f"Draft no. {draft.id}" in figures
    assert photo["image"].startswith(PNG) and len(photo["image"]) > 10_000
    assert fake.fetched[-1][1] == 200
    assert status == 200 and again.startswith(PNG)  # valid until it expires, not once
    # The address names the draft and nothing of the person or the chat.
    token = address.removeprefix(PUBLIC_URL + CHARTS_PATH).removesuffix(".png")
    assert OFFICIAL not in token and token.split(".")[0] == str(draft.id)


async def test_a_chart_address_changed_forged_expired_or_out_of_scope_gets_no_chart(
        database_url, sessionmaker):
    async with all_platforms(database_url) as platforms:
        person = await official_in(platforms, "zalobot", sessionmaker)
        draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU, BA_DINH))
        mine_too = await make_draft(sessionmaker, "Giờ họp chợ", (CAM_TU,))
        theirs = await make_draft(sessionmaker, "Phường Ba Đình", (BA_DINH,))
        address = await chart_address(platforms, sessionmaker, draft.id)
        base, token = address.rsplit("/", 1)
        number, rest = token.split(".", 1)
        mac = token.removesuffix(".png")[-24:]
        flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
        now = utcnow()
        async with sessionmaker() as session, session.begin():
            expired = await chart_links.chart_token(
                session, draft.id, person, "en",
                now - chart_links.CHART_LINK_LIFETIME - timedelta(seconds=1))
            out_of_scope = await chart_links.chart_token(session, theirs.id, person, "en", now)
            nobody = await chart_links.chart_token(session, draft.id, person + 1000, "en", now)
        tries = {
            "another draft's number": f"{base}/{mine_too.id}.{rest}",
            "a missing draft's number": f"{base}/99999.{rest}",
            "a changed signature": address.replace(mac, flipped),
            "no signature": f"{base}/{token.rsplit('.', 2)[0]}.png",
            "Unicode digits": f"{base}/{''.join(chr(0x0660 + int(d)) for d in number)}.{rest}",
            "not a token": f"{base}/..png",
            "expired": f"{base}/{expired}.png",
            "signed for a draft out of scope": f"{base}/{out_of_scope}.png",
            "signed for a person without a role": f"{base}/{nobody}.png",
        }
        answers = {what: await fetch(platforms.http, platforms.url, tried)
                   for what, tried in tries.items()}
        async with sessionmaker() as session:
            await roles.revoke(session, person)
            await session.commit()
        after_revoke = await fetch(platforms.http, platforms.url, address)
    statuses = {what: status for what, (status, _) in answers.items()}
    assert statuses == {what: 410 if what == "expired" else 404 for what in tries}, statuses
    assert not any(body.startswith(PNG) for _, body in answers.values())
    assert after_revoke[0] == 404 and not after_revoke[1].startswith(PNG)


async def test_without_a_public_address_the_zalo_bot_gets_the_figures_and_why_no_chart(
        sessionmaker):
    draft = await make_draft(sessionmaker, "Phí vệ sinh", (CAM_TU,))
    for public_url in ("", PUBLIC_URL):
        chat = workspace_service(sessionmaker, public_url=public_url)
        user = f"cb{len(public_url)}"
        await official(chat, user, scope=f"commune:{CAM_TU}")
        answer = await chat.handle(say(user, f"/results {draft.id}"),
                                   ZaloBotChannel.capabilities)
        if not public_url:
            assert all(isinstance(part, Reply) for part in answer)
            assert "No chart here" in joined(answer) and "YKIEN_PUBLIC_URL" in joined(answer)
            assert "Reached" in joined(answer)
        else:
            assert isinstance(answer[-1], LinkedPicture)
            assert answer[-1].url.startswith(PUBLIC_URL + CHARTS_PATH)
            assert "No chart here" not in joined(answer[:-1])
