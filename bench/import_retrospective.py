"""Benchmark of the retrospective-cohort import (exchange.services.import_file).

Generates N rows (default 10,000) of the import template to a CSV file — a realistic mix of
complete and partial chart abstractions: every row has the required columns; about half a
full baseline and a first-line regimen, a third a complete operation, a quarter a recurrence,
60% dead — then imports the file into the database of DATABASE_URL (a dry run first when
--dry-run is given) and reports the wall time, the CPU time of this process (on a loaded
machine the wall time mostly measures the other processes), rows per second, SQL queries per
row and the peak resident memory of the process. New patients go through the bulk path
(exchange.bulk); `--per-row` runs the old path through every app's services instead, for the
"before" of the comparison.

Run it against a SCRATCH database only: it migrates it and adds a site "BENCHJ".

    createdb -h 127.0.0.1 -U postgres plm_bench_j
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plm_bench_j \\
        .venv/bin/python bench/import_retrospective.py -n 1000
    dropdb -h 127.0.0.1 -U postgres plm_bench_j
"""

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

SITE_CODE = "BENCHJ"
TODAY = date(2026, 6, 1)


def generate_rows(n: int, *, seed: int = 7, start: int = 1) -> list[dict]:
    """N valid rows of the import template, reproducible from `seed`."""
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        enrolled = date(2019, 1, 1) + timedelta(days=rng.randint(0, 1500))
        dead = rng.random() < 0.6
        horizon = rng.randint(60, 900)
        last_contact = min(enrolled + timedelta(days=horizon), TODAY - timedelta(days=1))
        row = {
            "subject_code": f"{SITE_CODE}-{i:05d}",
            "sex": rng.choice("MF"),
            "age": str(rng.randint(35, 80)),
            "enrollment_date": enrolled.isoformat(),
            "vital_status": "dead" if dead else "alive",
            "last_contact_date": last_contact.isoformat(),
            "hospital_record_number": f"R{i:07d}",
            "diagnosis_date": (enrolled - timedelta(days=rng.randint(0, 20))).isoformat(),
            "regimen": rng.choice(["AG", "mFOLFIRINOX", "NALIRIFOX"]),
            "cycles": str(rng.randint(2, 12)),
            "best_response": rng.choice(["PR", "SD", "PD", "unknown"]),
            "ecog": rng.choice(["0", "1", "2", "unknown", ""]),
            "ca19_9_baseline": f"{rng.uniform(5, 5000):.1f}",
        }
        if dead:
            row["death_date"] = (last_contact + timedelta(days=rng.randint(0, 20))).isoformat()
            if row["death_date"] > TODAY.isoformat():
                row["death_date"] = TODAY.isoformat()
            row["death_cause"] = rng.choice(["progression", "unknown", ""])
        if rng.random() < 0.5:
            count = rng.randint(1, 6)
            row.update(
                baseline_date=enrolled.isoformat(),
                ecog=rng.choice(["0", "1", "2"]),
                height_cm=str(rng.randint(150, 185)),
                weight_kg=str(rng.randint(45, 85)),
                primary_site=rng.choice(["head", "body", "tail"]),
                primary_size_mm=str(rng.randint(15, 60)),
                liver_mets_count=str(count),
                liver_mets_largest_mm=str(rng.randint(5, 60)),
                liver_mets_distribution="unilobar"
                if count == 1
                else rng.choice(["unilobar", "bilobar"]),
                ajcc_t=rng.choice(["T2", "T3", "T4"]),
                ajcc_n=rng.choice(["N0", "N1"]),
                first_cycle_date=(enrolled + timedelta(days=rng.randint(1, 14))).isoformat(),
            )
        first_cycle = row.get("first_cycle_date", enrolled.isoformat())
        window = (last_contact - date.fromisoformat(first_cycle)).days
        if rng.random() < 0.33 and window > 150:
            surgery = date.fromisoformat(first_cycle) + timedelta(days=rng.randint(90, window - 40))
            row.update(
                surgery_date=surgery.isoformat(),
                pancreatic_procedure=rng.choice(["pd", "dps", "tp"]),
                liver_procedures="wedge",
                liver_lesions_resected="1",
                approach="open",
                operative_minutes=str(rng.randint(180, 600)),
                blood_loss_ml=str(rng.randint(100, 1500)),
                r_status=rng.choice(["R0", "R1"]),
            )
            if rng.random() < 0.6 and (last_contact - surgery).days > 20:
                recurrence = surgery + timedelta(
                    days=rng.randint(10, (last_contact - surgery).days)
                )
                row.update(
                    recurrence_date=recurrence.isoformat(),
                    recurrence_sites=rng.choice(["liver", "liver;peritoneum", "local"]),
                    recurrence_detected_by="imaging",
                )
        rows.append(row)
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    from exchange.template import COLUMNS

    header = [c.name for c in COLUMNS]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(name, "") for name in header])


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rows", type=int, default=10_000)
    parser.add_argument("--dry-run", action="store_true", help="a dry run before the import")
    parser.add_argument("--profile", action="store_true", help="cProfile the import")
    parser.add_argument("--keep", help="write the CSV here instead of a temporary file")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    parser.add_argument(
        "--per-row", action="store_true", help="the per-row path through the services (before)"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to a scratch database")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from exchange.services import import_file
    from trial.models import Site, Study

    call_command("migrate", verbosity=0)
    study, _ = Study.objects.get_or_create(code="NCT06873178", defaults={"title": "bench"})
    Site.objects.get_or_create(code=SITE_CODE, defaults={"study": study, "name": "Bench J"})
    start = Site.objects.get(code=SITE_CODE).last_subject_number + 1

    t0 = time.perf_counter()
    rows = generate_rows(args.rows, start=start)
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "bench_import.csv"
    write_csv(rows, path)
    content = path.read_bytes()
    print(
        f"{args.rows} rows generated to {path} ({len(content) / 1e6:.1f} MB) in "
        f"{time.perf_counter() - t0:.1f} s; database: {connection.vendor}"
    )

    def one(dry_run: bool) -> None:
        count = [0]

        def counter(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            t, cpu = time.perf_counter(), time.process_time()
            result = import_file(
                content=content,
                file_name=path.name,
                user=None,
                dry_run=dry_run,
                waiver_reference="BENCH-2024-01",
                today=TODAY,
                bulk=not args.per_row,
            )
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        label = ("dry run" if dry_run else "import") + (" per-row" if args.per_row else " bulk")
        print(
            f"{label:15}: {seconds:8.1f} s wall  {cpu:7.1f} s CPU  {args.rows / seconds:7.0f} "
            f"rows/s  {count[0] / args.rows:6.2f} queries/row ({count[0]} queries)  "
            f"status {result.run.status}  issues {len(result.issues)}  "
            f"peak RSS {_peak_rss_mb():.0f} MB"
        )
        for issue in result.issues[:10]:
            print("   ", issue)
        if args.json:
            from bench.common import Result, write_json

            outcome = Result(
                benchmark=f"retrospective import ({args.rows:,} rows)",
                case=label,
                seconds=[seconds],
                queries=count[0],
                peak_mib=round(_peak_rss_mb()),
                target="" if dry_run else "under 60 s for 10,000 rows",
                note=f"{cpu:.1f} s CPU; status {result.run.status}",
            )
            if not dry_run and args.rows >= 10_000:
                outcome.met = seconds < 60
            write_json(args.json, [outcome])

    if args.dry_run:
        one(True)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        one(False)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    else:
        one(False)


if __name__ == "__main__":
    main()
