"""What a user would write by hand instead of ykien: a minimal python-telegram-bot webhook bot
that stores each comment with one INSERT and replies, with none of ykien's guarantees (it
answers 200 before the comment is stored, so a crash loses what was acknowledged; no order
per chat, no de-duplication, no take-over). The reference of bench_ingest.py.

It follows python-telegram-bot's custom-webhook example (an aiohttp route that puts each
update on the application's queue) with concurrent updates, and SQLAlchemy's async engine.

As a program:  python benchmarks/ptb_bot.py  (environment: BENCH_DATABASE_URL, BENCH_API_URL,
BENCH_TOKEN); prints "listening on 127.0.0.1:PORT" once ready.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

TABLE = "bench_ptb_comments"


async def main() -> None:
    url = os.environ["BENCH_DATABASE_URL"]
    api = os.environ["BENCH_API_URL"].rstrip("/")
    sqlite = url.startswith("sqlite")
    engine = create_async_engine(url, connect_args={"timeout": 30} if sqlite else {})
    async with engine.begin() as connection:
        await connection.execute(text(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (chat_id BIGINT NOT NULL, "
            "update_id BIGINT NOT NULL, text TEXT NOT NULL)"))
    insert = text(f"INSERT INTO {TABLE} (chat_id, update_id, text) VALUES (:chat, :update, :text)")

    async def comment(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        async with engine.begin() as connection:
            await connection.execute(insert, {"chat": message.chat_id,
                                              "update": update.update_id, "text": message.text})
        await message.reply_text("Thank you, your comment was received.")

    application = (
        Application.builder().token(os.environ["BENCH_TOKEN"]).base_url(f"{api}/bot")
        .updater(None).concurrent_updates(True).build()
    )
    application.add_handler(MessageHandler(filters.TEXT, comment))

    async def webhook(request: web.Request) -> web.Response:
        await application.update_queue.put(
            Update.de_json(await request.json(), application.bot))
        return web.Response()

    app = web.Application()
    app.router.add_post("/{tail:.*}", webhook)
    runner = web.AppRunner(app, access_log=None)
    async with application:
        await application.start()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"listening on 127.0.0.1:{runner.addresses[0][1]}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
