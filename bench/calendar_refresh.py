"""Benchmark of the materialized protocol calendar (visits.services.calendar_refresh).

Builds N synthetic enrolled patients (default 10,000) with screening, enrollment, a regimen
line and its cycles, evaluations for a third of them, MDT decisions, operations and
postoperative panels for a sixth (tests.factories.visits.synthetic_cohort, plain bulk-created
rows), then refreshes the calendar of every patient twice (the first run creates every row,
the second finds nothing to change) and reports wall time, SQL queries and the peak resident
memory of the process (resource.getrusage; how much each run added to it) of each run. Then
the daily reminder run (visits.reminders.reminders_daily: refresh, plan, queue and send the
digests, to Django's in-memory mail backend) for the same patients, twice (the second run finds
everything sent).

Run it against a SCRATCH database only: it migrates the database given by DATABASE_URL and
adds a site "BENCH" with N patients to it.

    DATABASE_URL=sqlite:////tmp/bench.sqlite3 .venv/bin/python bench/calendar_refresh.py -n 2000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plm_bench \
        .venv/bin/python bench/calendar_refresh.py -n 10000

Needs the development requirements (factory_boy) for the cohort builder.
"""

import argparse
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--patients", type=int, default=10_000)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 24))
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to a scratch database")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from tests.factories.trial import UserFactory
    from tests.factories.visits import synthetic_cohort
    from trial.models import Role, Site, Study
    from visits.services import calendar_refresh

    call_command("migrate", verbosity=0)
    study = Study.objects.get(code=settings.STUDY_CODE)
    site, _created = Site.objects.get_or_create(
        code="BENCH", defaults={"name": "Benchmark site (synthetic)", "study": study}
    )
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
    started = time.perf_counter()
    ids: list[int] = []
    for start in range(0, args.patients, 2000):
        count = min(2000, args.patients - start)
        ids += synthetic_cohort(site=site, count=count, today=args.today, investigator=investigator)
    print(
        f"{connection.vendor}: built {len(ids)} patients in {time.perf_counter() - started:.1f} s"
    )

    executed = []

    def count(execute, sql, params, many, context):
        # Counted without Django's debug cursor, which would slow the run it measures.
        executed.append(1)
        return execute(sql, params, many, context)

    from bench.common import Result, write_json

    results = []
    for label in ("first run (creates)", "second run (no change)"):
        executed.clear()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            stats = calendar_refresh(patient_ids=ids, today=args.today)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        queries = len(executed)
        print(
            f"{label}: {seconds:.2f} s, {queries} queries, peak RSS {peak / 1024:.0f} MiB "
            f"(+{(peak - before) / 1024:.0f} MiB); "
            f"{stats.patients} patients, {stats.created} created, {stats.updated} updated, "
            f"{stats.deleted} deleted ({seconds / max(stats.patients, 1) * 1000:.2f} ms/patient)"
        )
        results.append(
            Result(
                benchmark=f"calendar and reminders ({len(ids):,} patients)",
                case=f"calendar refresh, {label}",
                seconds=[seconds],
                queries=queries,
                peak_mib=round(peak / 1024),
            )
        )

    # The daily reminder run: coordinators and investigators of the site get their digests.
    from django.core import mail
    from django.test.utils import setup_test_environment

    from tests.factories.trial import UserFactory as Users
    from visits.reminders import reminders_daily

    setup_test_environment()  # the in-memory mail backend
    for number in range(3):
        Users(roles=[Role.COORDINATOR], sites=[site], email=f"coordinator{number}@bench.test")
    for label in ("first run (sends)", "second run (all sent)"):
        executed.clear()
        mail.outbox = []
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            sent = reminders_daily(today=args.today)
        seconds = time.perf_counter() - started
        print(f"reminder run, {label}: {seconds:.2f} s, {len(executed)} queries, {sent}")
        results.append(
            Result(
                benchmark=f"calendar and reminders ({len(ids):,} patients)",
                case=f"daily reminder run, {label}",
                seconds=[seconds],
                queries=len(executed),
                target="under 30 s",
                met=seconds < 30,
                note=f"{len(mail.outbox)} mails",
            )
        )
    write_json(args.json, results, meta={"vendor": connection.vendor})


if __name__ == "__main__":
    main()
