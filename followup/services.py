"""Every write of the follow-up app: contacts, recurrence / progression, death, loss to
follow-up and the end of treatment.

Each service is one transaction that locks the patient row first, so two users recording
the same patient's follow-up are serialised. Row rules live in the models' clean(); the rules
that compare a record with the patient's other records live here. Every date goes through the
patient's study period (not in the future, not before the enrollment, not after a withdrawal
or the death). All errors of one submission are raised together, keyed by the field to fix,
and nothing is saved then. Death and loss keep the patient's date of death and status in
step (`patients.services.patient_vital_status_set`); every save and void ends with
`trial.derived.patient_records_changed`, so the protocol calendar follows.
"""

import dataclasses
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from followup.selectors import LOSS_ATTEMPTS, failed_attempts_since_success, last_known_alive
from patients.models import Patient
from patients.services import StudyPeriod, patient_vital_status_set, study_period
from surgery.models import Operation
from treatments.models import ChemoCycle
from trial.derived import patient_records_changed
from trial.models import AuditedModel
from trial.services import clinical_save, clinical_void
from trial.validation import fmt, raise_if


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _row_errors(errors: dict, instance: AuditedModel) -> None:
    """The model's own field validation and clean(), collected into `errors` (foreign keys and
    constraints are validated again by clinical_save before saving)."""
    skip = {f.name for f in instance._meta.concrete_fields if f.is_relation}
    try:
        instance.clean()
    except ValidationError as error:
        for name, items in error.message_dict.items():
            errors.setdefault(name, []).extend(items)
            skip.add(name)
    try:
        instance.clean_fields(exclude=skip)
    except ValidationError as error:
        for name, items in error.message_dict.items():
            errors.setdefault(name, []).extend(items)


def _locked(patient_id: int) -> Patient:
    return Patient.objects.select_for_update().get(pk=patient_id)


def _period(patient: Patient) -> StudyPeriod:
    return study_period(patient=patient, what=_("follow-up data"))


def _vital_status_update(patient: Patient, user: AbstractBaseUser | None) -> None:
    """The patient's date of death and status from the active death and loss records."""
    death = Death.objects.active().filter(patient=patient).first()
    lost = LostToFollowUp.objects.active().filter(patient=patient).exists()
    patient_vital_status_set(
        patient=patient, user=user, died_on=death.died_on if death else None, lost=lost
    )


def _active_contacts(patient: Patient, *, without: int | None = None) -> list[FollowUpContact]:
    return list(FollowUpContact.objects.active().filter(patient=patient).exclude(pk=without))


def _loss_holds(loss: LostToFollowUp, contacts: list[FollowUpContact]) -> bool:
    failed, _last = failed_attempts_since_success(contacts, until=loss.declared_on)
    return len(failed) >= LOSS_ATTEMPTS


# --- follow-up contacts ---------------------------------------------------------------------


