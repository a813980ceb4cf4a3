"""A coordinator takes a candidate through the whole entry journey in the browser (test client):
screening → consent → enrollment → baseline → edit with a reason → withdrawal → audit trail.

The views take today from the clock (`timezone.localdate()`), so dates here are relative to it.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from patients.models import Baseline, Consent, Enrollment, Patient, Screening, Withdrawal
from tests.factories.forms import (
    baseline_post,
    candidate_post,
    consent_post,
    enrollment_post,
    post_from_form,
    withdrawal_post,
)
from tests.factories.trial import UserFactory
from trial.models import Cohort, FormStatus, Role


def _version_in(content: bytes) -> int:
    match = re.search(rb'name="version" value="(\d+)"', content)
    assert match, "the form carries no version"
    return int(match.group(1))


@pytest.fixture
def today():
    return timezone.localdate()


def test_coordinator_journey_from_screening_to_withdrawal(client_for, coordinator, today):
    client = client_for(coordinator)

    # Screening: the candidate gets the first subject code of the site.
    response = client.post("/patients/screen/", candidate_post(today=today))
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response.url == f"/patients/{patient.pk}/"
    assert patient.subject_code == "SITEA-0001"
    assert patient.status == Patient.Status.SCREENING
    assert patient.identity.hospital_record_number == "MRN-000123"
    assert patient.screening.status == FormStatus.COMPLETE
    screened_on = today - timedelta(days=10)  # born 9 April 1961
    assert patient.screening.screened_on == screened_on
    assert patient.screening.age_at_screening == (
        screened_on.year - 1961 - ((screened_on.month, screened_on.day) < (4, 9))
    )
    page = client.get(f"/patients/{patient.pk}/")
    assert page.status_code == 200
    assert "张伟明" in page.content.decode()  # the coordinator of the site sees the identity

    # Consent.
    response = client.post(
        f"/patients/{patient.pk}/consent/", consent_post(on=today - timedelta(days=9))
    )
    assert response.status_code == 302
    consent = Consent.objects.get(patient=patient)
    assert consent.study_consent is True
    assert consent.status == FormStatus.COMPLETE

    # Enrollment.
    assert client.get(f"/patients/{patient.pk}/enrollment/").status_code == 200
    response = client.post(
        f"/patients/{patient.pk}/enrollment/", enrollment_post(on=today - timedelta(days=8))
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED
    assert patient.cohort == Cohort.PROSPECTIVE
    assert Enrollment.objects.get(patient=patient).enrolled_on == today - timedelta(days=8)

    # Baseline.
    assessed_on = today - timedelta(days=7)
    response = client.post(f"/patients/{patient.pk}/baseline/", baseline_post(on=assessed_on))
    assert response.status_code == 302
    baseline = Baseline.objects.get(patient=patient)
    assert (baseline.version, baseline.status) == (1, FormStatus.COMPLETE)
    assert str(baseline.bsa_m2) == "1.74"  # √(170 × 64 / 3600) = 1.7385

    # Editing the completed baseline without a reason is refused on the reason field.
    form_page = client.get(f"/patients/{patient.pk}/baseline/")
    assert _version_in(form_page.content) == 1
    edit = baseline_post(on=assessed_on, weight_kg="61.5", version="1", change_reason="")
    response = client.post(f"/patients/{patient.pk}/baseline/", edit)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["change_reason"] == ["This form is complete: give a reason for the change."]
    assert "give a reason for the change" in response.content.decode()
    baseline.refresh_from_db()
    assert (baseline.version, str(baseline.weight_kg)) == (1, "64.0")

    # With a reason it is saved as version 2.
    edit["change_reason"] = "Weight re-measured on the ward"
    response = client.post(f"/patients/{patient.pk}/baseline/", edit)
    assert response.status_code == 302
    baseline.refresh_from_db()
    assert (baseline.version, str(baseline.weight_kg)) == (2, "61.5")
    assert baseline.updated_by == coordinator

    # Withdrawal.
    response = client.post(
        f"/patients/{patient.pk}/withdrawal/",
        withdrawal_post(on=today - timedelta(days=1), last_medication_on=today - timedelta(days=3)),
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.status == Patient.Status.WITHDRAWN
    assert Withdrawal.objects.get(patient=patient).last_medication_on == today - timedelta(days=3)

    # The audit trail: every form has history rows attributed to the coordinator.
    for model in (Screening, Consent, Enrollment, Baseline, Withdrawal):
        rows = model.history.filter(patient_id=patient.pk)
        assert rows.exists(), model.__name__
        assert {row.history_user for row in rows} == {coordinator}, model.__name__
    assert {row.history_user for row in Patient.history.filter(id=patient.pk)} == {coordinator}
    edit_row = Baseline.history.filter(patient_id=patient.pk).latest("history_date")
    assert edit_row.version == 2
    assert edit_row.history_type == "~"
    assert edit_row.history_change_reason == "Weight re-measured on the ward"
    assert edit_row.history_user == coordinator
    assert str(edit_row.weight_kg) == "61.5"
    first_row = Baseline.history.filter(patient_id=patient.pk).earliest("history_date")
    assert (first_row.version, first_row.history_type, str(first_row.weight_kg)) == (
        1,
        "+",
        "64.0",
    )

    # ... and the history page shows the reason with the change.
    history = client.get(f"/patients/{patient.pk}/history/")
    assert history.status_code == 200
    text = history.content.decode()
    assert "Weight re-measured on the ward" in text
    assert "<del>64.0</del>" in text
    assert "<ins>61.5</ins>" in text


def test_a_coordinator_of_two_sites_chooses_the_site(client_for, site_a, site_b, today):
    user = UserFactory(roles=[Role.COORDINATOR], sites=[site_a, site_b])
    client = client_for(user)

    page = client.get("/patients/screen/")
    assert 'name="site"' in page.content.decode()

    response = client.post("/patients/screen/", candidate_post(today=today))
    assert response.status_code == 200
    assert "Choose the site that screens the candidate." in response.content.decode()
    assert Patient.objects.count() == 0

    response = client.post("/patients/screen/", candidate_post(today=today, site=str(site_b.pk)))
    assert response.status_code == 302
    patient = Patient.objects.get()
    assert (patient.site, patient.subject_code) == (site_b, "SITEB-0001")
    assert patient.identity.site == site_b


def test_a_draft_screening_stays_a_draft(client_for, coordinator, today):
    client = client_for(coordinator)
    response = client.post("/patients/screen/", candidate_post(today=today, button="save_draft"))
    assert response.status_code == 302
    assert Screening.objects.get().status == FormStatus.DRAFT


def test_an_invalid_candidate_form_is_re_rendered_with_field_errors(client_for, coordinator, today):
    client = client_for(coordinator)
    future = (today + timedelta(days=3)).isoformat()
    response = client.post("/patients/screen/", candidate_post(today=today, screened_on=future))
    assert response.status_code == 200
    assert "is in the future" in " ".join(response.context["forms"][0].errors["screened_on"])
    assert Patient.objects.count() == 0
    coordinator_site = coordinator.site_memberships.get().site
    coordinator_site.refresh_from_db()
    assert coordinator_site.last_subject_number == 0


def test_an_ineligible_candidate_becomes_a_screen_failure(client_for, coordinator, today):
    client = client_for(coordinator)
    response = client.post(
        "/patients/screen/", candidate_post(today=today, synchronous_liver_metastases="False")
    )
    assert response.status_code == 302
    patient = Patient.objects.get()
    assert patient.status == Patient.Status.SCREEN_FAILED
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "No synchronous liver metastases." in page


def test_changing_the_identity_of_a_draft_screening_asks_for_a_reason(
    client_for, coordinator, today
):
    """The identity is never a draft, so editing it needs a reason even while the screening is
    one: the page must offer the reason field and show the error on it."""
    client = client_for(coordinator)
    client.post("/patients/screen/", candidate_post(today=today, button="save_draft"))
    patient = Patient.objects.get()
    url = f"/patients/{patient.pk}/screening/"
    page = client.get(url)
    assert 'name="change_reason"' in page.content.decode()

    screening_form, identity_form = page.context["forms"]
    data = post_from_form(screening_form, button="save_draft")
    data.update(post_from_form(identity_form, button=None, phone="13000000000"))
    response = client.post(url, data)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'name="change_reason"' in text
    assert "give a reason for the change" in text
    patient.identity.refresh_from_db()
    assert patient.identity.phone == "13800138000"

    response = client.post(url, {**data, "change_reason": "patient gave a new number"})
    assert response.status_code == 302
    patient.identity.refresh_from_db()
    assert patient.identity.phone == "13000000000"
    assert patient.identity.history.latest("history_date").history_change_reason == (
        "patient gave a new number"
    )
    patient.screening.refresh_from_db()
    assert patient.screening.status == FormStatus.DRAFT
