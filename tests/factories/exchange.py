"""Builders for the exchange app's audited model (the retrospective abstract)."""

from datetime import date

from exchange.models import RetrospectiveAbstract
from tests.factories.patients import PatientFactory


def abstract_build(site) -> RetrospectiveAbstract:
    """One unsaved, valid abstract of a new patient at `site`."""
    return RetrospectiveAbstract(
        patient=PatientFactory(site=site),
        source_file="cohort.csv",
        source_row=2,
        age_years=64,
        vital_status="alive",
        last_contact_on=date(2025, 3, 1),
        cycles_count=6,
        best_response="PR",
        unknown_columns=["ecog"],
    )


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {"exchange.RetrospectiveAbstract": abstract_build}
