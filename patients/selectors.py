"""Reads of the patients app for views, the API, tasks and analytics; all scoped to the user."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet
from django.http import Http404

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
from patients.services import consent_current, screening_facts
from trial.history import record_history
from trial.models import Cohort
from trial.scoping import scope_to_user_sites, site_ids_for


def can_view_phi(*, user: AbstractBaseUser, patient: Patient) -> bool:
    """PHI is shown to staff of the patient's own site who hold the view_phi permission."""
    return user.has_perm("patients.view_phi") and patient.site_id in site_ids_for(user)


def patient_list(
    *,
    user: AbstractBaseUser,
    search: str = "",
    cohort: str = "",
    status: str = "",
    site_id: int | None = None,
) -> QuerySet[Patient]:
    """The user's sites' patients, filtered; a fixed number of queries however many there are.

    `search` matches the subject code (a part of it, case-insensitive). No identity is joined.
    """
    queryset = scope_to_user_sites(Patient.objects.active(), user).select_related("site")
    if search:
        queryset = queryset.filter(subject_code__icontains=search.strip())
    if cohort:
        queryset = queryset.filter(cohort=cohort)
    if status:
        queryset = queryset.filter(status=status)
    if site_id:
        queryset = queryset.filter(site_id=site_id)
    return queryset.select_related("enrollment", "withdrawal").order_by("subject_code")


def patient_get(*, patient_id: int, user: AbstractBaseUser) -> Patient:
    """One patient of the user's sites with their forms; Http404 for any other patient."""
    queryset = scope_to_user_sites(Patient.objects.all(), user).select_related(
        "site", "screening", "enrollment", "baseline", "withdrawal"
    )
    queryset = queryset.prefetch_related(
        Prefetch("consents", queryset=Consent.objects.order_by("consented_on", "id"))
    )
    try:
        return queryset.get(pk=patient_id)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient at your sites.") from exc


def patient_identity(*, user: AbstractBaseUser, patient: Patient) -> PatientIdentity | None:
    """The identity (PHI) if the user may see it, else None."""
    if not can_view_phi(user=user, patient=patient):
        return None
    return PatientIdentity.objects.filter(patient=patient).first()


@dataclass(frozen=True)
class Eligibility:
    cohort: str
    results: list[eligibility.Result]

    @property
    def cohort_label(self) -> str:
        return str(Cohort(self.cohort).label) if self.cohort in Cohort.values else self.cohort

    @property
    def eligible(self) -> bool:
        return all(r.met for r in self.results)

    @property
    def failed(self) -> list[eligibility.Result]:
        return [r for r in self.results if not r.met]


def patient_eligibility(*, patient: Patient, cohort: str = "") -> Eligibility | None:
    """The checklist verdict for `cohort` (default: enrolled, else intended cohort).

    None before screening.
    """
    screening = getattr(patient, "screening", None)
    if screening is None:
        return None
    enrollment = getattr(patient, "enrollment", None)
    cohort = cohort or (enrollment.cohort if enrollment else screening.intended_cohort)
    consents = [c for c in patient.consents.all() if not c.is_voided]
    consent = max(consents, key=lambda c: (c.consented_on, c.id)) if consents else None
    facts = screening_facts(screening=screening, cohort=cohort, consent=consent)
    return Eligibility(cohort=cohort, results=eligibility.evaluate(facts))


__all__ = [
    "Eligibility",
    "can_view_phi",
    "consent_current",
    "patient_eligibility",
    "patient_get",
    "patient_identity",
    "patient_history",
    "patient_list",
]


def patient_history(*, patient: Patient, include_identity: bool) -> list:
    """The audit trail of every record of `patient`, newest first; identity rows only if allowed."""
    histories = [
        Patient.history.filter(id=patient.pk),
        Screening.history.filter(patient_id=patient.pk),
        Consent.history.filter(patient_id=patient.pk),
        Enrollment.history.filter(patient_id=patient.pk),
        Baseline.history.filter(patient_id=patient.pk),
        Withdrawal.history.filter(patient_id=patient.pk),
    ]
    if include_identity:
        histories.append(PatientIdentity.history.filter(patient_id=patient.pk))
    return record_history(histories)
