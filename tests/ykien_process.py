"""`ykien …` as a separate process, started warm: what `python -m bot …` does, for the tests.

A fresh interpreter spends most of a short command (0.7 of 0.8 s of CPU here) importing
SQLAlchemy, Alembic, pydantic and the rest, and the command-line tests start hundreds of
them. So one server process per test process imports those libraries (never ykien's own
code) and forks a child for each command; the child takes the command's environment,
working directory, arguments and standard streams (the test's own pipe ends, passed over a
Unix socket), puts `sys.path` as `python -m bot` from that directory would, and runs the
`bot` package as `__main__`: ykien's code is imported afresh in every child, after its
environment is set. Exit codes, signals (SIGTERM, kill -9), output and tracebacks are the
process's own; only its parent is the server rather than the test, so the exit status comes
back over the socket.

`run` is `subprocess.run` for `ykien`; `start` is `asyncio.create_subprocess_exec`, with
the methods the tests use. YKIEN_TEST_COLD_START=1 makes both start `python -m bot` as
before (test_cli.py compares the two).

Run as a script, this file is the server.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import io
import json
import locale
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

COLD = os.environ.get("YKIEN_TEST_COLD_START", "") not in ("", "0")
PROJECT = ("bot", "handlers", "storage", "locales", "tests")  # never imported by the server
DEVNULL = subprocess.DEVNULL
PIPE = subprocess.PIPE
_MAX_REQUEST = 1 << 20


# ---- the test's side ----------------------------------------------------------------------


class _Server:
    """The server process of this test process, started at first use."""

    _lock = threading.Lock()
    _instance: _Server | None = None

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="ykien-warm-")
        self.address = os.path.join(self.folder, "socket")
        # Its standard input stays open while this process lives: at EOF it leaves. It says
        # "ready" on its standard output once it listens.
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.address], stdin=PIPE, stdout=PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("YKIEN_")},
        )
        atexit.register(self.close)
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as ready:
            ready.register(self.process.stdout, selectors.EVENT_READ)
            said = self.process.stdout.readline() if ready.select(120) else b""
        self.process.stdout.close()
        if said != b"ready\n":
            self.process.kill()
            raise RuntimeError(f"the warm ykien server did not start ({said!r})")

    def close(self) -> None:
        """Close its standard input: it leaves (the children it started go on)."""
        if self.process.stdin is None or self.process.stdin.closed:
            return
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for name in ("socket", "socket.new"):
            Path(self.folder, name).unlink(missing_ok=True)
        os.rmdir(self.folder)

    @classmethod
    def get(cls) -> _Server:
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def spawn(self, args: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike,
              fds: Sequence[int]) -> tuple[socket.socket, int]:
        """Ask for a child with these standard streams; the connection and its pid."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.connect(self.address)
        request = json.dumps({"args": list(args), "env": dict(env), "cwd": os.fspath(cwd)})
        socket.send_fds(connection, [request.encode()], list(fds))
        answer = connection.recv(64)
        if not answer:
            connection.close()
            raise RuntimeError("the warm ykien server refused to start the command")
        return connection, int(answer)


def _stream(kind: Any, mode: str) -> tuple[int, int | None]:
    """(the fd the child gets, our end of the pipe or None) for DEVNULL, PIPE or a file."""
    if kind == DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None
    if kind == PIPE:
        read, write = os.pipe()
        return (read, write) if mode == "r" else (write, read)
    if kind is None:  # inherit: the test process's own stream
        return os.dup({"r": 0, "w": 1}[mode]), None
    if isinstance(kind, int):
        return os.dup(kind), None
    return os.dup(kind.fileno()), None


