"""Every bad-input rule of the surgery services with its message, and nothing saved; the
derived values (length of stay, readmissions, adjuvant cycles, postoperative day)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from assessments.models import LabPanel
from surgery import services
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology
from surgery.refresh import adjuvant_refresh
from tests.factories.imaging import cycles_record
from tests.factories.surgery import (
    MDT_ON,
    OPERATED_ON,
    TODAY,
    mdt_record,
    operated_patient,
    operation_record,
    surgical_patient,
)
from treatments.models import ChemoCycle
from trial.models import Cohort
from trial.validation import fmt

DAY = timedelta(days=1)


def _d(month: int, day: int) -> str:
    """A 2026 date as the messages show it."""
    return fmt(date(2026, month, day))


def _counts():
    return (
        MdtDecision.objects.count(),
        MdtEvidence.objects.count(),
        Operation.objects.count(),
        Pathology.objects.count(),
        Complication.objects.count(),
        Discharge.objects.count(),
        LabPanel.objects.filter(context="postop").count(),
    )


def _refused(field, message, call):
    before = _counts()
    with pytest.raises(ValidationError) as caught:
        call()
    assert field in caught.value.message_dict, caught.value.message_dict
    assert any(message in m for m in caught.value.message_dict[field]), caught.value.message_dict
    assert _counts() == before


# --- MDT ------------------------------------------------------------------------------------


def test_mdt_decision_records_the_investigator_and_its_evidence(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    assert decision.investigator == investigator
    assert [e.evaluation for e in MdtEvidence.objects.active().filter(decision=decision)] == [
        evaluation
    ]


def test_coordinator_cannot_record_an_mdt_decision(site_a, coordinator):
    patient, evaluation = surgical_patient(site=site_a, user=coordinator)
    with pytest.raises(PermissionDenied):
        mdt_record(patient, coordinator, evaluations=[evaluation])
    assert MdtDecision.objects.count() == 0


def test_mdt_date_rules(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    _refused(
        "decided_on",
        f"MDT date ({_d(2, 20)}) is before the enrollment ({_d(2, 21)})",
        lambda: mdt_record(patient, investigator, on=date(2026, 2, 20), evaluations=[]),
    )
    _refused(
        "decided_on",
        "is in the future",
        lambda: mdt_record(patient, investigator, on=TODAY + DAY, evaluations=[evaluation]),
    )
    _refused(
        "evaluations",
        f"The evaluation of {_d(3, 20)} is after the MDT ({_d(3, 19)})",
        lambda: mdt_record(patient, investigator, on=date(2026, 3, 19), evaluations=[evaluation]),
    )
    _refused(
        "evaluations",
        "Choose the response evaluation(s)",
        lambda: mdt_record(patient, investigator, evaluations=[]),
    )


def test_retrospective_mdt_may_go_without_evaluations(site_a, investigator):
    patient, _evaluation = surgical_patient(
        site=site_a, user=investigator, cohort=Cohort.RETROSPECTIVE
    )
    assert mdt_record(patient, investigator, evaluations=[]).pk


def test_planned_procedure_rules(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    _refused(
        "planned_pancreatic",
        "Give the planned pancreatic procedure",
        lambda: mdt_record(patient, investigator, evaluations=[evaluation], planned_pancreatic=""),
    )
    _refused(
        "planned_pancreatic",
        "only when the decision is radical surgery",
        lambda: mdt_record(
            patient,
            investigator,
            evaluations=[evaluation],
            decision=MdtDecision.Decision.CONTINUE_SYSTEMIC,
        ),
    )


# --- operation ------------------------------------------------------------------------------


def test_operation_before_the_mdt_is_refused(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    _refused(
        "operated_on",
        f"Date of operation ({_d(3, 29)}) is before the MDT decision ({_d(3, 30)})",
        lambda: operation_record(patient, investigator, decision=decision, on=MDT_ON - DAY),
    )


def test_operation_before_enrollment_is_refused(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    _refused(
        "operated_on",
        f"Date of operation ({_d(2, 20)}) is before the enrollment ({_d(2, 21)})",
        lambda: operation_record(patient, investigator, decision=decision, on=date(2026, 2, 20)),
    )


def test_operation_needs_a_radical_surgery_decision(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    _refused(
        "mdt_decision",
        "requires a prior MDT decision for radical surgery",
        lambda: operation_record(patient, investigator, decision=None),
    )
    other = mdt_record(
        patient,
        investigator,
        evaluations=[evaluation],
        decision=MdtDecision.Decision.CONTINUE_SYSTEMIC,
        planned_pancreatic="",
    )
    _refused(
        "mdt_decision",
        "not radical surgery",
        lambda: operation_record(patient, investigator, decision=other),
    )
    _refused(
        "mdt_document_missing",
        "Only a retrospective case",
        lambda: operation_record(
            patient,
            investigator,
            decision=None,
            mdt_document_missing=True,
            mdt_missing_reason="lost",
        ),
    )


def test_retrospective_operation_without_the_mdt_document(site_a, investigator):
    patient, _evaluation = surgical_patient(
        site=site_a, user=investigator, cohort=Cohort.RETROSPECTIVE
    )
    _refused(
        "mdt_missing_reason",
        "Say why",
        lambda: operation_record(patient, investigator, decision=None, mdt_document_missing=True),
    )
    operation = operation_record(
        patient,
        investigator,
        decision=None,
        mdt_document_missing=True,
        mdt_missing_reason="Paper MDT minutes lost in 2025.",
    )
    assert operation.pk


def test_second_index_operation_is_refused(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    _refused(
        "operated_on",
        f"already has an index operation (Pancreaticoduodenectomy (Whipple), {_d(4, 20)})",
        lambda: operation_record(
            operation.patient,
            investigator,
            decision=operation.mdt_decision,
            on=OPERATED_ON + DAY,
        ),
    )


def test_operation_row_rules(site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    _refused(
        "converted",
        "Only a laparoscopic or robotic",
        lambda: operation_record(patient, investigator, decision=decision, converted=True),
    )
    _refused(
        "liver_lesions_resected",
        "2 liver lesion(s) resected, but no liver resection is ticked",
        lambda: operation_record(
            patient, investigator, decision=decision, liver_lesions_resected=2
        ),
    )
    _refused(
        "liver_lesions_ablated",
        "1 liver lesion(s) ablated, but ablation is not ticked",
        lambda: operation_record(patient, investigator, decision=decision, liver_lesions_ablated=1),
    )
    operation = operation_record(
        patient,
        investigator,
        decision=decision,
        approach=Operation.Approach.LAPAROSCOPIC,
        converted=True,
        liver_wedge=True,
        liver_lesions_resected=2,
    )
    assert operation.liver_resected


# --- pathology ------------------------------------------------------------------------------


def _pathology(operation, **fields):
    values = {
        "reported_on": OPERATED_ON + 7 * DAY,
        "ypt": "ypT2",
        "ypn": "ypN1",
        "margin_pancreas": "R0",
        "nodes_examined": 18,
        "nodes_positive": 2,
        "regression_grade": 2,
        "differentiation": "moderate",
        "perineural_invasion": False,
        "lymphovascular_invasion": False,
        **fields,
    }
    return Pathology(operation=operation, **values)


def test_pathology_rules(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)

    def save(**fields):
        return services.pathology_save(
            pathology=_pathology(operation, **fields), user=investigator, today=TODAY
        )

    _refused(
        "nodes_positive",
        "Positive lymph nodes (20) cannot outnumber the nodes examined (18)",
        lambda: save(nodes_positive=20, ypn="ypN2"),
    )
    _refused("ypn", "ypN1 does not match 5 positive node(s)", lambda: save(nodes_positive=5))
    _refused("ypn", "AJCC 8th gives ypN0", lambda: save(nodes_positive=0))
    _refused(
        "reported_on",
        f"Report date ({_d(4, 19)}) is before the operation ({_d(4, 20)})",
        lambda: save(reported_on=OPERATED_ON - DAY),
    )
    _refused("margin_liver", "leave the liver margin empty", lambda: save(margin_liver="R0"))
    assert save(nodes_positive=4, ypn="ypN2").pk


def test_pathology_needs_the_liver_margin_after_a_liver_resection(site_a, investigator):
    operation = operated_patient(
        site=site_a, investigator=investigator, liver_segmentectomy=True, liver_lesions_resected=1
    )
    _refused(
        "margin_liver",
        "give the liver margin",
        lambda: services.pathology_save(
            pathology=_pathology(operation), user=investigator, today=TODAY
        ),
    )


# --- complications and discharge -------------------------------------------------------------


def test_complication_rules(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)

    def save(**fields):
        values = {"onset_on": OPERATED_ON + 3 * DAY, "kind": "popf", "clavien_dindo": "II"}
        return services.complication_save(
            complication=Complication(operation=operation, **{**values, **fields}),
            user=investigator,
            today=TODAY,
        )

    _refused(
        "onset_on",
        f"Onset date ({_d(4, 19)}) is before the operation ({_d(4, 20)})",
        lambda: save(onset_on=OPERATED_ON - DAY, kind="ssi"),
    )
    _refused("isgps_grade", "Grade A no longer exists", lambda: save(isgps_grade="A"))
    _refused(
        "drain_amylase_u_l",
        "A drain amylase of 350 U/L is not above 405 U/L",
        lambda: save(isgps_grade="B", drain_amylase_u_l=350),
    )
    _refused(
        "clavien_dindo",
        "at least Clavien-Dindo II",
        lambda: save(isgps_grade="B", drain_amylase_u_l=3000, clavien_dindo="I"),
    )
    saved = save(isgps_grade="B", drain_amylase_u_l=3000)
    assert saved.pk
    services.complication_void(complication=saved, user=investigator, reason="wrong patient")
    assert Complication.objects.active().count() == 0


def test_discharge_rules_and_derived_values(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)

    def save(**fields):
        return services.discharge_save(
            discharge=Discharge(operation=operation, **fields), user=investigator, today=TODAY
        )

    _refused(
        "discharged_on",
        f"Discharge date ({_d(4, 19)}) is before the operation ({_d(4, 20)})",
        lambda: save(discharged_on=OPERATED_ON - DAY),
    )
    _refused(
        "readmitted_on",
        f"The readmission ({_d(5, 1)}) must be after the discharge ({_d(5, 2)})",
        lambda: save(
            discharged_on=date(2026, 5, 2), readmitted_on=date(2026, 5, 1), readmission_reason="x"
        ),
    )
    discharge = save(
        discharged_on=date(2026, 5, 2),
        readmitted_on=date(2026, 5, 25),
        readmission_reason="Collection",
    )
    assert discharge.length_of_stay == 12
    assert discharge.readmitted_30 is False  # 35 days after the operation
    assert discharge.readmitted_90 is True


# --- postoperative labs -----------------------------------------------------------------------

VALUES = {"wbc": (Decimal("14.2"), None), "hemoglobin": (Decimal("98"), None)}


def _panel(operation, user, on, **kwargs):
    return services.postop_panel_record(
        operation=operation, sampled_on=on, values=VALUES, user=user, today=TODAY, **kwargs
    )


def test_postop_panel_gets_its_day_and_window(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    panel = _panel(operation, investigator, OPERATED_ON + DAY)
    assert (panel.context, panel.postop_day, panel.out_of_window) == ("postop", 1, False)
    panel = _panel(operation, investigator, OPERATED_ON + 29 * DAY)
    assert (panel.postop_day, panel.out_of_window) == (30, False)


def test_postop_panel_before_the_operation_is_refused(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    _refused(
        "sampled_on",
        f"Sample date {_d(4, 19)} is before the operation on {_d(4, 20)}.",
        lambda: _panel(operation, investigator, OPERATED_ON - DAY),
    )


def test_postop_panel_out_of_window_needs_confirmation(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    _refused(
        "sampled_on",
        "is postoperative day 12, outside the window of day 7 (days 6–8)",
        lambda: _panel(operation, investigator, OPERATED_ON + 12 * DAY),
    )
    panel = _panel(operation, investigator, OPERATED_ON + 12 * DAY, confirm_out_of_window=True)
    assert (panel.postop_day, panel.out_of_window) == (7, True)
    _refused(
        "sampled_on",
        "Day 7 already has a panel",
        lambda: _panel(operation, investigator, OPERATED_ON + 7 * DAY),
    )


def test_adjuvant_flag_follows_the_operation(site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    patient = operation.patient
    cycles_record(patient, investigator, date(2026, 2, 25), 2, cycle_length=14)
    cycles_record(patient, investigator, date(2026, 6, 1), 2, cycle_length=14, number=2)
    assert adjuvant_refresh(patient=patient, user=investigator) == 2
    flags = sorted(ChemoCycle.objects.values_list("given_on", "adjuvant"))
    assert [flag for _on, flag in flags] == [False, False, True, True]
    assert adjuvant_refresh(patient=patient, user=investigator) == 0  # idempotent
    # Moving the operation after the cycles re-derives the flag through the service.
    operation.operated_on = date(2026, 6, 20)
    services.operation_save(operation=operation, user=investigator, reason="typo", today=TODAY)
    assert not ChemoCycle.objects.filter(adjuvant=True).exists()
