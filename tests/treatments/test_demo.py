"""The demo chemotherapy is deterministic (same seed and today, same rows) and its plan of
evaluations is one assessments/demo.py can follow."""

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.db import transaction

from patients import demo as patients_demo
from patients.models import Patient
from tests.factories.trial import SiteFactory, StudyFactory
from treatments import demo
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine
from trial import demo as trial_demo
from trial.roles import sync_role_groups

TODAY = date(2026, 11, 24)
DECISIONS = {"continue", "adjust", "refer_mdt", "bsc"}


def _dump() -> dict:
    """Every treatments row by natural keys (subject code, line, cycle), without ids or times."""
    lines = list(
        RegimenLine.objects.select_related("patient").values_list(
            "patient__subject_code",
            "line_number",
            "regimen",
            "regimen_other",
            "cycle_length_days",
            "started_on",
            "change_reason",
            "created_by__username",
        )
    )
    cycles = list(
        ChemoCycle.objects.values_list(
            "patient__subject_code",
            "line__line_number",
            "cycle_number",
            "given_on",
            "weight_kg",
            "bsa_m2",
            "delay_days",
            "delay_reason",
            "dose_reduced",
            "dose_reduction_reason",
            "gcsf",
        )
    )
    doses = list(
        CycleDose.objects.values_list(
            "cycle__patient__subject_code",
            "cycle__given_on",
            "drug",
            "drug_other",
            "planned_mg_m2",
            "given_mg",
            "planned_days",
            "given_days",
        )
    )
    events = list(
        AdverseEvent.objects.values_list(
            "patient__subject_code",
            "term",
            "grade",
            "onset_on",
            "resolved_on",
            "serious",
            "attribution",
            "action_taken",
            "outcome",
            "line__line_number",
        )
    )
    return {
        name: sorted(rows)
        for name, rows in (
            ("lines", lines),
            ("cycles", cycles),
            ("doses", doses),
            ("events", events),
        )
    }


def _seed(patients: int, seed: int) -> tuple[dict, dict, dict]:
    """Run the demo up to treatments, snapshot it, and roll it back."""
    with transaction.atomic():
        # The study, site and role groups come from migrations; a flushed test database may lack
        # them, so make sure they are there (idempotent).
        SiteFactory(code="CJFH", study=StudyFactory(code=settings.STUDY_CODE))
        sync_role_groups()
        context = trial_demo.setup(seed_value=seed, today=TODAY, patients=patients)
        patients_demo.seed(context)
        demo.seed(context)
        codes = dict(Patient.objects.values_list("pk", "subject_code"))
        courses = {codes[pk]: course for pk, course in context.shared["courses"].items()}
        snapshot = _dump()
        withdrawals = {
            p.subject_code: p.withdrawal
            for p in Patient.objects.filter(withdrawal__isnull=False).select_related("withdrawal")
        }
        transaction.set_rollback(True)
    return snapshot, courses, withdrawals


@pytest.mark.django_db
def test_the_demo_is_deterministic_and_follows_its_plan():
    first, courses, withdrawals = _seed(12, 2025)
    again, courses_again, _ = _seed(12, 2025)
    assert first == again
    assert {
        code: (c.first_cycle_on, c.cycle_dates, c.evaluations) for code, c in courses.items()
    } == {
        code: (c.first_cycle_on, c.cycle_dates, c.evaluations) for code, c in courses_again.items()
    }
    assert first["cycles"], "the demo gave no chemotherapy"
    assert all(event[2] <= 4 for event in first["events"])  # no grade 5 without death records

    by_patient: dict[str, list] = {}
    for cycle in first["cycles"]:
        by_patient.setdefault(cycle[0], []).append(cycle[3])
    assert set(by_patient) == set(courses)
    for code, course in courses.items():
        dates = sorted(by_patient[code])
        assert course.cycle_dates == dates
        assert course.first_cycle_on == dates[0]
        assert all(d <= TODAY for d in dates)
        if code in withdrawals:
            assert dates[-1] < withdrawals[code].withdrawn_on
        previous_after = None
        for index, evaluation in enumerate(course.evaluations):
            after = evaluation.after_cycle
            cycle_on = dates[after - 1]
            assert timedelta(days=1) <= evaluation.on - cycle_on <= timedelta(days=7)
            assert evaluation.on <= TODAY
            if after < len(dates):
                assert evaluation.on < dates[after]  # before the next cycle
            assert evaluation.response in {"CR", "PR", "SD", "PD"}
            assert evaluation.decision in DECISIONS
            if index == 0:
                assert after in (4, 5, 6)
            else:
                step = after - previous_after
                assert step == (2 if course.evaluations[0].response == "PD" else 4)
            previous_after = after


@pytest.mark.django_db
def test_a_different_seed_gives_a_different_cohort():
    small = _seed(4, 2025)[0]
    assert small["cycles"]
    assert small != _seed(4, 7)[0]