class _Pipes:
    """The child's three fds and our ends: created, then passed and closed on our side."""

    def __init__(self, stdin: Any, stdout: Any, stderr: Any) -> None:
        self.child: list[int] = []
        self.ours: list[int | None] = []
        for kind, mode in ((stdin, "r"), (stdout, "w")):
            child, ours = _stream(kind, mode)
            self.child.append(child)
            self.ours.append(ours)
        if stderr == subprocess.STDOUT:
            self.child.append(os.dup(self.child[1]))
            self.ours.append(None)
        else:
            child, ours = _stream(stderr, "w")
            self.child.append(child)
            self.ours.append(ours)

    def passed(self) -> None:
        for fd in self.child:
            os.close(fd)
        self.child = []

    def close_ours(self) -> None:
        for fd in self.ours:
            if fd is not None:
                os.close(fd)
        self.ours = [None, None, None]


class WarmPopen:
    """A `subprocess.Popen` for `ykien`, started by the warm server (see the module)."""

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str],
                 cwd: str | os.PathLike, stdin: Any = DEVNULL, stdout: Any = None,
                 stderr: Any = None, text: bool = False) -> None:
        self.args = list(args)
        pipes = _Pipes(stdin, stdout, stderr)
        try:
            self._connection, self.pid = _Server.get().spawn(self.args, env, cwd, pipes.child)
        except BaseException:
            pipes.passed()
            pipes.close_ours()
            raise
        pipes.passed()
        self.returncode: int | None = None
        # As subprocess's text mode: the locale's encoding, universal newlines on reading.
        encoding = {"encoding": locale.getpreferredencoding(False)} if text else {}
        opened: list[IO[Any] | None] = [
            None if fd is None else open(fd, mode, **encoding)  # noqa: SIM115
            for fd, mode in zip(pipes.ours, ("w" if text else "wb", "r" if text else "rb",
                                              "r" if text else "rb"), strict=True)
        ]
        self.stdin, self.stdout, self.stderr = opened

    def ended(self, answer: bytes) -> int:
        """The server sent the exit status (an empty answer: it went away)."""
        self._connection.close()
        if not answer:
            raise RuntimeError("the warm ykien server went away before the command ended")
        self.returncode = int(answer)
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None:
            self._connection.setblocking(False)
            try:
                answer = self._connection.recv(64)
            except BlockingIOError:
                return None
            finally:
                self._connection.setblocking(True)
            self.ended(answer)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._connection.settimeout(timeout)
            try:
                answer = self._connection.recv(64)
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            finally:
                self._connection.settimeout(None)
            self.ended(answer)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """As Popen.communicate: feed stdin, read stdout and stderr to their end, wait."""
        read: dict[str, Any] = {}

        def drain(name: str, stream: IO[Any]) -> None:
            read[name] = stream.read()
            stream.close()

        readers = [threading.Thread(target=drain, args=(name, stream), daemon=True)
                   for name, stream in (("out", self.stdout), ("err", self.stderr))
                   if stream is not None]
        for reader in readers:
            reader.start()
        if self.stdin is not None:
            try:
                if input:
                    self.stdin.write(input)
                self.stdin.close()
            except BrokenPipeError:
                pass
        for reader in readers:
            reader.join(timeout)
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(timeout)
        return read.get("out"), read.get("err")

    def __enter__(self) -> WarmPopen:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


def command(args: Sequence[str]) -> list[str]:
    """The command line `ykien ARGS` runs as when started cold."""
    return [sys.executable, "-m", "bot", *args]


def run(args: Sequence[str], *, env: Mapping[str, str], cwd: str | os.PathLike,
        input: str | bytes | None = None, text: bool = False, timeout: float | None = None,
        check: bool = False) -> subprocess.CompletedProcess:
    """`subprocess.run(["python", "-m", "bot", *args], capture_output=True, ...)`."""
    if COLD:
        return subprocess.run(command(args), input=input, capture_output=True, text=text,
                              env=dict(env), cwd=cwd, timeout=timeout, check=check)
    process = WarmPopen(args, env=env, cwd=cwd, stdin=DEVNULL if input is None else PIPE,
                        stdout=PIPE, stderr=PIPE, text=text)
    try:
        stdout, stderr = process.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    done = subprocess.CompletedProcess(command(args), process.wait(), stdout, stderr)
    if check:
        done.check_returncode()
    return done


