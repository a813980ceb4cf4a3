"""The analysis dataset (analytics.dataset.build, analytics.selectors): every outcome derived
on hand-built timelines recorded through the real services, voided records ignored, site
scoping, and a query count that does not grow with the number of patients.

The patients are enrolled on 21 Feb 2026 (tests.factories.followup / surgery) and operated on
20 Apr 2026 (58 days later) when they are; the services run "today" = 24 Nov 2026.
"""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import dataset, selectors
from assessments.models import LabPanel
from followup.models import Recurrence
from followup.services import death_void, recurrence_void
from patients import services as patient_services
from patients.models import Enrollment, Patient, Withdrawal
from surgery import services as surgery_services
from surgery.models import Complication, Discharge, Pathology
from tests.analytics.synthetic import synthetic_outcomes
from tests.factories.followup import (
    ENROLLED_ON,
    TODAY,
    contact_record,
    death_record,
    followup_patient,
    lost_record,
    recurrence_record,
)
from tests.factories.imaging import evaluation_record, panel_record, study_record
from tests.factories.patients import baselined_patient, enrolled_patient, screened_patient
from tests.factories.surgery import OPERATED_ON, mdt_record, operated_patient, operation_record
from tests.factories.treatments import cycle_given, line_started
from tests.factories.trial import UserFactory
from tests.factories.visits import synthetic_cohort
from trial.models import Cohort, Role

pytestmark = pytest.mark.django_db

SURGERY_DAY = (OPERATED_ON - ENROLLED_ON).days  # 58


def _days(end: date, start: date = ENROLLED_ON) -> int:
    return (end - start).days


def _row(user, patient: Patient, origin: str = "enrollment") -> dict:
    rows = [
        r
        for r in selectors.analysis_rows(user=user, origin=origin)
        if r["subject_code"] == patient.subject_code
    ]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def patient(site_a, coordinator) -> Patient:
    return followup_patient(site=site_a, user=coordinator)


@pytest.fixture
def operated(site_a, investigator) -> Patient:
    return operated_patient(site=site_a, investigator=investigator).patient


# --- overall survival ------------------------------------------------------------------------


def test_censored_at_the_last_contact_that_reached_the_patient(patient, coordinator):
    contact_record(patient, coordinator, on=date(2026, 6, 1))
    contact_record(patient, coordinator, on=date(2026, 7, 1), reached=False)  # says nothing
    row = _row(coordinator, patient)
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 6, 1)), 0) == (100, 0)
    assert row["last_known_alive"] == date(2026, 6, 1)
    assert row["os_months"] == round(100 / 30.4375, 2)
    assert (row["rfs_days"], row["rfs_event"], row["resected"]) == (None, None, False)
    assert row["death_on"] is None
    assert row["exclusion"] == ""


def test_death_before_any_recurrence_ends_os_and_rfs(operated, investigator):
    death_record(operated, investigator, on=date(2026, 8, 1))
    row = _row(investigator, operated)
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 8, 1)), 1) == (161, 1)
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 8, 1), OPERATED_ON), 1)
    assert row["death_on"] == row["last_known_alive"] == date(2026, 8, 1)
    assert row["death_cause"] == "progression"
    assert row["recurrence_on"] is None


def test_recurrence_then_death(operated, investigator):
    recurrence_record(operated, investigator, on=date(2026, 7, 15), kind="recurrence")
    death_record(operated, investigator, on=date(2026, 9, 1))
    row = _row(investigator, operated)
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 7, 15), OPERATED_ON), 1)
    assert row["rfs_days"] == 86
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 9, 1)), 1) == (192, 1)
    assert row["recurrence_on"] == date(2026, 7, 15)
    assert (row["recurrence_kind"], row["recurrence_sites"]) == ("recurrence", "liver")


def test_resected_alive_without_recurrence_is_censored_for_rfs(operated, investigator):
    contact_record(operated, investigator, on=date(2026, 10, 1))
    row = _row(investigator, operated)
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 10, 1), OPERATED_ON), 0)
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 10, 1)), 0)


def test_progression_before_the_operation_does_not_end_rfs(site_a, investigator):
    patient, evaluation = _referred(site_a, investigator)
    recurrence_record(patient, investigator, on=date(2026, 3, 25), kind="progression")
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    operation_record(patient, investigator, decision=decision)
    contact_record(patient, investigator, on=date(2026, 9, 1))
    row = _row(investigator, patient)
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 9, 1), OPERATED_ON), 0)
    # The first event of the patient is still reported, with its kind.
    assert (row["recurrence_on"], row["recurrence_kind"]) == (date(2026, 3, 25), "progression")


