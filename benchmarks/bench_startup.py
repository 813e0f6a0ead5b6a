"""Start-up of the short commands, as a user runs them: wall time of the `ykien` console
script in a fresh process each time, the caches (commune index, catalogue) warm.

    python benchmarks/bench_startup.py [--runs 15] [--compare-with ../main]

Prints the median and the fastest run of each command, with a bare `python -c pass` for the
interpreter's own share, and writes the same report to benchmarks/results/startup.txt.
--compare-with runs the same script with another checkout's code first on PYTHONPATH (say,
before a change), the runs of both interleaved so that a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import environment, write_results

COMMANDS = (
    ("ykien communes search \"phu my\"", ["communes", "search", "phu my"]),
    ("ykien --help", ["--help"]),
    ("ykien communes search --help", ["communes", "search", "--help"]),
)
TARGET_SECONDS = 0.3  # issue 21, part 4


def ykien_script() -> str:
    """The console script installed beside this interpreter (what a user types)."""
    beside = Path(sys.executable).parent / "ykien"
    found = str(beside) if beside.exists() else shutil.which("ykien")
    if found is None:
        sys.exit("No `ykien` console script: pip install -e . first.")
    return found


def wall_times(argv: list[str], runs: int, checkouts: list[str | None]) -> list[list[float]]:
    """Per checkout (None: the installed code), the wall time of each run."""
    times: list[list[float]] = [[] for _ in checkouts]
    base = {k: v for k, v in os.environ.items() if not k.startswith("YKIEN_")}
    for _ in range(runs + 1):  # the first run warms the caches and the page cache
        for checkout, measured in zip(checkouts, times, strict=True):
            env = base if checkout is None else {**base, "PYTHONPATH": checkout}
            started = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            measured.append(time.perf_counter() - started)
    return [measured[1:] for measured in times]


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s, fastest {min(times):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare-with", metavar="CHECKOUT",
                        help="another checkout of ykien, to time its code too")
    options = parser.parse_args()
    script = ykien_script()
    checkouts: list[str | None] = [None]
    if options.compare_with:
        checkouts.insert(0, str(Path(options.compare_with).resolve()))
    lines = [f"# {environment('pydantic', 'pydantic-settings', 'babel')}",
             f"# {options.runs} runs each, wall time of a fresh process, caches warm; "
             f"target under {TARGET_SECONDS} s"]
    if options.compare_with:
        lines.append(f"# 'before': the code of {checkouts[0]}")
    rows = [("python -c pass", [sys.executable, "-c", "pass"])]
    rows += [(label, [script, *argv]) for label, argv in COMMANDS]
    for label, argv in rows:
        measured = wall_times(argv, options.runs, checkouts if argv[0] == script else [None])
        line = f"{label:<34} {summary(measured[-1])}"
        if len(measured) > 1:
            line += f" (before: {summary(measured[0])})"
        print(line, flush=True)
        lines.append(line)
    print(f"written to {write_results('startup.txt', lines)}")


if __name__ == "__main__":
    main()
