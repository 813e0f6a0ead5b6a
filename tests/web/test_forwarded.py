"""Forwarded texts and texts sent through an inline bot (issue 15, item 18): kept as the
resident's comment, marked as forwarded in the database, and the mark shown in the export
(its Forwarded column), through `ykien serve` and `ykien export` as a separate process
(started warm, tests/ykien_process.py)."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from sqlalchemy import func, select

from storage.models import Comment, Resident
from tests import ykien_process
from tests.channels.test_conformance import join, receive_draft
from tests.conftest import cli_environment
from tests.web.platforms import all_platforms
from tests.web.test_platform_updates import BOT, CHANNEL, NOW, PERSON, USER

pytestmark = pytest.mark.usefixtures("brisk_chats")


async def test_forwarded_texts_are_kept_marked_and_exported_with_the_mark(
    database_url, sessionmaker, tmp_path
):
    # Six comments in a moment: past the flood limit (tested in test_flood.py), so lifted.
    async with all_platforms(database_url, comments_per_minute=100) as platforms:
        driver = platforms.driver("telegram", sessionmaker)
        fake = platforms.telegram
        await join(driver, USER)
        title = await receive_draft(driver, USER)
        comments = [
            ("Tôi tự viết góp ý này.", {}),
            ("Ý kiến của chị tôi: nên thu gom sớm hơn.", {"forward_origin": {
                "type": "user", "sender_user": PERSON, "date": NOW - 60}}),
            ("Chuyển tiếp từ nhóm: giữ nguyên mức phí.", {"forward_origin": {
                "type": "hidden_user", "sender_user_name": "Bà Tư", "date": NOW - 60}}),
            ("Tin của kênh xã.", {"forward_origin": {
                "type": "channel", "chat": CHANNEL, "message_id": 31, "date": NOW - 60}}),
            ("Một ảnh động qua bot.", {"via_bot": BOT}),
        ]
        for text, marks in comments:
            await driver.press(USER, "💬 Comment")
            await driver.expect(USER, "1,000")
            fake.push_message(int(USER), {"text": text, **marks})
            await driver._post(USER)
            await driver.expect(USER, "Received")
        # Sent outside a draft, it is kept aside with its mark until a draft is chosen.
        fake.push_message(int(USER), {"text": "Chuyển tiếp lần nữa.", "forward_origin": {
            "type": "user", "sender_user": PERSON, "date": NOW - 60}})
        await driver._post(USER)
        await driver.expect(USER, "Which draft")
        await driver.press(USER, title[:60])
        await driver.expect(USER, "Received")
    async with sessionmaker() as session:
        stored = dict((await session.execute(
            select(Comment.text, Comment.forwarded).order_by(Comment.id))).all())
    assert stored == {"Tôi tự viết góp ý này.": False,
                      "Ý kiến của chị tôi: nên thu gom sớm hơn.": True,
                      "Chuyển tiếp từ nhóm: giữ nguyên mức phí.": True,
                      "Tin của kênh xã.": True, "Một ảnh động qua bot.": True,
                      "Chuyển tiếp lần nữa.": True}
    process = await ykien_process.start(
        ["export", "--out", "-"], env=cli_environment(database_url), cwd=tmp_path,
        stdout=ykien_process.PIPE, stderr=ykien_process.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    rows = list(csv.DictReader(io.StringIO(out.decode("utf-8-sig"))))
    marks = {row["Comment"]: row["Forwarded"] for row in rows if row["Kind"] == "comment"}
    assert marks == {text: ("yes" if forwarded else "") for text, forwarded in stored.items()}
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Resident)) == 1