def test_withdrawal_censors_at_the_last_date_known_alive(patient, coordinator):
    contact_record(patient, coordinator, on=date(2026, 4, 1))
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 5, 1),
            kind=Withdrawal.Kind.DROP_OUT,
            reason=Withdrawal.Reason.PATIENT_DECISION,
            last_medication_on=date(2026, 4, 1),
        ),
        user=coordinator,
        today=TODAY,
    )
    row = _row(coordinator, patient)
    assert row["withdrawn_on"] == row["last_known_alive"] == date(2026, 5, 1)
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 5, 1)), 0) == (69, 0)


def test_lost_to_follow_up_is_censored_at_the_last_successful_contact(patient, coordinator):
    contact_record(patient, coordinator, on=date(2026, 4, 1))
    for on in (date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)):
        contact_record(patient, coordinator, on=on, reached=False)
    lost_record(patient, coordinator, on=date(2026, 7, 15))
    patient.refresh_from_db()
    assert patient.status == Patient.Status.LOST
    row = _row(coordinator, patient)
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 4, 1)), 0) == (39, 0)
    assert row["last_known_alive"] == date(2026, 4, 1)


def test_retrospective_patient_with_partial_data(site_a, coordinator):
    patient = enrolled_patient(
        site=site_a, user=coordinator, today=date(2026, 3, 1), cohort=Cohort.RETROSPECTIVE
    )
    contact_record(patient, coordinator, on=date(2026, 6, 1))
    row = _row(coordinator, patient)
    assert row["cohort"] == "retrospective"
    nones = (
        "ecog", "primary_site", "liver_mets_count", "liver_mets_largest_mm", "ca19_9_baseline",
        "cea_baseline", "regimen", "first_cycle_on", "best_response", "ca19_9_change_pct_first",
        "progression_at_first", "mdt_decision", "surgery_on", "surgery_days", "procedures",
        "r_status", "clavien_dindo_max", "popf_grade", "length_of_stay_days", "mortality_90d",
        "adjuvant_cycles", "recurrence_on", "death_on", "withdrawn_on", "diagnosed_on",
        "rfs_days", "rfs_event",
    )  # fmt: skip
    assert {name: row[name] for name in nones} == dict.fromkeys(nones)
    assert (row["cycles_before_surgery"], row["resected"]) == (0, False)
    assert (row["os_days"], row["os_event"], row["exclusion"]) == (100, 0, "")
    # Without cycles or a diagnosis date those origins give no OS time, and say why.
    for origin in ("first_cycle", "diagnosis"):
        row = _row(coordinator, patient, origin)
        assert (row["origin"], row["origin_on"], row["os_days"], row["os_event"]) == (
            origin, None, None, None
        )  # fmt: skip
        assert row["exclusion"] == "no_origin_date"


def test_each_origin(site_a, investigator):
    patient = baselined_patient(site=site_a, user=investigator, today=date(2026, 3, 1))
    enrollment = Enrollment.objects.get(patient=patient)
    enrollment.diagnosed_on = date(2026, 1, 10)
    patient_services.enrollment_update(
        enrollment=enrollment, user=investigator, expected_version=enrollment.version,
        reason="Diagnosis date from the pathology report.", today=TODAY,
    )  # fmt: skip
    line = line_started(patient, user=investigator, started_on=date(2026, 3, 1), today=TODAY)
    cycle_given(line, user=investigator, given_on=date(2026, 3, 1), today=TODAY)
    cycle_given(line, user=investigator, given_on=date(2026, 3, 29), today=TODAY)
    contact_record(patient, investigator, on=date(2026, 6, 1))
    expected = {
        "enrollment": (ENROLLED_ON, 100),
        "diagnosis": (date(2026, 1, 10), 142),
        "first_cycle": (date(2026, 3, 1), 92),
    }
    for origin, (origin_on, os_days) in expected.items():
        row = _row(investigator, patient, origin)
        assert (row["origin"], row["origin_on"], row["os_days"]) == (origin, origin_on, os_days)
        assert row["first_cycle_on"] == date(2026, 3, 1)
        assert row["diagnosed_on"] == date(2026, 1, 10)


@pytest.mark.parametrize(
    ("died_on", "within_90"),
    [(OPERATED_ON + timedelta(days=90), True), (OPERATED_ON + timedelta(days=91), False)],
)
def test_90_day_mortality_counts_from_the_operation(operated, investigator, died_on, within_90):
    death_record(operated, investigator, on=died_on)
    row = _row(investigator, operated)
    assert row["mortality_90d"] is within_90
    assert row["surgery_days"] == SURGERY_DAY