@transaction.atomic
def contact_save(
    *,
    contact: FollowUpContact,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> FollowUpContact:
    """Record a follow-up contact or attempt (or save an edit of one).

    A contact that reports the patient dead is accepted (also after the recorded date of
    death, which it reports); the patient page then asks for the death form while none is
    recorded. Refused (ValidationError keyed by field, nothing saved): a date in the future,
    before the enrollment, after a withdrawal or (unless it reports the death) after the
    recorded death; the model's rules
    (an attempt that reached nobody has an unknown vital status, …); a contact reporting the
    death dated before the recorded date of death; while the patient is declared lost, a
    contact that reached the patient or family after the last successful contact ("void the
    loss to follow-up first"), or a change that leaves the loss fewer than three failed
    attempts. StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    patient = _locked(contact.patient_id)
    contact.patient = patient
    errors: dict = {}
    dead = contact.vital_status == FollowUpContact.VitalStatus.DEAD
    period = _period(patient)
    if dead:
        # The contact that reports the death comes after it (the family calls back later).
        period = dataclasses.replace(period, died_on=None)
    period.check(
        errors, "contacted_on", contact.contacted_on, label=_("Follow-up date"), today=today
    )
    _row_errors(errors, contact)
    if dead and patient.died_on and contact.contacted_on and patient.died_on > contact.contacted_on:
        _add(
            errors,
            "vital_status",
            _(
                "The death is recorded on %(died)s, after this contact (%(value)s): correct "
                "the date of death or the vital status."
            )
            % {"died": fmt(patient.died_on), "value": fmt(contact.contacted_on)},
        )
    loss = LostToFollowUp.objects.active().filter(patient=patient).first()
    if loss is not None and contact.contacted_on and not errors:
        found = contact.reached and (
            loss.last_contact_on is None or contact.contacted_on > loss.last_contact_on
        )
        if found:
            _add(
                errors,
                "reached",
                _(
                    "The patient was declared lost to follow-up on %(on)s: void the loss to "
                    "follow-up first."
                )
                % {"on": fmt(loss.declared_on)},
            )
        elif not _loss_holds(loss, [*_active_contacts(patient, without=contact.pk), contact]):
            _add(
                errors,
                "contacted_on",
                _(
                    "The loss to follow-up of %(on)s rests on this failed attempt: void the "
                    "loss to follow-up first."
                )
                % {"on": fmt(loss.declared_on)},
            )
    raise_if(errors)
    saved = clinical_save(
        contact, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    patient_records_changed(patient=patient, user=user, source="followup.contact")
    return saved


@transaction.atomic
def contact_void(
    *,
    contact: FollowUpContact,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> FollowUpContact:
    """Void a contact entered in error. Refused (ValidationError on "void_reason") while an
    active recurrence refers to it, or while the loss to follow-up rests on it (fewer than
    three failed attempts would remain); StaleRecordError when it changed since
    `expected_version`."""
    patient = _locked(contact.patient_id)
    errors: dict = {}
    recurrence = Recurrence.objects.active().filter(contact_id=contact.pk).first()
    if recurrence is not None:
        _add(
            errors,
            "void_reason",
            _("The %(kind)s of %(on)s refers to this contact: edit or void it first.")
            % {"kind": recurrence.get_kind_display().lower(), "on": fmt(recurrence.detected_on)},
        )
    loss = LostToFollowUp.objects.active().filter(patient=patient).first()
    if loss is not None and not _loss_holds(loss, _active_contacts(patient, without=contact.pk)):
        _add(
            errors,
            "void_reason",
            _(
                "The loss to follow-up of %(on)s rests on this failed attempt: void the loss to "
                "follow-up first."
            )
            % {"on": fmt(loss.declared_on)},
        )
    raise_if(errors)
    voided = clinical_void(contact, user=user, reason=reason, expected_version=expected_version)
    patient_records_changed(patient=patient, user=user, source="followup.contact")
    return voided


# --- recurrence / progression ---------------------------------------------------------------


@transaction.atomic
def recurrence_save(
    *,
    recurrence: Recurrence,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Recurrence:
    """Record a recurrence (after the resection) or a progression (without one), or save an
    edit.

    The kind follows the index operation (surgery.Operation): a recurrence needs an active
    operation dated before `detected_on`, and a progression is refused after one (it is a
    recurrence then). Refused as well (ValidationError keyed by field, nothing saved): a date in
    the future, before the enrollment, after a withdrawal or after the death; no site ticked;
    a follow-up contact that is not an active contact of this patient. StaleRecordError when
    it changed since `expected_version`.
    """
    today = _today(today)
    patient = _locked(recurrence.patient_id)
    recurrence.patient = patient
    errors: dict = {}
    detected_on = recurrence.detected_on
    _period(patient).check(
        errors, "detected_on", detected_on, label=_("Date detected"), today=today
    )
    _row_errors(errors, recurrence)
    if recurrence.contact_id is not None:
        contact = FollowUpContact.objects.filter(pk=recurrence.contact_id).first()
        if contact is None or contact.patient_id != patient.pk or contact.is_voided:
            _add(errors, "contact", _("Choose an active follow-up contact of this patient."))
    operation = Operation.objects.active().filter(patient=patient).first()
    resected = operation is not None and detected_on and operation.operated_on < detected_on
    if detected_on and recurrence.kind == Recurrence.Kind.RECURRENCE and not resected:
        if operation is None:
            message = _("No resection precedes %(value)s: record it as progression.") % {
                "value": fmt(detected_on)
            }
        else:
            message = _(
                "No resection precedes %(value)s (operation on %(other)s): record it as "
                "progression."
            ) % {"value": fmt(detected_on), "other": fmt(operation.operated_on)}
        _add(errors, "kind", message)
    if recurrence.kind == Recurrence.Kind.PROGRESSION and resected:
        _add(
            errors,
            "kind",
            _(
                "The resection of %(other)s precedes %(value)s: disease after it is a "
                "recurrence, record it as recurrence."
            )
            % {"value": fmt(detected_on), "other": fmt(operation.operated_on)},
        )
    raise_if(errors)
    saved = clinical_save(
        recurrence,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    patient_records_changed(patient=patient, user=user, source="followup.recurrence")
    return saved


@transaction.atomic
def recurrence_void(
    *,
    recurrence: Recurrence,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> Recurrence:
    """Void a recurrence / progression entered in error (ValidationError without a reason;
    StaleRecordError when it changed since `expected_version`)."""
    patient = _locked(recurrence.patient_id)
    voided = clinical_void(recurrence, user=user, reason=reason, expected_version=expected_version)
    patient_records_changed(patient=patient, user=user, source="followup.recurrence")
    return voided


# --- death ----------------------------------------------------------------------------------


@transaction.atomic
def death_save(
    *,
    death: Death,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Death:
    """Record the patient's death (or save an edit); the patient becomes deceased and no form
    may be dated after `died_on` from then on.

    Refused (ValidationError keyed by field, nothing saved): a second active death ("A death is
    already recorded for this patient."); a date in the future, before the enrollment or after
    a withdrawal; a date before the last record that shows the patient alive, which is named
    ("… is before the last recorded visit: chemotherapy cycle on 12 Mar 2026."); a date after
    a follow-up contact that reported the death; "other" cause without its description.
    StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    patient = _locked(death.patient_id)
    death.patient = patient
    errors: dict = {}
    died_on = death.died_on
    other = Death.objects.active().filter(patient=patient).exclude(pk=death.pk).first()
    if other is not None:
        _add(errors, "died_on", _("A death is already recorded for this patient."))
    # The bound "not after the date of death" is this record's own date: leave it out.
    period = dataclasses.replace(_period(patient), died_on=None)
    period.check(errors, "died_on", died_on, label=_("Date of death"), today=today)
    alive = last_known_alive(patient=patient)
    if died_on and alive.on and died_on < alive.on:
        _add(
            errors,
            "died_on",
            _(
                "Date of death (%(value)s) is before the last recorded visit: %(source)s on "
                "%(other)s."
            )
            % {"value": fmt(died_on), "source": alive.source, "other": fmt(alive.on)},
        )
    reported = (
        FollowUpContact.objects.active()
        .filter(patient=patient, vital_status=FollowUpContact.VitalStatus.DEAD)
        .order_by("contacted_on")
        .first()
    )
    if died_on and reported is not None and died_on > reported.contacted_on:
        _add(
            errors,
            "died_on",
            _(
                "Date of death (%(value)s) is after the follow-up contact of %(other)s that "
                "reported the death."
            )
            % {"value": fmt(died_on), "other": fmt(reported.contacted_on)},
        )
    _row_errors(errors, death)
    raise_if(errors)
    saved = clinical_save(
        death, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    _vital_status_update(patient, user)
    patient_records_changed(patient=patient, user=user, source="followup.death")
    return saved


@transaction.atomic
def death_void(
    *,
    death: Death,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> Death:
    """Void a death entered in error: the patient's date of death is cleared and the status
    goes back (lost to follow-up, withdrawn or enrolled). ValidationError without a reason;
    StaleRecordError when it changed since `expected_version`."""
    patient = _locked(death.patient_id)
    voided = clinical_void(death, user=user, reason=reason, expected_version=expected_version)
    _vital_status_update(patient, user)
    patient_records_changed(patient=patient, user=user, source="followup.death")
    return voided


# --- loss to follow-up ----------------------------------------------------------------------


@transaction.atomic
def lost_save(
    *,
    loss: LostToFollowUp,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> LostToFollowUp:
    """Declare the patient lost to follow-up (or save an edit); the patient's status becomes
    lost to follow-up. Fills `failed_attempts` and `last_contact_on` from the contacts.

    Needs at least three contact attempts that reached nobody (`reached=False`), all after the
    last contact that reached the patient or family (or after the enrollment when none did),
    dated on or before `declared_on`. Refused otherwise (ValidationError on "declared_on",
    nothing saved), and for: a second active loss; a recorded death; a contact that reached
    the patient after `declared_on`; a date in the future, before the enrollment or after a
    withdrawal. StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    patient = _locked(loss.patient_id)
    loss.patient = patient
    errors: dict = {}
    declared_on = loss.declared_on
    period = _period(patient)
    period.check(errors, "declared_on", declared_on, label=_("Date declared lost"), today=today)
    if LostToFollowUp.objects.active().filter(patient=patient).exclude(pk=loss.pk).exists():
        _add(errors, "declared_on", _("This patient is already lost to follow-up."))
    death = Death.objects.active().filter(patient=patient).first()
    if death is not None:
        _add(
            errors,
            "declared_on",
            _("The death is recorded (%(on)s): a deceased patient is not lost to follow-up.")
            % {"on": fmt(death.died_on)},
        )
    if declared_on:
        contacts = _active_contacts(patient)
        later = [c for c in contacts if c.reached and c.contacted_on > declared_on]
        if later:
            _add(
                errors,
                "declared_on",
                _("The patient or family was reached on %(other)s, after %(value)s.")
                % {
                    "other": fmt(min(c.contacted_on for c in later)),
                    "value": fmt(declared_on),
                },
            )
        failed, last_success = failed_attempts_since_success(contacts, until=declared_on)
        if len(failed) < LOSS_ATTEMPTS:
            since = (
                _("the last successful contact (%(on)s)") % {"on": fmt(last_success)}
                if last_success
                else _("the enrollment (%(on)s)") % {"on": fmt(period.enrollment.enrolled_on)}
            )
            _add(
                errors,
                "declared_on",
                _(
                    "%(count)s failed contact attempt(s) since %(since)s up to %(value)s: at "
                    "least %(needed)s are needed to declare the patient lost to follow-up."
                )
                % {
                    "count": len(failed),
                    "since": since,
                    "value": fmt(declared_on),
                    "needed": LOSS_ATTEMPTS,
                },
            )
        loss.failed_attempts = len(failed)
        loss.last_contact_on = last_success
    _row_errors(errors, loss)
    raise_if(errors)
    saved = clinical_save(
        loss, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    _vital_status_update(patient, user)
    patient_records_changed(patient=patient, user=user, source="followup.lost")
    return saved


@transaction.atomic
def lost_void(
    *,
    loss: LostToFollowUp,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> LostToFollowUp:
    """Void a loss to follow-up (the patient was found again, or it was entered in error); the
    patient's status goes back. ValidationError without a reason; StaleRecordError when it
    changed since `expected_version`."""
    patient = _locked(loss.patient_id)
    voided = clinical_void(loss, user=user, reason=reason, expected_version=expected_version)
    _vital_status_update(patient, user)
    patient_records_changed(patient=patient, user=user, source="followup.lost")
    return voided


# --- end of treatment -----------------------------------------------------------------------


@transaction.atomic
def treatment_end_save(
    *,
    treatment_end: TreatmentEnd,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> TreatmentEnd:
    """Record the end of study treatment (or save an edit), which starts the monthly
    follow-up schedule.

    Refused (ValidationError keyed by field, nothing saved): a second active end of treatment;
    a date before the last chemotherapy cycle given; a date in the future, before the
    enrollment, after a withdrawal or after the death; "other" reason without its description.
    StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    patient = _locked(treatment_end.patient_id)
    treatment_end.patient = patient
    errors: dict = {}
    ended_on = treatment_end.ended_on
    _period(patient).check(errors, "ended_on", ended_on, label=_("End of treatment"), today=today)
    other = TreatmentEnd.objects.active().filter(patient=patient).exclude(pk=treatment_end.pk)
    other = other.first()
    if other is not None:
        _add(
            errors,
            "ended_on",
            _("The end of treatment is already recorded (%(on)s): edit that record.")
            % {"on": fmt(other.ended_on)},
        )
    last_cycle = (
        ChemoCycle.objects.active()
        .filter(patient=patient)
        .order_by("-given_on")
        .values_list("given_on", flat=True)
        .first()
    )
    if ended_on and last_cycle and ended_on < last_cycle:
        _add(
            errors,
            "ended_on",
            _("End of treatment (%(value)s) is before the last chemotherapy cycle (%(other)s).")
            % {"value": fmt(ended_on), "other": fmt(last_cycle)},
        )
    _row_errors(errors, treatment_end)
    raise_if(errors)
    saved = clinical_save(
        treatment_end,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    patient_records_changed(patient=patient, user=user, source="followup.treatment_end")
    return saved


@transaction.atomic
def treatment_end_void(
    *,
    treatment_end: TreatmentEnd,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> TreatmentEnd:
    """Void an end of treatment entered in error (ValidationError without a reason;
    StaleRecordError when it changed since `expected_version`)."""
    patient = _locked(treatment_end.patient_id)
    voided = clinical_void(
        treatment_end, user=user, reason=reason, expected_version=expected_version
    )
    patient_records_changed(patient=patient, user=user, source="followup.treatment_end")
    return voided
