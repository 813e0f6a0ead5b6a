"""The event loop every command runs on: uvloop's where it is installed, else asyncio's.

uvloop's loop and transports are written in C (libuv): under a burst of webhook updates,
`ykien serve` spends about a fifth less CPU on each (benchmarks/bench_ingest.py). Every
command runs on it, so that the test suite exercises the loop production uses. It is not
made for Windows, where asyncio's own loop serves (pyproject.toml installs it elsewhere
only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the fastest event loop installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
