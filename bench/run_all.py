"""Run every benchmark on scratch PostgreSQL databases and write bench/RESULTS.md.

    .venv/bin/python bench/run_all.py            # the issue's sizes (10,000 patients; slow)
    .venv/bin/python bench/run_all.py --quick    # small sizes, to check the scripts run
    .venv/bin/python bench/run_all.py --only pages,analytics

Each benchmark script runs in its own process against its own database
(`plm_bench_<name>`, created and dropped here; the server is PGHOST/PGPORT/PGUSER or
127.0.0.1:5432/postgres), appends its results to var/bench/results.jsonl, and this script
turns them into the table of bench/RESULTS.md with the machine and the date. Not part of the
test suite: speed is measured here, never asserted in tests.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "var" / "bench" / "results.jsonl"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
}

# name → (script, full-size arguments, quick arguments)
BENCHMARKS = {
    "pages": ("pages.py", ["-n", "10000", "-r", "20"], ["-n", "500", "-r", "5"]),
    "analytics": ("analytics.py", ["-n", "10000", "-r", "5"], ["-n", "500", "-r", "2"]),
    "exports": ("exports.py", ["-n", "1000000", "-p", "10000", "-r", "3"],
                ["-n", "20000", "-p", "500", "-r", "2"]),
    "exports_1k": ("exports.py", ["-n", "100000", "-p", "1000", "-r", "3"],
                   ["-n", "5000", "-p", "100", "-r", "2"]),
    "calendar": ("calendar_refresh.py", ["-n", "10000"], ["-n", "500"]),
    "import": ("import_retrospective.py", ["-n", "10000"], ["-n", "500"]),
}  # fmt: skip


def _psql(*args: str) -> None:
    subprocess.run(
        ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-q", *args],
        check=True,
        capture_output=True,
    )


def run(name: str, quick: bool) -> bool:
    script, full, small = BENCHMARKS[name]
    database = f"plm_bench_{name}"
    _psql("-c", f"DROP DATABASE IF EXISTS {database}")
    _psql("-c", f"CREATE DATABASE {database}")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
    }
    command = [sys.executable, str(ROOT / "bench" / script), *(small if quick else full)]
    command += ["--json", str(RESULTS_JSON)]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, env=env, cwd=ROOT)
    finally:
        _psql("-c", f"DROP DATABASE IF EXISTS {database}")
    print(f"== {name}: exit {completed.returncode} in {time.perf_counter() - started:.0f} s")
    return completed.returncode == 0


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        server = subprocess.run(
            ["psql", "-h", PG["host"], "-U", PG["user"], "-tAc", "SHOW server_version"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        server = "?"
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"PostgreSQL {server}, {platform.system()} {platform.release()}"
    )


def write_markdown(results: list[dict], *, quick: bool, failed: list[str]) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `bench/run_all.py{' --quick' if quick else ''}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
        "Times are the median over the runs with the spread (min–max) in brackets; the floor",
        "is measured in the same run; ratio = median / floor median.",
        "",
        "| benchmark | case | median (min–max) | floor | ratio | queries | peak MiB | target "
        "| met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        seconds = r["seconds"]
        spread = f"{_fmt(r['median'])} ({_fmt(min(seconds))}–{_fmt(max(seconds))})"
        ratio = f"{r['ratio']:.1f}×" if r.get("ratio") is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
        lines.append(
            f"| {r['benchmark']} | {r['case']} | {spread} | {_fmt(r.get('floor_median'))} | "
            f"{ratio} | {r.get('queries') if r.get('queries') is not None else '—'} | "
            f"{r['peak_mib'] if r.get('peak_mib') is not None else '—'} | {r.get('target', '')} "
            f"| {met} |"
        )
    if failed:
        lines += ["", f"Failed to run: {', '.join(failed)}."]
    RESULTS_MD.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS_MD.relative_to(ROOT)}")


def _read() -> list[dict]:
    if not RESULTS_JSON.exists():
        return []
    return [json.loads(line) for line in RESULTS_JSON.read_text().splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    # Results of the benchmarks not run now stay (with --only, a partial run updates the table).
    kept = [r for r in _read() if r.get("run") not in names] if args.only else []
    failed = []
    results = list(kept)
    for name in names:
        RESULTS_JSON.unlink(missing_ok=True)
        if not run(name, args.quick):
            failed.append(name)
        results += [{**r, "run": name} for r in _read()]
    order = {name: index for index, name in enumerate(BENCHMARKS)}
    results.sort(key=lambda r: order.get(r.get("run"), len(order)))
    RESULTS_JSON.write_text("".join(json.dumps(r) + "\n" for r in results), encoding="utf-8")
    write_markdown(results, quick=args.quick, failed=failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
