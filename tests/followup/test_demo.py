"""The demo follow-up is deterministic, follows the rules and gives meaningful OS and RFS:
deaths and censored patients, resected patients with and without recurrence, a loss to
follow-up."""

import time
from datetime import date
from importlib import import_module

import pytest
from django.conf import settings
from django.db import transaction

from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from followup.selectors import last_known_alive_by_patient
from patients.models import Patient
from surgery.models import Operation
from tests.factories.trial import SiteFactory, StudyFactory
from treatments.models import ChemoCycle
from trial import demo as trial_demo
from trial.roles import sync_role_groups

TODAY = date(2026, 11, 24)
APPS = ("patients", "treatments", "assessments", "surgery", "biobank")


def _dump() -> dict:
    code = "patient__subject_code"
    return {
        "ends": sorted(TreatmentEnd.objects.values_list(code, "ended_on", "reason")),
        "contacts": sorted(
            FollowUpContact.objects.values_list(code, "contacted_on", "reached", "vital_status")
        ),
        "recurrences": sorted(Recurrence.objects.values_list(code, "detected_on", "kind")),
        "deaths": sorted(Death.objects.values_list(code, "died_on", "cause")),
        "lost": sorted(LostToFollowUp.objects.values_list(code, "declared_on", "failed_attempts")),
    }


def _check(snapshot: dict, shared: dict) -> None:
    """Every rule of the services holds across the cohort."""
    deaths = {code: on for code, on, _cause in snapshot["deaths"]}
    operated = dict(Operation.objects.active().values_list("patient__subject_code", "operated_on"))
    ends = {code: on for code, on, _reason in snapshot["ends"]}
    alive_by_id = last_known_alive_by_patient(
        patient_ids=Patient.objects.values_list("pk", flat=True)
    )
    codes = dict(Patient.objects.values_list("pk", "subject_code"))
    for patient_id, on in alive_by_id.items():
        code = codes[patient_id]
        assert on <= TODAY
        if code in deaths:
            assert on <= deaths[code], code
    for code, on, reached, vital in snapshot["contacts"]:
        assert on <= TODAY
        if code in deaths and vital != "dead":
            assert on <= deaths[code], code
        assert reached or vital == "unknown"
    for code, on, kind in snapshot["recurrences"]:
        assert on <= TODAY
        if kind == "recurrence":
            assert operated[code] < on, code
        else:
            assert code not in operated or on <= operated[code], code
    last_cycles = dict(
        ChemoCycle.objects.active()
        .order_by("patient__subject_code", "given_on")
        .values_list("patient__subject_code", "given_on")
    )
    for code, ended_on in ends.items():
        assert ended_on >= last_cycles.get(code, ended_on)
    for code, _on, attempts in snapshot["lost"]:
        assert attempts >= 3
        assert code not in deaths
    statuses = dict(Patient.objects.values_list("subject_code", "status"))
    for code in deaths:
        assert statuses[code] == Patient.Status.DECEASED
    assert shared["followup"].get("death", 0) == len(deaths)


def _seed(patients: int, seed: int) -> tuple[dict, float]:
    with transaction.atomic():
        study = StudyFactory(code=settings.STUDY_CODE)
        SiteFactory(code="CJFH", study=study, name="China-Japan Friendship Hospital")
        sync_role_groups()
        context = trial_demo.setup(seed_value=seed, today=TODAY, patients=patients)
        for app in APPS:
            import_module(f"{app}.demo").seed(context)
        started = time.perf_counter()
        import_module("followup.demo").seed(context)
        elapsed = time.perf_counter() - started
        snapshot = _dump()
        _check(snapshot, context.shared)
        snapshot["enrolled"] = Patient.objects.exclude(enrollment=None).count()
        snapshot["operated"] = set(
            Operation.objects.active().values_list("patient__subject_code", flat=True)
        )
        transaction.set_rollback(True)
    return snapshot, elapsed


@pytest.mark.django_db
def test_the_demo_is_deterministic_and_consistent():
    first, _elapsed = _seed(8, 2025)
    again, _elapsed = _seed(8, 2025)
    assert first == again
    assert first["ends"]
    assert first["contacts"]


@pytest.mark.django_db
def test_the_demo_cohort_has_meaningful_survival_data():
    """A cohort as `seed_demo` makes it: a good share of deaths and of censored patients,
    resected patients with and without a recurrence, progressions, a loss to follow-up and
    failed attempts."""
    snapshot, _elapsed = _seed(30, 2025)
    deaths = {code for code, _on, _cause in snapshot["deaths"]}
    assert 0.2 * snapshot["enrolled"] <= len(deaths) <= 0.75 * snapshot["enrolled"]
    recurred = {code for code, _on, kind in snapshot["recurrences"] if kind == "recurrence"}
    assert recurred
    assert snapshot["operated"] - recurred
    assert any(kind == "progression" for _code, _on, kind in snapshot["recurrences"])
    assert 1 <= len(snapshot["lost"]) <= 2
    failed = sum(1 for row in snapshot["contacts"] if not row[2])
    assert 0.04 * len(snapshot["contacts"]) <= failed <= 0.25 * len(snapshot["contacts"])
