"""lab_panel_record: conversion on entry, flags and grades, the rules it refuses with their
messages (and nothing saved), edits with voiding, stale edits, baseline-relative re-grading."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from assessments.models import LabPanel, LabResult
from assessments.selectors.labs import baseline_value, ca19_9_series
from assessments.services.labs import REGRADED, lab_panel_record, lab_panels_regrade
from patients import services as patient_services
from patients.models import Withdrawal
from tests.factories.labs import as_values, cycles_on, record_panel
from tests.factories.patients import baselined_patient, screened_patient
from trial.models import FormStatus
from trial.services import StaleRecordError

D = Decimal
ENROLLED_ON = date(2026, 5, 24)  # baselined_patient with its default today (1 Jun 2026)
TODAY = date(2026, 9, 1)
BASELINE_ON = ENROLLED_ON
CYCLES = [date(2026, 5, 26), date(2026, 6, 9), date(2026, 6, 23), date(2026, 7, 7)]


@pytest.fixture
def patient(site_a, coordinator):
    patient = baselined_patient(site=site_a, user=coordinator)
    assert patient.enrollment.enrolled_on == ENROLLED_ON
    assert patient.sex == "F"
    return patient


def _record(patient, user, on=BASELINE_ON, context=LabPanel.Context.BASELINE, **kwargs):
    return record_panel(patient, user, on, context=context, today=TODAY, **kwargs)


def _nothing_saved():
    assert LabPanel.objects.count() == 0
    assert LabResult.objects.count() == 0


def _results(panel) -> dict[str, LabResult]:
    return {r.analyte: r for r in LabResult.objects.filter(panel=panel)}


# --- entry, conversion, flags, grades ----------------------------------------------------


def test_a_baseline_panel_is_stored_in_si_with_what_was_typed(patient, coordinator):
    panel = _record(
        patient,
        coordinator,
        hemoglobin=("10.9", "g/dL"),
        tbil=("1.2", "mg/dL"),
        platelets=("182000", "/µL"),
        alt=38,
        ca19_9="845.0",
    )
    assert panel.status == FormStatus.COMPLETE
    assert panel.version == 1
    assert panel.after_cycle is None
    results = _results(panel)
    tbil = results["tbil"]
    assert (tbil.value, tbil.entered_value, tbil.entered_unit) == (D("20.5"), D("1.2"), "mg/dL")
    assert (results["hemoglobin"].value, results["hemoglobin"].entered_unit) == (D(109), "g/dL")
    assert results["platelets"].value == D(182)
    assert (results["alt"].value, results["alt"].entered_unit) == (D(38), "U/L")
    # Flags for a woman: Hb 109 < 115; bilirubin 20.5 ≤ 21; CA19-9 845 > 37.
    assert results["hemoglobin"].flag == "L"
    assert results["tbil"].flag == ""
    assert results["ca19_9"].flag == "H"
    assert results["hemoglobin"].ctcae_term == "Anemia"
    assert results["hemoglobin"].ctcae_grade == 1
    assert results["ca19_9"].ctcae_grade is None
    assert results["ca19_9"].ctcae_term == ""
    assert {r.history.count() for r in results.values()} == {1}
    assert results["alt"].created_by == coordinator


def test_flags_follow_the_patients_sex(patient, coordinator):
    panel = _record(patient, coordinator, creatinine=90, hemoglobin=125)
    results = _results(panel)
    assert results["creatinine"].flag == "H"  # F: 41–81
    assert results["hemoglobin"].flag == ""  # F: 115–150


# --- refusals: field-level, with the values, nothing saved --------------------------------


def test_an_impossible_value_is_refused_on_its_row(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, hemoglobin=900, alt=40)
    assert raised.value.message_dict == {
        "hemoglobin": ["Haemoglobin 900 g/L is not possible (0–250 g/L): check the unit."]
    }
    _nothing_saved()


def test_a_negative_count_is_refused(patient, coordinator):
    with pytest.raises(ValidationError, match="Platelets -5 ×10⁹/L is not possible"):
        _record(patient, coordinator, platelets=-5)
    _nothing_saved()


def test_a_converted_value_is_checked_in_si(patient, coordinator):
    with pytest.raises(ValidationError, match=r"90 g/dL \(900 g/L\) is not possible"):
        _record(patient, coordinator, hemoglobin=("90", "g/dL"))
    _nothing_saved()


def test_an_unknown_unit_is_refused_with_the_accepted_units(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, creatinine=("1.1", "mmol/L"))
    assert raised.value.message_dict["creatinine"] == [
        "Creatinine: the unit “mmol/L” is not accepted; use one of: µmol/L, mg/dL."
    ]
    _nothing_saved()


def test_an_unknown_analyte_is_refused(patient, coordinator):
    with pytest.raises(ValidationError, match="Unknown analyte “ferritin”"):
        _record(patient, coordinator, ferritin=300, alt=40)
    _nothing_saved()


def test_more_than_four_decimals_is_refused(patient, coordinator):
    with pytest.raises(ValidationError, match="at most 4 decimals"):
        _record(patient, coordinator, inr="1.12345")
    _nothing_saved()


def test_a_panel_without_any_value_is_refused(patient, coordinator):
    with pytest.raises(ValidationError, match="Enter at least one value"):
        _record(patient, coordinator)
    _nothing_saved()


def test_an_extreme_value_needs_a_confirmation(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, hemoglobin=9, alt=40)
    [error] = raised.value.error_dict["hemoglobin"]
    assert error.code == "extreme"
    assert "Haemoglobin 9 g/L is unusually low (usual 50–200 g/L)" in error.message
    assert "tick “confirm”" in error.message
    _nothing_saved()

    panel = _record(
        patient, coordinator, hemoglobin=45, alt=40, confirmed=frozenset({"hemoglobin"})
    )
    results = _results(panel)
    assert results["hemoglobin"].extreme_confirmed is True
    assert results["hemoglobin"].ctcae_grade == 3
    assert results["alt"].extreme_confirmed is False


def test_the_sample_date_cannot_be_in_the_future(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, on=TODAY + timedelta(days=1), alt=40)
    assert raised.value.message_dict["sampled_on"] == [
        "Sept. 2, 2026 is in the future (today is Sept. 1, 2026)."
    ]
    _nothing_saved()


def test_the_sample_date_cannot_be_long_before_the_screening(patient, coordinator):
    screened_on = patient.screening.screened_on
    _record(patient, coordinator, on=screened_on - timedelta(days=60), alt=40)
    with pytest.raises(ValidationError, match="more than 60 days before the screening"):
        _record(patient, coordinator, on=screened_on - timedelta(days=61), alt=40)
    assert LabPanel.objects.count() == 1


def test_no_panel_after_the_withdrawal(patient, coordinator):
    withdrawn_on = date(2026, 7, 1)
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=withdrawn_on,
            kind=Withdrawal.Kind.DROP_OUT,
            reason=Withdrawal.Reason.PATIENT_DECISION,
            no_medication_given=True,
        ),
        user=coordinator,
        today=TODAY,
    )
    _record(patient, coordinator, on=withdrawn_on, context=LabPanel.Context.OTHER, alt=40)
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, on=date(2026, 7, 2), context="other", alt=40)
    assert raised.value.message_dict["sampled_on"] == [
        "Sample date (July 2, 2026) is after the withdrawal (July 1, 2026)."
    ]


def test_the_patient_must_be_enrolled(site_a, coordinator):
    candidate = screened_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError, match="Enroll the patient before recording lab results"):
        record_panel(candidate, coordinator, date(2026, 5, 25), today=TODAY, alt=40)
    _nothing_saved()


def test_an_assessment_panel_needs_a_cycle_before_it(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, on=date(2026, 5, 25), context="assessment", alt=40)
    assert "no cycle is recorded on or before the sample date (May 25, 2026)" in str(
        raised.value.message_dict["context"]
    )
    _nothing_saved()


def test_after_cycle_is_derived_for_assessment_and_on_treatment_panels(patient, coordinator):
    cycles_on(patient, *CYCLES)
    assessment = _record(patient, coordinator, on=date(2026, 7, 20), context="assessment", alt=40)
    on_treatment = _record(
        patient, coordinator, on=date(2026, 6, 9), context="on_treatment", alt=40
    )
    followup = _record(patient, coordinator, on=date(2026, 7, 21), context="followup", alt=40)
    assert assessment.after_cycle == 4
    assert on_treatment.after_cycle == 2  # the cycle given on the sample date counts
    assert followup.after_cycle is None


def test_a_postoperative_panel_needs_its_day(patient, coordinator):
    with pytest.raises(ValidationError) as raised:
        _record(patient, coordinator, on=date(2026, 8, 3), context="postop", drain_amylase=900)
    assert raised.value.message_dict["postop_day"] == [
        "Give the postoperative day of a postoperative panel."
    ]
    panel = lab_panel_record(
        panel=LabPanel(
            patient=patient, sampled_on=date(2026, 8, 3), context="postop", postop_day=3
        ),
        values=as_values(drain_amylase=900),
        user=coordinator,
        today=TODAY,
    )
    assert panel.postop_day == 3
    assert _results(panel)["drain_amylase"].flag == "H"  # > 3 × serum ULN
    with pytest.raises(ValidationError, match="the panel is not postoperative"):
        lab_panel_record(
            panel=LabPanel(patient=patient, sampled_on=TODAY, context="followup", postop_day=3),
            values=as_values(alt=40),
            user=coordinator,
            today=TODAY,
        )


# --- edits ----------------------------------------------------------------------------------


def _edit(panel, user, *, version, reason="", **values):
    panel = LabPanel.objects.get(pk=panel.pk)
    return lab_panel_record(
        panel=panel,
        values=as_values(**values),
        user=user,
        expected_version=version,
        reason=reason,
        today=TODAY,
    )


def test_an_edit_of_a_complete_panel_needs_a_reason(patient, coordinator):
    panel = _record(patient, coordinator, alt=40, ast=30)
    with pytest.raises(ValidationError) as raised:
        _edit(panel, coordinator, version=1, alt=41, ast=30)
    assert raised.value.message_dict == {
        "change_reason": ["This form is complete: give a reason for the change."]
    }
    assert _results(panel)["alt"].value == D(40)
    edited = _edit(panel, coordinator, version=1, reason="Transcription error", alt=41, ast=30)
    assert edited.version == 2
    alt = _results(panel)["alt"]
    assert (alt.value, alt.version) == (D(41), 2)
    assert alt.history.latest("history_id").history_change_reason == "Transcription error"
    assert edited.history.latest("history_id").history_change_reason == "Transcription error"


def test_an_analyte_left_empty_is_voided_not_deleted(patient, coordinator):
    panel = _record(patient, coordinator, alt=40, ast=30)
    _edit(panel, coordinator, version=1, reason="AST was not measured", alt=40)
    ast = LabResult.objects.get(panel=panel, analyte="ast")
    assert ast.is_voided
    assert ast.void_reason == "AST was not measured"
    assert LabResult.objects.filter(panel=panel).count() == 2
    assert LabPanel.objects.get(pk=panel.pk).version == 2
    # The voided row stays in the audit trail; a corrected AST can be entered again.
    _edit(panel, coordinator, version=2, reason="AST found on the lab sheet", alt=40, ast=31)
    rows = LabResult.objects.filter(panel=panel, analyte="ast").order_by("id")
    assert [(r.value, r.is_voided) for r in rows] == [(D(30), True), (D(31), False)]


def test_an_unchanged_save_saves_nothing(patient, coordinator):
    panel = _record(patient, coordinator, alt=40, tbil=("1.2", "mg/dL"))
    again = _edit(panel, coordinator, version=1, alt=40, tbil=("1.2", "mg/dL"))
    assert again.version == 1
    assert LabResult.history.count() == 2


def test_a_stale_edit_is_refused_and_changes_nothing(patient, coordinator, investigator):
    panel = _record(patient, coordinator, alt=40, ast=30)
    _edit(panel, investigator, version=1, reason="corrected", alt=45, ast=30)
    with pytest.raises(StaleRecordError) as raised:
        _edit(panel, coordinator, version=1, reason="mine", alt=40, ast=99)
    assert raised.value.current_version == 2
    assert "inv_a" in str(raised.value)
    results = _results(panel)
    assert (results["alt"].value, results["ast"].value) == (D(45), D(30))


def test_an_edit_re_grades_the_value(patient, coordinator):
    panel = _record(patient, coordinator, anc="1.6")
    assert _results(panel)["anc"].ctcae_grade == 1
    _edit(panel, coordinator, version=1, reason="re-read", anc="0.9")
    anc = _results(panel)["anc"]
    assert (anc.ctcae_term, anc.ctcae_grade, anc.flag) == ("Neutrophil count decreased", 3, "L")


# --- baseline-relative grading ----------------------------------------------------------------


def test_an_abnormal_baseline_switches_to_the_baseline_criteria(patient, coordinator):
    cycles_on(patient, *CYCLES)
    baseline = _record(patient, coordinator, alt=100, tbil=15)  # F: ALT ULN 40; bilirubin normal
    later = _record(
        patient, coordinator, on=date(2026, 7, 20), context="assessment", alt=160, tbil=50
    )
    # The baseline panel itself is graded by the ULN: ALT 100 = 2.5 × ULN.
    assert _results(baseline)["alt"].ctcae_grade == 1
    results = _results(later)
    assert results["alt"].ctcae_grade == 1  # 1.6 × baseline 100 (by the ULN: 4 × → G2)
    assert results["tbil"].ctcae_grade == 2  # baseline normal: 50 > 1.5 × ULN 21
    assert baseline_value(patient=patient, analyte="alt") == D(100)


def test_a_changed_baseline_re_grades_the_later_panels(patient, coordinator):
    cycles_on(patient, *CYCLES)
    baseline = _record(patient, coordinator, alt=100)
    later = _record(patient, coordinator, on=date(2026, 7, 20), context="assessment", alt=160)
    assert _results(later)["alt"].ctcae_grade == 1
    _edit(baseline, coordinator, version=1, reason="Wrong patient's value", alt=35)
    alt = _results(later)["alt"]
    assert alt.ctcae_grade == 2  # the baseline is normal now: 160 = 4 × ULN
    assert alt.history.latest("history_id").history_change_reason == REGRADED
    assert LabPanel.objects.get(pk=later.pk).version == 1  # a derived change: no new version


def test_without_a_baseline_panel_the_last_panel_before_the_first_cycle_is_the_baseline(
    patient, coordinator
):
    _record(patient, coordinator, on=date(2026, 5, 24), context="other", alt=30)
    _record(patient, coordinator, on=date(2026, 5, 26), context="other", alt=100)  # day 1
    cycles_on(patient, *CYCLES)
    assert baseline_value(patient=patient, analyte="alt") == D(100)
    later = _record(patient, coordinator, on=date(2026, 7, 20), context="assessment", alt=160)
    assert _results(later)["alt"].ctcae_grade == 1  # against 100, not by the ULN (G2)


def test_the_creatinine_baseline_criterion_applies_to_a_normal_baseline(patient, coordinator):
    cycles_on(patient, *CYCLES)
    _record(patient, coordinator, creatinine=50)
    later = _record(patient, coordinator, on=date(2026, 7, 20), context="assessment", creatinine=80)
    creatinine = _results(later)["creatinine"]
    assert (creatinine.ctcae_grade, creatinine.flag) == (2, "")  # 1.6 × baseline, below the ULN


def test_regrading_after_new_cycles(patient, coordinator):
    _record(patient, coordinator, on=date(2026, 5, 26), context="other", alt=100)
    later = _record(patient, coordinator, on=date(2026, 7, 20), context="followup", alt=160)
    assert _results(later)["alt"].ctcae_grade == 2  # no cycle yet: no baseline
    cycles_on(patient, *CYCLES)
    assert lab_panels_regrade(patient=patient, user=coordinator) == 1
    assert _results(later)["alt"].ctcae_grade == 1


def test_the_ca19_9_series_reads_every_panel_in_date_order(patient, coordinator):
    cycles_on(patient, *CYCLES)
    _record(patient, coordinator, on=date(2026, 7, 20), context="assessment", ca19_9=300)
    _record(patient, coordinator, ca19_9=("845", "kU/L"))
    _record(patient, coordinator, on=date(2026, 6, 1), context="other", alt=40)
    assert ca19_9_series(patient=patient) == [
        (BASELINE_ON, D("845.0000")),
        (date(2026, 7, 20), D("300.0000")),
    ]


# --- row rules (model clean) -----------------------------------------------------------------


def test_the_row_rules_hold_for_any_writer(site_a, coordinator):
    from tests.factories.labs import LabPanelFactory, LabResultFactory
    from trial.services import clinical_save

    panel = LabPanelFactory(patient__site=site_a)
    for fields, field, message in [
        ({"analyte": "ferritin"}, "analyte", "Unknown analyte “ferritin”."),
        ({"entered_unit": "mmol/L"}, "entered_unit", "the unit “mmol/L” is not accepted"),
        ({"value": D(900)}, "value", "Haemoglobin 900 g/L is not possible"),
        ({"value": D(30)}, "extreme_confirmed", "unusually low"),
    ]:
        with pytest.raises(ValidationError) as raised:
            clinical_save(LabResultFactory.build(panel=panel, **fields), user=coordinator)
        assert message in " ".join(raised.value.message_dict[field])
    confirmed = LabResultFactory.build(panel=panel, value=D(30), extreme_confirmed=True)
    assert clinical_save(confirmed, user=coordinator).pk
