"""The follow-up services: every rule refuses with its message on the field to fix and saves
nothing; death and loss keep the patient's status and date of death; every write tells the
higher apps (patient_records_changed)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from assessments.models import LabPanel
from assessments.services.labs import lab_panel_record
from followup import selectors, services
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients import services as patient_services
from patients.models import Patient, Withdrawal
from tests.factories.followup import (
    TODAY,
    contact_record,
    death_record,
    followup_patient,
    lost_record,
    recurrence_record,
    treatment_end_record,
)
from tests.factories.surgery import OPERATED_ON, operated_patient
from tests.factories.treatments import cycle_given, line_started
from treatments.models import ChemoCycle
from trial import derived
from trial.services import StaleRecordError

DAY = timedelta(days=1)
MODELS = (FollowUpContact, Recurrence, Death, LostToFollowUp, TreatmentEnd, Patient)


def _snapshot() -> dict:
    return {
        model.__name__: (
            sorted(model._base_manager.values_list("pk", "version")),
            model.history.count(),
        )
        for model in MODELS
    }


def _refused(call, field: str) -> list[str]:
    """Run `call`, which must raise a ValidationError naming `field`, and check that nothing
    was written; returns the field's messages."""
    before = _snapshot()
    with pytest.raises(ValidationError) as error:
        call()
    assert _snapshot() == before
    assert field in error.value.message_dict, error.value.message_dict
    return error.value.message_dict[field]


@pytest.fixture
def patient(site_a, coordinator):
    return followup_patient(site=site_a, user=coordinator)


@pytest.fixture
def operation(site_a, investigator):
    return operated_patient(site=site_a, investigator=investigator)


@pytest.fixture
def sources(monkeypatch) -> list[str]:
    """The `source` of every patient_records_changed call."""
    calls: list[str] = []
    monkeypatch.setitem(
        derived._REFRESHERS,
        "test-spy",
        derived.Refresher(
            key="test-spy", order=9999, refresh=lambda **kw: calls.append(kw["source"])
        ),
    )
    return calls


def _contact(patient, on, **fields) -> FollowUpContact:
    values = {"mode": "phone", "reached": True, "vital_status": "alive", **fields}
    return FollowUpContact(patient=patient, contacted_on=on, **values)


# --- contacts -------------------------------------------------------------------------------


def test_a_contact_is_saved_and_tells_the_calendar(patient, coordinator, sources):
    contact = contact_record(patient, coordinator, on=date(2026, 6, 1))
    assert (contact.version, contact.is_complete) == (1, True)
    assert contact.history.count() == 1
    services.contact_void(contact=contact, user=coordinator, reason="wrong date")
    assert sources == ["followup.contact", "followup.contact"]


@pytest.mark.parametrize(
    ("on", "message"),
    [
        (
            date(2026, 11, 25),
            "Nov. 25, 2026 is in the future (today is Nov. 24, 2026).",
        ),
        (
            date(2026, 2, 20),
            "Follow-up date (Feb. 20, 2026) is before the enrollment (Feb. 21, 2026).",
        ),
    ],
)
def test_a_contact_outside_the_study_period_is_refused(patient, coordinator, on, message):
    messages = _refused(
        lambda: services.contact_save(contact=_contact(patient, on), user=coordinator, today=TODAY),
        "contacted_on",
    )
    assert messages == [message]


def test_a_contact_after_the_death_is_refused(patient, coordinator):
    death_record(patient, coordinator, on=date(2026, 7, 1))
    messages = _refused(
        lambda: contact_record(patient, coordinator, on=date(2026, 7, 2)), "contacted_on"
    )
    assert messages == ["Follow-up date (July 2, 2026) is after the date of death (July 1, 2026)."]


def test_a_contact_reporting_the_death_may_come_after_it(patient, coordinator):
    """The family calls back after the death: that contact is dated after it, and accepted."""
    death_record(patient, coordinator, on=date(2026, 7, 1))
    patient.refresh_from_db()
    contact = contact_record(
        patient, coordinator, on=date(2026, 7, 9), vital_status="dead", ecog=None
    )
    assert contact.pk
    # It does not show the patient alive.
    known = selectors.last_known_alive(patient=patient)
    assert (known.on, known.source) == (date(2026, 2, 21), "enrollment")
    assert selectors.followup_summary(patient=patient).death_reported is None


