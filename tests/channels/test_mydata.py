"""/mydata on every channel, through its public path: the summary, and the file with all of
it (the console writes it, Telegram sends it as a document, Zalo OA gives a one-time link
that `ykien serve` serves once, Zalo Bot without a public address says it all in messages).
The file is read back and compared with the database; another resident's data is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import Comment, Resident, Vote
from tests.channels.drivers.base import WAIT, ChatDriver
from tests.channels.test_conformance import CHANNELS, USER, driving, join, receive_draft

pytestmark = pytest.mark.usefixtures("brisk_chats")

OTHER = "7002"
MINE = "Nên thu gom rác lúc 18 giờ."
THEIRS = "Ý kiến riêng của người khác."
LINK = re.compile(r"https?://\S+(/mydata/[A-Za-z0-9_-]+)")
# What the file must never hold: database keys, pseudonyms (audit "P-…", exports "R-…").
FORBIDDEN_KEYS = {"id", "person_id", "resident_id", "person", "token_hash", "dedup_key"}
PSEUDONYM = re.compile(r"\b[CPR]-[0-9a-f]{12}\b")


async def take_part(driver: ChatDriver, user: str, comment: str, vote: bool) -> None:
    """Vote (on the draft just received), then comment on the draft shown again."""
    if vote:
        await driver.press(user, "🗳 Đồng ý")
        await driver.expect(user, "Recorded your vote")
        await driver.text(user, "/drafts")
        await driver.expect(user, "Comment")
    await driver.press(user, "💬 Comment")
    await driver.expect(user, "1,000")
    await driver.text(user, comment)
    await driver.expect(user, "Received")


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_of(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_of(item)}
    return set()


async def the_file(driver: ChatDriver, shown: str, tmp_path: Path) -> bytes | None:
    """The JSON file as the channel gave it; None where it gives none (no public address)."""
    if driver.channel == "console":
        written = re.search(r"\[(.+\.json)\]", shown)
        assert written, shown
        return (tmp_path / written.group(1)).read_bytes()
    if driver.channel == "telegram":
        document = await driver.fake.wait_for(  # type: ignore[attr-defined]
            lambda c: c.method == "sendDocument", timeout=WAIT)
        assert document.params["document"]["filename"].endswith(".json")
        return document.params["document"]["data"]
    if driver.channel == "zalobot":
        assert LINK.search(shown) is None
        return None
    found = LINK.search(await driver.expect(USER, "/mydata/"))
    assert found
    return await download_once(driver, found.group(1))


async def download_once(driver, path: str) -> bytes:
    """Open the link (a preview robot would: nothing spent), press its button, and find the
    link spent."""
    url = driver.url + path
    for _ in range(2):
        async with driver.http.get(url) as page:
            assert page.status == 200 and "Download my data" in await page.text()
    async with driver.http.post(url) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Disposition"].startswith("attachment;")
        assert answer.headers["Cache-Control"] == "no-store"
        data = await answer.read()
    for method in (driver.http.post, driver.http.get):
        async with method(url) as again:
            # Whose link it was is no longer known: Vietnamese, the default.
            assert again.status == 404 and "đã được dùng" in await again.text()
    return data


async def compare_with_database(driver: ChatDriver, data: bytes) -> None:
    document = json.loads(data.decode("utf-8"))
    async with driver.sessionmaker() as session:
        mine = await session.scalar(select(Resident).where(Resident.platform_id == USER))
        comments = (await session.scalars(select(Comment).where(
            Comment.resident_id == mine.id))).all()
        votes = (await session.scalars(select(Vote).where(Vote.resident_id == mine.id))).all()
    assert [(c["receipt"], c["text"]) for c in document["comments"]] == [
        (f"{c.draft_id}-{c.number}", c.text) for c in comments]
    assert [(v["draft"], v["option"]) for v in document["votes"]] == [
        (vote.draft_id, "Đồng ý") for vote in votes]
    assert [(c["channel"], c["chat_id"]) for c in document["chats"]] == [
        (driver.channel, USER)]
    assert document["commune_code"] == 15148 and document["subscribed"] is True
    assert [step["event"] for step in document["consents"]] == ["agreed"]
    assert any(m["draft"] == comments[0].draft_id and m["status"] == "sent"
               for m in document["messages"])
    text = data.decode()
    assert THEIRS not in text and OTHER not in text
    assert not PSEUDONYM.search(text)
    assert not keys_of(document) & FORBIDDEN_KEYS


@pytest.mark.parametrize("channel", CHANNELS)
async def test_mydata_gives_the_summary_and_all_of_it(channel, database_url, sessionmaker,
                                                      tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the console writes its files
    async with driving(channel, database_url, sessionmaker) as driver:
        await join(driver, USER)
        await join(driver, OTHER)
        await receive_draft(driver, USER)
        await driver.deliver(OTHER)
        await driver.expect(OTHER, "Comment")
        await take_part(driver, USER, MINE, vote=True)
        await take_part(driver, OTHER, THEIRS, vote=False)
        await driver.text(USER, "/mydata")
        shown = await driver.expect(USER, "Your data held by Ý kiến")
        shown = await driver.expect(USER, MINE)
        assert "Xã Cẩm Tú" in shown and "Đồng ý" in shown and THEIRS not in shown
        data = await the_file(driver, shown, tmp_path)
    if data is not None:
        await compare_with_database(driver, data)
