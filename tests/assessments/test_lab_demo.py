"""seed_labs: a baseline panel at enrollment with the baseline form's CA19-9, assessment panels
whose CA19-9 follows the planned response, toxicity panels on treatment, conversions exercised."""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from assessments import analytes
from assessments.demo_labs import seed_labs
from assessments.models import LabPanel, LabResult
from tests.factories.labs import cycles_on
from tests.factories.patients import baselined_patient
from treatments.demo import Course, PlannedEvaluation
from trial.demo import DemoContext

TODAY = date(2026, 11, 1)
CREATED = date(2026, 3, 1)  # the patients' registration "today": enrolled 21 Feb 2026


def _context(site, user, ids, courses=None, seed=7) -> DemoContext:
    shared = {"enrolled_patient_ids": ids}
    if courses is not None:
        shared["courses"] = courses
    return DemoContext(
        rng=random.Random(seed),
        today=TODAY,
        patients=len(ids),
        sites=[site],
        users={"coordinator": user, "coordinator2": user},
        shared=shared,
    )


def _course(patient, responses: list[str]) -> Course:
    enrolled_on = patient.enrollment.enrolled_on
    dates = [enrolled_on + timedelta(days=7 + 14 * n) for n in range(4 * len(responses))]
    cycles_on(patient, *dates, regimen="mFOLFIRINOX")
    evaluations = [
        PlannedEvaluation(
            on=dates[4 * k + 3] + timedelta(days=5),
            after_cycle=4 * (k + 1),
            response=response,
            decision="continue",
        )
        for k, response in enumerate(responses)
    ]
    return Course(patient.pk, dates[0], dates, evaluations)


def _ca19_9(panel) -> Decimal:
    return LabResult.objects.get(panel=panel, analyte="ca19_9").value


@pytest.fixture
def patients(site_a, coordinator):
    secretor = baselined_patient(
        site=site_a,
        user=coordinator,
        today=CREATED,
        ca19_9_u_ml=Decimal("845.0"),
        cea_ng_ml=Decimal("12.40"),
        ca125_u_ml=Decimal("51.0"),
    )
    lewis_negative = baselined_patient(
        site=site_a, user=coordinator, today=CREATED, ca19_9_u_ml=Decimal("2.1")
    )
    return secretor, lewis_negative


def test_without_courses_only_baseline_panels(site_a, coordinator, patients):
    seed_labs(_context(site_a, coordinator, [p.pk for p in patients]))
    panels = list(LabPanel.objects.order_by("patient_id"))
    assert [(p.patient_id, p.context, p.sampled_on) for p in panels] == [
        (p.pk, "baseline", p.enrollment.enrolled_on) for p in patients
    ]
    assert _ca19_9(panels[0]) == Decimal("845.0")
    assert _ca19_9(panels[1]) == Decimal("2.1")
    assert LabResult.objects.filter(panel=panels[0]).count() == 26  # all but drain amylase


def test_assessment_panels_follow_the_planned_responses(site_a, coordinator, patients):
    secretor, lewis_negative = patients
    responses = ["PR", "SD", "PD"]
    courses = {p.pk: _course(p, responses) for p in patients}
    seed_labs(_context(site_a, coordinator, [p.pk for p in patients], courses))

    for patient in patients:
        course = courses[patient.pk]
        assessments = list(
            LabPanel.objects.filter(patient=patient, context="assessment").order_by("sampled_on")
        )
        assert len(assessments) == 3
        for panel, evaluation in zip(assessments, course.evaluations, strict=True):
            assert evaluation.on - timedelta(days=3) <= panel.sampled_on <= evaluation.on
            assert panel.after_cycle == evaluation.after_cycle
        on_treatment = LabPanel.objects.filter(patient=patient, context="on_treatment")
        assert 1 <= on_treatment.count() <= 3
        graded = LabResult.objects.filter(
            panel__in=on_treatment, analyte="anc", ctcae_grade__in=[1, 2, 3]
        )
        assert graded.count() == on_treatment.count()  # neutropenia grade 1–3 each time

    changes = [_ca19_9(p) / Decimal("845.0") - 1 for p in _assessments(secretor)]
    assert Decimal("-0.95") <= changes[0] <= Decimal("-0.5")  # PR
    assert Decimal("-0.4") <= changes[1] <= Decimal("0.2")  # SD
    assert Decimal("0.3") <= changes[2] <= Decimal("3.0")  # PD
    assert all(_ca19_9(p) < 5 for p in _assessments(lewis_negative))


def _assessments(patient):
    return LabPanel.objects.filter(patient=patient, context="assessment").order_by("sampled_on")


def test_a_larger_cohort_shows_conversions_and_abnormal_liver_baselines(site_a, coordinator):
    patients = [
        baselined_patient(
            site=site_a, user=coordinator, today=CREATED, ca19_9_u_ml=Decimal(100 + n)
        )
        for n in range(12)
    ]
    seed_labs(_context(site_a, coordinator, [p.pk for p in patients], seed=2025))
    results = list(LabResult.objects.filter(panel__context="baseline"))
    converted = [r for r in results if r.entered_unit != analytes.get(r.analyte).unit]
    share = len(converted) / len(results)
    assert 0.03 < share < 0.2  # about one value in ten typed in another unit
    for result in converted:
        analyte = analytes.get(result.analyte)
        assert result.value == analytes.to_si(analyte, result.entered_value, result.entered_unit)
    high_alt = sum(1 for r in results if r.analyte == "alt" and r.flag == "H")
    assert 1 <= high_alt <= 10  # ~40% with liver tests above the ULN