def test_a_contact_after_a_withdrawal_is_refused(patient, coordinator):
    patient_services.withdrawal_save(
        withdrawal=Withdrawal(
            patient=patient,
            withdrawn_on=date(2026, 5, 1),
            kind="drop_out",
            reason="patient_decision",
            no_medication_given=True,
        ),
        user=coordinator,
        today=TODAY,
    )
    messages = _refused(
        lambda: contact_record(patient, coordinator, on=date(2026, 5, 2)), "contacted_on"
    )
    assert messages == ["Follow-up date (May 2, 2026) is after the withdrawal (May 1, 2026)."]


def test_an_attempt_that_reached_nobody_has_an_unknown_vital_status(patient, coordinator):
    contact = _contact(patient, date(2026, 6, 1), reached=False, vital_status="alive")
    messages = _refused(
        lambda: services.contact_save(contact=contact, user=coordinator, today=TODAY),
        "vital_status",
    )
    assert messages == ["Nobody was reached, so the vital status is unknown: choose Unknown."]


def test_a_contact_reporting_the_death_is_accepted_and_asks_for_the_death_form(
    patient, coordinator
):
    contact_record(patient, coordinator, on=date(2026, 6, 1))
    reported = contact_record(
        patient, coordinator, on=date(2026, 7, 10), vital_status="dead", ecog=None
    )
    summary = selectors.followup_summary(patient=patient)
    assert summary.death_reported == reported
    # The death cannot be dated after the contact that reported it ...
    messages = _refused(lambda: death_record(patient, coordinator, on=date(2026, 7, 11)), "died_on")
    assert messages == [
        "Date of death (July 11, 2026) is after the follow-up contact of July 10, 2026 that "
        "reported the death."
    ]
    # ... and once it is recorded, the prompt goes.
    death_record(patient, coordinator, on=date(2026, 7, 8))
    patient.refresh_from_db()
    assert selectors.followup_summary(patient=patient).death_reported is None


def test_a_contact_reporting_the_death_before_the_recorded_date_is_refused(patient, coordinator):
    death_record(patient, coordinator, on=date(2026, 7, 8))
    patient.refresh_from_db()
    contact = _contact(patient, date(2026, 7, 1), vital_status="dead")
    messages = _refused(
        lambda: services.contact_save(contact=contact, user=coordinator, today=TODAY),
        "vital_status",
    )
    assert messages == [
        "The death is recorded on July 8, 2026, after this contact (July 1, 2026): correct the "
        "date of death or the vital status."
    ]


def test_a_stale_contact_edit_is_refused(patient, coordinator):
    contact = contact_record(patient, coordinator, on=date(2026, 6, 1))
    first = FollowUpContact.objects.get(pk=contact.pk)
    first.ecog = 2
    services.contact_save(
        contact=first, user=coordinator, expected_version=1, reason="ECOG corrected", today=TODAY
    )
    second = FollowUpContact.objects.get(pk=contact.pk)
    second.ecog = 0
    with pytest.raises(StaleRecordError):
        services.contact_save(
            contact=second, user=coordinator, expected_version=1, reason="x", today=TODAY
        )
    assert FollowUpContact.objects.get(pk=contact.pk).ecog == 2


def test_an_edit_of_a_complete_contact_needs_a_reason(patient, coordinator):
    contact = contact_record(patient, coordinator, on=date(2026, 6, 1))
    contact.ecog = 2
    messages = _refused(
        lambda: services.contact_save(
            contact=contact, user=coordinator, expected_version=1, today=TODAY
        ),
        "change_reason",
    )
    assert messages == ["This form is complete: give a reason for the change."]


# --- death ----------------------------------------------------------------------------------


def test_a_death_makes_the_patient_deceased_and_its_void_brings_them_back(
    patient, coordinator, sources
):
    death = death_record(patient, coordinator, on=date(2026, 8, 1))
    patient.refresh_from_db()
    assert (patient.status, patient.died_on) == (Patient.Status.DECEASED, date(2026, 8, 1))
    edited = Death.objects.get(pk=death.pk)
    edited.died_on = date(2026, 8, 3)
    services.death_save(
        death=edited, user=coordinator, expected_version=1, reason="certificate", today=TODAY
    )
    patient.refresh_from_db()
    assert patient.died_on == date(2026, 8, 3)
    services.death_void(death=edited, user=coordinator, reason="another patient's death")
    patient.refresh_from_db()
    assert (patient.status, patient.died_on) == (Patient.Status.ENROLLED, None)
    assert sources == ["followup.death"] * 3


def test_a_second_death_is_refused(patient, coordinator):
    death_record(patient, coordinator, on=date(2026, 8, 1))
    messages = _refused(lambda: death_record(patient, coordinator, on=date(2026, 8, 1)), "died_on")
    assert messages == ["A death is already recorded for this patient."]


