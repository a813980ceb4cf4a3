"""The materialized calendar: the facts read from the records, the rows written (created,
updated, deleted), the refresh that follows every service, death, closing a visit as missed
and reopening it."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation
from followup.models import FollowUpContact, LostToFollowUp, TreatmentEnd
from patients.models import Patient
from patients.services import patient_vital_status_set
from surgery.models import MdtDecision
from tests.factories.imaging import ResponseEvaluationFactory, cycles_record
from tests.factories.labs import LabPanelFactory
from tests.factories.patients import baselined_patient, enrolled_patient
from tests.factories.surgery import MdtDecisionFactory, OperationFactory
from tests.factories.treatments import cycle_given, line_started
from treatments import services as treatment_services
from treatments.models import ChemoCycle, Regimen
from trial.services import clinical_save, clinical_void
from trial.validation import fmt
from visits import protocol, selectors, services
from visits.models import ExpectedVisit, VisitClosure, VisitStatus

DAY = timedelta(days=1)
ENTRY_DAY = date(2026, 7, 1)  # the services' "today" while the records are entered


def _stored(patient) -> dict[str, ExpectedVisit]:
    return {v.code: v for v in ExpectedVisit.objects.filter(patient=patient)}


def _status(patient, code: str, today: date) -> str:
    visit = ExpectedVisit.objects.get(patient=patient, code=code)
    return selectors.live_status(visit, today=today)


# --- facts_for ------------------------------------------------------------------------------


@pytest.fixture
def full_history(site_a, coordinator, investigator):
    """A patient with every kind of record, some voided, entered as plain audited rows."""
    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 1, 10))
    line = cycles_record(patient, coordinator, date(2026, 1, 5), 4, cycle_length=14)
    voided = clinical_save(
        ChemoCycle(patient=patient, line=line, cycle_number=5, given_on=date(2026, 3, 2)),
        user=coordinator,
    )
    clinical_void(voided, user=coordinator, reason="Entered for the wrong patient")
    ResponseEvaluationFactory(
        patient=patient,
        evaluated_on=date(2026, 2, 27),
        imaging__performed_on=date(2026, 2, 25),
        cycles_completed=4,
        recist_response=ImagingStudy.Response.PD,
        decision=ResponseEvaluation.Decision.REFER_MDT,
    )
    mdt = MdtDecisionFactory(
        patient=patient, decided_on=date(2026, 3, 6), investigator=investigator
    )
    wrong = MdtDecisionFactory(
        patient=patient,
        decided_on=date(2026, 3, 5),
        decision=MdtDecision.Decision.BEST_SUPPORTIVE_CARE,
        planned_pancreatic="",
        investigator=investigator,
    )
    clinical_void(wrong, user=investigator, reason="Another patient's MDT")
    OperationFactory(patient=patient, operated_on=date(2026, 4, 1), mdt_decision=mdt)
    postop = LabPanel.Context.POSTOP
    LabPanelFactory(patient=patient, context=postop, postop_day=3, sampled_on=date(2026, 4, 4))
    # Recorded without its protocol day: the sample date says day 1 (snapped from day 2).
    LabPanelFactory(patient=patient, context=postop, postop_day=None, sampled_on=date(2026, 4, 3))
    LabPanelFactory(
        patient=patient, context=LabPanel.Context.ASSESSMENT, sampled_on=date(2026, 4, 5)
    )
    clinical_save(
        ChemoCycle(
            patient=patient,
            line=line,
            cycle_number=5,
            given_on=date(2026, 5, 15),
            adjuvant=True,
        ),
        user=coordinator,
    )
    TreatmentEnd.objects.create(
        patient=patient, ended_on=date(2026, 8, 1), reason=TreatmentEnd.Reason.COMPLETED
    )
    FollowUpContact.objects.create(
        patient=patient, contacted_on=date(2026, 9, 1), mode=FollowUpContact.Mode.PHONE
    )
    FollowUpContact.objects.create(
        patient=patient,
        contacted_on=date(2026, 10, 1),
        mode=FollowUpContact.Mode.PHONE,
        reached=False,
        vital_status=FollowUpContact.VitalStatus.UNKNOWN,
    )
    lost = LostToFollowUp.objects.create(patient=patient, declared_on=date(2026, 10, 20))
    clinical_void(lost, user=coordinator, reason="Found again")
    VisitClosure.objects.create(patient=patient, code="FU002", reason="Not reached")
    wrong = VisitClosure.objects.create(patient=patient, code="FU003", reason="Closed in error")
    clinical_void(wrong, user=coordinator, reason="Reopened")
    Patient.objects.filter(pk=patient.pk).update(died_on=date(2026, 11, 2))
    return patient


def test_facts_for_maps_every_source_and_leaves_voided_records_out(
    full_history, site_a, coordinator
):
    other = enrolled_patient(site=site_a, user=coordinator, today=date(2026, 2, 1))
    today = date(2026, 11, 24)

    facts = services.facts_for(patient_ids=[full_history.pk, other.pk, 999_999], today=today)

    assert set(facts) == {full_history.pk, other.pk}
    got = facts[full_history.pk]
    enrolled_on = full_history.enrollment.enrolled_on
    assert got.today == today
    assert got.screened_on == full_history.screening.screened_on
    assert got.enrolled_on == enrolled_on
    assert got.baseline_on == enrolled_on
    assert sorted(got.cycles, key=lambda c: c.given_on) == [
        protocol.Cycle(date(2026, 1, 5), 14),
        protocol.Cycle(date(2026, 1, 19), 14),
        protocol.Cycle(date(2026, 2, 2), 14),
        protocol.Cycle(date(2026, 2, 16), 14),
        protocol.Cycle(date(2026, 5, 15), 14, adjuvant=True),
    ]
    assert got.evaluations == (
        protocol.Evaluation(
            date(2026, 2, 27), cycles_completed=4, progression=True, refer_mdt=True
        ),
    )
    assert got.mdts == (protocol.Mdt(date(2026, 3, 6), surgery=True),)
    assert got.operated_on == date(2026, 4, 1)
    assert sorted(got.postop_panels) == [(1, date(2026, 4, 3)), (3, date(2026, 4, 4))]
    assert got.followup_contacts == (date(2026, 9, 1),)
    assert got.treatment_ended_on == date(2026, 8, 1)
    assert got.died_on == date(2026, 11, 2)
    assert got.withdrawn_on is None
    assert got.lost_on is None
    assert got.closed == frozenset({"FU002"})

    plain = facts[other.pk]
    assert plain.enrolled_on == other.enrollment.enrolled_on
    assert (plain.cycles, plain.evaluations, plain.mdts, plain.closed) == ((), (), (), frozenset())
    assert plain.operated_on is None
    assert plain.died_on is None


def test_facts_for_reads_withdrawal_and_loss_and_supportive_care(site_a, coordinator, investigator):
    patient = enrolled_patient(site=site_a, user=coordinator, today=date(2026, 2, 1))
    ResponseEvaluationFactory(
        patient=patient,
        evaluated_on=date(2026, 3, 2),
        decision=ResponseEvaluation.Decision.BEST_SUPPORTIVE_CARE,
        recist_response=ImagingStudy.Response.SD,
    )
    MdtDecisionFactory(
        patient=patient,
        decided_on=date(2026, 3, 9),
        decision=MdtDecision.Decision.BEST_SUPPORTIVE_CARE,
        planned_pancreatic="",
        investigator=investigator,
    )
    LostToFollowUp.objects.create(patient=patient, declared_on=date(2026, 9, 1))
    from tests.factories.patients import WithdrawalFactory

    WithdrawalFactory(patient=patient, withdrawn_on=date(2026, 8, 1))

    got = services.facts_for(patient_ids=[patient.pk], today=date(2026, 11, 24))[patient.pk]

    assert got.evaluations[0].supportive_care
    assert not got.evaluations[0].progression
    assert got.mdts == (protocol.Mdt(date(2026, 3, 9), supportive_care=True),)
    assert (got.withdrawn_on, got.lost_on) == (date(2026, 8, 1), date(2026, 9, 1))


# --- calendar_refresh -----------------------------------------------------------------------


def test_refresh_creates_then_updates_only_what_changed_then_deletes(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator, today=date(2026, 2, 1))
    ExpectedVisit.objects.all().delete()  # start from an empty calendar
    enrolled_on = patient.enrollment.enrolled_on

    stats = services.calendar_refresh(patient_ids=[patient.pk], today=date(2026, 2, 1))
    assert (stats.patients, stats.created, stats.updated, stats.deleted) == (1, 3, 0, 0)
    rows = _stored(patient)
    assert set(rows) == {"SCR", "BL", "C01"}
    assert rows["BL"].window_end == enrolled_on + 14 * DAY
    assert rows["BL"].status == VisitStatus.DUE
    assert rows["C01"].forms == "treatments.chemocycle"
    assert rows["C01"].site_id == site_a.pk

    again = services.calendar_refresh(patient_ids=[patient.pk], today=date(2026, 2, 1))
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)

    # A day past the baseline window: only BL changes (its stored status).
    later = services.calendar_refresh(patient_ids=[patient.pk], today=enrolled_on + 15 * DAY)
    assert (later.created, later.updated, later.deleted) == (0, 1, 0)
    assert _stored(patient)["BL"].status == VisitStatus.OVERDUE

    # The enrollment voided: no calendar any more.
    clinical_void(patient.enrollment, user=coordinator, reason="Enrolled in error")
    gone = services.calendar_refresh(patient_ids=[patient.pk], today=date(2026, 2, 1))
    assert (gone.created, gone.updated, gone.deleted) == (0, 0, 3)
    assert not ExpectedVisit.objects.filter(patient=patient).exists()


def test_refresh_of_everyone_takes_the_enrolled_patients(site_a, coordinator):
    first = enrolled_patient(site=site_a, user=coordinator, today=date(2026, 2, 1))
    second = enrolled_patient(site=site_a, user=coordinator, today=date(2026, 2, 1))
    ExpectedVisit.objects.all().delete()

    stats = services.calendar_refresh(today=date(2026, 2, 1))

    assert stats.patients == 2
    assert set(ExpectedVisit.objects.values_list("patient_id", flat=True)) == {first.pk, second.pk}


@pytest.fixture
def on_chemotherapy(site_a, coordinator):
    """Enrolled 24 May 2026, mFOLFIRINOX from 25 May, C01 and C02 given through the service."""
    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 6, 1))
    line = line_started(
        patient,
        user=coordinator,
        started_on=date(2026, 5, 25),
        regimen=Regimen.MFOLFIRINOX,
        today=ENTRY_DAY,
    )
    cycle_given(line, user=coordinator, given_on=date(2026, 5, 25), today=ENTRY_DAY)
    cycle_given(line, user=coordinator, given_on=date(2026, 6, 8), today=ENTRY_DAY)
    return patient, line


def test_a_cycle_saved_and_voided_moves_the_calendar(on_chemotherapy, coordinator):
    patient, line = on_chemotherapy
    rows = _stored(patient)
    assert rows["C02"].done_on == date(2026, 6, 8)
    assert rows["C03"].done_on is None
    assert rows["C03"].target_on == date(2026, 6, 22)
    assert "C04" not in rows

    cycle = cycle_given(line, user=coordinator, given_on=date(2026, 6, 23), today=ENTRY_DAY)

    rows = _stored(patient)
    assert rows["C03"].status == VisitStatus.DONE
    assert rows["C03"].done_on == date(2026, 6, 23)
    assert rows["C04"].target_on == date(2026, 7, 7)
    assert rows["C04"].done_on is None

    treatment_services.cycle_void(cycle=cycle, user=coordinator, reason="Entered twice")

    rows = _stored(patient)
    assert rows["C03"].done_on is None
    assert rows["C03"].status != VisitStatus.DONE
    assert _status(patient, "C03", date(2026, 6, 24)) == VisitStatus.DUE
    assert _status(patient, "C03", date(2026, 7, 1)) == VisitStatus.OVERDUE
    assert "C04" not in rows


def test_an_evaluation_saved_and_voided_moves_the_calendar(on_chemotherapy, coordinator):
    from assessments.services.imaging import evaluation_void
    from tests.factories.imaging import evaluation_record, study_record

    patient, line = on_chemotherapy
    for given_on in (date(2026, 6, 22), date(2026, 7, 6)):
        cycle_given(line, user=coordinator, given_on=given_on, today=date(2026, 8, 1))
    assert _stored(patient)["E1"].done_on is None
    study_record(patient, coordinator, date(2026, 5, 20), {"T1": 30}, baseline=True)
    imaging = study_record(patient, coordinator, date(2026, 7, 18), {"T1": 40})

    evaluation = evaluation_record(patient, coordinator, date(2026, 7, 20), imaging)

    rows = _stored(patient)
    assert rows["E1"].done_on == date(2026, 7, 20)
    # RECIST PD (40 mm against 30 mm) at the first evaluation: the next one after 2 cycles.
    assert rows["E2"].target_on == date(2026, 7, 6) + 14 * DAY + 2 * 14 * DAY

    evaluation_void(evaluation=evaluation, user=coordinator, reason="Wrong imaging")

    rows = _stored(patient)
    assert rows["E1"].done_on is None
    assert "E2" not in rows


def test_a_death_makes_the_later_visits_not_applicable(on_chemotherapy, coordinator):
    patient, _line = on_chemotherapy
    died_on = date(2026, 6, 20)  # within the window of C03 (19–29 Jun)
    patient_vital_status_set(patient=patient, user=coordinator, died_on=died_on, lost=False)

    services.calendar_refresh(patient_ids=[patient.pk], today=date(2026, 7, 1))

    rows = _stored(patient)
    assert rows["BL"].status == VisitStatus.DONE
    assert rows["C02"].status == VisitStatus.DONE
    assert rows["C03"].status == VisitStatus.NOT_APPLICABLE
    assert selectors.live_status(rows["C03"], today=date(2026, 8, 1)) == VisitStatus.NOT_APPLICABLE
    # Nothing after the death is open (a visit whose window opens later is not listed at all).
    later = [v for v in rows.values() if v.target_on > died_on]
    assert later
    assert {v.status for v in later} == {VisitStatus.NOT_APPLICABLE}
    work = selectors.worklist(user=coordinator, today=date(2026, 7, 1))
    assert not work.visits.filter(patient=patient).exists()


# --- closing a visit as missed --------------------------------------------------------------


def test_closing_a_visit_makes_it_missed_and_reopening_restores_it(on_chemotherapy, coordinator):
    patient, _line = on_chemotherapy
    today = date(2026, 7, 15)

    closure = services.visit_close(
        patient=patient, code="C03", reason="Admitted elsewhere", user=coordinator, today=today
    )

    assert closure.created_by == coordinator
    assert _stored(patient)["C03"].status == VisitStatus.MISSED
    assert _status(patient, "C03", today) == VisitStatus.MISSED
    assert not selectors.worklist(user=coordinator, today=today).visits.filter(code="C03").exists()

    services.visit_reopen(
        closure=closure, user=coordinator, reason="Closed by mistake", today=today
    )

    closure.refresh_from_db()
    assert closure.is_voided
    assert closure.void_reason == "Closed by mistake"
    assert _status(patient, "C03", today) == VisitStatus.OVERDUE
    assert selectors.worklist(user=coordinator, today=today).visits.filter(code="C03").exists()


@pytest.mark.parametrize(
    ("code", "today", "message"),
    [
        ("C01", date(2026, 7, 15), "Cycle 1 (C01) was done on %s" % fmt(date(2026, 5, 25))),
        ("X99", date(2026, 7, 15), "The protocol expects no visit X99"),
        (
            "C03",
            date(2026, 6, 10),
            "Cycle 3 (C03) is not due yet: its window opens on %s" % fmt(date(2026, 6, 19)),
        ),
    ],
)
def test_closing_refuses_a_visit_that_cannot_be_missed(
    on_chemotherapy, coordinator, code, today, message
):
    patient, _line = on_chemotherapy
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        services.visit_close(patient=patient, code=code, reason="r", user=coordinator, today=today)
    assert not VisitClosure.objects.exists()


def test_closing_needs_a_reason_and_is_done_once(on_chemotherapy, coordinator):
    patient, _line = on_chemotherapy
    today = date(2026, 7, 15)
    with pytest.raises(ValidationError) as error:
        services.visit_close(
            patient=patient, code="C03", reason="  ", user=coordinator, today=today
        )
    assert error.value.message_dict == {"reason": ["Give the reason the visit was missed."]}

    services.visit_close(patient=patient, code="C03", reason="Away", user=coordinator, today=today)
    with pytest.raises(ValidationError, match="already closed as missed"):
        services.visit_close(
            patient=patient, code="C03", reason="Again", user=coordinator, today=today
        )
    assert VisitClosure.objects.count() == 1
