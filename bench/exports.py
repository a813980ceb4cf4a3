"""Benchmark of the statistician exports (analytics.exports) against PostgreSQL's COPY (the floor).

Builds a synthetic site "BENCHX" once (tests.factories.visits.synthetic_cohort: P patients with
screening, enrollment, regimen lines, cycles, evaluations, MDT decisions, operations; then lab
panels with 10 results each until the lab results table has N rows; plain bulk-created rows),
then measures, each in a fresh Python process so that the peak resident memory
(VmHWM) is the export's own:

- lab_csv: the lab results long table (forms.export_rows → csv_stream), every row;
- lab_json: the same as JSON;
- odm: the whole site as CDISC ODM 1.3.2 (odm.odm_stream: every table, no audit records);
- copy (PostgreSQL only): COPY (SELECT … the same lab result columns, joins and order …) TO
  STDOUT WITH CSV — what the database alone needs to produce the same table;
- analysis_csv: the analysis dataset as CSV (streams.analysis_dataset_export: one row per
  patient, built from every table it derives from, hashed and logged as the API does);
- analysis_copy (PostgreSQL only): COPY of the rows of every table the dataset reads for the
  same patients, one COPY per table — the database's share of the analysis export.

Each measure runs R times (default 3) and reports median and min–max; `--json FILE` appends the
results for bench/run_all.py.

The output is consumed and thrown away (only its size is counted). Run it against a SCRATCH
database only: it migrates the database given by DATABASE_URL and adds the site to it.

    createdb -h 127.0.0.1 -U postgres plm_bench_i
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plm_bench_i \\
        .venv/bin/python bench/exports.py -n 100000
    dropdb -h 127.0.0.1 -U postgres plm_bench_i

Needs the development requirements (factory_boy) for the cohort builder.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

SITE_CODE = "BENCHX"
TODAY = date(2026, 11, 24)
ANALYTES = (
    ("wbc", "×10⁹/L", "6.1"),
    ("anc", "×10⁹/L", "3.9"),
    ("hemoglobin", "g/L", "126"),
    ("platelets", "×10⁹/L", "210"),
    ("alt", "U/L", "32"),
    ("ast", "U/L", "28"),
    ("tbil", "µmol/L", "14.2"),
    ("albumin", "g/L", "39.5"),
    ("creatinine", "µmol/L", "71"),
    ("ca19_9", "U/mL", "420.5"),
)
# The tables the analysis dataset reads (analytics/dataset.py), by their patient link.
ANALYSIS_TABLES = (
    ("patients_patient", "id"),
    ("patients_screening", "patient_id"),
    ("patients_enrollment", "patient_id"),
    ("patients_baseline", "patient_id"),
    ("patients_withdrawal", "patient_id"),
    ("treatments_regimenline", "patient_id"),
    ("treatments_chemocycle", "patient_id"),
    ("assessments_responseevaluation", "patient_id"),
    ("assessments_labpanel", "patient_id"),
    ("surgery_mdtdecision", "patient_id"),
    ("surgery_operation", "patient_id"),
    ("followup_followupcontact", "patient_id"),
    ("followup_recurrence", "patient_id"),
    ("followup_death", "patient_id"),
)
COPY_SQL = """
COPY (
  SELECT p.subject_code, r.id, r.version, r.voided_at IS NOT NULL, r.panel_id, pa.sampled_on,
         pa.context, pa.after_cycle, pa.postop_day, r.analyte, r.value, r.entered_value,
         r.entered_unit, r.flag, r.ctcae_grade, r.ctcae_term, r.extreme_confirmed
  FROM assessments_labresult r
  JOIN assessments_labpanel pa ON pa.id = r.panel_id
  JOIN patients_patient p ON p.id = pa.patient_id
  WHERE p.site_id = %s AND p.voided_at IS NULL AND r.voided_at IS NULL
    AND pa.voided_at IS NULL
  ORDER BY p.subject_code, pa.sampled_on, r.id
) TO STDOUT WITH CSV HEADER
"""


class Sink:
    """A file-like object that counts what is written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def peak_rss_kib() -> int:
    """The peak resident memory of this process in KiB: VmHWM on Linux (ru_maxrss would also
    count the parent's peak, which Linux carries across exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _setup():
    import django

    django.setup()


def build(patients: int, results: int) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from assessments.models import LabPanel, LabResult
    from tests.factories.trial import UserFactory
    from tests.factories.visits import synthetic_cohort
    from trial.models import FormStatus, Role, Site, Study

    call_command("migrate", verbosity=0)
    study = Study.objects.get(code=settings.STUDY_CODE)
    site, created = Site.objects.get_or_create(
        code=SITE_CODE, defaults={"name": "Export benchmark (synthetic)", "study": study}
    )
    if not created:
        print(f"site {SITE_CODE} exists: reusing its data")
        return
    started = time.perf_counter()
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
    ids: list[int] = []
    for start in range(0, patients, 2000):
        count = min(2000, patients - start)
        ids += synthetic_cohort(site=site, count=count, today=TODAY, investigator=investigator)
    existing = LabResult.objects.filter(panel__patient__site=site).count()
    panels_needed = max(0, (results - existing) // len(ANALYTES))
    per_patient = -(-panels_needed // len(ids))
    panels = []
    for index, pk in enumerate(ids):
        for k in range(per_patient):
            if len(panels) >= panels_needed:
                break
            panels.append(
                LabPanel(
                    patient_id=pk,
                    sampled_on=TODAY - timedelta(days=7 * k + index % 7),
                    context=LabPanel.Context.ON_TREATMENT,
                    status=FormStatus.COMPLETE,
                )
            )
    made = 0
    for start in range(0, len(panels), 2000):
        batch = LabPanel.objects.bulk_create(panels[start : start + 2000])
        LabResult.objects.bulk_create(
            LabResult(
                panel=panel,
                analyte=code,
                value=Decimal(value),
                entered_value=Decimal(value),
                entered_unit=unit,
                flag="",
            )
            for panel in batch
            for code, unit, value in ANALYTES
        )
        made += len(batch) * len(ANALYTES)
    print(
        f"built {len(ids)} patients, {len(panels)} panels, {made} lab results in "
        f"{time.perf_counter() - started:.1f} s"
    )


def measure(what: str) -> dict:
    from django.db import connection

    from analytics.exports import odm
    from analytics.exports.forms import FORMS_BY_NAME, csv_stream, export_rows, json_stream
    from patients.models import Patient
    from trial.models import Site

    site = Site.objects.get(code=SITE_CODE)
    patients = Patient.objects.active().filter(site=site)
    sink = Sink()
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(1)
        return execute(sql, params, many, context)

    statistician = None
    if what == "analysis_csv":
        from tests.factories.trial import UserFactory
        from trial.models import Role

        statistician = UserFactory(roles=[Role.STATISTICIAN], sites=[site])
    before = peak_rss_kib()
    started = time.perf_counter()
    rows = 0
    with connection.execute_wrapper(count):
        if what in ("lab_csv", "lab_json"):
            form = FORMS_BY_NAME["lab_results"]

            def counted():
                nonlocal rows
                for row in export_rows(form, patients_qs=patients):
                    rows += 1
                    yield row

            chunks = (
                csv_stream(counted(), form.column_names)
                if what == "lab_csv"
                else json_stream(counted())
            )
            for chunk in chunks:
                sink.write(chunk.encode())
        elif what == "odm":
            for chunk in odm.odm_stream(patients_qs=patients):
                sink.write(chunk)
        elif what == "copy":
            with connection.cursor() as cursor:
                cursor.cursor.copy_expert(cursor.mogrify(COPY_SQL, [site.pk]).decode(), sink)
        elif what == "analysis_csv":
            from analytics.exports import streams

            export = streams.analysis_dataset_export(
                user=statistician, patients_qs=patients, format="csv"
            )
            for chunk in export.chunks:
                sink.write(chunk)
                rows += chunk.count(b"\n")
            rows -= 1  # the header line
        elif what == "analysis_copy":
            with connection.cursor() as cursor:
                for table, link in ANALYSIS_TABLES:
                    sql = (
                        f"COPY (SELECT t.* FROM {table} t JOIN patients_patient p "
                        f"ON p.id = t.{link} WHERE p.site_id = %s) TO STDOUT WITH CSV HEADER"
                    )
                    cursor.cursor.copy_expert(cursor.mogrify(sql, [site.pk]).decode(), sink)
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    return {
        "what": what,
        "seconds": round(seconds, 2),
        "rows": rows,
        "mib_out": round(sink.size / 2**20, 1),
        "queries": len(queries),
        "peak_rss_mib": round(peak / 1024),
        "rss_added_mib": round((peak - before) / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--results", type=int, default=100_000, help="lab result rows")
    parser.add_argument("-p", "--patients", type=int, default=2_000)
    parser.add_argument("-r", "--runs", type=int, default=3, help="runs of each measure")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to a scratch database")
    _setup()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    from django.db import connection

    from bench.common import Result, write_json

    build(args.patients, args.results)
    runs = ["lab_csv", "lab_json", "odm", "analysis_csv"]
    if connection.vendor == "postgresql":
        runs += ["copy", "analysis_copy"]
    measured: dict[str, list[dict]] = {}
    for what in runs:
        for _ in range(args.runs if what != "odm" else 1):
            output = subprocess.run(
                [sys.executable, __file__, "--measure", what],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            measured.setdefault(what, []).append(json.loads(output.strip().splitlines()[-1]))
    print(f"{'export':13} {'seconds':>8} {'rows':>9} {'MiB out':>8} {'queries':>8} {'peak RSS':>9}")
    for what, runs_of in measured.items():
        r = runs_of[0]
        print(
            f"{what:13} {r['seconds']:8.2f} {r['rows']:9} {r['mib_out']:8.1f} {r['queries']:8} "
            f"{r['peak_rss_mib']:6} MiB (+{r['rss_added_mib']})"
        )

    def seconds(what: str) -> list[float] | None:
        return [r["seconds"] for r in measured[what]] if what in measured else None

    label = f"exports ({args.patients:,} patients, {args.results:,} lab results)"
    results = []
    for what, floor, target in (
        ("lab_csv", "copy", "within 3× of COPY"),
        ("lab_json", "copy", ""),
        ("analysis_csv", "analysis_copy", "within 3× of COPY"),
        ("odm", None, ""),
    ):
        first = measured[what][0]
        result = Result(
            benchmark=label,
            case=what,
            seconds=seconds(what),
            floor=seconds(floor) if floor else None,
            queries=first["queries"],
            peak_mib=max(r["peak_rss_mib"] for r in measured[what]),
            target=target,
            extra={"mib_out": first["mib_out"], "rows": first["rows"]},
        )
        if target and result.ratio is not None:
            result.met = result.ratio <= 3
        results.append(result)
    write_json(args.json, results, meta={"vendor": connection.vendor})


if __name__ == "__main__":
    main()
