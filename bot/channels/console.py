"""The console channel: the same conversation in a terminal, one line of input at a time.

Buttons appear as numbered lines (see handlers.numbering for how numbers are given and read);
typing the number or the label presses one. Reading standard input line by line makes it
scriptable: `printf '/start\\n1\\n' | ykien console`.

A console is one person's chat: it delivers the messages queued for its own user and leaves
every other recipient's messages queued for their own console (or channel).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.channels.pacing import ChannelLimiter
from bot.service import ChatService
from handlers.capabilities import CONSOLE
from handlers.events import Document, Incoming, Kind, LinkedPicture, Outgoing, Reply

if TYPE_CHECKING:  # the worker is handed in by whoever runs the console (bot/cli/run.py)
    from bot.sending.worker import DeliveryWorker

INTERACTIVE_DELIVERY_SECONDS = 2.0


def _unused(path: Path) -> Path:
    """`path`, or the first of "name (2).ext", "name (3).ext"… that does not exist: a file
    already there (an earlier export, someone else's) is never written over."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
    return candidate


class _Lines:
    """The lines of a text stream, read by a daemon thread of their own. A read waiting for
    the keyboard must not keep the process from ending on Ctrl-C: in asyncio's executor
    (`asyncio.to_thread`) it did, until Enter was pressed, as the executor's threads are
    waited for at exit."""

    def __init__(self, stream: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | Exception] = asyncio.Queue()
        threading.Thread(target=self._read, args=(stream,), name="console input",
                         daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        while True:
            line: str | Exception
            try:
                line = stream.readline()
            except Exception as error:  # undecodable bytes, a closed stream: said in the loop
                line = error
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
            except RuntimeError:  # the loop is closed: the console has ended
                return
            if not isinstance(line, str) or not line:
                return

    async def next(self) -> str:
        """The next line with its newline; "" at the end of the stream."""
        line = await self._queue.get()
        if isinstance(line, Exception):
            raise line
        return line


class ConsoleChannel:
    """A text-only channel on standard input and output."""

    name = "console"
    capabilities = CONSOLE

    def __init__(
        self,
        service: ChatService,
        user_id: str = "console",
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        files_dir: Path = Path(),
    ) -> None:
        self.service = service
        self.user_id = user_id
        self.stdin = stdin
        self.stdout = stdout
        self.files_dir = files_dir
        self.limiter = ChannelLimiter(0, per_chat=False)  # a terminal has no platform limit
        self._message_ids = itertools.count(1)
        self._prompting = False  # a "> " prompt is on screen, waiting for a line

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        self.stdout.flush()

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Print a message to this console's user (the only one it is given, see `run`)."""
        if user_id != self.user_id:
            # Printing it here would mark it sent although its recipient never saw it.
            raise ValueError("a console only shows messages for its own user")
        for part in await self.service.lay_out(self.name, self.capabilities, user_id, message):
            self._show(part)
        return str(next(self._message_ids))

    def _show(self, message: Outgoing) -> None:
        if isinstance(message, Reply):
            body = message.text
        elif isinstance(message, LinkedPicture):
            body = f"{message.caption}\n[{message.url}]".strip()
        else:
            path = _unused(self.files_dir / (
                message.filename if isinstance(message, Document) else "picture.png"
            ))
            path.write_bytes(message.data)
            body = f"{message.caption}\n[{path}]".strip()
        # A broadcast arriving while the prompt waits goes below it, then the prompt again.
        before, after = ("\n", "> ") if self._prompting else ("", "")
        self.stdout.write(f"{before}{body}\n\n{after}")
        self.stdout.flush()

    async def _answer(self, line: str) -> None:
        event = Incoming(self.name, self.user_id, Kind.TEXT, text=line)
        for message in await self.service.handle(event, self.capabilities):
            self._show(message)  # laid out already
            message_id = str(next(self._message_ids))
            await self.service.sent(self.name, self.user_id, message_id, message)

    async def run(self, worker: DeliveryWorker) -> None:
        """Read lines until end of input, answering each and showing broadcasts as they come.

        Only this console's user's messages are delivered, whatever `worker` was built for.
        """
        worker = worker.for_recipient(self.user_id)
        interactive = self.stdin.isatty()
        stop = asyncio.Event()
        background = (
            asyncio.create_task(worker.run(stop, idle_seconds=INTERACTIVE_DELIVERY_SECONDS))
            if interactive
            else None
        )
        await self.service.forget_choices(self.name, self.user_id)
        lines = _Lines(self.stdin)
        try:
            await worker.run_once()
            while True:
                if interactive:
                    self.stdout.write("> ")
                    self.stdout.flush()
                self._prompting = interactive
                line = await lines.next()
                self._prompting = False
                if not line:
                    break
                if line.strip():
                    await self._answer(line.rstrip("\n"))
                if not interactive:
                    await worker.run_once()
        finally:
            stop.set()
            if background is not None:
                await background
