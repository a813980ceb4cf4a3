"""PHI (name, hospital record number, date of birth, phone) reaches only the staff of the
patient's site with view_phi: never a page the statistician or data manager can open."""

from datetime import date

import pytest
from django.utils import timezone

from patients import services
from tests.factories.patients import enrolled_patient

NAME = "欧阳青梅"
RECORD_NUMBER = "ZY-7731-0420"
BORN = date(1958, 11, 23)
PHONE = "13912345678"
OLD_PHONE = "13600001111"

# Every way a page might print the date of birth.
BORN_TEXTS = ("1958-11-23", "Nov. 23, 1958", "November 23, 1958", "23 Nov 1958", "1958年11月23日")
PHI_TEXTS = (NAME, RECORD_NUMBER, PHONE, OLD_PHONE, *BORN_TEXTS)


@pytest.fixture
def patient(site_a, coordinator):
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    identity = patient.identity
    identity.full_name, identity.hospital_record_number = NAME, RECORD_NUMBER
    identity.date_of_birth, identity.phone = BORN, OLD_PHONE
    screening = patient.screening
    services.screening_update(
        screening=screening,
        identity=identity,
        user=coordinator,
        expected_version=screening.version,
        identity_version=identity.version,
        reason="identity completed from the chart",
        today=today,
    )
    # A second edit, so the audit trail holds an identity change (old → new phone).
    identity.refresh_from_db()
    identity.phone = PHONE
    services.screening_update(
        screening=patient.screening,
        identity=identity,
        user=coordinator,
        expected_version=patient.screening.version,
        identity_version=identity.version,
        reason="new mobile number",
        today=today,
    )
    patient.refresh_from_db()
    return patient


def _pages(patient) -> list[str]:
    code = patient.subject_code
    return [
        "/patients/",
        f"/patients/?q={code}",
        f"/patients/{patient.pk}/",
        f"/patients/{patient.pk}/history/",
    ]


def _leaks(content: bytes) -> list[str]:
    text = content.decode()
    return [value for value in PHI_TEXTS if value in text]


@pytest.mark.parametrize("role_user", ["statistician", "data_manager"])
def test_phi_never_appears_for_read_only_roles(request, client_for, patient, role_user):
    client = client_for(request.getfixturevalue(role_user))
    for url in _pages(patient):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert _leaks(response.content) == [], url
    # They do see the pseudonymous record.
    assert patient.subject_code in client.get(f"/patients/{patient.pk}/").content.decode()


def test_searching_by_record_number_finds_nothing_for_anyone(client_for, coordinator, patient):
    """The list searches subject codes only: a record number must not be usable as a probe."""
    page = client_for(coordinator).get(f"/patients/?q={RECORD_NUMBER}")
    assert list(page.context["page"]) == []


def test_the_sites_coordinator_sees_the_identity_on_the_detail_page(
    client_for, coordinator, patient
):
    text = client_for(coordinator).get(f"/patients/{patient.pk}/").content.decode()
    for value in (NAME, RECORD_NUMBER, PHONE, "1958-11-23"):
        assert value in text
    assert OLD_PHONE not in text


def test_the_identity_stays_out_of_the_list_even_for_the_coordinator(
    client_for, coordinator, patient
):
    assert _leaks(client_for(coordinator).get("/patients/").content) == []


def test_the_history_shows_identity_changes_only_with_view_phi(
    client_for, coordinator, statistician, patient
):
    staff = client_for(coordinator).get(f"/patients/{patient.pk}/history/")
    entries = staff.context["entries"]
    assert any(e.record == "patient identity" for e in entries)
    text = staff.content.decode()
    assert f"<del>{OLD_PHONE}</del>" in text
    assert f"<ins>{PHONE}</ins>" in text
    assert "new mobile number" in text

    hidden = client_for(statistician).get(f"/patients/{patient.pk}/history/")
    assert not any(e.record == "patient identity" for e in hidden.context["entries"])
    assert any(e.record == "screening" for e in hidden.context["entries"])
    assert _leaks(hidden.content) == []
