"""Reads of the treatments app for views, other apps (assessments) and analytics."""

from datetime import date

from patients.models import Patient
from treatments.models import ChemoCycle


def cycles_completed(*, patient: Patient, on: date) -> int:
    """How many (non-voided) chemotherapy cycles the patient received on or before `on`,
    counted across all regimen lines. One query."""
    return ChemoCycle.objects.active().filter(patient=patient, given_on__lte=on).count()
