"""The treatments services: derived numbers (line, cycle, BSA, dose reduction), and every bad
input refused with its message on the field to fix and nothing saved."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from followup import services as followup_services
from followup.models import Death
from patients import services as patient_services
from patients.models import Withdrawal
from tests.factories.patients import baselined_patient, enrolled_patient, screened_patient
from tests.factories.treatments import TODAY, cycle_doses, cycle_given, line_started
from treatments import selectors, services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine
from trial.services import StaleRecordError

DAY = timedelta(days=1)
ENROLLED = date(2026, 1, 2)  # the patient below: baselined on 10 Jan 2026, enrolled 8 days before
BSA = Decimal("1.74")  # baseline 170 cm, 64 kg


@pytest.fixture
def patient(site_a, coordinator):
    patient = baselined_patient(site=site_a, user=coordinator, today=ENROLLED + 8 * DAY)
    assert patient.enrollment.enrolled_on == ENROLLED
    return patient


@pytest.fixture
def line(patient, coordinator):
    return line_started(patient, user=coordinator, started_on=ENROLLED + 5 * DAY)


def _messages(error: ValidationError, field: str = "__all__") -> list[str]:
    return error.value.message_dict[field]


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (RegimenLine, ChemoCycle, CycleDose, AdverseEvent)
    )


# --- regimen lines --------------------------------------------------------------------------


def test_the_first_line_is_number_1_with_the_regimens_cycle_length(patient, coordinator):
    line = line_started(
        patient, user=coordinator, started_on=ENROLLED + 3 * DAY, cycle_length_days=21
    )
    assert (line.line_number, line.cycle_length_days, line.status) == (1, 28, "complete")
    row = RegimenLine.history.get(id=line.pk)
    assert (row.history_type, row.history_user) == ("+", coordinator)


def test_an_other_regimen_keeps_its_name_and_typed_cycle_length(patient, coordinator):
    line = line_started(
        patient,
        user=coordinator,
        started_on=ENROLLED + 3 * DAY,
        regimen="other",
        regimen_other="Gemcitabine + S-1",
        cycle_length_days=21,
    )
    assert (line.name, line.cycle_length_days) == ("Gemcitabine + S-1", 21)


def test_an_other_regimen_without_name_or_cycle_length_is_refused(patient, coordinator):
    with pytest.raises(ValidationError) as error:
        line_started(patient, user=coordinator, started_on=ENROLLED + 3 * DAY, regimen="other")
    assert _messages(error, "regimen_other") == ["Name the regimen."]
    assert _messages(error, "cycle_length_days") == [
        "Give the cycle length of this regimen in days."
    ]
    assert _counts() == (0, 0, 0, 0)


def test_the_first_line_has_no_reason_for_a_change(patient, coordinator):
    with pytest.raises(ValidationError) as error:
        line_started(
            patient, user=coordinator, started_on=ENROLLED + 3 * DAY, change_reason="toxicity"
        )
    assert _messages(error, "change_reason") == [
        "The first line replaces no earlier regimen: leave the reason for a change empty."
    ]
    assert _counts() == (0, 0, 0, 0)


def test_a_later_line_needs_the_reason_and_starts_after_the_last_cycle(patient, line, coordinator):
    cycle_given(line, user=coordinator, given_on=line.started_on)
    cycle_given(line, user=coordinator, given_on=line.started_on + 28 * DAY)  # 4 Feb 2026
    with pytest.raises(ValidationError) as error:
        line_started(patient, user=coordinator, started_on=date(2026, 2, 1), regimen="mFOLFIRINOX")
    assert _messages(error, "change_reason") == [
        "Give the reason for changing the regimen (line 2)."
    ]
    assert _messages(error, "started_on") == [
        "Line 2 cannot start (Feb. 1, 2026) before the last cycle of line 1 (C2, Feb. 4, 2026)."
    ]
    assert RegimenLine.objects.count() == 1

    second = line_started(
        patient,
        user=coordinator,
        started_on=date(2026, 3, 10),
        regimen="mFOLFIRINOX",
        change_reason="progression",
    )
    assert (second.line_number, second.cycle_length_days) == (2, 14)


@pytest.mark.parametrize(
    ("started_on", "message"),
    [
        (ENROLLED - DAY, "Start of line 1 (Jan. 1, 2026) is before the enrollment (Jan. 2, 2026)."),
        (TODAY + DAY, "June 2, 2026 is in the future (today is June 1, 2026)."),
    ],
)
def test_a_line_is_dated_between_enrollment_and_today(patient, coordinator, started_on, message):
    with pytest.raises(ValidationError) as error:
        line_started(patient, user=coordinator, started_on=started_on)
    assert _messages(error, "started_on") == [message]
    assert _counts() == (0, 0, 0, 0)


def test_no_line_after_a_withdrawal(patient, coordinator):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 2, 1),
            kind="drop_out",
            reason="patient_decision",
            no_medication_given=True,
        ),
        user=coordinator,
        today=TODAY,
    )
    with pytest.raises(ValidationError) as error:
        line_started(patient, user=coordinator, started_on=date(2026, 2, 2))
    assert _messages(error, "started_on") == [
        "Start of line 1 (Feb. 2, 2026) is after the withdrawal (Feb. 1, 2026)."
    ]


def test_a_patient_who_is_not_enrolled_gets_no_chemotherapy(site_a, coordinator):
    candidate = screened_patient(site=site_a, user=coordinator, today=TODAY)
    with pytest.raises(ValidationError) as error:
        line_started(candidate, user=coordinator, started_on=TODAY)
    assert error.value.messages == ["Enroll the patient before recording chemotherapy."]
    assert _counts() == (0, 0, 0, 0)


def test_editing_a_line(patient, line, coordinator):
    cycle_given(line, user=coordinator, given_on=line.started_on + 2 * DAY)
    line.regimen = "mFOLFIRINOX"
    line.started_on = line.started_on + 3 * DAY
    with pytest.raises(ValidationError) as error:
        services.line_update(line=line, user=coordinator, expected_version=1, today=TODAY)
    assert _messages(error, "regimen") == [
        "1 cycles of AG (nab-paclitaxel + gemcitabine) are recorded on this line: the regimen "
        "cannot change. Start a new line instead."
    ]
    assert _messages(error, "started_on") == [
        "The line cannot start (Jan. 10, 2026) after its first cycle (C1, Jan. 9, 2026)."
    ]
    assert _messages(error, "reason") == ["This form is complete: give a reason for the change."]

    line = RegimenLine.objects.get(pk=line.pk)
    line.started_on = line.started_on - DAY
    saved = services.line_update(
        line=line, user=coordinator, expected_version=1, reason="Typo", today=TODAY
    )
    assert (saved.version, saved.started_on) == (2, ENROLLED + 4 * DAY)
    with pytest.raises(StaleRecordError):
        services.line_update(
            line=line, user=coordinator, expected_version=1, reason="again", today=TODAY
        )


def test_only_an_empty_latest_line_can_be_voided(patient, line, coordinator):
    cycle = cycle_given(line, user=coordinator, given_on=line.started_on)
    with pytest.raises(ValidationError) as error:
        services.line_void(line=line, user=coordinator, reason="wrong patient")
    assert _messages(error, "void_reason") == [
        "1 cycles are recorded on this line: void them first."
    ]
    services.cycle_void(cycle=cycle, user=coordinator, reason="wrong patient")
    later = line_started(
        patient,
        user=coordinator,
        started_on=line.started_on + 14 * DAY,
        regimen="NALIRIFOX",
        change_reason="toxicity",
    )
    with pytest.raises(ValidationError) as error:
        services.line_void(line=line, user=coordinator, reason="wrong patient")
    assert _messages(error, "void_reason") == [
        "Only the latest line can be voided: void the later lines first."
    ]
    services.line_void(line=later, user=coordinator, reason="wrong patient")
    voided = services.line_void(line=line, user=coordinator, reason="wrong patient")
    assert voided.is_voided
    again = line_started(patient, user=coordinator, started_on=line.started_on)
    assert again.line_number == 1


# --- cycles: numbers, BSA, doses ------------------------------------------------------------


def test_cycles_are_numbered_within_their_line_and_counted_across_lines(patient, line, coordinator):
    dates = [line.started_on + 28 * n * DAY for n in range(3)]
    numbers = [cycle_given(line, user=coordinator, given_on=d).cycle_number for d in dates]
    assert numbers == [1, 2, 3]
    second = line_started(
        patient,
        user=coordinator,
        started_on=dates[-1] + 30 * DAY,
        regimen="mFOLFIRINOX",
        change_reason="progression",
    )
    cycle = cycle_given(second, user=coordinator, given_on=second.started_on)
    assert cycle.cycle_number == 1
    assert selectors.cycles_completed(patient=patient, on=TODAY) == 4
    summary = selectors.treatment_summary(patient=patient)
    assert summary.cycle_count == 4
    assert [s.cycle_count for s in summary.lines] == [3, 1]


def test_the_bsa_uses_the_latest_weight(patient, line, coordinator):
    first = cycle_given(line, user=coordinator, given_on=line.started_on)
    assert first.bsa_m2 == BSA  # √(170 × 64 / 3600) = 1.7385: the baseline weight
    second = cycle_given(
        line, user=coordinator, given_on=line.started_on + 28 * DAY, weight_kg=Decimal("70")
    )
    assert second.bsa_m2 == Decimal("1.82")  # √(170 × 70 / 3600) = 1.8181
    third = cycle_given(line, user=coordinator, given_on=line.started_on + 56 * DAY)
    assert third.bsa_m2 == Decimal("1.82")  # the weight of the earlier cycle carries on
    assert third.weight_kg is None


def test_a_cycle_needs_the_baseline_for_its_bsa(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator, today=TODAY)
    line = line_started(patient, user=coordinator, started_on=TODAY - DAY)
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=TODAY)
    assert _messages(error) == [
        "Record the baseline (height and weight) first: the BSA is computed from them."
    ]
    assert ChemoCycle.objects.count() == 0


@pytest.mark.parametrize(
    ("given_on", "message"),
    [
        (ENROLLED - DAY, "Cycle date (Jan. 1, 2026) is before the enrollment (Jan. 2, 2026)."),
        (
            ENROLLED + 4 * DAY,
            "Cycle date (Jan. 6, 2026) is before the start of line 1 (Jan. 7, 2026).",
        ),
        (TODAY + DAY, "June 2, 2026 is in the future (today is June 1, 2026)."),
        (
            ENROLLED + 5 * DAY,
            "Cycle date (Jan. 7, 2026) is on or before the previous cycle "
            "(line 1 C1, Jan. 7, 2026).",
        ),
        (
            ENROLLED + 4 * DAY,
            "Cycle date (Jan. 6, 2026) is on or before the previous cycle "
            "(line 1 C1, Jan. 7, 2026).",
        ),
    ],
)
def test_a_cycle_date_out_of_order_is_refused(line, coordinator, given_on, message):
    cycle_given(line, user=coordinator, given_on=line.started_on)
    before = _counts()
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=given_on)
    assert message in _messages(error, "given_on")
    assert _counts() == before


def test_no_cycle_after_a_withdrawal(patient, line, coordinator):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 3, 1),
            kind="drop_out",
            reason="patient_decision",
            last_medication_on=date(2026, 2, 20),
        ),
        user=coordinator,
        today=TODAY,
    )
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=date(2026, 3, 2))
    assert _messages(error, "given_on") == [
        "Cycle date (March 2, 2026) is after the withdrawal (March 1, 2026)."
    ]


def test_a_cycle_of_an_earlier_line_cannot_follow_the_next_line(patient, line, coordinator):
    cycle_given(line, user=coordinator, given_on=line.started_on)
    second = line_started(
        patient,
        user=coordinator,
        started_on=line.started_on + 40 * DAY,
        regimen="NALIRIFOX",
        change_reason="toxicity",
    )
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=second.started_on)
    assert (
        "Cycle date (Feb. 16, 2026) is on or after the start of line 2 (Feb. 16, 2026): "
        "record the cycle on that line."
    ) in _messages(error, "given_on")


def test_a_dose_above_150_percent_of_the_standard_is_refused_on_its_row(line, coordinator):
    # 170 cm and 74.8 kg give 1.88 m²; gemcitabine 1000 mg/m² → 1,880 mg.
    doses = cycle_doses("AG", Decimal("1.88"), gemcitabine=Decimal("3200"))
    with pytest.raises(ValidationError) as error:
        cycle_given(
            line,
            user=coordinator,
            given_on=line.started_on,
            weight_kg=Decimal("74.8"),
            doses=doses,
        )
    assert _messages(error, "doses-1-given_mg") == [
        "Given 3,200 mg is 170% of the standard dose (1,880 mg for 1.88 m²); at most 150%."
    ]
    assert _counts() == (1, 0, 0, 0)


def test_the_planned_dose_cannot_exceed_150_percent_of_the_standard(line, coordinator):
    doses = cycle_doses("AG", BSA)
    doses[0].planned_mg_m2 = Decimal("250")
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=line.started_on, doses=doses)
    assert _messages(error, "doses-0-planned_mg_m2") == [
        "Planned 250 mg/m² is 200% of the standard dose (125 mg/m²); at most 150%."
    ]


def test_the_grid_holds_the_regimens_drugs_once_each(line, coordinator):
    doses = cycle_doses("AG", BSA)
    doses.append(
        CycleDose(drug="oxaliplatin", planned_mg_m2=85, given_mg=148, planned_days=1, given_days=1)
    )
    doses.append(
        CycleDose(
            drug="nab_paclitaxel", planned_mg_m2=125, given_mg=218, planned_days=3, given_days=3
        )
    )
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=line.started_on, doses=doses)
    assert _messages(error, "doses-2-drug") == [
        "oxaliplatin is not part of AG (nab-paclitaxel + gemcitabine)."
    ]
    assert _messages(error, "doses-3-drug") == ["nab-paclitaxel is listed twice."]
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=line.started_on, doses=doses[:1])
    assert _messages(error) == [
        "AG (nab-paclitaxel + gemcitabine) also needs: gemcitabine (give 0 mg for an omitted drug)."
    ]
    assert ChemoCycle.objects.count() == 0


def test_a_reduced_cycle_is_flagged_and_needs_its_reason(line, coordinator):
    doses = cycle_doses("AG", BSA, nab_paclitaxel=Decimal("174"))  # 80% of 218 mg
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=line.started_on, doses=doses)
    assert _messages(error, "dose_reduction_reason") == [
        "The doses of nab-paclitaxel are reduced: give the reason for the reduction."
    ]
    cycle = cycle_given(
        line,
        user=coordinator,
        given_on=line.started_on,
        doses=cycle_doses("AG", BSA, nab_paclitaxel=Decimal("174")),
        dose_reduction_reason="Neuropathy grade 2",
    )
    assert cycle.dose_reduced is True

    full = cycle_doses("AG", BSA)
    with pytest.raises(ValidationError) as error:
        cycle_given(
            line,
            user=coordinator,
            given_on=line.started_on + 28 * DAY,
            doses=full,
            dose_reduction_reason="Neuropathy grade 2",
        )
    assert _messages(error, "dose_reduction_reason") == [
        "No dose is reduced in this cycle: leave the reason for a reduction empty."
    ]


def test_fewer_administrations_than_planned_is_a_reduction(line, coordinator):
    doses = cycle_doses("AG", BSA)
    doses[1].given_days = 2  # day-15 gemcitabine omitted
    cycle = cycle_given(
        line,
        user=coordinator,
        given_on=line.started_on,
        doses=doses,
        dose_reduction_reason="Platelets 60 on day 15",
    )
    assert cycle.dose_reduced is True


def test_editing_a_complete_cycle_needs_a_reason_and_a_current_version(line, coordinator):
    cycle = cycle_given(line, user=coordinator, given_on=line.started_on)
    doses = list(CycleDose.objects.filter(cycle=cycle).order_by("id"))
    doses[1].given_mg = Decimal("1392")  # gemcitabine at 80%
    cycle.dose_reduction_reason = "Neutropenia"
    with pytest.raises(ValidationError) as error:
        services.cycle_record(
            cycle=cycle, doses=doses, user=coordinator, expected_version=1, today=TODAY
        )
    assert _messages(error, "change_reason") == [
        "This form is complete: give a reason for the change."
    ]
    saved = services.cycle_record(
        cycle=cycle,
        doses=doses,
        user=coordinator,
        expected_version=1,
        reason="Pharmacy record checked",
        today=TODAY,
    )
    assert (saved.version, saved.dose_reduced) == (2, True)
    dose = CycleDose.objects.get(pk=doses[1].pk)
    assert (dose.version, dose.given_mg) == (2, Decimal("1392"))
    assert dose.history.latest("history_id").history_change_reason == "Pharmacy record checked"

    stale = ChemoCycle.objects.get(pk=cycle.pk)
    stale.gcsf = True
    with pytest.raises(StaleRecordError):
        services.cycle_record(
            cycle=stale, doses=doses, user=coordinator, expected_version=1, reason="x", today=TODAY
        )


def test_a_stale_dose_row_is_a_conflict(line, coordinator):
    cycle = cycle_given(line, user=coordinator, given_on=line.started_on)
    mine = list(CycleDose.objects.filter(cycle=cycle).order_by("id"))
    theirs = list(CycleDose.objects.filter(cycle=cycle).order_by("id"))
    theirs[0].given_mg = Decimal("210")  # 96%: not a reduction
    services.cycle_record(
        cycle=ChemoCycle.objects.get(pk=cycle.pk),
        doses=theirs,
        user=coordinator,
        expected_version=1,
        reason="Rounded down",
        today=TODAY,
    )
    mine[1].given_mg = Decimal("1700")  # built on version 1 of both rows
    with pytest.raises(StaleRecordError) as conflict:
        services.cycle_record(
            cycle=ChemoCycle.objects.get(pk=cycle.pk),
            doses=mine,
            user=coordinator,
            expected_version=1,
            reason="Mine",
            today=TODAY,
        )
    assert conflict.value.instance.pk == mine[0].pk
    assert CycleDose.objects.get(pk=mine[1].pk).given_mg == Decimal("1740")  # nothing saved


def test_voiding_a_cycle_renumbers_the_later_ones(line, coordinator):
    cycles = [
        cycle_given(line, user=coordinator, given_on=line.started_on + 28 * n * DAY)
        for n in range(4)
    ]
    with pytest.raises(ValidationError) as error:
        services.cycle_void(cycle=cycles[1], user=coordinator, reason=" ")
    assert _messages(error, "void_reason") == ["Give a reason for voiding this record."]

    services.cycle_void(cycle=cycles[1], user=coordinator, reason="Entered twice")
    numbers = {c.pk: c.cycle_number for c in ChemoCycle.objects.active().filter(line=line)}
    assert numbers == {cycles[0].pk: 1, cycles[2].pk: 2, cycles[3].pk: 3}
    assert not CycleDose.objects.active().filter(cycle=cycles[1]).exists()
    renumbered = ChemoCycle.history.filter(id=cycles[3].pk).latest("history_id")
    assert renumbered.history_change_reason == ("Renumbered after voiding cycle 2: Entered twice")
    assert renumbered.history_user == coordinator
    nxt = cycle_given(line, user=coordinator, given_on=line.started_on + 28 * 4 * DAY)
    assert nxt.cycle_number == 4


# --- adverse events -------------------------------------------------------------------------


def _event(patient, **fields) -> AdverseEvent:
    values = {
        "term": "Diarrhea",
        "grade": 2,
        "onset_on": date(2026, 2, 1),
        "resolved_on": date(2026, 2, 5),
        "serious": False,
        "attribution": "probable",
        "action_taken": "none",
        "outcome": "recovered",
        **fields,
    }
    return AdverseEvent(patient=patient, **values)


def test_an_event_takes_the_line_in_effect_at_its_onset(patient, line, coordinator):
    event = services.adverse_event_save(event=_event(patient), user=coordinator, today=TODAY)
    assert event.line == line
    early = services.adverse_event_save(
        event=_event(patient, onset_on=ENROLLED + DAY, resolved_on=None, outcome="recovering"),
        user=coordinator,
        today=TODAY,
    )
    assert early.line is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"onset_on": ENROLLED - DAY},
            "onset_on",
            "Onset (Jan. 1, 2026) is before the enrollment (Jan. 2, 2026).",
        ),
        (
            {"onset_on": TODAY + DAY, "resolved_on": None, "outcome": "recovering"},
            "onset_on",
            "June 2, 2026 is in the future (today is June 1, 2026).",
        ),
        (
            {"resolved_on": TODAY + DAY},
            "resolved_on",
            "June 2, 2026 is in the future (today is June 1, 2026).",
        ),
        (
            {"grade": 5, "outcome": "recovered", "serious": True},
            "outcome",
            "A grade 5 event is death: the outcome must be Fatal.",
        ),
    ],
)
def test_bad_events_are_refused(patient, coordinator, fields, field, message):
    with pytest.raises(ValidationError) as error:
        services.adverse_event_save(event=_event(patient, **fields), user=coordinator, today=TODAY)
    assert message in _messages(error, field)
    assert AdverseEvent.objects.count() == 0


def test_an_event_on_a_line_starts_after_it(patient, line, coordinator, site_a):
    with pytest.raises(ValidationError) as error:
        services.adverse_event_save(
            event=_event(patient, line=line, onset_on=ENROLLED + DAY, resolved_on=ENROLLED + DAY),
            user=coordinator,
            today=TODAY,
        )
    assert _messages(error, "line") == [
        "The onset (Jan. 3, 2026) is before line 1 started (Jan. 7, 2026)."
    ]
    other = baselined_patient(site=site_a, user=coordinator, today=ENROLLED + 8 * DAY)
    with pytest.raises(ValidationError) as error:
        services.adverse_event_save(event=_event(other, line=line), user=coordinator, today=TODAY)
    assert _messages(error, "line") == ["Choose one of the patient's active regimen lines."]


def test_no_event_after_a_withdrawal(patient, coordinator):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 2, 3),
            kind="drop_out",
            reason="patient_decision",
            no_medication_given=True,
        ),
        user=coordinator,
        today=TODAY,
    )
    with pytest.raises(ValidationError) as error:
        services.adverse_event_save(event=_event(patient), user=coordinator, today=TODAY)
    assert _messages(error, "resolved_on") == [
        "Resolution (Feb. 5, 2026) is after the withdrawal (Feb. 3, 2026)."
    ]


def _fatal(patient) -> AdverseEvent:
    return _event(patient, term="Sepsis", grade=5, serious=True, outcome="fatal", resolved_on=None)


def test_a_grade_5_event_is_flagged_until_a_death_is_recorded(patient, coordinator):
    event = services.adverse_event_save(event=_fatal(patient), user=coordinator, today=TODAY)
    # No death is recorded yet: the flag stays.
    assert selectors.grade5_events_awaiting_death(patient=patient) == [event]
    listed = selectors.adverse_events(patient=patient)
    assert [e.awaiting_death for e in listed] == [True]


def test_the_flag_clears_once_the_follow_up_app_records_the_death(patient, coordinator):
    """The death, recorded through the follow-up service, sets Patient.died_on, which the
    flag reads; voiding the death brings the flag back."""
    services.adverse_event_save(event=_fatal(patient), user=coordinator, today=TODAY)
    assert len(selectors.grade5_events_awaiting_death(patient=patient)) == 1
    death = followup_services.death_save(
        death=Death(
            patient=patient, died_on=date(2026, 2, 2), cause="treatment", source="hospital"
        ),
        user=coordinator,
        today=TODAY,
    )
    patient.refresh_from_db()
    assert patient.died_on == date(2026, 2, 2)
    assert selectors.grade5_events_awaiting_death(patient=patient) == []
    assert [e.awaiting_death for e in selectors.adverse_events(patient=patient)] == [False]
    followup_services.death_void(death=death, user=coordinator, reason="wrong patient")
    patient.refresh_from_db()
    assert len(selectors.grade5_events_awaiting_death(patient=patient)) == 1