def test_90_day_mortality_is_none_without_an_operation(patient, coordinator):
    death_record(patient, coordinator, on=date(2026, 4, 1))
    row = _row(coordinator, patient)
    assert row["mortality_90d"] is None
    assert (row["os_days"], row["os_event"]) == (39, 1)


# --- treatment and surgery -------------------------------------------------------------------


def _referred(site, investigator):
    """A baselined patient enrolled on 21 Feb 2026 with an AG line (cycles on 23 Feb and 23
    Mar), CA19-9 800 U/mL at baseline, and evaluations of 10 Mar (SD, CA19-9 300: -62.5%) and
    20 Mar 2026 (PR, referred to the MDT), all through the services."""
    patient = baselined_patient(site=site, user=investigator, today=date(2026, 3, 1))
    line = line_started(patient, user=investigator, started_on=date(2026, 2, 23), today=TODAY)
    for on in (date(2026, 2, 23), date(2026, 3, 23)):
        cycle_given(line, user=investigator, given_on=on, today=TODAY)
    panel_record(patient, investigator, ENROLLED_ON, context=LabPanel.Context.BASELINE, ca19_9=800)
    study_record(patient, investigator, ENROLLED_ON, {"T1": 30, "T2": 20}, baseline=True)
    first = study_record(patient, investigator, date(2026, 3, 9), {"T1": 27, "T2": 18})  # -10%
    evaluation_record(
        patient,
        investigator,
        date(2026, 3, 10),
        first,
        panel=panel_record(patient, investigator, date(2026, 3, 9), ca19_9=300),
    )
    second = study_record(patient, investigator, date(2026, 3, 18), {"T1": 18, "T2": 12})  # -40%
    evaluation = evaluation_record(
        patient, investigator, date(2026, 3, 20), second, decision="refer_mdt"
    )
    patient.line = line
    return patient, evaluation


@pytest.fixture
def surgical_course(site_a, investigator):
    """Cycles before surgery, the operation (PD + liver wedge), pathology R0 pancreas / R1
    liver, complications Clavien-Dindo II and IIIa, discharge on 2 May and two adjuvant
    cycles."""
    patient, evaluation = _referred(site_a, investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    operation = operation_record(
        patient, investigator, decision=decision, liver_wedge=True, liver_lesions_resected=1
    )
    surgery_services.pathology_save(
        pathology=Pathology(
            operation=operation, reported_on=date(2026, 4, 27), ypt="ypT2", ypn="ypN1",
            margin_pancreas="R0", margin_liver="R1", nodes_examined=18, nodes_positive=2,
            regression_grade=2, differentiation="moderate", perineural_invasion=False,
            lymphovascular_invasion=False,
        ),
        user=investigator, today=TODAY,
    )  # fmt: skip
    complications = [
        surgery_services.complication_save(
            complication=Complication(
                operation=operation, onset_on=on, kind=kind, clavien_dindo=grade
            ),
            user=investigator,
            today=TODAY,
        )
        for on, kind, grade in (
            (date(2026, 4, 24), Complication.Kind.SSI, "II"),
            (date(2026, 4, 26), Complication.Kind.ABSCESS, "IIIa"),
        )
    ]
    surgery_services.discharge_save(
        discharge=Discharge(operation=operation, discharged_on=date(2026, 5, 2)),
        user=investigator,
        today=TODAY,
    )
    for on in (date(2026, 5, 20), date(2026, 6, 17)):
        cycle_given(patient.line, user=investigator, given_on=on, today=TODAY)
    return patient, complications


def test_treatment_and_surgery_columns(surgical_course, investigator):
    patient, _complications = surgical_course
    row = _row(investigator, patient)
    assert {k: row[k] for k in (
        "regimen", "first_cycle_on", "cycles_before_surgery", "adjuvant_cycles", "best_response",
        "ca19_9_change_pct_first", "progression_at_first", "mdt_decision", "resected",
        "surgery_on", "surgery_days", "procedures", "r_status", "ypt", "ypn",
        "clavien_dindo_max", "popf_grade", "length_of_stay_days", "ecog", "liver_mets_count",
        "liver_mets_largest_mm", "liver_mets_distribution", "primary_site",
    )} == {
        "regimen": "AG",
        "first_cycle_on": date(2026, 2, 23),
        "cycles_before_surgery": 2,
        "adjuvant_cycles": 2,
        "best_response": "PR",  # better than the SD of the first evaluation
        "ca19_9_change_pct_first": -62.5,
        "progression_at_first": False,
        "mdt_decision": "radical_surgery",
        "resected": True,
        "surgery_on": OPERATED_ON,
        "surgery_days": SURGERY_DAY,
        "procedures": "pd+wedge",
        "r_status": "R1",  # the worse of the two margins
        "ypt": "ypT2",
        "ypn": "ypN1",
        "clavien_dindo_max": "IIIa",
        "popf_grade": None,  # no fistula recorded
        "length_of_stay_days": 12,
        "ecog": 1,
        "liver_mets_count": 2,
        "liver_mets_largest_mm": 15.0,
        "liver_mets_distribution": "unilobar",
        "primary_site": "head",
    }  # fmt: skip
    # The last adjuvant cycle is the last date known alive.
    assert (row["os_days"], row["os_event"]) == (_days(date(2026, 6, 17)), 0)
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 6, 17), OPERATED_ON), 0)


