"""`ykien serve` in the test's own event loop, for as long as a `with` block lasts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.config import Settings
from bot.web.server import serve

STOP_WITHIN = 30.0  # seconds the server may take to stop


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings, backlog: int | None = None, **options: Any
) -> AsyncIterator[str]:
    """Start `serve()` on a free port of 127.0.0.1; its address (http://host:port) once it
    listens (its webhooks registered). What stops it from starting is raised here; `options`
    go to serve() as they are."""
    stop = asyncio.Event()
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(settings, "127.0.0.1", 0, stop, on_listening=listening.set_result, backlog=backlog,
              **options)
    )
    try:
        done, _ = await asyncio.wait([listening, task], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it
        yield listening.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=STOP_WITHIN)
