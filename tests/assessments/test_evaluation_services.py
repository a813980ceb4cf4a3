"""Response evaluations: refusals (field-level, nothing saved) and derivations — cycles,
sequence, RECIST response, CA19-9 change and the uninformative flag, progression at the first
evaluation and the 2-cycle interval it brings, recomputed when an earlier evaluation changes."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from assessments.models import LabPanel, ResponseEvaluation
from assessments.selectors.imaging import evaluations, window_warning
from assessments.services.imaging import evaluation_save, evaluation_void, evaluations_refresh
from patients import services as patient_services
from patients.models import Withdrawal
from tests.factories.imaging import (
    ENROLLED_TODAY,
    TODAY,
    cycles_record,
    evaluation_record,
    panel_record,
    study_record,
)
from tests.factories.patients import baselined_patient
from trial.validation import fmt

D = Decimal
FIRST_CYCLE = date(2026, 1, 8)


@pytest.fixture
def patient(site_a, coordinator):
    patient = baselined_patient(
        site=site_a, user=coordinator, today=ENROLLED_TODAY, ca19_9_u_ml=D("845")
    )
    study_record(patient, coordinator, date(2026, 1, 5), {"T1": 50, "T2": 50}, baseline=True)
    cycles_record(patient, coordinator, FIRST_CYCLE, 12)  # every 14 days to 4 Jun 2026
    return patient


@pytest.fixture
def imaging(patient, coordinator):
    """Follow-up after 4 cycles (the 4th was on 19 Feb): a partial response."""
    return study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})


def _state() -> tuple:
    return ResponseEvaluation.objects.count(), ResponseEvaluation.history.count()


def _refused(evaluation: ResponseEvaluation, user, field: str, message: str, today=TODAY):
    before = _state()
    with pytest.raises(ValidationError) as caught:
        evaluation_save(evaluation=evaluation, user=user, today=today)
    assert message in caught.value.message_dict.get(field, []), caught.value.message_dict
    assert _state() == before


def _evaluation(patient, on, imaging=None, panel=None) -> ResponseEvaluation:
    return ResponseEvaluation(
        patient=patient, evaluated_on=on, imaging=imaging, lab_panel=panel, decision="continue"
    )


# --- refusals -------------------------------------------------------------------------------


def test_an_evaluation_without_imaging_is_refused(patient, coordinator):
    _refused(
        _evaluation(patient, date(2026, 3, 3)),
        coordinator,
        "imaging",
        "Link the imaging study this evaluation rests on: an evaluation without its imaging "
        "cannot be saved.",
    )


def test_imaging_of_another_patient_is_refused(patient, coordinator, site_a):
    other = baselined_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)
    study_record(other, coordinator, date(2026, 1, 5), {"T1": 40}, baseline=True)
    theirs = study_record(other, coordinator, date(2026, 3, 2), {"T1": 30})
    _refused(
        _evaluation(patient, date(2026, 3, 3), theirs),
        coordinator,
        "imaging",
        "This imaging study belongs to another patient.",
    )


def test_the_baseline_study_cannot_be_evaluated(patient, coordinator):
    baseline = patient.imaging_studies.get(is_baseline=True)
    _refused(
        _evaluation(patient, date(2026, 1, 6), baseline),
        coordinator,
        "imaging",
        "The study of %s is the RECIST baseline, which has no response: link the follow-up "
        "study of this evaluation." % fmt(date(2026, 1, 5)),
    )


def test_imaging_after_the_evaluation_is_refused(patient, coordinator, imaging):
    _refused(
        _evaluation(patient, date(2026, 3, 1), imaging),
        coordinator,
        "imaging",
        "The imaging (%s) is after the evaluation (%s)."
        % (fmt(imaging.performed_on), fmt(date(2026, 3, 1))),
    )


def test_imaging_more_than_30_days_before_is_refused(patient, coordinator, imaging):
    on = date(2026, 4, 2)  # 31 days after the imaging
    _refused(
        _evaluation(patient, on, imaging),
        coordinator,
        "imaging",
        "The imaging (%s) is more than 30 days before the evaluation (%s): an evaluation rests "
        "on imaging done for it." % (fmt(imaging.performed_on), fmt(on)),
    )
    # 30 days is accepted.
    saved = evaluation_record(patient, coordinator, date(2026, 4, 1), imaging)
    assert saved.pk


def test_imaging_already_used_by_another_evaluation_is_refused(patient, coordinator, imaging):
    evaluation_record(patient, coordinator, date(2026, 3, 3), imaging)
    _refused(
        _evaluation(patient, date(2026, 3, 4), imaging),
        coordinator,
        "imaging",
        "This imaging study is already linked to the evaluation of %s." % fmt(date(2026, 3, 3)),
    )


def test_a_lab_panel_of_another_patient_is_refused(patient, coordinator, imaging, site_a):
    other = baselined_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)
    theirs = panel_record(other, coordinator, date(2026, 3, 1), ca19_9=100)
    _refused(
        _evaluation(patient, date(2026, 3, 3), imaging, theirs),
        coordinator,
        "lab_panel",
        "This lab panel belongs to another patient.",
    )


def test_a_future_evaluation_is_refused(patient, coordinator, imaging):
    _refused(
        _evaluation(patient, date(2026, 3, 3), imaging),
        coordinator,
        "evaluated_on",
        "%s is in the future (today is %s)." % (fmt(date(2026, 3, 3)), fmt(date(2026, 3, 2))),
        today=date(2026, 3, 2),
    )


def test_an_evaluation_after_the_withdrawal_is_refused(patient, coordinator, imaging):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 3, 2),
            kind="drop_out",
            reason="patient_decision",
            last_medication_on=date(2026, 2, 19),
        ),
        user=coordinator,
        today=TODAY,
    )
    _refused(
        _evaluation(patient, date(2026, 3, 3), imaging),
        coordinator,
        "evaluated_on",
        "%s is after the patient's withdrawal (%s)."
        % (fmt(date(2026, 3, 3)), fmt(date(2026, 3, 2))),
    )


# --- derivations ----------------------------------------------------------------------------


def test_the_derived_values_of_a_first_evaluation(patient, coordinator, imaging):
    panel_record(
        patient, coordinator, date(2026, 1, 6), context=LabPanel.Context.BASELINE, ca19_9=900
    )
    panel = panel_record(patient, coordinator, date(2026, 3, 1), ca19_9="315.5")
    evaluation = evaluation_record(
        patient, coordinator, date(2026, 3, 3), imaging, panel=panel, decision="continue"
    )
    evaluation.refresh_from_db()
    assert evaluation.cycles_completed == 4  # 8 Jan, 22 Jan, 5 Feb, 19 Feb
    assert evaluation.sequence == 1
    assert evaluation.recist_response == "PR"
    # The baseline-context panel wins over the baseline form's 845.
    assert (evaluation.ca19_9_baseline, evaluation.ca19_9_value) == (D("900.0"), D("315.5"))
    assert evaluation.ca19_9_change_pct == D("-64.9")
    assert evaluation.ca19_9_uninformative is False
    assert (evaluation.progression_at_first, evaluation.interval_cycles) == (False, 4)
    assert evaluation.status == "complete"


def test_without_a_baseline_panel_the_baseline_form_gives_the_ca19_9_baseline(
    patient, coordinator, imaging
):
    panel = panel_record(patient, coordinator, date(2026, 3, 1), ca19_9="1014")
    evaluation = evaluation_record(patient, coordinator, date(2026, 3, 3), imaging, panel=panel)
    evaluation.refresh_from_db()
    assert (evaluation.ca19_9_baseline, evaluation.ca19_9_change_pct) == (D("845.0"), D("20.0"))


@pytest.mark.parametrize(
    ("baseline_ca19_9", "flagged"), [("4.9", True), ("5.0", False), (None, True)]
)
def test_a_lewis_negative_or_missing_baseline_ca19_9_is_uninformative(
    site_a, coordinator, baseline_ca19_9, flagged
):
    patient = baselined_patient(
        site=site_a,
        user=coordinator,
        today=ENROLLED_TODAY,
        ca19_9_u_ml=None if baseline_ca19_9 is None else D(baseline_ca19_9),
    )
    study_record(patient, coordinator, date(2026, 1, 5), {"T1": 50}, baseline=True)
    imaging = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 45})
    panel = panel_record(patient, coordinator, date(2026, 3, 1), ca19_9="3.1")
    evaluation = evaluation_record(patient, coordinator, date(2026, 3, 3), imaging, panel=panel)
    evaluation.refresh_from_db()
    assert evaluation.ca19_9_uninformative is flagged
    assert evaluation.ca19_9_value == D("3.1")
    # A percentage of a near-zero baseline would be over-read: none is stored when flagged.
    assert (evaluation.ca19_9_change_pct is None) is flagged


def test_progression_at_the_first_evaluation_switches_to_every_2_cycles(patient, coordinator):
    first_imaging = study_record(
        patient, coordinator, date(2026, 3, 2), {"T1": 50, "T2": 50}, new_lesions=True
    )
    first = evaluation_record(
        patient, coordinator, date(2026, 3, 3), first_imaging, decision="adjust"
    )
    assert (first.recist_response, first.progression_at_first, first.interval_cycles) == (
        "PD",
        True,
        2,
    )
    second_imaging = study_record(patient, coordinator, date(2026, 3, 30), {"T1": 45, "T2": 45})
    second = evaluation_record(patient, coordinator, date(2026, 3, 31), second_imaging)
    assert (second.sequence, second.cycles_completed) == (2, 6)
    assert (second.recist_response, second.progression_at_first, second.interval_cycles) == (
        "SD",
        True,
        2,
    )


def test_an_earlier_evaluation_changes_the_later_ones(patient, coordinator, imaging):
    later_imaging = study_record(patient, coordinator, date(2026, 4, 27), {"T1": 28, "T2": 28})
    later = evaluation_record(patient, coordinator, date(2026, 4, 28), later_imaging)
    assert (later.sequence, later.interval_cycles, later.progression_at_first) == (1, 4, False)

    # An earlier evaluation with progression is recorded afterwards (entered late).
    early_imaging = study_record(
        patient, coordinator, date(2026, 2, 25), {"T1": 50, "T2": 50}, new_lesions=True
    )
    early = evaluation_record(patient, coordinator, date(2026, 2, 26), early_imaging)
    later.refresh_from_db()
    assert (early.sequence, early.interval_cycles) == (1, 2)
    assert (later.sequence, later.interval_cycles, later.progression_at_first) == (2, 2, True)
    row = later.history.latest("history_date", "history_id")
    assert (row.history_change_reason, row.history_user) == ("Evaluation recomputed", coordinator)

    # Voiding the early one renumbers and restores the 4-cycle interval.
    evaluation_void(evaluation=early, user=coordinator, reason="Entered twice", expected_version=1)
    later.refresh_from_db()
    assert (later.sequence, later.interval_cycles, later.progression_at_first) == (1, 4, False)


def test_editing_an_evaluation_recomputes_its_cycle_count(patient, coordinator, imaging):
    evaluation = evaluation_record(patient, coordinator, date(2026, 3, 3), imaging)
    evaluation = ResponseEvaluation.objects.get(pk=evaluation.pk)
    evaluation.evaluated_on = date(2026, 3, 6)  # the 5th cycle was on 5 Mar
    evaluation.decision = "refer_mdt"
    saved = evaluation_save(
        evaluation=evaluation,
        user=coordinator,
        expected_version=1,
        reason="Date of the MDT meeting",
        today=TODAY,
    )
    assert (saved.cycles_completed, saved.version, saved.decision) == (5, 2, "refer_mdt")


def test_a_cycle_recorded_later_is_counted_after_a_refresh(patient, coordinator, imaging):
    evaluation = evaluation_record(patient, coordinator, date(2026, 3, 3), imaging)
    assert evaluation.cycles_completed == 4
    # A cycle given on 26 Feb was entered late, on another line.
    cycles_record(patient, coordinator, date(2026, 2, 26), 1, number=2)
    evaluations_refresh(patient=patient, user=coordinator)
    evaluation.refresh_from_db()
    assert (evaluation.cycles_completed, evaluation.version) == (5, 2)


# --- the protocol window (shown, never refused) ----------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "cycles", "previous", "interval", "warned"),
    [
        (1, 3, None, 4, True),
        (1, 4, None, 4, False),
        (1, 6, None, 4, False),
        (1, 7, None, 4, True),
        (2, 7, 4, 4, False),  # 8 ± 1
        (2, 9, 4, 4, False),
        (2, 10, 4, 4, True),
        (2, 6, 4, 2, False),  # every 2 cycles after early progression: 6 ± 1
        (2, 8, 4, 2, True),
    ],
)
def test_the_protocol_window(sequence, cycles, previous, interval, warned):
    warning = window_warning(
        sequence=sequence, cycles=cycles, previous_cycles=previous, interval=interval
    )
    assert bool(warning) is warned
    if warned:
        assert "%s were completed" % cycles in warning


def test_an_evaluation_outside_the_window_is_saved_and_flagged(patient, coordinator):
    early = study_record(patient, coordinator, date(2026, 2, 9), {"T1": 45, "T2": 45})
    evaluation = evaluation_record(patient, coordinator, date(2026, 2, 10), early)  # 3 cycles
    assert evaluation.cycles_completed == 3
    (row,) = evaluations(patient=patient)
    assert row.warning == (
        "Outside the protocol window: this evaluation was due after 4–6 cycles; 3 were completed."
    )