class WarmProcess:
    """An `asyncio.subprocess.Process` for `ykien`, started by the warm server."""

    def __init__(self, popen: WarmPopen, stdout: asyncio.StreamReader | None,
                 stderr: asyncio.StreamReader | None) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin = None
        self.stdout = stdout
        self.stderr = stderr
        self._status: asyncio.Future[int] | None = None

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def wait(self) -> int:
        if self._status is None:
            self._status = asyncio.ensure_future(self._ended())
        return await asyncio.shield(self._status)

    async def _ended(self) -> int:
        popen = self._popen
        if popen.returncode is not None:
            return popen.returncode
        connection = popen._connection
        connection.setblocking(False)
        return popen.ended(await asyncio.get_running_loop().sock_recv(connection, 64))

    def send_signal(self, number: int) -> None:
        if self._popen.returncode is None:
            os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def communicate(self, input: bytes | None = None) -> tuple[bytes | None, bytes | None]:
        assert input is None, "standard input is not a pipe here"

        async def all_of(stream: asyncio.StreamReader | None) -> bytes | None:
            return None if stream is None else await stream.read()

        stdout, stderr = await asyncio.gather(all_of(self.stdout), all_of(self.stderr))
        await self.wait()
        return stdout, stderr


Process = asyncio.subprocess.Process | WarmProcess


async def start(args: Sequence[str], *, env: Mapping[str, str], cwd: str | os.PathLike,
                stdin: Any = None, stdout: Any = None, stderr: Any = None) -> Process:
    """`asyncio.create_subprocess_exec(python, "-m", "bot", *args, ...)`; standard input
    is not a pipe (DEVNULL when not given: a warm child must not read the test's own)."""
    if COLD:
        return await asyncio.create_subprocess_exec(
            *command(args), env=dict(env), cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)
    assert stdin in (None, DEVNULL), "standard input is not a pipe here"
    # In a thread: the first command of a test process waits for the server to start.
    popen = await asyncio.to_thread(
        WarmPopen, args, env=env, cwd=cwd, stdin=DEVNULL, stdout=stdout, stderr=stderr)
    loop = asyncio.get_running_loop()
    readers: list[asyncio.StreamReader | None] = []
    for stream in (popen.stdout, popen.stderr):
        if stream is None:
            readers.append(None)
            continue
        reader = asyncio.StreamReader(loop=loop)
        await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r), stream)
        readers.append(reader)
    return WarmProcess(popen, *readers)


# ---- the server ----------------------------------------------------------------------------


# Imported besides what the probe below finds: what `ykien serve` and `run` use (Telegram,
# aiohttp's server) and the PostgreSQL driver, which the probe on SQLite does not reach.
ALSO_PRELOADED = ("asyncpg", "sqlalchemy.dialects.postgresql.asyncpg", "aiohttp.web",
                  "telegram.ext", "openpyxl")


