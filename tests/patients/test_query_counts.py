"""The patient list and the patient page run a fixed number of SQL queries, however many
patients there are (no query per row)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients import services
from patients.models import Consent, Enrollment, Patient, Screening
from tests.factories.patients import baselined_patient
from trial.models import Cohort, FormStatus

# Measured: 9 queries for the list (session, user, two permission reads, site ids, the page's
# own reads, the user's groups) and 25 for the patient page (the same 9, plus 16 for the
# panels other apps register: chemotherapy 3, treatment timeline 3, protocol calendar 1,
# labs 1, surgery 3, biobank 1, follow-up 4, and the casebook's lock and signature 1 = 26),
# on SQLite and PostgreSQL alike, for 5 and for 500 patients. One more is allowed for the
# session's last-activity stamp (trial.accounts.IdleSessionMiddleware writes it at most once a
# minute, which may fall on the measured request). A query per row would add at least five.
LIST_MAX_QUERIES = 11
DETAIL_MAX_QUERIES = 27


def _many_patients(site, count: int) -> None:
    """`count` enrolled patients with screening and enrollment rows, bulk-created (test data)."""
    site.refresh_from_db()
    first = site.last_subject_number + 1
    today = timezone.localdate()
    patients = Patient.objects.bulk_create(
        Patient(
            site=site,
            subject_code=f"{site.code}-{number:04d}",
            sex="F" if number % 2 else "M",
            status=Patient.Status.ENROLLED,
            cohort=Cohort.PROSPECTIVE if number % 3 else Cohort.RETROSPECTIVE,
        )
        for number in range(first, first + count)
    )
    site.last_subject_number = first + count - 1
    site.save(update_fields=["last_subject_number"])
    Screening.objects.bulk_create(
        Screening(
            patient=patient,
            screened_on=today - timedelta(days=20),
            age_at_screening=60,
            intended_cohort=patient.cohort,
            confirmation=Screening.Confirmation.HISTOLOGY,
            is_pdac=True,
            synchronous_liver_metastases=True,
            prior_systemic_therapy=False,
            status=FormStatus.COMPLETE,
        )
        for patient in patients
    )
    Enrollment.objects.bulk_create(
        Enrollment(
            patient=patient,
            enrolled_on=today - timedelta(days=10),
            cohort=patient.cohort,
            status=FormStatus.COMPLETE,
        )
        for patient in patients
    )


@pytest.fixture
def full_patient(site_a, coordinator):
    """One patient with every form: screening, two consents, enrollment, baseline."""
    today = timezone.localdate()
    patient = baselined_patient(
        site=site_a,
        user=coordinator,
        today=today,
        ecog=0,
        primary_site="body",
        liver_met_count=4,
        liver_met_distribution="bilobar",
    )
    services.consent_save(
        consent=Consent(
            patient=patient,
            basis=Consent.Basis.SIGNED,
            consented_on=patient.enrollment.enrolled_on,
            consent_version="v2.0",
            study_consent=True,
            biobank_consent=False,
        ),
        user=coordinator,
        today=today,
    )

    return patient


@pytest.mark.parametrize("count", [5, 500])
def test_the_patient_list_has_a_fixed_query_count(
    client_for, coordinator, site_a, full_patient, count, django_assert_max_num_queries
):
    _many_patients(site_a, count)
    client = client_for(coordinator)
    with django_assert_max_num_queries(LIST_MAX_QUERIES):
        response = client.get("/patients/")
    assert response.status_code == 200
    assert len(response.context["page"]) == min(count + 1, settings.PATIENT_LIST_PAGE_SIZE)
    with django_assert_max_num_queries(LIST_MAX_QUERIES):
        response = client.get("/patients/?page=2", headers={"HX-Request": "true"})
    assert response.status_code == 200


@pytest.mark.parametrize("count", [5, 500])
def test_the_patient_page_has_a_fixed_query_count(
    client_for, coordinator, site_a, full_patient, count, django_assert_max_num_queries
):
    _many_patients(site_a, count)
    client = client_for(coordinator)
    with django_assert_max_num_queries(DETAIL_MAX_QUERIES):
        response = client.get(f"/patients/{full_patient.pk}/")
    assert response.status_code == 200
    assert response.context["identity"] is not None
    assert len(response.context["consents"]) == 2


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_list_and_page_queries_do_not_grow_with_the_number_of_patients(
    client_for, coordinator, site_a, full_patient
):
    client = client_for(coordinator)
    _many_patients(site_a, 4)
    small = {url: _queries(client, url) for url in ("/patients/", f"/patients/{full_patient.pk}/")}
    _many_patients(site_a, 495)
    large = {url: _queries(client, url) for url in small}
    assert large == small
