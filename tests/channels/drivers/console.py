"""The console channel, driven line by line as a piped terminal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.console import ConsoleChannel
from bot.sending.worker import DeliveryWorker
from bot.service import ChatService
from tests.channels.drivers.base import WAIT, numbered_choice


class _Lines(io.TextIOBase):
    """Standard input fed by the test, line by line (read in the console's thread)."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        try:
            return self.lines.get(timeout=WAIT * 2)
        except queue.Empty:
            return ""  # end of input: the console stops

    def isatty(self) -> bool:
        return False


class _Screen(io.TextIOBase):
    """Standard output the test reads, with a wake-up on every write."""

    def __init__(self) -> None:
        self.text = ""
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.text += text
        self.written.set()
        return len(text)


class _Terminal:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], user: str) -> None:
        self.input, self.screen = _Lines(), _Screen()
        self.channel = ConsoleChannel(
            ChatService(sessionmaker), user, self.input, self.screen  # type: ignore[arg-type]
        )
        self.task = asyncio.create_task(
            self.channel.run(DeliveryWorker(sessionmaker, {"console": self.channel}))
        )
        self.mark = 0
        self.last = ""


class ConsoleDriver:
    channel = "console"
    can_reply = False

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.terminals: dict[str, _Terminal] = {}

    def _terminal(self, user: str) -> _Terminal:
        if user not in self.terminals:
            self.terminals[user] = _Terminal(self.sessionmaker, user)
        return self.terminals[user]

    def _type(self, user: str, line: str) -> None:
        terminal = self._terminal(user)
        terminal.mark = len(terminal.screen.text)
        terminal.last = line
        terminal.input.lines.put(line + "\n")

    async def first_contact(self, user: str) -> None:
        self._type(user, "/start")

    async def text(self, user: str, text: str) -> None:
        self._type(user, text)

    async def press(self, user: str, label: str) -> None:
        self._type(user, numbered_choice(self._terminal(user).screen.text, label))

    async def reply(self, user: str, text: str, to: str) -> None:
        raise NotImplementedError("a terminal has no replies")

    async def photo(self, user: str) -> None:
        raise NotImplementedError("a terminal has no pictures")

    async def send_again(self, user: str) -> None:
        raise NotImplementedError("a terminal line is never delivered twice")

    async def expect(self, user: str, contains: str) -> str:
        terminal = self._terminal(user)
        async with asyncio.timeout(WAIT):
            while contains not in terminal.screen.text[terminal.mark:]:
                terminal.screen.written.clear()
                await terminal.screen.written.wait()
        return terminal.screen.text[terminal.mark:]

    async def deliver(self, user: str) -> None:
        # A blank line is skipped, then the queue is delivered. What arrived since the last
        # line typed counts too: the console may have delivered it after that line already.
        terminal = self._terminal(user)
        mark = terminal.mark
        self._type(user, "")
        terminal.mark = mark

    async def close(self) -> None:
        for terminal in self.terminals.values():
            terminal.input.lines.put("")  # end of input
        for terminal in self.terminals.values():
            await asyncio.wait_for(terminal.task, WAIT)


@contextlib.asynccontextmanager
async def console_driver(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[ConsoleDriver]:
    driver = ConsoleDriver(sessionmaker)
    try:
        yield driver
    finally:
        await driver.close()
