"""Time storage.communes.search against its 1 ms budget, and near_misses (asked only when
search found nothing) beside it.

Run by hand from the repository root: python benchmarks/bench_communes.py
Prints one line per query and writes the same report to benchmarks/results/communes.txt.
"""

from __future__ import annotations

import platform
import sys
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a plain script, the repository root is not on sys.path.
sys.path.insert(0, str(ROOT))

from storage import communes  # noqa: E402

BUDGET_US = 1000.0
RESULTS = ROOT / "benchmarks" / "results" / "communes.txt"

# (query, province): typical inputs plus the slow paths (one letter, a kind prefix before one
# letter, substring fallback, trailing province, nothing found).
QUERIES: list[tuple[str, str | int | None]] = [
    ("cam tu", None),
    ("Cẩm Tú", None),
    ("xa cam tu", None),
    ("tan thanh", None),
    ("ba dinh", None),
    ("phuong ba dinh", None),
    ("đống đa", None),
    ("cam luong", None),
    ("vay nua", None),
    ("thi tran phong dien", None),
    ("tan thanh", "lam dong"),
    ("tan thanh", 68),
    ("cam tu thanh hoa", None),
    ("tan thanh, lam dong", None),
    ("tan", None),
    ("t", None),
    ("xa t", None),
    ("inh", None),
    ("xyzzy qwerty", None),
    ("", None),
]
# Slips that search finds nothing for: what near_misses is asked.
SLIPS = ["cam tuu", "camtuu", "ba dnh", "cam tuu thanh hoa", "nga sonn", "x" * 100]


def per_call_us(call) -> float:
    """Microseconds a call takes: best of several runs, the least disturbed by the rest of
    the machine."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    started = time.perf_counter()
    communes.provinces()  # first use loads and indexes the data
    load_ms = (time.perf_counter() - started) * 1000

    lines = [
        f"storage.communes.search, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()} on {platform.machine()}",
        f"data: {communes.DATA_SOURCE} ({communes.DATA_DATE}); first load + index {load_ms:.0f} ms",
        f"{'query':<28}{'province':<12}{'hits':>5}{'us/query':>11}{'of 1 ms':>9}",
    ]
    worst = 0.0
    for query, province in QUERIES:

        def call(query: str = query, province: str | int | None = province) -> list[communes.Match]:
            return communes.search(query, province=province)

        call()  # warm the memoised word prefixes, as a running bot would have them
        per_call = per_call_us(call)
        worst = max(worst, per_call)
        ratio = per_call / BUDGET_US
        shown = "-" if province is None else str(province)
        lines.append(f"{query!r:<28}{shown:<12}{len(call()):>5}{per_call:>11.1f}{ratio:>9.3f}")
    lines.append(f"worst: {worst:.1f} us = {worst / BUDGET_US:.3f} of the 1 ms budget")
    lines.append(f"{'near_misses':<40}{'hits':>5}{'us/query':>11}{'of 1 ms':>9}")
    communes.near_misses("cam tuu")  # the first call imports rapidfuzz
    for slip in SLIPS:
        per_call = per_call_us(lambda slip=slip: communes.near_misses(slip))
        lines.append(f"{slip[:38]!r:<40}{len(communes.near_misses(slip)):>5}{per_call:>11.1f}"
                     f"{per_call / BUDGET_US:>9.3f}")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
