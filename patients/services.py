"""Every write of the patients app: registration, screening, consent, enrollment, baseline,
withdrawal. Each is one transaction; cross-form date rules live here, row rules in the models.
"""

import math
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients import eligibility
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
    Withdrawal,
)
from trial.derived import patient_records_changed
from trial.models import Cohort, Site
from trial.services import clinical_save, clinical_void
from trial.validation import fmt, not_before, not_in_future, raise_if


def _today(today: date | None) -> date:
    return today or timezone.localdate()


@dataclass(frozen=True)
class StudyPeriod:
    """The dates a patient's clinical forms may carry: from the enrollment to the withdrawal.

    Every app checks its form dates through it, so a new bound (death, with follow-up) is
    added here once.
    """

    enrollment: Enrollment
    withdrawal: Withdrawal | None
    died_on: date | None = None

    def check(
        self, errors: dict, field: str, value: date | None, *, label: str, today: date
    ) -> None:
        """Add errors for `field` when `value` is in the future, before the enrollment, after
        the withdrawal or after the death; `label` names the date ("Cycle date (12 Mar 2026)
        is …")."""
        not_in_future(errors, field, value, today=today)
        if value is None:
            return
        params = {"label": label, "value": fmt(value)}
        if value < self.enrollment.enrolled_on:
            errors.setdefault(field, []).append(
                _("%(label)s (%(value)s) is before the enrollment (%(other)s).")
                % {**params, "other": fmt(self.enrollment.enrolled_on)}
            )
        if self.withdrawal and value > self.withdrawal.withdrawn_on:
            errors.setdefault(field, []).append(
                _("%(label)s (%(value)s) is after the withdrawal (%(other)s).")
                % {**params, "other": fmt(self.withdrawal.withdrawn_on)}
            )
        death_check(errors, field, value, died_on=self.died_on, label=label)


def death_check(
    errors: dict, field: str, value: date | None, *, died_on: date | None, label: str
) -> None:
    """Add an error for `field` when `value` is after the patient's death (`Patient.died_on`):
    no clinical form is dated after it."""
    if died_on and value and value > died_on:
        errors.setdefault(field, []).append(
            _("%(label)s (%(value)s) is after the date of death (%(other)s).")
            % {"label": label, "value": fmt(value), "other": fmt(died_on)}
        )


def study_period(*, patient: Patient, what: str) -> StudyPeriod:
    """The patient's study period (two queries). Raises ValidationError "Enroll the patient
    before recording `what`." when the patient is not enrolled."""
    enrollment = Enrollment.objects.active().filter(patient=patient).first()
    if enrollment is None:
        raise ValidationError(_("Enroll the patient before recording %(what)s.") % {"what": what})
    withdrawal = Withdrawal.objects.active().filter(patient=patient).first()
    return StudyPeriod(enrollment=enrollment, withdrawal=withdrawal, died_on=patient.died_on)


def subject_code_next(*, site: Site) -> str:
    """Take the next subject number of `site` (row-locked) and return its code, e.g. CJFH-0007.

    Numbers only grow and patients are never deleted, so a code is never given twice.
    """
    locked = Site.objects.select_for_update().get(pk=site.pk)
    locked.last_subject_number += 1
    locked.save(update_fields=["last_subject_number"])
    return f"{locked.code}-{locked.last_subject_number:04d}"


def screening_facts(
    *, screening: Screening, cohort: str, consent: Consent | None
) -> eligibility.Facts:
    """The eligibility facts of a screening, for `cohort`, with the patient's current consent."""
    if consent is None or not consent.grants_study_participation:
        basis = eligibility.ConsentBasis.NONE
    else:
        basis = eligibility.ConsentBasis(consent.basis)
    return eligibility.Facts(
        age_years=screening.age_at_screening,
        confirmed_pathologically=screening.confirmation != Screening.Confirmation.NONE,
        is_pdac=screening.is_pdac,
        synchronous_liver_metastases=screening.synchronous_liver_metastases,
        prior_systemic_therapy=screening.prior_systemic_therapy,
        cohort=cohort,
        consent=basis,
    )