def test_voided_records_are_ignored(surgical_course, investigator):
    patient, complications = surgical_course
    recurrence = recurrence_record(patient, investigator, on=date(2026, 7, 15), kind="recurrence")
    death = death_record(patient, investigator, on=date(2026, 9, 1))
    row = _row(investigator, patient)
    assert (row["rfs_days"], row["rfs_event"], row["os_event"]) == (86, 1, 1)

    surgery_services.complication_void(
        complication=complications[1], user=investigator, reason="Entered for another patient."
    )
    recurrence_void(recurrence=recurrence, user=investigator, reason="Imaging re-read: no lesion.")
    row = _row(investigator, patient)
    assert row["clavien_dindo_max"] == "II"
    assert (row["rfs_days"], row["rfs_event"]) == (_days(date(2026, 9, 1), OPERATED_ON), 1)
    assert row["recurrence_on"] is None

    death.refresh_from_db()
    death_void(death=death, user=investigator, reason="Wrong patient.")
    row = _row(investigator, patient)
    assert (row["death_on"], row["os_event"]) == (None, 0)
    # Censored at the last record still standing: the second adjuvant cycle.
    assert row["os_days"] == _days(date(2026, 6, 17))
    assert Recurrence.objects.filter(patient=patient).count() == 1  # voided, not deleted


# --- scoping, shape and queries --------------------------------------------------------------


def test_rows_are_scoped_to_the_users_sites_and_to_enrolled_patients(
    site_a, site_b, coordinator, coordinator_b, investigator, statistician
):
    a = followup_patient(site=site_a, user=coordinator)
    b = followup_patient(site=site_b, user=coordinator_b)
    screened_patient(site=site_a, user=coordinator, today=date(2026, 3, 1))  # not enrolled

    def codes(user):
        return [
            row["subject_code"] for row in selectors.analysis_rows(user=user, origin="enrollment")
        ]  # noqa: E501

    assert codes(investigator) == [a.subject_code]
    assert codes(coordinator_b) == [b.subject_code]
    assert codes(statistician) == sorted([a.subject_code, b.subject_code])
    assert codes(UserFactory(roles=[Role.STATISTICIAN])) == []
    with pytest.raises(ValueError, match="birth"):
        selectors.analysis_rows(user=statistician, origin="birth")


def test_every_row_has_the_documented_columns_and_the_frame_keeps_them(
    site_a, coordinator, investigator
):
    followup_patient(site=site_a, user=coordinator)
    rows = selectors.analysis_rows(user=investigator)
    assert [list(row) for row in rows] == [list(dataset.COLUMNS)]
    frame = selectors.analysis_frame(user=investigator)
    assert list(frame.columns) == list(dataset.COLUMNS)
    assert len(frame) == 1
    empty = selectors.analysis_frame(user=UserFactory())
    assert list(empty.columns) == list(dataset.COLUMNS)
    assert len(empty) == 0


def test_build_query_count_does_not_grow_with_patients(site_a):
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_a])
    counts = []
    for count in (5, 35):  # 5, then 40 patients
        ids = synthetic_cohort(site=site_a, count=count, today=TODAY, investigator=investigator)
        synthetic_outcomes(patient_ids=ids, today=TODAY, seed=count)
        with CaptureQueriesContext(connection) as captured:
            rows = dataset.build(patients=Patient.objects.filter(site=site_a))
        counts.append(len(captured))
        assert len(rows) == Patient.objects.filter(site=site_a).count()
    assert counts[0] == counts[1], counts
    assert counts[1] <= 35
