"""Benchmark of the coordinator pages on a large cohort, against a bare Django view (the floor).

Builds N synthetic enrolled patients (default 10,000, tests.factories.visits.synthetic_cohort,
plain bulk-created rows) at a site "BENCHP", plus one long patient: 12 chemotherapy cycles, 6
response evaluations, an MDT decision, the operation and its pathology, postoperative lab
panels on days 1/3/5/7/30 and 24 monthly follow-up contacts; refreshes the protocol calendar of
every patient; then requests, as a coordinator of the site through Django's test Client (the
whole request: middleware, session, permissions, scoping, template), R times each (default 20):

- the patient list (`/patients/`, first page),
- the long patient's page (`/patients/<id>/`),
- the worklist (`/visits/worklist/`),
- the floor: a bare view returning a short HttpResponse through the same middleware stack,

and reports server time (median and min–max), the SQL queries of one request and the ratio
against the floor. Query counts must not grow with the cohort: run it with -n 1000 and
-n 10000 and compare (the tests assert it on small cohorts).

Run it against a SCRATCH database only: it migrates the database given by DATABASE_URL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plm_bench .venv/bin/python bench/pages.py
"""

import argparse
import os
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

SITE_CODE = "BENCHP"

# The floor view and its URL: the project's URLs plus one bare view, used as ROOT_URLCONF.
urlpatterns: list = []


def _floor_view(request):
    from django.http import HttpResponse

    return HttpResponse("ok")


def _long_patient(site, user, today: date):
    """One patient with the long history the issue names, as plain rows (and a services-made
    screening, consent and enrollment)."""
    from assessments.models import LabPanel, LabResult
    from followup.models import FollowUpContact
    from surgery.models import MdtDecision
    from tests.factories.followup import FollowUpContactFactory
    from tests.factories.imaging import ImagingStudyFactory, ResponseEvaluationFactory
    from tests.factories.labs import LabPanelFactory, LabResultFactory
    from tests.factories.patients import enrolled_patient
    from tests.factories.surgery import MdtDecisionFactory, OperationFactory, PathologyFactory
    from tests.factories.treatments import ChemoCycleFactory, RegimenLineFactory

    start = today - timedelta(days=3 * 365)
    patient = enrolled_patient(site=site, user=user, today=start)
    line = RegimenLineFactory(
        patient=patient, regimen="mFOLFIRINOX", cycle_length_days=14, started_on=start
    )
    for number in range(1, 13):
        given = start + timedelta(days=14 * (number - 1))
        ChemoCycleFactory(line=line, patient=patient, cycle_number=number, given_on=given)
        panel = LabPanelFactory(
            patient=patient,
            sampled_on=given - timedelta(days=1),
            context=LabPanel.Context.ON_TREATMENT,
        )
        LabResultFactory(panel=panel)
    for index in range(6):
        on = start + timedelta(days=56 * (index + 1))
        ResponseEvaluationFactory(
            patient=patient,
            evaluated_on=on,
            imaging=ImagingStudyFactory(
                patient=patient, performed_on=on - timedelta(days=2), is_baseline=False
            ),
        )
    mdt_on = start + timedelta(days=180)
    MdtDecisionFactory(
        patient=patient,
        decided_on=mdt_on,
        investigator=user,
        decision=MdtDecision.Decision.RADICAL_SURGERY,
    )
    operated = mdt_on + timedelta(days=14)
    operation = OperationFactory(patient=patient, operated_on=operated)
    PathologyFactory(operation=operation, reported_on=operated + timedelta(days=10))
    for day in (1, 3, 5, 7, 30):
        panel = LabPanelFactory(
            patient=patient,
            sampled_on=operated + timedelta(days=day),
            context=LabPanel.Context.POSTOP,
            postop_day=day,
        )
        LabResultFactory(
            panel=panel,
            analyte="albumin",
            value=Decimal("35"),
            entered_value=Decimal("35"),
            entered_unit="g/L",
            flag=LabResult.Flag.NORMAL,
        )
    for month in range(24):
        FollowUpContactFactory(
            patient=patient,
            contacted_on=operated + timedelta(days=45 + 30 * month),
            mode=FollowUpContact.Mode.PHONE,
        )
    return patient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--patients", type=int, default=10_000)
    parser.add_argument("-r", "--runs", type=int, default=20)
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
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import clear_url_caches, include, path

    from bench.common import QueryCounter, Result, timed, write_json
    from patients.models import Patient
    from tests.factories.trial import UserFactory
    from tests.factories.visits import synthetic_cohort
    from trial.models import Role, Site, Study
    from visits.services import calendar_refresh

    setup_test_environment()
    urlpatterns[:] = [
        path("bench-floor/", _floor_view, name="bench-floor"),
        path("", include("config.urls")),
    ]
    settings.ROOT_URLCONF = __name__
    clear_url_caches()
    # The access matrix (trial/access.py) refuses a URL without a rule: the floor gets one.
    from trial import access

    access.RULES["bench-floor"] = access.Rule(login_only=True)

    call_command("migrate", verbosity=0)
    study = Study.objects.get(code=settings.STUDY_CODE)
    site, _created = Site.objects.get_or_create(
        code=SITE_CODE, defaults={"name": "Pages benchmark (synthetic)", "study": study}
    )
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
    coordinator = UserFactory(roles=[Role.COORDINATOR], sites=[site])
    existing = Patient.objects.filter(site=site).count()
    ids: list[int] = []
    for start in range(existing, args.patients, 2000):
        count = min(2000, args.patients - start)
        ids += synthetic_cohort(site=site, count=count, today=args.today, investigator=investigator)
    long_patient = _long_patient(site, investigator, args.today)
    calendar_refresh(patient_ids=ids + [long_patient.pk], today=args.today)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = Patient.objects.filter(site=site).count()
    print(f"{connection.vendor}: {total} patients at {SITE_CODE}; {args.runs} runs each")

    client = Client()
    client.force_login(coordinator)

    def page(url: str) -> tuple[list[float], int]:
        response = client.get(url)  # warm: template loading, caches
        assert response.status_code == 200, (url, response.status_code)
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            client.get(url)
        return timed(lambda: client.get(url), args.runs), counter.count

    floor, floor_queries = page("/bench-floor/")
    results = []
    cases = [
        ("patient list", "/patients/"),
        ("long patient page", f"/patients/{long_patient.pk}/"),
        ("worklist", "/visits/worklist/"),
    ]
    for label, url in cases:
        seconds, queries = page(url)
        result = Result(
            benchmark=f"coordinator pages ({total:,} patients)",
            case=label,
            seconds=seconds,
            floor=floor,
            queries=queries,
            target="median < 150 ms, constant queries",
        )
        result.met = result.median < 0.150
        results.append(result)
    results.append(
        Result(
            benchmark=f"coordinator pages ({total:,} patients)",
            case="floor: bare Django view",
            seconds=floor,
            queries=floor_queries,
        )
    )
    write_json(args.json, results, meta={"vendor": connection.vendor, "patients": total})


if __name__ == "__main__":
    main()