def consent_current(*, patient: Patient) -> Consent | None:
    """The latest consent that is not voided, or None."""
    return patient.consents.active().order_by("-consented_on", "-id").first()


def _screening_status(screening: Screening) -> str:
    facts = screening_facts(screening=screening, cohort=screening.intended_cohort, consent=None)
    failed = eligibility.failures(facts, ignore=frozenset({eligibility.Criterion.CONSENT}))
    return Patient.Status.SCREEN_FAILED if failed else Patient.Status.SCREENING


def _patient_set_status(patient: Patient, *, user, status: str, reason: str, **fields) -> None:
    patient.status = status
    for name, value in fields.items():
        setattr(patient, name, value)
    clinical_save(patient, user=user, reason=reason)


def _check_screening_dates(
    errors: dict, screening: Screening, identity: PatientIdentity, today: date
) -> None:
    not_in_future(errors, "screened_on", screening.screened_on, today=today)
    not_in_future(errors, "imaging_on", screening.imaging_on, today=today)
    if identity.date_of_birth:
        not_in_future(errors, "date_of_birth", identity.date_of_birth, today=today)
        not_before(
            errors,
            "screened_on",
            screening.screened_on,
            identity.date_of_birth,
            _("Screening (%(value)s) is before the date of birth (%(other)s)."),
        )


@transaction.atomic
def candidate_screen(
    *,
    site: Site,
    user: AbstractBaseUser,
    sex: str,
    identity: PatientIdentity,
    screening: Screening,
    complete: bool = True,
    today: date | None = None,
) -> Patient:
    """Register a candidate at `site` with their identity and screening checklist.

    Gives the patient the next subject code, computes the age at screening from the date of
    birth, and sets the status to screening or screen failure by the checklist (consent comes
    later). Raises ValidationError keyed by the field to fix; nothing is saved then.
    """
    today = _today(today)
    errors: dict = {}
    _check_screening_dates(errors, screening, identity, today)
    raise_if(errors)
    patient = Patient(site=site, sex=sex, subject_code=subject_code_next(site=site))
    patient.full_clean(exclude=["subject_code"])
    clinical_save(patient, user=user, reason="Registered at screening")
    identity.patient, identity.site = patient, site
    clinical_save(identity, user=user, reason="Registered at screening")
    screening.patient = patient
    screening.age_at_screening = eligibility.age_on(identity.date_of_birth, screening.screened_on)
    clinical_save(screening, user=user, complete=complete)
    _patient_set_status(
        patient,
        user=user,
        status=_screening_status(screening),
        reason="Screening checklist evaluated",
    )
    return patient


