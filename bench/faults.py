"""Fault tests on loopback: Redis stopped, PostgreSQL restarted, a Celery worker killed.

    .venv/bin/python bench/faults.py                 # all three scenarios (about 10 minutes)
    .venv/bin/python bench/faults.py --only a,b      # some of them
    .venv/bin/python bench/faults.py --no-write      # do not update bench/LOAD.md

Not part of the test suite. The same throw-away stack as bench/load.py (its own PostgreSQL 15
on 5499, redis-server on 6399, gunicorn on 8499; never the machine's servers), plus Celery
workers of the project's app (`python -m bench.loopback worker NAME`: config.celery.app, as
`celery -A config worker`, one pool process) whose mail goes to Django's file backend
(EMAIL_FILE_PATH in the temporary directory), optionally slowed per message.

a. Redis stopped during a load run: forms keep saving (saves acknowledged while it is down,
   no 5xx); `send_daily_reminders` enqueued while it is down fails to enqueue (and fails
   fast); once Redis is back, a worker runs the day's reminders: every reminder sent once
   (Reminder log, one mail per recipient), and a second run sends nothing more.
b. PostgreSQL stopped (`pg_ctl stop -m immediate`, a crash) during a load run and started
   again: requests meanwhile get an error page (5xx) within the client's timeout, no hang; no
   partial record (every panel has its results, every row its history, every acknowledged
   save is there); saves succeed again afterwards with the same gunicorn (same pid).
c. Reminders sent through a slow mail backend, the worker SIGKILLed mid-run, a second worker
   started: (c1) the pool process killed: Celery's reject_on_worker_lost requeues the task at
   once; (c2) the whole worker killed (main process and pool), with the project's settings:
   the task stays unacknowledged in Redis until the broker's visibility timeout (kombu's
   default: 3600 s), so it is not redelivered within --redeliver-wait; (c3) the same with
   `broker_transport_options = {"visibility_timeout": --visibility}` set on the workers.
   Each: every reminder sent exactly once (Reminder log + mails captured in files).

Each scenario prints PASS/FAIL lines with their evidence; the results go to bench/LOAD.md
(section "faults"). Exits 1 when any check fails. Everything started is stopped and the
temporary directory removed, also on failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import (  # noqa: E402 - after the path is set
    Check,
    Client,
    Cohort,
    LoadLog,
    Stack,
    latency_table,
    machine,
    mails_by_recipient,
    outcome_counts,
    prepare_cohort,
    run_load,
    setup_django,
    update_section,
    verify,
)

LOAD_MD = Path(__file__).resolve().parent / "LOAD.md"


# --- helpers --------------------------------------------------------------------------------


def acked_between(log: LoadLog, start: float, end: float) -> int:
    return sum(1 for s in log.saves if s.outcome == "ack" and start <= s.start and s.end <= end)


def window(log: LoadLog, start: float, end: float) -> Counter:
    """Statuses of the requests that started in [start, end) (0 = no answer)."""
    return Counter(s.status for s in log.samples if start <= s.start < end)


def enqueue_reminders(day: date, timeout: float = 60) -> tuple[str | None, str, float]:
    """`send_daily_reminders.apply_async` for `day` as beat would: (task id or None, error,
    seconds). Run in a thread so a hanging publish cannot hang the script."""
    from visits.tasks import send_daily_reminders

    result: dict = {}

    def publish() -> None:
        try:
            result["id"] = send_daily_reminders.apply_async(args=[day.isoformat()]).id
        except Exception as exc:  # noqa: BLE001 - the failure is the evidence
            result["error"] = f"{type(exc).__name__}: {exc}"[:200]

    started = time.monotonic()
    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    thread.join(timeout)
    seconds = time.monotonic() - started
    if thread.is_alive():
        return None, f"still publishing after {timeout:.0f} s (hang)", seconds
    return result.get("id"), result.get("error", ""), seconds


def wait_ready(stack: Stack, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in stack.worker_log(name):
            return
        if stack.workers[name].poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"worker {name} not ready:\n{stack.worker_log(name)[-2000:]}")


def unsent(day: date) -> int:
    from django.db import connections

    from visits.models import Reminder

    connections.close_all()
    return Reminder.objects.filter(
        day=day, status__in=[Reminder.Status.PENDING, Reminder.Status.FAILED]
    ).count()


def wait_all_sent(day: date, timeout: float) -> float | None:
    """Seconds until no reminder of `day` is pending or failed, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if unsent(day) == 0:
            return time.monotonic() - started
        time.sleep(1)
    return None


