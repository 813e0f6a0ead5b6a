"""`ykien console` (and `ykien run` with no chat channel) in a real terminal: Ctrl-C ends it
at once, even while it waits for a line, as people expect of a terminal program."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest

from tests.conftest import ROOT, TEST_SECRET_KEY

BOUND = 60.0  # seconds any one wait may take before the test gives up (a failure, not a timing)


def _read_until(fd: int, wanted: bytes, seen: bytearray) -> bool:
    """Read the terminal until `wanted` appears (True) or it closes (False)."""
    deadline = time.monotonic() + BOUND
    while wanted not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{wanted!r} never appeared; the terminal showed {bytes(seen)!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other end closed (Linux: EIO)
                return False
            if not chunk:
                return False
            seen += chunk
    return True


def _exit_code(pid: int) -> int | None:
    """The program's exit code once it has ended within BOUND seconds; None if it has not."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)  # polling the child's state, not timing anything
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pseudo-terminal")
@pytest.mark.parametrize("command", [["console"], ["run"]])
def test_ctrl_c_at_the_prompt_ends_the_console_at_once(tmp_path, command):
    env = {name: value for name, value in os.environ.items() if not name.startswith("YKIEN_")}
    env.update(PYTHONPATH=str(ROOT), YKIEN_SECRET_KEY=TEST_SECRET_KEY, YKIEN_LANGUAGE="en",
               YKIEN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'ykien.db'}")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: `ykien …` on the pseudo-terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "bot", *command], env)
    seen = bytearray()
    code = None
    try:
        assert _read_until(terminal, b"> ", seen)  # the prompt: it waits for a line
        os.write(terminal, b"\x03")  # Ctrl-C, as typed
        code = _exit_code(pid)
        assert code is not None, f"still running after Ctrl-C; it showed {bytes(seen)!r}"
        assert code == 130  # the shell's code for a program ended by Ctrl-C
        _read_until(terminal, b"\xff", seen)  # the rest, until the terminal closes
        assert seen.endswith(b"^C\r\n")  # the shell's prompt goes on a line of its own
    finally:
        if code is None:  # never leave it running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