@transaction.atomic
def screening_update(
    *,
    screening: Screening,
    identity: PatientIdentity,
    user: AbstractBaseUser,
    expected_version: int | None,
    identity_version: int | None,
    sex: str | None = None,
    reason: str = "",
    complete: bool | None = None,
    today: date | None = None,
) -> Screening:
    """Save edits of a screening and the identity; re-evaluates the screening status.

    Refused (ValidationError) once the patient is enrolled if the edit would make them
    ineligible; StaleRecordError when either record changed since the form was opened.
    """
    today = _today(today)
    errors: dict = {}
    _check_screening_dates(errors, screening, identity, today)
    patient = screening.patient
    enrollment = Enrollment.objects.active().filter(patient=patient).first()
    if enrollment:
        not_before(
            errors,
            "screened_on",
            enrollment.enrolled_on,
            screening.screened_on,
            _("Screening (%(other)s) cannot be after the enrollment (%(value)s)."),
        )
    raise_if(errors)
    clinical_save(identity, user=user, expected_version=identity_version, reason=reason)
    if sex and sex != patient.sex:
        _patient_set_status(patient, user=user, status=patient.status, reason=reason, sex=sex)
    screening.age_at_screening = eligibility.age_on(identity.date_of_birth, screening.screened_on)
    saved = clinical_save(
        screening,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    if enrollment:
        facts = screening_facts(
            screening=saved,
            cohort=enrollment.cohort,
            consent=consent_current(patient=patient),
        )
        failed = eligibility.failures(facts)
        if failed:
            raise ValidationError(
                [
                    _("The patient is enrolled; this edit would make them ineligible: %(why)s")
                    % {"why": "; ".join(f"{r.label} ({r.detail})" for r in failed)}
                ]
            )
    elif patient.status in (Patient.Status.SCREENING, Patient.Status.SCREEN_FAILED):
        status = _screening_status(saved)
        if status != patient.status:
            _patient_set_status(
                patient, user=user, status=status, reason="Screening checklist re-evaluated"
            )
    return saved


@transaction.atomic
def consent_save(
    *,
    consent: Consent,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool | None = True,
    today: date | None = None,
) -> Consent:
    """Record or edit a consent (or a waiver for a retrospective case).

    Refuses a future date and a waiver for a patient screened for or enrolled in the
    prospective cohort. Once the patient is enrolled, some valid consent must predate the
    enrollment: a re-consent (e.g. a new form version) may be dated later, but the consent the
    enrollment rests on may not be moved after it.
    """
    today = _today(today)
    patient = consent.patient
    errors: dict = {}
    not_in_future(errors, "consented_on", consent.consented_on, today=today)
    enrollment = Enrollment.objects.active().filter(patient=patient).first()
    earlier = (
        Consent.objects.active()
        .filter(patient=patient, consented_on__lte=enrollment.enrolled_on)
        .exclude(pk=consent.pk)
        if enrollment
        else Consent.objects.none()
    )
    if enrollment and not any(c.grants_study_participation for c in earlier):
        not_before(
            errors,
            "consented_on",
            enrollment.enrolled_on,
            consent.consented_on,
            _("Consent (%(other)s) cannot be dated after the enrollment (%(value)s)."),
        )
    cohort = (
        enrollment.cohort
        if enrollment
        else getattr(Screening.objects.filter(patient=patient).first(), "intended_cohort", "")
    )
    if consent.basis == Consent.Basis.WAIVER and cohort == Cohort.PROSPECTIVE:
        errors.setdefault("basis", []).append(
            _(
                "A waiver of consent is allowed for retrospective cases only; "
                "this patient is prospective."
            )
        )
    raise_if(errors)
    saved = clinical_save(
        consent,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    patient_records_changed(patient=patient, user=user, source="patients.consent")
    return saved


@transaction.atomic
def consent_void(
    *, consent: Consent, user: AbstractBaseUser, reason: str, expected_version: int | None
) -> Consent:
    """Void a consent entered in error. Refused when it is the consent an enrollment rests on
    and no other valid consent dated on or before the enrollment remains."""
    enrollment = Enrollment.objects.active().filter(patient=consent.patient).first()
    if enrollment:
        others = (
            Consent.objects.active()
            .filter(patient=consent.patient, consented_on__lte=enrollment.enrolled_on)
            .exclude(pk=consent.pk)
        )
        if not any(c.grants_study_participation for c in others):
            raise ValidationError(
                {
                    "void_reason": _(
                        "The enrollment rests on this consent: record the correct consent "
                        "first, then void this one."
                    )
                }
            )
    voided = clinical_void(consent, user=user, reason=reason, expected_version=expected_version)
    patient_records_changed(patient=consent.patient, user=user, source="patients.consent")
    return voided


def _check_enrollment(enrollment: Enrollment, *, today: date) -> None:
    patient = enrollment.patient
    errors: dict = {}
    not_in_future(errors, "enrolled_on", enrollment.enrolled_on, today=today)
    not_in_future(errors, "diagnosed_on", enrollment.diagnosed_on, today=today)
    screening = Screening.objects.active().filter(patient=patient).first()
    if screening is None:
        raise ValidationError(_("Screen the patient before enrolling them."))
    not_before(
        errors,
        "enrolled_on",
        enrollment.enrolled_on,
        screening.screened_on,
        _("Enrollment (%(value)s) is before the screening (%(other)s)."),
    )
    consent = consent_current(patient=patient)
    if consent and consent.grants_study_participation:
        not_before(
            errors,
            "enrolled_on",
            enrollment.enrolled_on,
            consent.consented_on,
            _("Enrollment (%(value)s) is before the consent (%(other)s)."),
        )
    raise_if(errors)
    failed = eligibility.failures(
        screening_facts(screening=screening, cohort=enrollment.cohort, consent=consent)
    )
    if failed:
        raise ValidationError(
            [
                _("Not eligible: %(criterion)s — %(detail)s")
                % {"criterion": r.label, "detail": r.detail}
                for r in failed
            ]
        )


@transaction.atomic
def patient_enroll(
    *,
    enrollment: Enrollment,
    user: AbstractBaseUser,
    complete: bool = True,
    today: date | None = None,
) -> Enrollment:
    """Enroll a screened, consented, eligible patient into a cohort.

    Raises ValidationError naming each failed criterion, a date out of order, or a second
    enrollment ("This patient is already enrolled."). Sets the patient's cohort and status.
    """
    patient = Patient.objects.select_for_update().get(pk=enrollment.patient_id)
    enrollment.patient = patient
    if patient.status == Patient.Status.WITHDRAWN:
        raise ValidationError(_("This patient has withdrawn and cannot be enrolled."))
    if Enrollment.objects.filter(patient=patient).exists():
        raise ValidationError({"enrolled_on": _("This patient is already enrolled.")})
    _check_enrollment(enrollment, today=_today(today))
    saved = clinical_save(enrollment, user=user, complete=complete)
    _patient_set_status(
        patient,
        user=user,
        status=Patient.Status.ENROLLED,
        reason="Enrolled",
        cohort=enrollment.cohort,
    )
    patient_records_changed(patient=patient, user=user, source="patients.enrollment")
    return saved


@transaction.atomic
def enrollment_update(
    *,
    enrollment: Enrollment,
    user: AbstractBaseUser,
    expected_version: int | None,
    reason: str = "",
    complete: bool | None = None,
    today: date | None = None,
) -> Enrollment:
    """Edit an enrollment with the same checks as `patient_enroll`; keeps the cohort in step."""
    today = _today(today)
    _check_enrollment(enrollment, today=today)
    baseline = Baseline.objects.active().filter(patient=enrollment.patient).first()
    saved = clinical_save(
        enrollment,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    if baseline:
        _check_after_enrollment_window(baseline.assessed_on, saved, "assessed_on")
    patient = saved.patient
    if patient.cohort != saved.cohort:
        _patient_set_status(
            patient,
            user=user,
            status=patient.status,
            reason=reason,
            cohort=saved.cohort,
        )
    patient_records_changed(patient=patient, user=user, source="patients.enrollment")
    return saved


def bsa_mosteller(*, height_cm: Decimal, weight_kg: Decimal) -> Decimal:
    """Body-surface area in m² by Mosteller, to two decimals."""
    value = Decimal(str(math.sqrt(float(height_cm) * float(weight_kg) / 3600)))
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# A baseline describes the disease at entry: the assessment may predate enrollment by up to
# 28 days (staging work-up) and follow it by up to 14 days.
BASELINE_DAYS_BEFORE, BASELINE_DAYS_AFTER = 28, 14


def _check_after_enrollment_window(assessed_on: date, enrollment: Enrollment, field: str) -> None:
    delta = (assessed_on - enrollment.enrolled_on).days
    if delta < -BASELINE_DAYS_BEFORE or delta > BASELINE_DAYS_AFTER:
        message = _(
            "The baseline assessment (%(assessed)s) must be within %(before)s days before and "
            "%(after)s days after the enrollment (%(enrolled)s)."
        )
        raise ValidationError(
            {
                field: message
                % {
                    "assessed": fmt(assessed_on),
                    "enrolled": fmt(enrollment.enrolled_on),
                    "before": BASELINE_DAYS_BEFORE,
                    "after": BASELINE_DAYS_AFTER,
                }
            }
        )


@transaction.atomic
def baseline_save(
    *,
    baseline: Baseline,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool | None = True,
    today: date | None = None,
) -> Baseline:
    """Record or edit the baseline of an enrolled patient; computes the BSA.

    Refuses a patient who is not enrolled, a future date, and a date outside the baseline
    window around enrollment. StaleRecordError when another user saved it in between.
    """
    today = _today(today)
    enrollment = Enrollment.objects.active().filter(patient=baseline.patient).first()
    if enrollment is None:
        raise ValidationError(_("Enroll the patient before recording the baseline."))
    errors: dict = {}
    not_in_future(errors, "assessed_on", baseline.assessed_on, today=today)
    raise_if(errors)
    if baseline.assessed_on:
        _check_after_enrollment_window(baseline.assessed_on, enrollment, "assessed_on")
    if baseline.height_cm and baseline.weight_kg:
        baseline.bsa_m2 = bsa_mosteller(height_cm=baseline.height_cm, weight_kg=baseline.weight_kg)
    saved = clinical_save(
        baseline,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    patient_records_changed(patient=saved.patient, user=user, source="patients.baseline")
    return saved


@transaction.atomic
def withdrawal_save(
    *,
    withdrawal: Withdrawal,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool | None = True,
    today: date | None = None,
) -> Withdrawal:
    """Record or edit a withdrawal / drop-out of an enrolled patient; the patient's status
    becomes withdrawn. Refuses dates in the future or before the enrollment."""
    today = _today(today)
    patient = Patient.objects.select_for_update().get(pk=withdrawal.patient_id)
    enrollment = Enrollment.objects.active().filter(patient=patient).first()
    if enrollment is None:
        raise ValidationError(
            _(
                "Only an enrolled patient can withdraw; "
                "a candidate who is not enrolled is a screen failure."
            )
        )
    errors: dict = {}
    not_in_future(errors, "withdrawn_on", withdrawal.withdrawn_on, today=today)
    not_in_future(errors, "last_medication_on", withdrawal.last_medication_on, today=today)
    not_before(
        errors,
        "withdrawn_on",
        withdrawal.withdrawn_on,
        enrollment.enrolled_on,
        _("Withdrawal (%(value)s) is before the enrollment (%(other)s)."),
    )
    raise_if(errors)
    saved = clinical_save(
        withdrawal,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    if patient.status in (Patient.Status.ENROLLED, Patient.Status.LOST):
        _patient_set_status(
            patient, user=user, status=Patient.Status.WITHDRAWN, reason="Withdrawal recorded"
        )
    patient_records_changed(patient=patient, user=user, source="patients.withdrawal")
    return saved


def patient_vital_status_set(
    *, patient: Patient, user: AbstractBaseUser, died_on: date | None, lost: bool
) -> Patient:
    """Set the patient's date of death and status from the follow-up records (called by the
    follow-up services, which own death and loss to follow-up): deceased when a death is
    recorded, else lost to follow-up, else withdrawn or enrolled. Saves only on a change."""
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    if died_on:
        status = Patient.Status.DECEASED
    elif lost:
        status = Patient.Status.LOST
    elif Withdrawal.objects.active().filter(patient=locked).exists():
        status = Patient.Status.WITHDRAWN
    else:
        status = Patient.Status.ENROLLED
    if locked.died_on != died_on or locked.status != status:
        _patient_set_status(
            locked, user=user, status=status, reason="Vital status from follow-up", died_on=died_on
        )
    patient.died_on, patient.status, patient.version = locked.died_on, locked.status, locked.version
    return locked
