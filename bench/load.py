"""Load test: 20 coordinators saving lab panels and follow-up contacts at once, on loopback.

    .venv/bin/python bench/load.py                  # 60 s, 20 coordinators, writes bench/LOAD.md
    .venv/bin/python bench/load.py --seconds 120 --coordinators 20 --no-write

Not part of the test suite (it takes minutes and measures time). It starts its own stack on
127.0.0.1 and never touches the machine's PostgreSQL or Redis: a throw-away PostgreSQL 15
cluster (initdb, port 5499), redis-server (6399), `manage.py migrate`, a cohort built through
the real services (2 sites, the coordinators with passwords, 3 baselined patients each, one
lab panel per patient, one shared patient per pair of coordinators), then gunicorn
(config.wsgi, 2 × cores workers, port 8499). Each simulated coordinator logs in through the
login page (CSRF) and loops: GET + POST a new lab panel, GET + POST a new follow-up contact,
every third round an edit of one of their panels with the version from the form, every fourth
round an edit of the panel they share with their partner at the same moment (a barrier):
exactly one of the two may win, the other must get the "changed by … after you opened it"
page. Afterwards the rows are counted (`bench.loopback.verify`): every acknowledged save
(302 after the POST) is in the database with its history row attributed to its user, no two
acknowledged edits of one record share a version, no row lacks history, the audit chain
verifies. Prints throughput, p50/p95/p99 latency per request kind and the error count,
writes them to bench/LOAD.md (section "load") and exits 1 on any mismatch or error.
Everything it started is stopped and its temporary directory removed, also on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import (  # noqa: E402 - after the path is set
    Check,
    Stack,
    latency_table,
    machine,
    outcome_counts,
    prepare_cohort,
    run_load,
    setup_django,
    update_section,
    verify,
)

LOAD_MD = Path(__file__).resolve().parent / "LOAD.md"


def error_checks(log) -> list[Check]:
    """The load's own promises: no server error, no request without an answer, no valid
    form refused."""
    status = Counter(
        "5xx" if s.status >= 500 else "no answer" if s.status == 0 else "ok" for s in log.samples
    )
    invalid = [s for s in log.saves if s.outcome == "invalid"]
    return [
        Check(
            "no 5xx and no request without an answer",
            status["5xx"] == 0 and status["no answer"] == 0,
            f"{len(log.samples)} requests: {status['5xx']} 5xx, {status['no answer']} no answer",
        ),
        Check(
            "no valid form refused",
            not invalid,
            f"{len(invalid)} refused"
            + (f"; first: {invalid[0].kind}: {invalid[0].detail}" if invalid else ""),
        ),
    ]


def summary(log, args, workers: int, cohort) -> tuple[str, dict]:
    counts = outcome_counts(log.saves)
    acked = sum(c["ack"] for c in counts.values())
    figures = {
        "saves acknowledged": acked,
        "new panels": counts["new_panel"]["ack"],
        "new contacts": counts["new_contact"]["ack"],
        "edits of own panels": counts["edit_panel"]["ack"],
        "simultaneous edits": (
            f"{counts['conflict']['ack']} won, {counts['conflict']['conflict']} shown the "
            "conflict page"
        ),
        "throughput": f"{acked / log.seconds:.1f} saves/s, {len(log.samples) / log.seconds:.1f} "
        "requests/s",
        "errors": (
            f"{sum(1 for s in log.samples if s.status >= 500)} 5xx, "
            f"{sum(1 for s in log.samples if s.status == 0)} without an answer, "
            f"{sum(c['invalid'] for c in counts.values())} valid forms refused"
        ),
    }
    patients = sum(len(c.patients) for c in cohort.coordinators) + len(cohort.pairs)
    lines = [
        f"Run {log.started_at:%Y-%m-%d %H:%M} UTC by `bench/load.py --seconds {args.seconds:g} "
        f"--coordinators {args.coordinators}`: gunicorn with {workers} sync workers on "
        f"PostgreSQL, {len(cohort.coordinators)} coordinators on {patients} patients, "
        f"{log.seconds:.0f} s in all (logins included).",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in figures.items()],
        "",
        latency_table(log.samples),
    ]
    return "\n".join(lines), figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--coordinators", type=int, default=20)
    parser.add_argument("--patients-each", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument("--timeout", type=float, default=30, help="client timeout, seconds")
    parser.add_argument("--pg-port", type=int, default=5499)
    parser.add_argument("--redis-port", type=int, default=6399)
    parser.add_argument("--port", type=int, default=8499)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/LOAD.md")
    args = parser.parse_args()

    stack = Stack(
        pg_port=args.pg_port, redis_port=args.redis_port, web_port=args.port, keep=args.keep
    )
    try:
        print(f"stack in {stack.tmp}: PostgreSQL :{args.pg_port}, Redis :{args.redis_port}")
        stack.pg_init()
        stack.redis_start()
        stack.migrate()
        setup_django(stack)
        cohort = prepare_cohort(coordinators=args.coordinators, patients_each=args.patients_each)
        stack.gunicorn_start(args.workers)
        print(f"gunicorn :{args.port} ({args.workers} workers); load for {args.seconds:g} s …")
        load_before = os.getloadavg()[0]
        log = run_load(cohort, port=args.port, seconds=args.seconds, timeout=args.timeout)
        checks = error_checks(log) + verify(log, cohort)
        text, _figures = summary(log, args, args.workers, cohort)
        text += (
            f"\n\nLoad average (1 min) of the machine, shared with other work: "
            f"{load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after it."
        )
        print(text)
        print()
        for check in checks:
            print(check.line())
        failed = [c for c in checks if not c.ok]
        if not args.no_write:
            body = "\n".join(
                [
                    "## Load test (`bench/load.py`)",
                    "",
                    f"Machine: {machine()}. Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
                    "",
                    text,
                    "",
                    "Checks after the run (rows counted in the database):",
                    "",
                    *[f"- {c.line()}" for c in checks],
                ]
            )
            update_section(LOAD_MD, "load", body)
            print(f"\nwritten to {LOAD_MD}")
        print("\nRESULT:", "FAIL" if failed else "PASS")
        return 1 if failed else 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