def _preload() -> None:
    """Import the libraries a command uses, but nothing of ykien's own: a throwaway child
    runs `ykien draft list` on an SQLite database of its own and names the modules it
    imported; then ALSO_PRELOADED."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with contextlib.suppress(BaseException), tempfile.TemporaryDirectory() as folder:
            import runpy

            os.chdir(folder)
            os.environ.update(YKIEN_DATABASE_URL=f"sqlite+aiosqlite:///{folder}/probe.db",
                              XDG_CACHE_HOME=folder)
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            sys.argv = ["ykien", "draft", "list"]
            runpy.run_module("bot", run_name="__main__", alter_sys=True)
        with os.fdopen(write, "w") as names:
            names.write("\n".join(sys.modules))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as names:
        modules = names.read().split()
    os.waitpid(pid, 0)
    import importlib

    for name in [*modules, *ALSO_PRELOADED]:
        if name.split(".")[0] in PROJECT or name == "__main__":
            continue
        with contextlib.suppress(BaseException):  # an alias, or not importable on its own
            importlib.import_module(name)


def _standard_streams() -> None:
    """sys.stdin/stdout/stderr on fds 0-2, as a fresh interpreter sets them up."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        template = getattr(sys, name)
        write = fd != 0
        binary = open(fd, "wb" if write else "rb", closefd=False)  # noqa: SIM115
        stream = io.TextIOWrapper(
            binary, encoding=template.encoding, errors=template.errors, newline="\n",
            line_buffering=write and (fd == 2 or os.isatty(fd)),
        )
        stream.mode = "w" if write else "r"  # type: ignore[misc]
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _become(request: dict[str, Any], fds: list[int], base_path: list[str]) -> None:
    """In the child: take the command's streams, environment, directory and arguments."""
    for fd, target in zip(fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # As `python -m bot` from that directory: it first, then PYTHONPATH, then the rest.
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *extra, *base_path]
    sys.argv = ["ykien", *request["args"]]
    _standard_streams()
    import random

    random.seed()  # a fresh interpreter seeds from the system: so must each child


class _Forker:
    """Accepts requests, forks a child for each, and sends each its exit status."""

    def __init__(self, address: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(address + ".new")
        self.listener.listen(64)
        os.rename(address + ".new", address)
        print("ready", flush=True)  # now the tests may connect
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
        self.children: dict[int, socket.socket] = {}
        self.events = selectors.DefaultSelector()
        self.events.register(self.listener, selectors.EVENT_READ, self._request)
        self.events.register(self.wake_read, selectors.EVENT_READ, self._reap)
        self.events.register(sys.stdin, selectors.EVENT_READ, self._parent_left)

    def serve(self) -> tuple[dict[str, Any], list[int]]:
        """Returns only in a child, with its request and its three fds."""
        while True:
            for key, _ in self.events.select():
                child = key.data()
                if child is not None:
                    return child

    def _parent_left(self) -> None:
        sys.exit(0)  # EOF: the test process ended

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wake_read, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is not None:
                with contextlib.suppress(OSError):  # the test gave up waiting
                    connection.send(str(os.waitstatus_to_exitcode(status)).encode())
                connection.close()

    def _request(self) -> tuple[dict[str, Any], list[int]] | None:
        connection, _ = self.listener.accept()
        try:
            message, fds, _, _ = socket.recv_fds(connection, _MAX_REQUEST, 3)
            request = json.loads(message)
        except (OSError, ValueError):
            connection.close()
            return None
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.events.close()
            for open_socket in (self.listener, connection, *self.children.values()):
                open_socket.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            return request, fds
        for fd in fds:
            os.close(fd)
        self.children[pid] = connection
        connection.send(str(pid).encode())
        return None


if __name__ == "__main__":
    # sys.path[0] is this file's folder; a child puts its own working directory there.
    pythonpath = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    base_path = [p for p in sys.path[1:] if p not in pythonpath]
    _preload()
    # ykien's own modules, compiled by the first child that imports them (into __pycache__,
    # as Python does by default) and read from there by the next ones, even where
    # PYTHONDONTWRITEBYTECODE is set (as on this machine): each command compiled some 60
    # modules from source again (0.1 s of its ~0.45 s of CPU).
    sys.dont_write_bytecode = False
    # What is imported now is never collected: a child's collections, and its finalization,
    # then leave the inherited pages alone instead of copying them all (0.58 -> 0.24 s of
    # CPU for a short command here; a cold start costs 0.75 s).
    gc.freeze()
    request, fds = _Forker(sys.argv[1]).serve()
    _become(request, fds, base_path)
    del request, fds, base_path, pythonpath
    import runpy

    runpy.run_module("bot", run_name="__main__", alter_sys=True)