def wait_mails(mail_dir: Path, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(mails_by_recipient(mail_dir).values()) >= count:
            return True
        time.sleep(0.05)
    return False


def reminder_checks(day: date, mail_dir: Path, label: str) -> list[Check]:
    """Every reminder of `day` sent once: no row pending or failed, one digest per recipient
    (none twice, none missing) in the captured mails, each row sent in one attempt."""
    from visits.models import Reminder

    rows = Reminder.objects.filter(day=day)
    status = Counter(rows.values_list("status", flat=True))
    sent = rows.filter(status=Reminder.Status.SENT)
    recipients = set(sent.values_list("recipient__email", flat=True))
    mails = mails_by_recipient(mail_dir)
    twice = {k: v for k, v in mails.items() if v > 1}
    attempts = Counter(sent.values_list("attempts", flat=True))
    return [
        Check(
            f"{label}: every reminder of {day} sent",
            bool(rows) and status[Reminder.Status.PENDING] + status[Reminder.Status.FAILED] == 0,
            f"Reminder log: {dict(status)} (attempts per sent row: {dict(attempts)})",
        ),
        Check(
            f"{label}: exactly one digest per recipient",
            bool(mails) and not twice and set(mails) == recipients,
            f"{sum(mails.values())} mails to {len(mails)} addresses; recipients in the log: "
            f"{len(recipients)}; sent twice: {twice or 'none'}; missing: "
            f"{sorted(recipients - set(mails)) or 'none'}",
        ),
    ]


def load_summary(log: LoadLog) -> str:
    counts = outcome_counts(log.saves)
    parts = [f"{kind} {dict(c)}" for kind, c in sorted(counts.items())]
    return f"{log.seconds:.0f} s, saves: " + "; ".join(parts)


# --- the scenarios --------------------------------------------------------------------------


def scenario_a(stack: Stack, cohort: Cohort, args) -> tuple[list[Check], list[str]]:
    """Redis stopped during a load run; reminders caught up after it returns."""
    notes: list[str] = []
    marks: dict = {}
    t0 = time.monotonic()

    def down() -> None:
        stack.redis_stop()
        marks["down"] = time.monotonic() - t0
        marks["health"] = Client(stack.web_port, 20).request("GET", "/health/").status
        marks["enqueue"] = enqueue_reminders(cohort.today)

    def up() -> None:
        stack.redis_start()
        marks["up"] = time.monotonic() - t0

    down_at = args.fault_at
    log = run_load(
        cohort,
        port=stack.web_port,
        seconds=args.seconds,
        timeout=args.timeout,
        events=[(down_at, down), (down_at + args.down_for, up)],
    )
    task_id, error, seconds = marks["enqueue"]
    during = acked_between(log, marks["down"], marks["up"])
    statuses = Counter(s.status for s in log.samples)
    checks = [
        Check(
            "a: forms keep saving while Redis is down",
            during > 0,
            f"Redis down {marks['down']:.1f}–{marks['up']:.1f} s: {during} saves acknowledged "
            f"in that window; /health/ answered {marks['health']} meanwhile",
        ),
        Check(
            "a: no 5xx and no request without an answer during the run",
            statuses.get(0, 0) == 0 and not any(code >= 500 for code in statuses),
            f"statuses {dict(statuses)}",
        ),
        Check(
            "a: the reminder task enqueued while Redis is down fails to enqueue, without hanging",
            task_id is None and bool(error) and "hang" not in error,
            f"after {seconds:.1f} s: {error or 'enqueued as ' + str(task_id)}",
        ),
    ]
    checks += verify(log, cohort, require_conflicts=False)
    notes.append("load: " + load_summary(log))
    notes.append(latency_table(log.samples))

    # Redis is back: the daily run (what beat sends next) catches up, and only once.
    mail_dir = stack.mail_root / "a"
    stack.worker_start("a", mail_dir=mail_dir, mail_delay=0)
    try:
        wait_ready(stack, "a")
        from celery.result import AsyncResult

        task_id, error, _seconds = enqueue_reminders(cohort.today)
        first = AsyncResult(task_id).get(timeout=300) if task_id else {"error": error}
        mails_first = sum(mails_by_recipient(mail_dir).values())
        checks += reminder_checks(cohort.today, mail_dir, "a: catch-up run after Redis returned")
        task_id, error, _seconds = enqueue_reminders(cohort.today)
        second = AsyncResult(task_id).get(timeout=300) if task_id else {"error": error}
        mails_second = sum(mails_by_recipient(mail_dir).values())
        checks.append(
            Check(
                "a: a second run the same day sends nothing again",
                second.get("reminders_sent") == 0 and mails_second == mails_first,
                f"first run: {first.get('reminders_sent')} reminders in "
                f"{first.get('mails_sent')} mails; second run: {second.get('reminders_sent')} "
                f"reminders; mail files hold {mails_second} messages",
            )
        )
    finally:
        stack.worker_stop("a")
    return checks, notes


def scenario_b(stack: Stack, cohort: Cohort, args) -> tuple[list[Check], list[str]]:
    """PostgreSQL stopped hard during a load run and started again."""
    marks: dict = {}
    t0 = time.monotonic()
    pid_before = stack.gunicorn.pid

    def down() -> None:
        stack.pg_stop("immediate")
        marks["down"] = time.monotonic() - t0

    def up() -> None:
        stack.pg_start()
        marks["up"] = time.monotonic() - t0

    log = run_load(
        cohort,
        port=stack.web_port,
        seconds=args.seconds,
        timeout=args.timeout,
        events=[(args.fault_at, down), (args.fault_at + args.down_for, up)],
    )
    during = [s for s in log.samples if marks["down"] <= s.start < marks["up"]]
    statuses = Counter(s.status for s in during)
    slowest = max((s.end - s.start for s in during), default=0.0)
    after = acked_between(log, marks["up"], log.seconds)
    checks = [
        Check(
            "b: requests while PostgreSQL is down get an error page, none hangs",
            bool(during)
            and statuses.get(0, 0) == 0
            and all(code >= 500 or code in (200, 302) for code in statuses)
            and slowest < args.timeout,
            f"down {marks['down']:.1f}–{marks['up']:.1f} s: {len(during)} requests, statuses "
            f"{dict(statuses)}, slowest answer {slowest:.2f} s (client timeout "
            f"{args.timeout:g} s)",
        ),
        Check(
            "b: saving works again after the restart, same gunicorn",
            after > 0 and stack.gunicorn.poll() is None and stack.gunicorn.pid == pid_before,
            f"{after} saves acknowledged after {marks['up']:.1f} s; gunicorn pid {pid_before} "
            f"{'still running' if stack.gunicorn.poll() is None else 'gone'}",
        ),
    ]
    checks += verify(log, cohort, exact_versions=False, require_conflicts=False)
    unanswered = [s for s in log.saves if s.outcome == "error"]
    from assessments.models import LabPanel
    from followup.models import FollowUpContact

    tokens = [s.token for s in unanswered]
    committed = (
        LabPanel.objects.filter(notes__in=tokens).count()
        + FollowUpContact.objects.filter(notes__in=tokens).count()
        + LabPanel.history.filter(notes__in=tokens, history_type="~").count()
    )
    notes = [
        "load: " + load_summary(log),
        f"{len(unanswered)} POSTs ended in an error page or no answer (not acknowledged, so "
        f"the user knows to enter them again); of these, {committed} were nevertheless "
        "committed (an answer lost after the commit)",
        latency_table(log.samples),
    ]
    return checks, notes


def _kill_mid_run(
    stack: Stack, label: str, day: date, args, *, whole: bool, visibility: int
) -> tuple[list[Check], list[str]]:
    """Enqueue `day`'s reminders, let 2 digests go out, SIGKILL the worker (its pool process,
    or with `whole` its process group), start a second worker, wait for the rest."""
    mail_dir = stack.mail_root / label
    first, second = f"{label}-1", f"{label}-2"
    notes: list[str] = []
    stack.worker_start(
        first, mail_dir=mail_dir, mail_delay=args.mail_delay, visibility_timeout=visibility
    )
    try:
        wait_ready(stack, first)
        task_id, error, _seconds = enqueue_reminders(day)
        if task_id is None:
            return [Check(f"{label}: enqueue", False, error)], notes
        if not wait_mails(mail_dir, 2, timeout=120):
            return [Check(f"{label}: the run started", False, "no mail within 120 s")], notes
        time.sleep(args.mail_delay / 3)  # inside the next (slow) message, before its file
        before = sum(mails_by_recipient(mail_dir).values())
        if whole:
            stack.worker_kill(first)
            what = f"worker {first} (process group {stack.workers[first].pid}) SIGKILLed"
        else:
            children = stack.worker_children(first)
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            what = f"pool process {children} of worker {first} SIGKILLed"
        killed_at = time.monotonic()
        notes.append(f"{label}: {what} after {before} mails; {unsent(day)} reminders unsent")
        stack.worker_start(
            second, mail_dir=mail_dir, mail_delay=args.mail_delay, visibility_timeout=visibility
        )
        wait_ready(stack, second)
        # kombu's Redis transport looks for unacknowledged messages older than the visibility
        # timeout when a worker starts and then every 10th tick of 10 s (about every 100 s).
        wait = args.redeliver_wait if not visibility else max(visibility, 100) + args.redeliver_wait
        took = wait_all_sent(day, wait)
        log = stack.worker_log(first) + stack.worker_log(second)
        lost_lines = [
            line.strip()
            for line in log.splitlines()
            if "WorkerLostError" in line or "signal 9" in line or "SIGKILL" in line
        ]
        redelivered = took is not None
        if not whole:
            setting = "pool process killed; acks_late + reject_on_worker_lost as configured"
        elif visibility:
            setting = f"whole worker killed; broker visibility_timeout={visibility} s"
        else:
            setting = "whole worker killed; project settings: kombu's visibility_timeout 3600 s"
        checks = [
            Check(
                f"{label}: the task is redelivered and finishes after the kill ({setting})",
                redelivered,
                (
                    f"all reminders sent {time.monotonic() - killed_at:.0f} s after the kill"
                    if redelivered
                    else f"{unsent(day)} reminders still unsent {wait:.0f} s after the kill"
                )
                + (f"; worker log: {lost_lines[0][:160]}" if lost_lines else ""),
            )
        ]
        if redelivered:
            checks += reminder_checks(day, mail_dir, label)
        else:
            mails = mails_by_recipient(mail_dir)
            twice = {k: v for k, v in mails.items() if v > 1}
            checks.append(
                Check(
                    f"{label}: nothing sent twice meanwhile",
                    not twice,
                    f"{sum(mails.values())} mails, sent twice: {twice or 'none'}",
                )
            )
        return checks, notes
    finally:
        for name in (first, second):
            if name in stack.workers:
                stack.worker_stop(name)


def scenario_c(stack: Stack, cohort: Cohort, args) -> tuple[list[Check], list[str]]:
    checks, notes = [], []
    cases = [
        ("c1", False, 0),  # the pool process: reject_on_worker_lost
        ("c2", True, 0),  # the whole worker, as configured
        ("c3", True, args.visibility),  # the whole worker, with a visibility timeout
    ]
    for offset, (label, whole, visibility) in enumerate(cases, start=1):
        stack.redis_flush()  # no message of an earlier case left to surface in this one
        day = cohort.today + timedelta(days=offset)
        got, said = _kill_mid_run(stack, label, day, args, whole=whole, visibility=visibility)
        checks += got
        notes += said
    return checks, notes


SCENARIOS = {
    "a": ("Redis stopped during a load run", scenario_a),
    "b": ("PostgreSQL restarted during a load run", scenario_b),
    "c": ("Celery worker killed mid-task while sending reminders", scenario_c),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="a,b,c", help="scenarios, e.g. a,c")
    parser.add_argument("--seconds", type=float, default=45, help="load per scenario")
    parser.add_argument("--fault-at", type=float, default=15, help="seconds into the load")
    parser.add_argument("--down-for", type=float, default=10, help="seconds the server is down")
    parser.add_argument("--coordinators", type=int, default=20)
    parser.add_argument("--patients-each", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument("--timeout", type=float, default=20, help="client timeout, seconds")
    parser.add_argument("--mail-delay", type=float, default=1.0, help="seconds per mail (c)")
    parser.add_argument("--redeliver-wait", type=float, default=60, help="seconds (c)")
    parser.add_argument("--visibility", type=int, default=45, help="visibility timeout (c3)")
    parser.add_argument("--pg-port", type=int, default=5499)
    parser.add_argument("--redis-port", type=int, default=6399)
    parser.add_argument("--port", type=int, default=8499)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/LOAD.md")
    args = parser.parse_args()
    chosen = [key.strip() for key in args.only.split(",") if key.strip()]
    if unknown := [key for key in chosen if key not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {unknown}")
    # Always a, b, c: scenario a's exact version count assumes no earlier edits.
    chosen = [key for key in SCENARIOS if key in chosen]

    stack = Stack(
        pg_port=args.pg_port, redis_port=args.redis_port, web_port=args.port, keep=args.keep
    )
    sections: list[str] = []
    all_checks: list[Check] = []
    try:
        print(f"stack in {stack.tmp}")
        stack.pg_init()
        stack.redis_start()
        stack.migrate()
        setup_django(stack)
        cohort = prepare_cohort(coordinators=args.coordinators, patients_each=args.patients_each)
        stack.gunicorn_start(args.workers)
        for key in chosen:
            title, run = SCENARIOS[key]
            print(f"\n== {key}. {title}")
            try:
                checks, notes = run(stack, cohort, args)
            except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a FAIL
                checks, notes = [Check(f"{key}: scenario ran", False, repr(exc)[:300])], []
            for check in checks:
                print(check.line())
            all_checks += checks
            sections += [
                f"### {key}. {title}",
                "",
                *[f"- {c.line()}" for c in checks],
                "",
                *[note + "\n" for note in notes],
            ]
    finally:
        stack.close()
    failed = [c for c in all_checks if not c.ok]
    if not args.no_write and sections:
        body = "\n".join(
            [
                "## Fault tests (`bench/faults.py`)",
                "",
                f"Machine: {machine()}. Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
                f"`bench/faults.py --only {','.join(chosen)} --seconds {args.seconds:g} "
                f"--coordinators {args.coordinators} --mail-delay {args.mail_delay:g}`: "
                f"{sum(c.ok for c in all_checks)}/{len(all_checks)} checks pass.",
                "",
                *sections,
            ]
        )
        update_section(LOAD_MD, "faults", body)
        print(f"\nwritten to {LOAD_MD}")
    print("\nRESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
