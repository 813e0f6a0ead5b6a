"""The one-time download of a resident's data (/mydata on a chat app that takes no file),
at YKIEN_PUBLIC_URL/mydata/TOKEN.

As with sign-in links, a GET spends nothing (a chat app's preview robot may fetch the link):
it shows a button, whose POST spends the link and downloads the JSON file, made at that
moment. A wrong, expired or used link gets a 404 page that says so. The token never reaches
a log (the server keeps no access log).
"""

from __future__ import annotations

import html
import logging

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.web.auth import SECURITY_HEADERS, page
from handlers.i18n import Translator, translator
from handlers.mydata import MYDATA_PATH
from storage import personal_data
from storage.models import VIETNAM, Resident, utcnow

log = logging.getLogger(__name__)

ROUTE = MYDATA_PATH + "/{token}"


async def _language(session: AsyncSession, person_id: int) -> str | None:
    return await session.scalar(select(Resident.language)
                                .where(Resident.person_id == person_id).limit(1))


def _secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _refused(t: Translator) -> web.Response:
    return _secured(page(t, t("Ý kiến: your data"), "<p>{}</p>".format(html.escape(t(
        "This link is wrong, has expired or was used already. Type /mydata to the bot for "
        "a new one."))), status=404))


def mydata_routes(sessionmaker: async_sessionmaker[AsyncSession]) -> list[web.RouteDef]:
    """The download page and its button, for `ykien serve`'s application."""

    async def show(request: web.Request) -> web.Response:
        now = utcnow()
        async with sessionmaker() as session:
            person_id = await personal_data.link_person(session, request.match_info["token"],
                                                        now)
            language = await _language(session, person_id) if person_id is not None else None
        t = translator(language)
        if person_id is None:
            log.info("mydata: a wrong, expired or used link was opened")
            return _refused(t)
        body = "<p>{}</p><form method=\"post\" action=\"{}\"><button type=\"submit\">{}</button>" \
               "</form>".format(
                   html.escape(t("Tap the button to download all the data Ý kiến holds about "
                                 "you, as a JSON file. The link then stops working.")),
                   html.escape(request.path), html.escape(t("Download my data")))
        return _secured(page(t, t("Ý kiến: your data"), body))

    async def download(request: web.Request) -> web.Response:
        now = utcnow()
        async with sessionmaker() as session, session.begin():
            person_id = await personal_data.spend_link(session, request.match_info["token"],
                                                       now)
            data = (await personal_data.collect(session, person_id)
                    if person_id is not None else None)
            language = await _language(session, person_id) if person_id is not None else None
        if data is None:
            log.info("mydata: a wrong, expired or used link was posted")
            return _refused(translator(language))
        log.info("mydata: a resident downloaded their data")
        name = f"ykien-mydata-{now.astimezone(VIETNAM):%Y%m%d-%H%M}.json"
        return _secured(web.Response(
            body=personal_data.as_json(data, now), content_type="application/json",
            charset="utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    return [web.get(ROUTE, show), web.post(ROUTE, download)]
