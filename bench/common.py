"""What every benchmark script shares: repeated timing with median and spread, query counting,
and a JSON record of the results that `bench/run_all.py` turns into bench/RESULTS.md.

A result is one line of the table: a name, the measured seconds over the runs (median and
min–max), optionally the floor measured in the same run (and so the ratio), the SQL queries of
one run, the peak memory, the target the issue sets and whether it is met.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Result:
    benchmark: str
    case: str
    seconds: list[float]
    floor: list[float] | None = None
    queries: int | None = None
    peak_mib: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        return self.median / statistics.median(self.floor)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["median"] = self.median
        data["ratio"] = self.ratio
        data["floor_median"] = statistics.median(self.floor) if self.floor else None
        return data


def spread(values: list[float]) -> str:
    """ "median (min–max)" in seconds, or milliseconds below one second."""
    med = statistics.median(values)
    if med < 1:
        return f"{med * 1000:.1f} ms ({min(values) * 1000:.1f}–{max(values) * 1000:.1f})"
    return f"{med:.2f} s ({min(values):.2f}–{max(values):.2f})"


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall time of `runs` calls of `fn`."""
    result = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        result.append(time.perf_counter() - started)
    return result


class QueryCounter:
    """Counts SQL statements without Django's debug cursor (which would slow the run)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def write_json(path: str | None, results: list[Result], *, meta: dict | None = None) -> None:
    """Append the results to `path` (JSON lines) when given; always print a short table."""
    for result in results:
        ratio = f" · {result.ratio:.1f}× floor" if result.ratio is not None else ""
        queries = f" · {result.queries} queries" if result.queries is not None else ""
        print(f"{result.benchmark} / {result.case}: {spread(result.seconds)}{ratio}{queries}")
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps({**result.as_dict(), **(meta or {})}) + "\n")
