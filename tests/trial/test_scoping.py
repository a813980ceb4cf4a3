"""Site scoping: a user sees their own sites' patients only. Another site's patient is a 404
(not a 403, which would confirm it exists) on every patient URL; a POST there changes nothing."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

import patients.urls
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
    Withdrawal,
)
from tests.factories.forms import (
    baseline_post,
    candidate_post,
    consent_post,
    enrollment_post,
    withdrawal_post,
)
from tests.factories.patients import baselined_patient, enrolled_patient
from tests.factories.trial import UserFactory
from trial.models import Role
from trial.scoping import site_ids_for

MODELS = (Patient, PatientIdentity, Screening, Consent, Enrollment, Baseline, Withdrawal)


def _snapshot() -> dict:
    """Every row's version and every model's history count: any write changes it."""
    state = {}
    for model in MODELS:
        state[model.__name__] = sorted(model.objects.values_list("pk", "version"))
        state[f"{model.__name__} history"] = model.history.count()
    return state


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient_a(site_a, coordinator, today):
    return enrolled_patient(site=site_a, user=coordinator, today=today)


@pytest.fixture
def patient_b(site_b, coordinator_b, today):
    return baselined_patient(site=site_b, user=coordinator_b, today=today)


def _patient_urls(patient: Patient) -> dict[str, str]:
    """Every URL of the patients app that names a patient, for `patient` (found, not listed)."""
    consent = Consent.objects.filter(patient=patient).first()
    urls = {}
    for pattern in patients.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        converters = pattern.pattern.converters
        if "patient_id" not in converters:
            continue
        kwargs = {"patient_id": patient.pk}
        if "consent_id" in converters:
            kwargs["consent_id"] = consent.pk
        unknown = set(converters) - set(kwargs)
        assert not unknown, f"add ids for {pattern.name}: {unknown}"
        urls[pattern.name] = reverse(f"patients:{pattern.name}", kwargs=kwargs)
    return urls


def _valid_post(name: str, patient: Patient, today) -> dict:
    """Data that the page would save, built on the records' current versions."""
    enrolled_on = patient.enrollment.enrolled_on
    screened_on = (enrolled_on - timedelta(days=2)).isoformat()
    consent = Consent.objects.filter(patient=patient).order_by("pk").first()
    reason = {"change_reason": "cross-site probe"}
    if name == "screening-edit":
        return {
            **candidate_post(today=today, screened_on=screened_on),
            "version": str(Screening.objects.get(patient=patient).version),
            "id-version": str(PatientIdentity.objects.get(patient=patient).version),
            **reason,
        }
    if name == "consent-new":
        return consent_post(on=enrolled_on - timedelta(days=1))
    if name == "consent-edit":
        return {
            **consent_post(on=consent.consented_on, consent_version="v9"),
            "version": str(consent.version),
            **reason,
        }
    if name == "enrollment-edit":
        return {
            **enrollment_post(on=enrolled_on, diagnosed_on=enrolled_on.isoformat()),
            "version": str(Enrollment.objects.get(patient=patient).version),
            **reason,
        }
    if name == "baseline-edit":
        baseline = Baseline.objects.get(patient=patient)
        return {
            **baseline_post(on=baseline.assessed_on, ecog="3"),
            "version": str(baseline.version),
            **reason,
        }
    if name == "withdrawal-edit":
        return withdrawal_post(on=today, last_medication_on=today)
    # A void page, or a page added later: a reason and the version is what such pages take.
    return {"void_reason": "cross-site probe", "version": str(consent.version)}


def test_each_coordinator_lists_only_their_sites_patients(
    client_for, coordinator, coordinator_b, patient_a, patient_b
):
    page = client_for(coordinator).get("/patients/")
    codes = [p.subject_code for p in page.context["page"]]
    assert codes == ["SITEA-0001"]
    assert "SITEB-0001" not in page.content.decode()

    page = client_for(coordinator_b).get("/patients/")
    assert [p.subject_code for p in page.context["page"]] == ["SITEB-0001"]
    assert "SITEA-0001" not in page.content.decode()


