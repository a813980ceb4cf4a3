"""Imaging services: RECIST limits, follow-ups against the baseline, dates, one baseline, the
recomputation of every study after an edit, voiding. Refusals save nothing."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from assessments.models import ImagingStudy, ResponseEvaluation, TargetLesion
from assessments.services.imaging import imaging_study_save, imaging_study_void
from patients import services as patient_services
from patients.models import Withdrawal
from tests.factories.imaging import (
    ENROLLED_TODAY,
    TODAY,
    evaluation_record,
    lesion,
    study_record,
)
from tests.factories.patients import baselined_patient, screened_patient
from trial.services import StaleRecordError
from trial.validation import fmt

D = Decimal
BASELINE_ON = date(2026, 1, 5)


@pytest.fixture
def patient(site_a, coordinator):
    # Screened 31 Dec 2025, enrolled 2 Jan 2026.
    return baselined_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)


@pytest.fixture
def baseline(patient, coordinator):
    return study_record(patient, coordinator, BASELINE_ON, {"T1": 50, "T2": 50}, baseline=True)


def _state() -> tuple:
    return (
        ImagingStudy.objects.count(),
        TargetLesion.objects.count(),
        ImagingStudy.history.count(),
        TargetLesion.history.count(),
        ResponseEvaluation.objects.count(),
    )


def _refused(call, field: str, match: str):
    before = _state()
    with pytest.raises(ValidationError) as caught:
        call()
    assert field in caught.value.message_dict, caught.value.message_dict
    assert any(match in message for message in caught.value.message_dict[field]), (
        caught.value.message_dict
    )
    assert _state() == before, "something was saved"
    return caught.value.message_dict[field]


def _study(patient, on, *, baseline=False, **fields) -> ImagingStudy:
    return ImagingStudy(
        patient=patient,
        performed_on=on,
        modality="CT",
        is_baseline=baseline,
        non_target=fields.pop("non_target", "present"),
        **fields,
    )


def _save(patient, user, on, lesions, *, baseline=False, today=TODAY, **fields):
    return lambda: imaging_study_save(
        study=_study(patient, on, baseline=baseline, **fields),
        lesions=lesions,
        user=user,
        today=today,
    )


# --- computation ----------------------------------------------------------------------------


def test_baseline_and_follow_ups_get_sums_changes_and_responses(patient, coordinator, baseline):
    assert (baseline.sum_mm, baseline.response, baseline.status) == (D(100), "", "complete")
    first = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    second = study_record(patient, coordinator, date(2026, 5, 4), {"T1": 36, "T2": 36})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.sum_mm, first.change_from_baseline_pct, first.change_from_nadir_pct) == (
        D(60),
        D("-40.0"),
        D("-40.0"),
    )
    assert first.response == "PR"
    assert (second.sum_mm, second.change_from_baseline_pct, second.change_from_nadir_pct) == (
        D(72),
        D("-28.0"),
        D("20.0"),
    )
    assert second.response == "PD"
    assert list(second.lesions.values_list("label", "diameter_mm")) == [
        ("T1", D(36)),
        ("T2", D(36)),
    ]


def test_a_baseline_target_left_out_of_a_follow_up_makes_it_not_evaluable(
    patient, coordinator, baseline
):
    study = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30})
    assert (study.response, study.sum_mm) == ("NE", None)


def test_a_follow_up_with_a_new_lesion_is_progression(patient, coordinator, baseline):
    study = study_record(
        patient, coordinator, date(2026, 3, 2), {"T1": 20, "T2": 20}, new_lesions=True
    )
    assert study.response == "PD"


# --- RECIST limits and labels ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("lesions", "match"),
    [
        (
            [
                lesion(f"T{i}", 20, organ)
                for i, organ in enumerate(
                    ["liver", "liver", "pancreas", "lung", "lung", "peritoneum"], start=1
                )
            ],
            "at most 5 target lesions; 6 were given",
        ),
        (
            [lesion("T1", 20), lesion("T2", 20), lesion("T3", 20)],
            "T1, T2, T3: RECIST 1.1 allows at most 2 target lesions per organ",
        ),
        ([lesion("T1", "9.9")], "T1: a target lesion must measure at least 10 mm (9.9 mm given)"),
        (
            [lesion("T1", 20), lesion("N1", "14.5", "lymph_node")],
            "N1: a lymph node is a target only with a short axis of at least 15 mm",
        ),
        ([], "at least one target lesion"),
        ([lesion("T1", 20), lesion("T1", 30)], "T1 is given twice"),
        ([lesion("T1", 500)], "T1: diameter (mm) Ensure this value is less than or equal to 400"),
    ],
    ids=["six targets", "three in one organ", "too small", "small node", "none", "twice", "huge"],
)
def test_a_baseline_beyond_the_recist_limits_is_refused(patient, coordinator, lesions, match):
    _refused(_save(patient, coordinator, BASELINE_ON, lesions, baseline=True), "lesions", match)


def test_a_follow_up_may_only_measure_the_baseline_targets(patient, coordinator, baseline):
    messages = _refused(
        _save(patient, coordinator, date(2026, 3, 2), [lesion("T1", 30), lesion("T3", 12)]),
        "lesions",
        "T3 is not a target lesion of the baseline ("
        + fmt(date(2026, 1, 5))
        + "); its targets are T1, T2.",
    )
    assert len(messages) == 1


def test_a_follow_up_lesion_keeps_its_baseline_organ(patient, coordinator, baseline):
    _refused(
        _save(patient, coordinator, date(2026, 3, 2), [lesion("T1", 30, "pancreas")]),
        "lesions",
        "T1 is a liver target at the baseline, not pancreas.",
    )


# --- one baseline, order and dates -----------------------------------------------------------


def test_a_second_baseline_is_refused(patient, coordinator, baseline):
    _refused(
        _save(patient, coordinator, date(2026, 1, 20), [lesion("T1", 40)], baseline=True),
        "is_baseline",
        "The RECIST baseline is already recorded (CT of " + fmt(date(2026, 1, 5)) + ")",
    )


def test_a_follow_up_needs_a_baseline_before_it(patient, coordinator):
    _refused(
        _save(patient, coordinator, date(2026, 3, 2), [lesion("T1", 30)]),
        "is_baseline",
        "Record the RECIST baseline study first",
    )


def test_a_follow_up_dated_on_or_before_the_baseline_is_refused(patient, coordinator, baseline):
    _refused(
        _save(patient, coordinator, date(2026, 1, 4), [lesion("T1", 30)]),
        "performed_on",
        "A follow-up study ("
        + fmt(date(2026, 1, 4))
        + ") must be after the RECIST baseline ("
        + fmt(date(2026, 1, 5))
        + ").",
    )


def test_a_second_study_on_the_same_day_is_refused(patient, coordinator, baseline):
    _refused(
        _save(patient, coordinator, BASELINE_ON, [lesion("T1", 30)]),
        "performed_on",
        "Another imaging study (CT) is recorded on " + fmt(date(2026, 1, 5)),
    )


def test_a_future_date_is_refused(patient, coordinator):
    _refused(
        _save(
            patient,
            coordinator,
            date(2026, 1, 11),
            [lesion("T1", 30)],
            baseline=True,
            today=date(2026, 1, 10),
        ),
        "performed_on",
        fmt(date(2026, 1, 11)) + " is in the future (today is " + fmt(date(2026, 1, 10)) + ").",
    )


def test_imaging_more_than_60_days_before_the_screening_is_refused(patient, coordinator):
    # Screened on 31 Dec 2025: the earliest accepted imaging is 1 Nov 2025.
    study_record(patient, coordinator, date(2025, 11, 1), {"T1": 30}, baseline=True)
    other = baselined_patient(site=patient.site, user=coordinator, today=ENROLLED_TODAY)
    _refused(
        _save(other, coordinator, date(2025, 10, 31), [lesion("T1", 30)], baseline=True),
        "performed_on",
        "more than 60 days before the screening (earliest accepted: "
        + fmt(date(2025, 11, 1))
        + ")",
    )


def test_imaging_after_the_withdrawal_is_refused(patient, coordinator, baseline):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 4, 1),
            kind="drop_out",
            reason="patient_decision",
            last_medication_on=date(2026, 3, 20),
        ),
        user=coordinator,
        today=TODAY,
    )
    _refused(
        _save(patient, coordinator, date(2026, 4, 2), [lesion("T1", 30), lesion("T2", 30)]),
        "performed_on",
        fmt(date(2026, 4, 2))
        + " is after the patient's withdrawal ("
        + fmt(date(2026, 4, 1))
        + ").",
    )


def test_a_patient_not_enrolled_gets_no_imaging(site_a, coordinator):
    candidate = screened_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)
    before = _state()
    with pytest.raises(ValidationError, match="Enroll the patient before recording imaging"):
        _save(candidate, coordinator, BASELINE_ON, [lesion("T1", 30)], baseline=True)()
    assert _state() == before


# --- edits and recomputation ----------------------------------------------------------------


def _edit(study: ImagingStudy, user, lesions, *, reason="Re-measured", **changes):
    study = ImagingStudy.objects.get(pk=study.pk)
    for name, value in changes.items():
        setattr(study, name, value)
    return imaging_study_save(
        study=study,
        lesions=lesions,
        user=user,
        expected_version=study.version,
        reason=reason,
        today=TODAY,
    )


def test_editing_an_early_study_recomputes_the_later_ones(patient, coordinator, baseline):
    first = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    second = study_record(patient, coordinator, date(2026, 5, 4), {"T1": 36, "T2": 36})
    assert (first.response, ImagingStudy.objects.get(pk=second.pk).response) == ("PR", "PD")

    # The first follow-up was mis-measured: 40 + 40 is stable disease, and with the nadir now
    # at 80 the second (72) is no longer progression.
    _edit(first, coordinator, [lesion("T1", 40), lesion("T2", 40)])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.response, first.change_from_baseline_pct) == ("SD", D("-20.0"))
    assert (second.response, second.change_from_nadir_pct) == ("SD", D("-10.0"))
    last = second.history.latest("history_date", "history_id")
    assert (last.history_change_reason, last.history_user, last.version) == (
        "RECIST recomputed",
        coordinator,
        2,
    )

    # Editing the baseline moves every change from the baseline.
    _edit(baseline, coordinator, [lesion("T1", 60), lesion("T2", 60)], reason="Wrong series")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.change_from_baseline_pct, first.response) == (D("-33.3"), "PR")
    assert (second.change_from_baseline_pct, second.response) == (D("-40.0"), "PR")


def test_an_edit_of_a_complete_study_needs_a_reason_and_saves_nothing_without(
    patient, coordinator, baseline
):
    before = _state()
    with pytest.raises(ValidationError) as caught:
        _edit(baseline, coordinator, [lesion("T1", 60), lesion("T2", 50)], reason="")
    assert caught.value.message_dict["change_reason"] == [
        "This form is complete: give a reason for the change."
    ]
    assert _state() == before
    assert TargetLesion.objects.get(study=baseline, label="T1").diameter_mm == D(50)


def test_a_stale_edit_is_refused(patient, coordinator, baseline):
    _edit(baseline, coordinator, [lesion("T1", 55), lesion("T2", 50)])
    with pytest.raises(StaleRecordError):
        imaging_study_save(
            study=baseline,  # the version-1 copy
            lesions=[lesion("T1", 60), lesion("T2", 50)],
            user=coordinator,
            expected_version=1,
            reason="late edit",
            today=TODAY,
        )
    assert TargetLesion.objects.get(study=baseline, label="T1").diameter_mm == D(55)


def test_a_lesion_left_out_is_voided_not_deleted_and_may_come_back(patient, coordinator, baseline):
    follow_up = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    _edit(follow_up, coordinator, [lesion("T1", 30)], reason="T2 was on another series")
    follow_up.refresh_from_db()
    assert follow_up.response == "NE"
    removed = TargetLesion.objects.get(study=follow_up, voided_at__isnull=False)
    assert removed.void_reason == "T2 was on another series (T2)"
    assert removed.history.filter(label="T2").exists()
    # Measured after all: the label is free again.
    _edit(follow_up, coordinator, [lesion("T1", 30), lesion("T2", 31)], reason="Found it")
    follow_up.refresh_from_db()
    assert (follow_up.response, follow_up.sum_mm) == ("PR", D(61))
    assert TargetLesion.objects.filter(study=follow_up).count() == 3


def test_a_baseline_target_measured_later_cannot_be_removed(patient, coordinator, baseline):
    study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    _refused(
        lambda: _edit(baseline, coordinator, [lesion("T1", 50)]),
        "lesions",
        "T2 measured on the follow-up study of " + fmt(date(2026, 3, 2)),
    )


def test_an_organ_corrected_on_the_baseline_follows_on_later_studies(
    patient, coordinator, baseline
):
    follow_up = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    _edit(baseline, coordinator, [lesion("T1", 50), lesion("T2", 50, "pancreas")])
    assert TargetLesion.objects.active().get(study=follow_up, label="T2").organ == "pancreas"


def test_a_changed_response_reaches_the_evaluation_that_rests_on_the_study(
    patient, coordinator, baseline
):
    follow_up = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    evaluation = evaluation_record(patient, coordinator, date(2026, 3, 3), follow_up)
    assert evaluation.recist_response == "PR"
    _edit(follow_up, coordinator, [lesion("T1", 60), lesion("T2", 60)])
    evaluation.refresh_from_db()
    assert (evaluation.recist_response, evaluation.progression_at_first) == ("PD", True)
    assert evaluation.interval_cycles == 2


# --- voiding --------------------------------------------------------------------------------


def test_voiding_a_study_recomputes_the_others(patient, coordinator, baseline):
    first = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    second = study_record(patient, coordinator, date(2026, 5, 4), {"T1": 36, "T2": 36})
    imaging_study_void(study=first, user=coordinator, reason="Wrong patient", expected_version=1)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_voided, first.void_reason) == (True, "Wrong patient")
    assert not TargetLesion.objects.active().filter(study=first).exists()
    # Without the 60 mm nadir, 72 mm is 28% under the baseline: stable, not progression.
    assert (second.response, second.change_from_nadir_pct) == ("SD", D("-28.0"))


def test_the_baseline_cannot_be_voided_under_its_follow_ups(patient, coordinator, baseline):
    study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    before = _state()
    with pytest.raises(ValidationError, match="Follow-up studies are compared with this baseline"):
        imaging_study_void(study=baseline, user=coordinator, reason="oops")
    assert _state() == before


def test_a_study_an_evaluation_rests_on_cannot_be_voided(patient, coordinator, baseline):
    follow_up = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    evaluation_record(patient, coordinator, date(2026, 3, 3), follow_up)
    with pytest.raises(
        ValidationError, match="The evaluation of " + fmt(date(2026, 3, 3)) + " rests on this"
    ):
        imaging_study_void(study=follow_up, user=coordinator, reason="oops")


def test_a_study_an_evaluation_rests_on_keeps_a_date_the_evaluation_accepts(
    patient, coordinator, baseline
):
    follow_up = study_record(patient, coordinator, date(2026, 3, 2), {"T1": 30, "T2": 30})
    evaluation_record(patient, coordinator, date(2026, 3, 3), follow_up)
    _refused(
        lambda: _edit(
            follow_up,
            coordinator,
            [lesion("T1", 30), lesion("T2", 30)],
            performed_on=date(2026, 3, 4),
        ),
        "performed_on",
        "The imaging ("
        + fmt(date(2026, 3, 4))
        + ") is after the evaluation ("
        + fmt(date(2026, 3, 3))
        + ").",
    )


def test_the_radiologist_may_disagree(patient, coordinator, baseline):
    study = study_record(
        patient, coordinator, date(2026, 3, 2), {"T1": 40, "T2": 40}, radiologist="PR"
    )
    assert (study.response, study.radiologist_response, study.disagrees) == ("SD", "PR", True)
    assert not baseline.disagrees
