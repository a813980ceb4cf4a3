"""Row rules of the treatments models (their clean()): each bad row is refused with its message
on the field to fix."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.factories.treatments import (
    TODAY,
    AdverseEventFactory,
    CycleDoseFactory,
    RegimenLineFactory,
)
from treatments.models import AdverseEvent, ChemoCycle


def _errors(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.clean()
    return caught.value.message_dict


# --- regimen lines --------------------------------------------------------------------------


def test_an_other_regimen_needs_its_name_and_cycle_length():
    line = RegimenLineFactory.build(regimen="other", regimen_other=" ", cycle_length_days=None)
    errors = _errors(line)
    assert errors["regimen_other"] == ["Name the regimen."]
    assert errors["cycle_length_days"] == ["Give the cycle length of this regimen in days."]


def test_a_standard_regimen_has_no_name_and_its_own_cycle_length():
    line = RegimenLineFactory.build(regimen="AG", regimen_other="GnP", cycle_length_days=21)
    errors = _errors(line)
    assert errors["regimen_other"] == ["A regimen name is only given for an other regimen."]
    assert errors["cycle_length_days"] == ["AG cycles last 28 days, not 21."]


def test_an_other_reason_for_a_change_needs_details():
    line = RegimenLineFactory.build(line_number=2, change_reason="other", change_reason_detail="")
    assert _errors(line) == {"change_reason_detail": ["Describe the reason for the change."]}
    line.change_reason, line.change_reason_detail = "", "because"
    assert _errors(line) == {
        "change_reason_detail": ["Details are given but no reason for a change of regimen."]
    }


def test_a_valid_line_passes():
    RegimenLineFactory.build(regimen="other", regimen_other="GS", cycle_length_days=21).clean()


# --- cycles and doses -----------------------------------------------------------------------


def test_a_delay_needs_its_reason_and_a_reason_needs_a_delay():
    cycle = ChemoCycle(given_on=TODAY, delay_days=7, delay_reason="")
    assert _errors(cycle) == {"delay_reason": ["Give the reason for the delay."]}
    cycle.delay_days, cycle.delay_reason = 0, "neutropenia"
    assert _errors(cycle) == {
        "delay_reason": ["A reason for a delay is given but the delay is 0 days."]
    }


def test_an_other_drug_needs_its_name():
    dose = CycleDoseFactory.build(drug="other", drug_other="")
    assert _errors(dose) == {"drug_other": ["Name the drug."]}
    dose = CycleDoseFactory.build(drug="gemcitabine", drug_other="Gemzar")
    assert _errors(dose) == {"drug_other": ["A drug name is only given for an other drug."]}


def test_administrations_given_cannot_exceed_those_planned():
    dose = CycleDoseFactory.build(planned_days=3, given_days=4)
    assert _errors(dose) == {"given_days": ["4 administrations given but only 3 planned."]}


def test_an_omitted_drug_has_no_dose_and_no_administration():
    dose = CycleDoseFactory.build(given_mg=Decimal(0), given_days=3)
    assert _errors(dose) == {
        "given_days": ["The drug was omitted (0 mg): set the administrations given to 0."]
    }
    dose = CycleDoseFactory.build(given_mg=Decimal(100), given_days=0)
    assert _errors(dose) == {
        "given_mg": ["No administration was given, so the given dose must be 0 mg."]
    }
    CycleDoseFactory.build(given_mg=Decimal(0), given_days=0).clean()


def test_implausible_plans_are_refused():
    dose = CycleDoseFactory.build(planned_mg_m2=Decimal(0), planned_days=40, given_days=3)
    errors = _errors(dose)
    assert errors["planned_mg_m2"] == ["The planned dose must be above 0 mg/m²."]
    assert errors["planned_days"] == [
        "40 administrations in one cycle is not plausible (at most 31)."
    ]


# --- adverse events -------------------------------------------------------------------------


def test_the_term_must_come_from_the_catalogue():
    event = AdverseEventFactory.build(term="Headache-ish")
    assert _errors(event)["term"] == [
        "“Headache-ish” is not a CTCAE v5.0 term of the catalogue: choose one, or “Other, specify”."
    ]


def test_other_needs_a_typed_term_and_only_other_has_one():
    event = AdverseEventFactory.build(term="other", term_other="")
    assert _errors(event) == {"term_other": ["Name the adverse event."]}
    event = AdverseEventFactory.build(term="Fatigue", term_other="tired")
    assert _errors(event) == {"term_other": ["A name is only typed for “Other, specify”."]}
    AdverseEventFactory.build(term="other", term_other="Hiccups").clean()


def test_the_grade_must_exist_for_the_term():
    event = AdverseEventFactory.build(term="Alopecia", grade=3)
    assert _errors(event) == {"grade": ["CTCAE v5.0 grades Alopecia from 1 to 2, not 3."]}


def test_resolution_cannot_precede_onset():
    event = AdverseEventFactory.build(
        onset_on=TODAY - timedelta(days=3), resolved_on=TODAY - timedelta(days=5)
    )
    errors = _errors(event)
    assert errors["resolved_on"] == [
        "Resolution (May 27, 2026) is before the onset (May 29, 2026)."
    ]


def test_grade_5_if_and_only_if_fatal():
    event = AdverseEventFactory.build(term="Diarrhea", grade=5, outcome="recovered", serious=True)
    assert _errors(event) == {"outcome": ["A grade 5 event is death: the outcome must be Fatal."]}
    event = AdverseEventFactory.build(grade=3, outcome="fatal", resolved_on=None)
    assert _errors(event) == {"grade": ["A fatal outcome is grade 5, not grade 3."]}
    event = AdverseEventFactory.build(
        term="Diarrhea", grade=5, outcome="fatal", serious=False, resolved_on=None
    )
    assert _errors(event) == {"serious": ["A fatal event is serious."]}
    AdverseEventFactory.build(
        term="Diarrhea", grade=5, outcome="fatal", serious=True, resolved_on=None
    ).clean()


def test_the_outcome_and_the_resolution_date_agree():
    event = AdverseEventFactory.build(outcome=AdverseEvent.Outcome.RECOVERED, resolved_on=None)
    assert _errors(event) == {"resolved_on": ["Give the date the event resolved."]}
    event = AdverseEventFactory.build(outcome=AdverseEvent.Outcome.NOT_RECOVERED)
    assert _errors(event) == {
        "resolved_on": ["The event has not resolved: leave the resolution date empty."]
    }