@pytest.mark.parametrize("query", ["?q=SITEB", "?q=0001", "?q=siteb-0001", "?status=enrolled"])
def test_search_and_filters_never_reach_another_site(
    client_for, coordinator, patient_a, patient_b, site_b, query
):
    client = client_for(coordinator)
    for suffix in ("", f"&site={site_b.pk}"):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(f"/patients/{query}{suffix}", headers=headers)
            assert response.status_code == 200
            assert "SITEB-0001" not in response.content.decode()
            assert all(p.site_id != site_b.pk for p in response.context["page"])


def test_search_finds_the_own_sites_patient(client_for, coordinator, patient_a, patient_b):
    page = client_for(coordinator).get("/patients/?q=0001")
    assert [p.subject_code for p in page.context["page"]] == ["SITEA-0001"]


def test_another_sites_patient_is_a_404_on_every_url_and_a_post_changes_nothing(
    client_for, coordinator, patient_a, patient_b, today
):
    urls = _patient_urls(patient_b)
    # The pages of the issue, at least; new patient pages are picked up automatically.
    assert set(urls) >= {
        "patient-detail",
        "screening-edit",
        "consent-new",
        "consent-edit",
        "enrollment-edit",
        "baseline-edit",
        "withdrawal-edit",
        "patient-history",
    }
    client = client_for(coordinator)
    before = _snapshot()
    for name, url in urls.items():
        assert client.get(url).status_code == 404, name
        assert client.post(url, _valid_post(name, patient_b, today)).status_code == 404, name
    assert _snapshot() == before


def test_the_patients_own_site_reaches_every_page(client_for, coordinator_b, patient_b, today):
    """The counterpart of the test above: the same requests from the patient's own site work,
    so the 404s are the scoping and the probes would have changed data."""
    client = client_for(coordinator_b)
    for name, url in _patient_urls(patient_b).items():
        assert client.get(url).status_code == 200, name
        if name in {"patient-detail", "patient-history"}:
            continue
        before = _snapshot()
        response = client.post(url, _valid_post(name, patient_b, today))
        assert response.status_code == 302, name
        assert _snapshot() != before, name


def test_a_user_without_membership_sees_nothing(client_for, patient_a, patient_b):
    loner = UserFactory(roles=[Role.COORDINATOR], sites=[])
    assert site_ids_for(loner) == frozenset()
    client = client_for(loner)
    page = client.get("/patients/")
    assert page.status_code == 200
    assert list(page.context["page"]) == []
    for patient in (patient_a, patient_b):
        for name, url in _patient_urls(patient).items():
            assert client.get(url).status_code == 404, name
    # ... and cannot register a candidate anywhere.
    assert client.get("/patients/screen/").status_code == 403


def test_a_candidate_cannot_be_registered_at_another_site(
    client_for, coordinator, site_a, site_b, today
):
    client = client_for(coordinator)
    response = client.post("/patients/screen/", candidate_post(today=today, site=str(site_b.pk)))
    assert not Patient.objects.filter(site=site_b).exists()
    # The forged site is ignored: the coordinator's only site is used.
    assert response.status_code == 302
    assert Patient.objects.get().site == site_a
    site_b.refresh_from_db()
    assert site_b.last_subject_number == 0


def test_a_superuser_sees_every_site(client_for, patient_a, patient_b):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client = client_for(admin)
    page = client.get("/patients/")
    assert [p.subject_code for p in page.context["page"]] == ["SITEA-0001", "SITEB-0001"]
    for patient in (patient_a, patient_b):
        assert client.get(f"/patients/{patient.pk}/").status_code == 200
        assert client.get(f"/patients/{patient.pk}/history/").status_code == 200


def test_an_inactive_site_disappears_from_its_members_view(
    client_for, coordinator, site_a, patient_a
):
    site_a.is_active = False
    site_a.save()
    client = client_for(coordinator)
    assert list(client.get("/patients/").context["page"]) == []
    assert client.get(f"/patients/{patient_a.pk}/").status_code == 404