def test_a_death_before_the_last_recorded_visit_is_refused_naming_it(site_a, coordinator):
    from tests.factories.patients import baselined_patient

    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 1, 10))
    line = line_started(
        patient, user=coordinator, started_on=date(2026, 1, 12), today=date(2026, 6, 1)
    )
    cycle_given(line, user=coordinator, given_on=date(2026, 1, 12), today=date(2026, 6, 1))
    cycle_given(line, user=coordinator, given_on=date(2026, 3, 12), today=date(2026, 6, 1))
    messages = _refused(lambda: death_record(patient, coordinator, on=date(2026, 3, 3)), "died_on")
    assert messages == [
        "Date of death (March 3, 2026) is before the last recorded visit: chemotherapy cycle on "
        "March 12, 2026."
    ]
    # On the day of the last visit is accepted.
    death_record(patient, coordinator, on=date(2026, 3, 12))


@pytest.mark.parametrize(
    ("on", "message"),
    [
        (date(2026, 11, 25), "Nov. 25, 2026 is in the future (today is Nov. 24, 2026)."),
        (
            date(2026, 2, 1),
            "Date of death (Feb. 1, 2026) is before the enrollment (Feb. 21, 2026).",
        ),
    ],
)
def test_a_death_outside_the_study_period_is_refused(patient, coordinator, on, message):
    messages = _refused(lambda: death_record(patient, coordinator, on=on), "died_on")
    assert message in messages


def test_a_death_of_other_cause_needs_its_description(patient, coordinator):
    messages = _refused(
        lambda: death_record(patient, coordinator, on=date(2026, 8, 1), cause="other"),
        "cause_detail",
    )
    assert messages == ["Describe the cause of death."]


def test_the_death_bounds_the_forms_of_other_apps(site_a, coordinator):
    """After the death no chemotherapy cycle and no lab panel may be dated later."""
    from tests.factories.patients import baselined_patient

    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 1, 10))
    line = line_started(
        patient, user=coordinator, started_on=date(2026, 1, 12), today=date(2026, 6, 1)
    )
    cycle_given(line, user=coordinator, given_on=date(2026, 1, 12), today=date(2026, 6, 1))
    death_record(patient, coordinator, on=date(2026, 2, 1))
    patient.refresh_from_db()
    with pytest.raises(ValidationError) as error:
        cycle_given(line, user=coordinator, given_on=date(2026, 2, 9), today=date(2026, 6, 1))
    assert "Cycle date (Feb. 9, 2026) is after the date of death (Feb. 1, 2026)." in str(
        error.value
    )
    assert ChemoCycle.objects.filter(patient=patient).count() == 1
    with pytest.raises(ValidationError) as error:
        lab_panel_record(
            panel=LabPanel(patient=patient, sampled_on=date(2026, 2, 5), context="other"),
            values={"hemoglobin": (Decimal("110"), None)},
            user=coordinator,
            today=date(2026, 6, 1),
        )
    assert "after the date of death (Feb. 1, 2026)" in str(error.value)
    assert not LabPanel.objects.filter(patient=patient, sampled_on=date(2026, 2, 5)).exists()


# --- recurrence / progression ---------------------------------------------------------------


def test_a_recurrence_without_a_resection_is_refused_as_progression(patient, coordinator):
    messages = _refused(
        lambda: recurrence_record(patient, coordinator, on=date(2026, 9, 1), kind="recurrence"),
        "kind",
    )
    assert messages == ["No resection precedes Sept. 1, 2026: record it as progression."]
    progression = recurrence_record(patient, coordinator, on=date(2026, 9, 1), kind="progression")
    assert progression.kind == Recurrence.Kind.PROGRESSION


def test_a_recurrence_before_the_operation_is_refused(operation, investigator):
    patient = operation.patient
    messages = _refused(
        lambda: recurrence_record(patient, investigator, on=date(2026, 4, 10), kind="recurrence"),
        "kind",
    )
    assert messages == [
        "No resection precedes April 10, 2026 (operation on April 20, 2026): record it as "
        "progression."
    ]
    # On the day of the operation is not after it either.
    _refused(
        lambda: recurrence_record(patient, investigator, on=OPERATED_ON, kind="recurrence"),
        "kind",
    )
    before = recurrence_record(patient, investigator, on=date(2026, 4, 10), kind="progression")
    assert before.kind == "progression"


