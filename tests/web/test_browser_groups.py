"""The comment groups pages in a real browser (headless Chromium at a phone's width, as
tests/web/test_browser.py drives it), against `ykien web serve`: an official of Xã Cẩm Tú
groups a draft's comments and watches the page follow the background job, merges the
groups the suggestions point at, splits a comment off, and renames a group. Every page is
photographed and must fit the phone's width."""

from __future__ import annotations

import asyncio

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By

from bot.config import Settings
from storage.roles import Role
from tests.chat import CAM_TU, make_draft
from tests.grouping_data import LABELLED, add_comments
from tests.officials import login_token, official, workspace_service
from tests.web.serving import running_server
from tests.web.test_browser import (  # noqa: F401 (fixtures)
    PUBLIC_URL,
    Phone,
    chromium,
    downloads,
    screenshots,
)

pytestmark = __import__("pytest").mark.usefixtures("brisk_chats")

ROAD = ["Đường làng bị hỏng, cần sửa đường gấp", "Đề nghị sửa đường làng trước mùa mưa"]


async def test_an_official_groups_and_corrects_in_the_browser(
        sessionmaker, database_url, chromium, screenshots):  # noqa: F811
    draft = await make_draft(sessionmaker, "Giờ thu gom rác", communes=(CAM_TU,))
    await add_comments(sessionmaker, draft, [text for _point, text in LABELLED] + ROAD,
                       communes=(CAM_TU,))
    service = workspace_service(sessionmaker, public_url=PUBLIC_URL)
    await official(service, "lead", Role.OFFICIAL, f"commune:{CAM_TU}")
    token = await login_token(service, "lead")
    settings = Settings(database_url=database_url, public_url=PUBLIC_URL)
    async with running_server(settings, receive=False) as url:
        phone = Phone(chromium, url, screenshots, asyncio.get_running_loop())
        await asyncio.to_thread(_official_session, phone, token, draft.id)


def _official_session(phone: Phone, token: str, draft_id: int) -> None:
    phone.open(f"/admin/login/{token}")
    phone.press("button[type=submit]")
    phone.open(f"/admin/drafts/{draft_id}")
    phone.press(f"a[href='/admin/drafts/{draft_id}/groups']")
    assert "17 ý kiến chưa được nhóm" in phone.text()
    assert "Chưa có nhóm nào." in phone.text()
    phone.photograph("groups-before")

    # Grouping runs in the background; the page reloads itself until it is done.
    phone.press("form[action$='/groups/compute'] button")
    # Done: nothing left to group and no progress shown, so the page reloads no more and
    # what is read next is the page of the finished grouping, not one being reloaded.
    phone.wait(finished_grouping)
    text = phone.text()
    assert "10 nhóm" in text and "Nên thu gom rác vào buổi sáng!" in text
    cards = phone.driver.find_elements(By.CSS_SELECTOR, "article.group")
    assert "5 góp ý" in cards[0].text  # the largest first
    suggestion = phone.find("article.suggestion")
    # the road comments in other words, beside the road group of near-duplicates
    assert "Đường làng cần được sửa gấp" in suggestion.text
    assert suggestion.text.count("Nhóm ") == 3
    phone.photograph("groups")

    # The suggestion merges the three road groups, once the official presses it.
    phone.press("article.suggestion button")
    assert "Đã gộp các nhóm." in phone.text()
    assert "Đề nghị sửa đường làng trước mùa mưa" in phone.text()
    group_url = phone.driver.current_url.split("?")[0]
    phone.photograph("group-merged")

    # A comment split off into a group of its own, then the group renamed.
    phone.find("input[name=comment]").click()
    phone.press("#split-form button[type=submit]")
    assert "Các ý kiến đã chọn nay là một nhóm riêng." in phone.text()
    assert phone.driver.find_elements(By.CSS_SELECTOR, "article.comment")[0].text.count(
        "đặt bằng tay") == 1
    phone.open(group_url.removeprefix(phone.server))
    phone.type("#name", "Sửa đường làng")
    phone.press("form[action$='/rename'] button")
    assert phone.find("h1").text.endswith("Sửa đường làng")
    phone.photograph("group-renamed")
    phone.open(f"/admin/drafts/{draft_id}/groups")
    assert "Sửa đường làng" in phone.text() and "9 nhóm" in phone.text()  # 10 - 2 + 1
    phone.photograph("groups-after")


def finished_grouping(driver) -> bool:
    try:
        counts = driver.find_element(By.ID, "group-counts").text
        return ("0 ý kiến chưa được nhóm" in counts
                and not driver.find_elements(By.ID, "grouping-progress"))
    except (NoSuchElementException, StaleElementReferenceException):
        return False  # the page was between two loads
