"""A fast fake Telegram Bot API server for benchmarks, run in its own process.

As a program:  python benchmarks/fake_bot_api.py --port 8081 [--latency-ms 50] [--rate-limit 30]
(prints "listening on http://127.0.0.1:PORT" once ready; --port 0 picks a free port).

From a benchmark (the server runs in a separate process, so it does not share the
benchmark's CPU time or event loop):

    from fake_bot_api import FakeBotApi       # with benchmarks/ on sys.path

    with FakeBotApi(latency_ms=0, rate_limit=30) as api:
        api.url           # "http://127.0.0.1:PORT" (PTB: base_url=api.base_url)
        api.reset()       # zero the counters before a measured phase
        ...send to f"{api.url}/bot{api.token}/sendMessage"...
        stats = api.stats()   # {"sent": ..., "per_second_max": ..., "rejected_429": ...}

It answers `GET|POST /bot<token>/<method>` (any token) for getMe, sendMessage,
editMessageText, answerCallbackQuery, setMyCommands, getUpdates (a long poll answers [] after
at most --poll-wait seconds), deleteWebhook, getWebhookInfo, setWebhook, with Bot-API-shaped
JSON. Parameters may come as JSON, as a form (what python-telegram-bot 22 sends: urlencoded,
every non-string value JSON-encoded), as multipart, or in the query string.

--latency-ms adds that delay to every API answer (the simulated network round trip; sends
are counted and rate-limited as they arrive, before the delay).
--rate-limit N answers 429 with `parameters.retry_after` to a sendMessage arriving when N have
already been accepted in the current one-second bucket (buckets counted from the last reset).

`GET /stats/first_replies` returns, for each chat sent to since the last reset, the
time.monotonic() of its first accepted sendMessage (the system's monotonic clock, which the
benchmark's process shares: a reply's latency is that minus when its update was posted).
`GET /stats` returns the sendMessage counters since the last `POST /stats/reset`:
  sent            sendMessage calls answered ok
  requests        sendMessage calls received (ok + 429)
  rejected_429    429s given
  per_second      accepted sendMessage per one-second bucket (list, oldest first)
  per_second_max  max of per_second
  window_max      max accepted sendMessage in any sliding 1.0 s window (stricter than buckets)
  attempts_per_second_max  max sendMessage received (accepted or not) in one bucket
  elapsed_s       seconds since the reset; first_at_s/last_at_s: first/last accepted send
A benchmark checks "never above the limit in any second" with per_second_max <= limit (and,
to be strict about bucket alignment, window_max) and rejected_429 == 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

DEFAULT_TOKEN = "123456:BENCH-token"
_INT_PARAMS = ("chat_id", "message_id")


class _Stats:
    __slots__ = ("accepted_at", "attempts", "buckets", "first_reply", "rejected", "requests",
                 "started")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()
        self.buckets: list[int] = []  # accepted sends per second since `started`
        self.attempts: list[int] = []  # received sends per second since `started`
        self.accepted_at: list[float] = []  # offsets of accepted sends, for window_max
        self.requests = 0
        self.rejected = 0
        self.first_reply: dict[str, float] = {}  # chat id: time.monotonic() of its first send

    def as_dict(self) -> dict[str, Any]:
        times = self.accepted_at
        window_max, first = 0, 0
        for last, at in enumerate(times):  # two pointers over sorted arrival offsets
            while at - times[first] >= 1.0:
                first += 1
            window_max = max(window_max, last - first + 1)
        return {
            "sent": len(times),
            "requests": self.requests,
            "rejected_429": self.rejected,
            "per_second": self.buckets,
            "per_second_max": max(self.buckets, default=0),
            "attempts_per_second_max": max(self.attempts, default=0),
            "window_max": window_max,
            "elapsed_s": round(time.monotonic() - self.started, 3),
            "first_at_s": round(times[0], 3) if times else None,
            "last_at_s": round(times[-1], 3) if times else None,
        }


def _bump(buckets: list[int], index: int) -> int:
    if index >= len(buckets):
        buckets.extend([0] * (index + 1 - len(buckets)))
    buckets[index] += 1
    return buckets[index]


def make_app(
    *, latency_ms: float = 0.0, rate_limit: int = 0, poll_wait: float = 0.5
) -> web.Application:
    """The fake's aiohttp application (in-process use is for tests of the fake itself)."""
    latency = latency_ms / 1000.0
    stats = _Stats()
    message_ids = iter(range(1, 1 << 62))
    bot_user = {
        "id": 123456,
        "is_bot": True,
        "first_name": "Bench",
        "username": "ykien_bench_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }
    true = {"ok": True, "result": True}
    webhook = {"url": ""}  # setWebhook / deleteWebhook change it; getWebhookInfo shows it

    async def params_of(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query) if request.query_string else {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.read()
                if body:
                    params.update(json.loads(body))
            elif ctype == "application/x-www-form-urlencoded":
                text = (await request.read()).decode()
                params.update(parse_qsl(text, keep_blank_values=True))
            elif ctype.startswith("multipart/"):
                form = await request.post()
                params.update((k, v) for k, v in form.items() if isinstance(v, str))
        for name in _INT_PARAMS:
            value = params.get(name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    params[name] = int(value)
        return params

    def message(params: dict[str, Any], message_id: int) -> dict[str, Any]:
        return {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": params.get("chat_id", 0), "type": "private"},
                "text": params.get("text", ""),
            },
        }

    async def send_message(params: dict[str, Any]) -> web.Response:
        offset = time.monotonic() - stats.started
        second = int(offset)
        stats.requests += 1
        _bump(stats.attempts, second)
        if rate_limit and second < len(stats.buckets) and stats.buckets[second] >= rate_limit:
            stats.rejected += 1
            retry_after = 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        _bump(stats.buckets, second)
        stats.accepted_at.append(offset)
        stats.first_reply.setdefault(str(params.get("chat_id", "")), time.monotonic())
        return web.json_response(message(params, next(message_ids)))

    async def get_updates(params: dict[str, Any]) -> web.Response:
        try:
            timeout = float(params.get("timeout", 0) or 0)
        except ValueError:
            timeout = 0.0
        if timeout > 0:
            await asyncio.sleep(min(timeout, poll_wait))
        return web.json_response({"ok": True, "result": []})

    simple: dict[str, Any] = {
        "getme": {"ok": True, "result": bot_user},
        "answercallbackquery": true,
        "setmycommands": true,
        "close": true,
        "logout": true,
    }

    async def dispatch(request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        params = await params_of(request)
        # Answer first (a send is counted, and the rate limit applied, as it arrives), then
        # hold the answer for the simulated round trip.
        if method == "sendmessage":
            response = await send_message(params)
        elif method == "editmessagetext":
            response = web.json_response(message(params, params.get("message_id", 1)))
        elif method == "getupdates":
            response = await get_updates(params)
        elif method in ("setwebhook", "deletewebhook"):
            webhook["url"] = str(params.get("url", "")) if method == "setwebhook" else ""
            response = web.json_response(true)
        elif method == "getwebhookinfo":
            info = {"url": webhook["url"], "has_custom_certificate": False}
            response = web.json_response(
                {"ok": True, "result": {**info, "pending_update_count": 0}}
            )
        elif method in simple:
            response = web.json_response(simple[method])
        else:
            response = web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        if latency:
            await asyncio.sleep(latency)
        return response

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats.as_dict())

    async def get_first_replies(request: web.Request) -> web.Response:
        return web.json_response(stats.first_reply)

    async def reset_stats(request: web.Request) -> web.Response:
        stats.reset()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/bot{token}/{method}", dispatch)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/stats/first_replies", get_first_replies)
    app.router.add_post("/stats/reset", reset_stats)
    return app


async def _exit_with_parent(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


async def serve(host: str, port: int, *, parent_pid: int = 0, **options: Any) -> None:
    """Serve until SIGTERM or SIGINT (or until process `parent_pid`, if given, is no longer
    our parent); print the address once listening."""
    runner = web.AppRunner(make_app(**options), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"listening on http://{bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_exit_with_parent(parent_pid, stop)) if parent_pid else None
    await stop.wait()
    if watch is not None:
        watch.cancel()
    await runner.cleanup()


class FakeBotApi:
    """Start the fake in a child process on 127.0.0.1 (a free port) and stop it on exit.

    A plain (synchronous) context manager, usable from async code too: `stats()` and
    `reset()` are short blocking HTTP calls meant for between measured phases; in a running
    event loop you may prefer `await astats()` / `await areset()`.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        rate_limit: int = 0,
        poll_wait: float = 0.5,
        token: str = DEFAULT_TOKEN,
        start_timeout: float = 15.0,
    ) -> None:
        self.token = token
        self.latency_ms, self.rate_limit, self.poll_wait = latency_ms, rate_limit, poll_wait
        self.start_timeout = start_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        """What to pass as `telegram.Bot(token, base_url=...)`."""
        return f"{self.url}/bot"

    @property
    def send_url(self) -> str:
        """The sendMessage endpoint for this token."""
        return f"{self.url}/bot{self.token}/sendMessage"

    def start(self) -> None:
        command = [
            sys.executable, os.path.abspath(__file__), "--host", "127.0.0.1", "--port", "0",
            "--latency-ms", str(self.latency_ms), "--rate-limit", str(self.rate_limit),
            "--poll-wait", str(self.poll_wait), "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self.start_timeout)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"fake Bot API did not start (got {line!r})")
        self.url = line.split()[-1]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FakeBotApi:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux /proc)."""
        if self._process is None:
            return 0.0
        with open(f"/proc/{self._process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as response:
            return json.load(response)

    def first_replies(self) -> dict[str, float]:
        """Each chat's first accepted sendMessage since the reset, as time.monotonic()."""
        with urllib.request.urlopen(f"{self.url}/stats/first_replies", timeout=30) as response:
            return json.load(response)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    async def astats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.stats)

    async def areset(self) -> None:
        await asyncio.to_thread(self.reset)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 = any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="sendMessage per second before 429 (0 = none)"
    )
    parser.add_argument(
        "--poll-wait", type=float, default=0.5, help="longest wait of a getUpdates long poll"
    )
    parser.add_argument(
        "--parent-pid", type=int, default=0, help="stop when this process is no longer our parent"
    )
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            args.host,
            args.port,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            poll_wait=args.poll_wait,
            parent_pid=args.parent_pid,
        )
    )


if __name__ == "__main__":
    main()
