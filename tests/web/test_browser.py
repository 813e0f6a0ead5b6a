"""The workspace in a real browser: Debian's headless Chromium at a phone's width (390 px),
driven by Selenium through /usr/bin/chromedriver, against `ykien serve` with Telegram behind
the fake Bot API, on SQLite and PostgreSQL.

An official of Xã Cẩm Tú signs in through the chat (/login, then the link), writes a draft
with a mistake, fixes it, previews it, broadcasts it and watches the progress reach the end
without reloading, reads the results and a resident's comment, downloads the XLSX and opens it
with openpyxl, and is refused another commune's draft by URL. Every page is photographed
(full length, 390 px wide) into $YKIEN_TEST_SCREENSHOTS (else the test's temporary folder).

The browser is driven from a worker thread, so the server keeps running in the test's loop;
the chat steps in between run in that loop (`Phone.run`).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import openpyxl
import pytest

from bot.config import Settings
from storage import roles
from storage.models import utcnow
from storage.roles import Grant, Role, Scope
from tests.channels.fake_telegram import FakeTelegram
from tests.chat import BA_DINH, make_draft
from tests.officials import LINK
from tests.web.serving import running_server
from tests.web.test_webhook import SECRET, Server, WebhookChat

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 390, 844  # a phone's viewport, in CSS pixels
WAIT = 30.0  # seconds a page may take to show what is awaited
PUBLIC_URL = "http://ykien.test"
OFFICIAL, RESIDENTS = 3001, (3101, 3102, 3103)
TITLE = "Dự thảo Quy định về giờ thu gom rác"

pytestmark = pytest.mark.usefixtures("brisk_chats")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):  # .ci/run installs them: missing there is a failure, not a skip
        raise RuntimeError("chromium and chromium-driver are not installed")
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                "chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402 (after the skip: only where a browser exists)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

T = TypeVar("T")


@pytest.fixture
def screenshots(request, tmp_path) -> Path:
    folder = Path(os.environ.get("YKIEN_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder = folder / request.node.callspec.id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def downloads(tmp_path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def chromium(downloads) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--lang=vi", "--no-first-run"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "intl.accept_languages": "vi"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        _phone_size(driver, HEIGHT)
        yield driver
    finally:
        driver.quit()


def _phone_size(driver: webdriver.Chrome, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True})


class Phone:
    """The official's phone, used from a worker thread."""

    def __init__(self, driver: webdriver.Chrome, server: str, screenshots: Path,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.driver, self.server, self.folder, self.loop = driver, server, screenshots, loop
        self.shots = 0

    def run(self, step: Awaitable[T]) -> T:
        """A step of the chat (or the database), in the server's loop."""
        return asyncio.run_coroutine_threadsafe(step, self.loop).result(WAIT)  # type: ignore[arg-type]

    def open(self, path: str) -> None:
        self.driver.get(self.server + path)

    def wait(self, condition: Callable[[webdriver.Chrome], Any]) -> Any:
        return WebDriverWait(self.driver, WAIT).until(condition)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def press(self, css: str) -> None:
        """Press a button (or follow a link) and wait for the next page."""
        old = self.find("html")
        self.find(css).click()
        self.wait(lambda driver: _stale(old))

    def type(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def set_value(self, css: str, value: str) -> None:
        """A date and time field: typed keys depend on the browser's locale, a value does not."""
        self.driver.execute_script("arguments[0].value = arguments[1]", self.find(css), value)

    def photograph(self, name: str) -> Path:
        """The whole page at the phone's width."""
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{name}.png"
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        _phone_size(self.driver, max(HEIGHT, int(height)))
        self.driver.save_screenshot(str(path))
        _phone_size(self.driver, HEIGHT)
        assert self.driver.execute_script("return document.documentElement.scrollWidth") \
            <= WIDTH, f"{name} is wider than the phone"
        return path


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except Exception:  # StaleElementReferenceException: the page was replaced
        return True
    return False


async def _resident(server: Server, chat_id: int) -> WebhookChat:
    chat = WebhookChat(server, chat_id)
    await chat.say("/start", "/delete")
    await chat.press("agree:vi", "Cam Tu")
    await chat.say("cẩm tú", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    await chat.press("commune:15148", "Xã Cẩm Tú — Tỉnh Thanh Hóa")
    return chat


async def _official(server: Server, sessionmaker_url: str) -> WebhookChat:
    """The commune's official: agrees in Telegram, gets the role, types /login."""
    from storage.db import open_database

    chat = WebhookChat(server, OFFICIAL)
    await chat.say("/start", "/delete")
    await chat.press("agree:vi", "Cam Tu")
    async with open_database(sessionmaker_url) as sessionmaker, sessionmaker() as session:
        person = await roles.person_of_chat(session, ("telegram", str(OFFICIAL)))
        assert person is not None
        await roles.grant(session, person, Grant(Role.OFFICIAL, Scope.parse("commune:15148")),
                          utcnow())
        await session.commit()
    return chat


async def _grant_admin(database_url: str) -> None:
    from storage.db import open_database

    async with open_database(database_url) as sessionmaker, sessionmaker() as session:
        person = await roles.person_of_chat(session, ("telegram", str(OFFICIAL)))
        assert person is not None
        await roles.grant(session, person, Grant(Role.ADMIN, Scope.parse("all")), utcnow())
        await session.commit()


async def _other_communes_draft(database_url: str) -> int:
    from storage.db import open_database

    async with open_database(database_url) as sessionmaker:
        draft = await make_draft(sessionmaker, "Dự thảo của Phường Ba Đình", (BA_DINH,))
    return draft.id


def served_settings(database_url: str, fake: FakeTelegram) -> Settings:
    """`ykien serve`'s settings with Telegram behind the fake Bot API, at no pace."""
    return Settings(
        database_url=database_url, telegram_token=fake.token, telegram_api_url=fake.url,
        telegram_webhook_secret=SECRET, public_url=PUBLIC_URL, telegram_messages_per_second=0)


async def test_an_official_works_a_draft_from_sign_in_to_the_xlsx(
        database_url, chromium, screenshots, downloads):
    async with FakeTelegram() as fake:
        settings = served_settings(database_url, fake)
        async with running_server(settings) as url, aiohttp.ClientSession() as http:
            server = Server(fake, url, http)
            residents = [await _resident(server, chat) for chat in RESIDENTS]
            official = await _official(server, database_url)
            answer = await official.say("/login", "/admin/login/")
            link = LINK.search(answer["text"])
            assert link and link.group(0).startswith(PUBLIC_URL)
            assert answer.get("link_preview_options", {}).get("is_disabled") is True
            # Held until the page shows the broadcast under way: then the script must show
            # the messages going without a reload.
            release = fake.hold(lambda call: call.method == "sendMessage"
                                and TITLE in str(call.params.get("text", "")))
            phone = Phone(chromium, url, screenshots, asyncio.get_running_loop())
            await asyncio.to_thread(
                _official_session, phone, link.group(1), fake, residents, release,
                database_url, downloads)


def _official_session(phone: Phone, token: str, fake: FakeTelegram,
                      residents: list[WebhookChat], release: asyncio.Event, database_url: str,
                      downloads: Path) -> None:
    # Signing in: the link's page has a button; pressing it starts the session.
    phone.open(f"/admin/login/{token}")
    assert "Đăng nhập" in phone.text()
    phone.photograph("sign-in")
    phone.press("button[type=submit]")
    assert phone.driver.current_url.endswith("/admin/")
    assert "Xã Cẩm Tú" in phone.text()  # signed in as the official of Cẩm Tú
    phone.photograph("drafts-empty")

    # A new draft with a mistake: no deadline. The commune is chosen already.
    phone.press("nav.tabs a[href='/admin/drafts/new']")
    assert phone.find("input[name=commune][value='15148']").is_selected()
    phone.type("#title", TITLE)
    phone.type("#issuer", "UBND xã Cẩm Tú")
    phone.type("#summary", "Thu gom rác từ 17:00 đến 19:00 hằng ngày; hộ để rác sai giờ "
                           "sẽ được nhắc nhở.")
    phone.type("#question", "Bạn có đồng ý với giờ thu gom này không?")
    phone.type("#option-0", "Đồng ý")
    phone.type("#option-1", "Đồng ý")  # twice: a second mistake
    phone.photograph("new-draft")
    phone.press("button[value=save]")
    problem = phone.find("#problem-deadline").text
    assert problem == "chưa điền", problem  # beside its field, in Vietnamese
    assert "hai lần" in phone.find("#problem-options").text
    assert phone.find("#title").get_attribute("value") == TITLE  # nothing typed is lost
    phone.photograph("new-draft-problems")

    # Fixed, then previewed as residents will see it.
    phone.set_value("#deadline", "2099-12-31T17:00")
    phone.type("#option-1", "Không đồng ý")
    phone.press("button[value=preview]")
    assert not phone.driver.find_elements(By.CSS_SELECTOR, ".problem")
    bubbles = phone.driver.find_elements(By.CSS_SELECTOR, "#preview .bubble")
    assert TITLE in bubbles[0].text and "💬 Góp ý" in bubbles[0].text  # Telegram: buttons
    assert "1. 💬 Góp ý" in bubbles[-1].text  # Zalo's bot: numbered lines
    phone.photograph("preview")
    phone.press("button[value=save]")
    assert TITLE in phone.find("h1").text
    draft_page = phone.driver.current_url
    draft_id = int(re.search(r"/drafts/(\d+)", draft_page).group(1))  # type: ignore[union-attr]

    # The first broadcast needs the confirmation that the text holds no state secret.
    phone.press("button[value=now]")
    assert "bí mật nhà nước" in phone.find("#problem-no_secrets").text
    phone.find("input[name=no_secrets]").click()
    phone.photograph("draft-before-broadcast")
    phone.press("button[value=now]")
    assert phone.find("[data-count=remaining]").text == "3"  # held at the fake platform
    phone.driver.execute_script("window.stillThisPage = true")
    phone.run(_release(release))
    phone.wait(lambda driver: driver.find_elements(By.CSS_SELECTOR, "[data-finished]"))
    assert phone.find("[data-count=sent]").text == "3"
    assert phone.find("[data-count=remaining]").text == "0"
    assert phone.driver.execute_script("return window.stillThisPage") is True  # no reload
    phone.photograph("draft-broadcast")

    # A resident comments in the chat; the official reads it and the results.
    chat = residents[0]
    phone.run(chat.press(f"comment:{draft_id}", "1.000"))
    phone.run(chat.say("Nên thu gom muộn hơn, lúc 20 giờ.", f"{draft_id}-1"))
    phone.run(residents[1].press("vote:", "Đồng ý"))
    phone.open(f"/admin/drafts/{draft_id}/results")
    assert "66,7%" in phone.text() or "66,7 %" in phone.text()  # 2 of the 3 reached took part
    phone.wait(lambda driver: driver.execute_script(
        "const chart = document.querySelector('img.chart');"
        "return chart.complete && chart.naturalWidth > 0"))
    phone.photograph("results")
    phone.open(f"/admin/drafts/{draft_id}/comments")
    assert f"{draft_id}-1" in phone.text() and "20 giờ" in phone.text()
    assert str(RESIDENTS[0]) not in phone.driver.page_source  # never the platform's id
    phone.photograph("comments")

    # The XLSX, downloaded by the browser and read back.
    phone.open(draft_page.removeprefix(phone.server))
    phone.find("button[value=xlsx]").click()
    workbook = phone.wait(lambda driver: _downloaded(downloads, ".xlsx"))
    book = openpyxl.load_workbook(workbook)
    comments = book.worksheets[1]
    assert [cell.value for cell in comments[2]][2] == f"{draft_id}-1"
    assert any("20 giờ" in str(cell.value) for cell in comments[2])  # the comment's text
    assert str(RESIDENTS[0]) not in repr([[c.value for c in row] for row in comments.rows])

    # Another commune's draft, by its address: refused, as if it did not exist.
    other = phone.run(_other_communes_draft(database_url))
    for path in (f"/admin/drafts/{other}", f"/admin/drafts/{other}/results",
                 f"/admin/drafts/{other}/comments"):
        phone.open(path)
        assert "Ba Đình" not in phone.text()
        assert "Không có dự thảo này" in phone.text(), phone.text()
    phone.photograph("other-commune-refused")

    phone.open("/admin/downloads")
    phone.photograph("downloads")
    phone.run(_grant_admin(database_url))
    phone.open("/admin/audit")
    assert "xác nhận không có bí mật nhà nước" in phone.text()
    phone.photograph("audit-log")

    # English, on request.
    phone.open(draft_page.removeprefix(phone.server))
    phone.press("a.language")
    assert "How residents will see it" in phone.text()
    phone.photograph("draft-in-english")
    phone.open(f"/admin/drafts/{draft_id}/edit")
    phone.photograph("edit-deadline-only")


async def _release(release: asyncio.Event) -> None:
    release.set()


def _downloaded(folder: Path, suffix: str) -> Path | None:
    done = [path for path in folder.iterdir() if path.suffix == suffix]
    return done[0] if done else None