def test_progression_after_a_resection_is_refused_as_recurrence(operation, investigator):
    patient = operation.patient
    messages = _refused(
        lambda: recurrence_record(patient, investigator, on=date(2026, 9, 1), kind="progression"),
        "kind",
    )
    assert messages == [
        "The resection of April 20, 2026 precedes Sept. 1, 2026: disease after it is a "
        "recurrence, record it as recurrence."
    ]
    recurrence = recurrence_record(patient, investigator, on=date(2026, 9, 1), kind="recurrence")
    assert recurrence.kind == "recurrence"


def test_a_recurrence_needs_a_site_and_the_patients_own_contact(
    patient, site_a, coordinator, sources
):
    messages = _refused(
        lambda: recurrence_record(
            patient, coordinator, on=date(2026, 9, 1), kind="progression", site_liver=False
        ),
        "site_local",
    )
    assert messages == ["Tick at least one site."]
    other = followup_patient(site=site_a, user=coordinator)
    foreign = contact_record(other, coordinator, on=date(2026, 9, 1))
    messages = _refused(
        lambda: recurrence_record(
            patient, coordinator, on=date(2026, 9, 1), kind="progression", contact=foreign
        ),
        "contact",
    )
    assert messages == ["Choose an active follow-up contact of this patient."]
    own = contact_record(patient, coordinator, on=date(2026, 9, 2), recurrence=True)
    sources.clear()
    recurrence = recurrence_record(
        patient, coordinator, on=date(2026, 9, 1), kind="progression", contact=own
    )
    assert recurrence.contact == own
    assert sources == ["followup.recurrence"]
    # The contact a recurrence refers to cannot be voided before the recurrence.
    messages = _refused(
        lambda: services.contact_void(contact=own, user=coordinator, reason="x"), "void_reason"
    )
    assert messages == [
        "The progression (no resection before it) of Sept. 1, 2026 refers to this contact: "
        "edit or void it first."
    ]
    services.recurrence_void(recurrence=recurrence, user=coordinator, reason="duplicate")
    services.contact_void(contact=own, user=coordinator, reason="duplicate")


def test_a_recurrence_after_the_death_is_refused(patient, coordinator):
    death_record(patient, coordinator, on=date(2026, 8, 1))
    patient.refresh_from_db()
    messages = _refused(
        lambda: recurrence_record(patient, coordinator, on=date(2026, 8, 2), kind="progression"),
        "detected_on",
    )
    assert messages == ["Date detected (Aug. 2, 2026) is after the date of death (Aug. 1, 2026)."]


# --- loss to follow-up ----------------------------------------------------------------------


def _failed(patient, user, *days: date) -> list[FollowUpContact]:
    return [contact_record(patient, user, on=on, reached=False) for on in days]


def test_loss_needs_three_failed_attempts_after_the_last_success(patient, coordinator):
    _failed(patient, coordinator, date(2026, 4, 1), date(2026, 4, 15))
    contact_record(patient, coordinator, on=date(2026, 5, 1))
    _failed(patient, coordinator, date(2026, 6, 1), date(2026, 7, 1))
    messages = _refused(
        lambda: lost_record(patient, coordinator, on=date(2026, 7, 20)), "declared_on"
    )
    assert messages == [
        "2 failed contact attempt(s) since the last successful contact (May 1, 2026) up to "
        "July 20, 2026: at least 3 are needed to declare the patient lost to follow-up."
    ]
    _failed(patient, coordinator, date(2026, 8, 1))
    # An attempt after the declaration does not count.
    _refused(lambda: lost_record(patient, coordinator, on=date(2026, 7, 20)), "declared_on")
    loss = lost_record(patient, coordinator, on=date(2026, 8, 1))
    assert (loss.failed_attempts, loss.last_contact_on) == (3, date(2026, 5, 1))
    patient.refresh_from_db()
    assert patient.status == Patient.Status.LOST


def test_loss_without_any_successful_contact_counts_from_the_enrollment(patient, coordinator):
    _failed(patient, coordinator, date(2026, 3, 1))
    messages = _refused(
        lambda: lost_record(patient, coordinator, on=date(2026, 3, 5)), "declared_on"
    )
    assert messages == [
        "1 failed contact attempt(s) since the enrollment (Feb. 21, 2026) up to March 5, 2026: "
        "at least 3 are needed to declare the patient lost to follow-up."
    ]
    _failed(patient, coordinator, date(2026, 4, 1), date(2026, 5, 1))
    loss = lost_record(patient, coordinator, on=date(2026, 5, 1))
    assert (loss.failed_attempts, loss.last_contact_on) == (3, None)


