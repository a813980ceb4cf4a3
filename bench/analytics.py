"""Benchmark of the analysis dataset and the survival API against lifelines alone (the floor).

Builds N synthetic enrolled patients (default 10,000: tests.factories.visits.synthetic_cohort
plus tests.analytics.synthetic.synthetic_outcomes — baselines, monthly contacts, deaths,
recurrences, pathology; plain bulk-created rows), then measures over R runs (default 5) the
median and the spread (min–max) of:

- dataset.build on every patient of the site: wall time, SQL queries, and (in one more run)
  the peak memory it allocates (tracemalloc);
- GET /api/v1/analytics/survival/?endpoint=os and …&group_by=resected, and
  GET /api/v1/analytics/cox/?endpoint=os&covariates=sex,ecog,liver_mets, through Django's
  test Client logged in as a statistician (the whole request: session, permission, scoping,
  the dataset, the statistics, JSON), twice: cold (the dataset cache, analytics.cache, emptied
  before each request) and cached (the dataset found in the cache: the data stamp, unpickling,
  the statistics, JSON);
- the floor: lifelines KaplanMeierFitter (overall; per group plus logrank_test) and
  CoxPHFitter on an in-memory DataFrame of the same rows (built once, outside the timing);

and prints a table with the ratio endpoint / floor.

Run it against a SCRATCH database only: it migrates the database given by DATABASE_URL and
adds a site "BENCHA" with N patients to it.

    createdb -h 127.0.0.1 -U postgres plm_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plm_bench \\
        .venv/bin/python bench/analytics.py -n 10000
    dropdb -h 127.0.0.1 -U postgres plm_bench

Needs the development requirements (factory_boy) for the cohort builder.
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

SITE_CODE = "BENCHA"


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--patients", type=int, default=10_000)
    parser.add_argument("-r", "--runs", type=int, default=5)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 24))
    parser.add_argument("--profile", action="store_true", help="cProfile one survival request")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to a scratch database")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test Client needs it (and ALLOWED_HOSTS gets "testserver")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    from rest_framework.settings import api_settings

    api_settings.reload()

    import pandas as pd
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test

    from analytics import dataset
    from patients.models import Patient
    from tests.analytics.synthetic import synthetic_outcomes
    from tests.factories.trial import UserFactory
    from tests.factories.visits import synthetic_cohort
    from trial.models import Role, Site, Study

    call_command("migrate", verbosity=0)
    study = Study.objects.get(code=settings.STUDY_CODE)
    site, _created = Site.objects.get_or_create(
        code=SITE_CODE, defaults={"name": "Analytics benchmark (synthetic)", "study": study}
    )
    existing = Patient.objects.filter(site=site).count()
    started = time.perf_counter()
    if existing < args.patients:
        investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
        for start in range(existing, args.patients, 2000):
            count = min(2000, args.patients - start)
            ids = synthetic_cohort(
                site=site, count=count, today=args.today, investigator=investigator
            )
            synthetic_outcomes(patient_ids=ids, today=args.today, seed=start)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum keeps them in production
    patients = Patient.objects.filter(site=site)
    statistician = UserFactory(roles=[Role.STATISTICIAN], sites=[site])
    print(
        f"{connection.vendor}: {patients.count()} patients at {SITE_CODE} "
        f"(built in {time.perf_counter() - started:.1f} s); {args.runs} runs each; "
        "seconds: median (min–max)"
    )

    executed: list[int] = []

    def count(execute, sql, params, many, context):
        executed.append(1)
        return execute(sql, params, many, context)

    # dataset.build: time and queries over the runs, then the peak memory it allocates in one
    # more run under tracemalloc (which slows Python down too much to time it at once).
    times = []
    for _ in range(args.runs):
        executed.clear()
        t0 = time.perf_counter()
        with connection.execute_wrapper(count):
            rows = dataset.build(patients=patients)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    dataset.build(patients=patients)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    queries = len(executed)
    frame = pd.DataFrame.from_records(rows, columns=dataset.COLUMNS)
    print(
        f"dataset.build: {_stats(times)} s, {queries} queries, peak allocated "
        f"{peak:.0f} MiB, {len(rows)} rows, "
        f"{int(frame['os_event'].sum())} deaths, {int(frame['resected'].sum())} resected"
    )

    client = Client()
    client.force_login(statistician)

    from django.core.cache import cache

    def endpoint(url: str, *, cached: bool) -> list[float]:
        """Cold: the dataset cache (analytics.cache) emptied before every request, so each one
        builds the dataset; cached: one request first, then every request finds the dataset in
        the cache (what a statistician's second request costs while no data changes)."""
        result = []
        cache.clear()
        if cached:
            client.get(url)
        for _ in range(args.runs):
            if not cached:
                cache.clear()
            t0 = time.perf_counter()
            response = client.get(url)
            result.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.content[:300]
        return result

    os_frame = frame[frame["os_days"].notna()]
    t_os, e_os = os_frame["os_days"].astype(float), os_frame["os_event"].astype(int)
    resected = os_frame["resected"].astype(bool)
    cox_frame = frame[["os_days", "os_event", "sex", "ecog", "liver_mets_count"]].dropna()
    design = pd.DataFrame(
        {
            "os_days": cox_frame["os_days"].astype(float),
            "os_event": cox_frame["os_event"].astype(int),
            "sex=F": (cox_frame["sex"] == "F").astype(float),
            "ecog=1": (cox_frame["ecog"] == 1).astype(float),
            "ecog=2": (cox_frame["ecog"] == 2).astype(float),
            "liver_mets=>3": (cox_frame["liver_mets_count"] > 3).astype(float),
        }
    )

    def floor(fn) -> list[float]:
        result = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            result.append(time.perf_counter() - t0)
        return result

    def km_overall():
        KaplanMeierFitter().fit(t_os, e_os)

    def km_grouped():
        for group in (resected, ~resected):
            KaplanMeierFitter().fit(t_os[group], e_os[group])
        logrank_test(t_os[resected], t_os[~resected], e_os[resected], e_os[~resected])

    def cox_fit():
        CoxPHFitter().fit(design, duration_col="os_days", event_col="os_event")

    base = "/api/v1/analytics/"
    cases = [
        ("survival os", base + "survival/?endpoint=os", km_overall),
        ("survival os by resected", base + "survival/?endpoint=os&group_by=resected", km_grouped),
        ("cox os sex+ecog+liver_mets", base + "cox/?endpoint=os&covariates=sex,ecog,liver_mets",
         cox_fit),
    ]  # fmt: skip
    from bench.common import Result, write_json

    bench_name = f"analytics ({len(rows):,} patients)"
    results = [
        Result(
            benchmark=bench_name,
            case="dataset.build",
            seconds=times,
            queries=queries,
            peak_mib=round(peak),
        )
    ]
    print(f"{'':36} {'endpoint (s)':>26} {'floor (s)':>26} {'ratio':>7}")
    for label, url, fn in cases:
        low = floor(fn)
        for cached in (False, True):
            api = endpoint(url, cached=cached)
            ratio = statistics.median(api) / statistics.median(low)
            state = "cached" if cached else "cold"
            print(f"{label + ', ' + state:36} {_stats(api):>26} {_stats(low):>26} {ratio:7.1f}")
            result = Result(
                benchmark=bench_name,
                case=f"GET {url.removeprefix(base)} ({state}) vs lifelines",
                seconds=api,
                floor=low,
                target="within 2× of lifelines",
            )
            result.met = result.ratio <= 2
            results.append(result)
    write_json(args.json, results, meta={"vendor": connection.vendor})

    if args.profile:
        import cProfile
        import pstats

        cache.clear()
        profiler = cProfile.Profile()
        profiler.enable()
        client.get(base + "survival/?endpoint=os")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
