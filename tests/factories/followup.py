"""Factories for the follow-up app and helpers that go through the real services.

`followup_patient` gives an enrolled patient (enrolled 21 Feb 2026, like the surgical patients
of tests.factories.surgery); the services are called with `TODAY` below.
"""

from datetime import date

import factory

from followup import services
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients.models import Patient
from tests.factories.patients import PatientFactory, enrolled_patient
from trial.models import Cohort, FormStatus

TODAY = date(2026, 11, 24)
ENROLLED_ON = date(2026, 2, 21)


class FollowUpContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FollowUpContact

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    contacted_on = date(2026, 6, 1)
    mode = FollowUpContact.Mode.PHONE
    reached = True
    vital_status = FollowUpContact.VitalStatus.ALIVE
    ecog = 1
    recurrence = False
    status = FormStatus.COMPLETE


class RecurrenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recurrence

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    detected_on = date(2026, 9, 1)
    kind = Recurrence.Kind.PROGRESSION
    site_liver = True
    detected_by = Recurrence.DetectedBy.IMAGING
    status = FormStatus.COMPLETE


class DeathFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Death

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.DECEASED)
    died_on = date(2026, 10, 1)
    cause = Death.Cause.PROGRESSION
    source = Death.Source.HOSPITAL
    status = FormStatus.COMPLETE


class LostToFollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LostToFollowUp

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.LOST)
    declared_on = date(2026, 9, 15)
    failed_attempts = 3
    last_contact_on = date(2026, 6, 1)
    status = FormStatus.COMPLETE


class TreatmentEndFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TreatmentEnd

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    ended_on = date(2026, 5, 1)
    reason = TreatmentEnd.Reason.COMPLETED
    status = FormStatus.COMPLETE


# --- through the services -------------------------------------------------------------------


def followup_patient(*, site, user, cohort: str = Cohort.PROSPECTIVE) -> Patient:
    """An enrolled patient (enrolled on 21 Feb 2026) through the real services."""
    patient = enrolled_patient(site=site, user=user, today=date(2026, 3, 1), cohort=cohort)
    assert patient.enrollment.enrolled_on == ENROLLED_ON
    return patient


def contact_record(patient, user, *, on: date, reached: bool = True, **fields) -> FollowUpContact:
    """A follow-up contact through `services.contact_save` (alive and ECOG 1 when reached; an
    attempt that reached nobody otherwise)."""
    values = {
        "mode": FollowUpContact.Mode.PHONE,
        "vital_status": "alive" if reached else "unknown",
        "ecog": 1 if reached else None,
        "recurrence": False if reached else None,
        **fields,
    }
    contact = FollowUpContact(patient=patient, contacted_on=on, reached=reached, **values)
    return services.contact_save(contact=contact, user=user, today=TODAY)


def death_record(patient, user, *, on: date, **fields) -> Death:
    values = {"cause": Death.Cause.PROGRESSION, "source": Death.Source.HOSPITAL, **fields}
    return services.death_save(
        death=Death(patient=patient, died_on=on, **values), user=user, today=TODAY
    )


def lost_record(patient, user, *, on: date, **fields) -> LostToFollowUp:
    return services.lost_save(
        loss=LostToFollowUp(patient=patient, declared_on=on, **fields), user=user, today=TODAY
    )


def recurrence_record(patient, user, *, on: date, kind: str, **fields) -> Recurrence:
    values = {"site_liver": True, "detected_by": Recurrence.DetectedBy.IMAGING, **fields}
    return services.recurrence_save(
        recurrence=Recurrence(patient=patient, detected_on=on, kind=kind, **values),
        user=user,
        today=TODAY,
    )


def treatment_end_record(patient, user, *, on: date, **fields) -> TreatmentEnd:
    values = {"reason": TreatmentEnd.Reason.COMPLETED, **fields}
    return services.treatment_end_save(
        treatment_end=TreatmentEnd(patient=patient, ended_on=on, **values),
        user=user,
        today=TODAY,
    )


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "followup.FollowUpContact": lambda site: FollowUpContactFactory.build(
        patient=PatientFactory(site=site)
    ),
    "followup.Recurrence": lambda site: RecurrenceFactory.build(patient=PatientFactory(site=site)),
    "followup.Death": lambda site: DeathFactory.build(patient=PatientFactory(site=site)),
    "followup.LostToFollowUp": lambda site: LostToFollowUpFactory.build(
        patient=PatientFactory(site=site)
    ),
    "followup.TreatmentEnd": lambda site: TreatmentEndFactory.build(
        patient=PatientFactory(site=site)
    ),
}