@pytest.fixture
def lost(patient, coordinator) -> LostToFollowUp:
    contact_record(patient, coordinator, on=date(2026, 5, 1))
    _failed(patient, coordinator, date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1))
    return lost_record(patient, coordinator, on=date(2026, 8, 10))


def test_a_contact_that_reaches_a_lost_patient_is_refused_until_the_loss_is_voided(
    patient, coordinator, lost, sources
):
    messages = _refused(
        lambda: contact_record(patient, coordinator, on=date(2026, 9, 1)), "reached"
    )
    assert messages == [
        "The patient was declared lost to follow-up on Aug. 10, 2026: void the loss to "
        "follow-up first."
    ]
    # A further failed attempt is fine.
    _failed(patient, coordinator, date(2026, 9, 1))
    services.lost_void(loss=lost, user=coordinator, reason="found again")
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED
    contact_record(patient, coordinator, on=date(2026, 9, 2))
    assert sources == ["followup.contact", "followup.lost", "followup.contact"]


def test_the_failed_attempts_a_loss_rests_on_cannot_be_voided_or_moved(patient, coordinator, lost):
    attempt = FollowUpContact.objects.get(patient=patient, contacted_on=date(2026, 7, 1))
    messages = _refused(
        lambda: services.contact_void(contact=attempt, user=coordinator, reason="x"),
        "void_reason",
    )
    assert messages == [
        "The loss to follow-up of Aug. 10, 2026 rests on this failed attempt: void the loss to "
        "follow-up first."
    ]
    attempt.contacted_on = date(2026, 8, 20)
    _refused(
        lambda: services.contact_save(
            contact=attempt, user=coordinator, expected_version=1, reason="x", today=TODAY
        ),
        "contacted_on",
    )


def test_a_second_loss_and_a_loss_after_a_death_are_refused(patient, coordinator, lost):
    messages = _refused(
        lambda: lost_record(patient, coordinator, on=date(2026, 8, 12)), "declared_on"
    )
    assert messages == ["This patient is already lost to follow-up."]


def test_a_loss_is_refused_once_the_death_is_recorded(patient, coordinator):
    _failed(patient, coordinator, date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1))
    death_record(patient, coordinator, on=date(2026, 9, 1))
    patient.refresh_from_db()
    messages = _refused(
        lambda: lost_record(patient, coordinator, on=date(2026, 8, 10)), "declared_on"
    )
    assert messages == [
        "The death is recorded (Sept. 1, 2026): a deceased patient is not lost to follow-up."
    ]


def test_status_with_loss_and_death(patient, coordinator, lost):
    """Death wins over loss; voiding the death goes back to lost, voiding the loss to
    enrolled."""
    death = death_record(patient, coordinator, on=date(2026, 9, 1))
    patient.refresh_from_db()
    assert patient.status == Patient.Status.DECEASED
    services.death_void(death=death, user=coordinator, reason="wrong patient")
    patient.refresh_from_db()
    assert (patient.status, patient.died_on) == (Patient.Status.LOST, None)
    services.lost_void(loss=lost, user=coordinator, reason="found")
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED


# --- end of treatment -----------------------------------------------------------------------


def test_end_of_treatment_rules(site_a, coordinator, sources):
    from tests.factories.patients import baselined_patient

    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 1, 10))
    line = line_started(
        patient, user=coordinator, started_on=date(2026, 1, 12), today=date(2026, 6, 1)
    )
    cycle_given(line, user=coordinator, given_on=date(2026, 1, 12), today=date(2026, 6, 1))
    cycle_given(line, user=coordinator, given_on=date(2026, 2, 9), today=date(2026, 6, 1))
    messages = _refused(
        lambda: treatment_end_record(patient, coordinator, on=date(2026, 2, 1)), "ended_on"
    )
    assert messages == [
        "End of treatment (Feb. 1, 2026) is before the last chemotherapy cycle (Feb. 9, 2026)."
    ]
    messages = _refused(
        lambda: treatment_end_record(patient, coordinator, on=date(2026, 2, 9), reason="other"),
        "reason_detail",
    )
    assert messages == ["Describe the reason."]
    end = treatment_end_record(patient, coordinator, on=date(2026, 2, 9))
    messages = _refused(
        lambda: treatment_end_record(patient, coordinator, on=date(2026, 3, 1)), "ended_on"
    )
    assert messages == [
        "The end of treatment is already recorded (Feb. 9, 2026): edit that record."
    ]
    services.treatment_end_void(treatment_end=end, user=coordinator, reason="wrong")
    assert sources[-2:] == ["followup.treatment_end", "followup.treatment_end"]
