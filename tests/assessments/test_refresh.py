"""Values the assessments derive from the chemotherapy follow a cycle that is added or voided
later (trial.derived: treatments tells, assessments refreshes, in the same transaction)."""

from datetime import date, timedelta

import pytest

from assessments.models import LabPanel, ResponseEvaluation
from tests.factories.imaging import evaluation_record, panel_record, study_record
from tests.factories.patients import baselined_patient
from tests.factories.treatments import cycle_given, line_started
from treatments import services as treatment_services

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 24)
DAY0 = date(2026, 6, 1)


def _day(n: int) -> date:
    return DAY0 + timedelta(days=n)


@pytest.fixture
def treated(site_a, coordinator):
    """Four AG cycles, an assessment panel and a PD evaluation after cycle 4."""
    patient = baselined_patient(site=site_a, user=coordinator, today=DAY0)
    study_record(patient, coordinator, _day(1), {"T1": 30, "T2": 20}, baseline=True, today=TODAY)
    line = line_started(patient, user=coordinator, started_on=_day(3), today=TODAY)
    cycles = [
        cycle_given(line, user=coordinator, given_on=_day(3 + 28 * k), today=TODAY)
        for k in range(4)
    ]
    panel = panel_record(patient, coordinator, _day(90), ca19_9=900)
    scan = study_record(patient, coordinator, _day(90), {"T1": 40, "T2": 28}, today=TODAY)
    evaluation = evaluation_record(patient, coordinator, _day(91), scan, panel=panel, today=TODAY)
    return patient, cycles, panel, evaluation


def test_voiding_a_cycle_updates_the_evaluation_and_the_panel(treated, coordinator):
    patient, cycles, panel, evaluation = treated
    assert evaluation.cycles_completed == 4
    treatment_services.cycle_void(cycle=cycles[1], user=coordinator, reason="Entered twice")
    evaluation = ResponseEvaluation.objects.get(pk=evaluation.pk)
    assert evaluation.cycles_completed == 3
    assert evaluation.history.latest("history_id").history_user == coordinator
    assert LabPanel.objects.get(pk=panel.pk).after_cycle == 3


def test_a_cycle_entered_late_counts_in_the_evaluation(site_a, coordinator):
    patient = baselined_patient(site=site_a, user=coordinator, today=DAY0)
    study_record(patient, coordinator, _day(1), {"T1": 30}, baseline=True, today=TODAY)
    line = line_started(patient, user=coordinator, started_on=_day(3), today=TODAY)
    for k in range(3):
        cycle_given(line, user=coordinator, given_on=_day(3 + 28 * k), today=TODAY)
    panel = panel_record(patient, coordinator, _day(100), ca19_9=100)
    scan = study_record(patient, coordinator, _day(100), {"T1": 31}, today=TODAY)
    evaluation = evaluation_record(patient, coordinator, _day(101), scan, panel=panel, today=TODAY)
    assert evaluation.cycles_completed == 3
    # The fourth cycle (day 87) reaches the EDC only after the evaluation was recorded.
    cycle_given(line, user=coordinator, given_on=_day(87), today=TODAY)
    assert ResponseEvaluation.objects.get(pk=evaluation.pk).cycles_completed == 4
    assert LabPanel.objects.get(pk=panel.pk).after_cycle == 4
