"""Voiding a lab panel entered in error (assessments.services.labs.lab_panel_void and its page):
the panel and its results are voided with the reason, nothing is deleted, the other panels are
re-graded; refused without a reason, on a stale version, while an evaluation rests on the
panel, and for other sites and roles."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from assessments.models import LabPanel, LabResult
from assessments.services.labs import lab_panel_void
from tests.factories.labs import record_panel
from tests.factories.patients import baselined_patient
from trial.services import StaleRecordError


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    return baselined_patient(site=site_a, user=coordinator, today=today)


@pytest.fixture
def panel(patient, coordinator, today):
    return record_panel(patient, coordinator, patient.enrollment.enrolled_on, today=today, alt=38)


def test_voiding_keeps_the_panel_and_its_results_marked_void_with_history(panel, coordinator):
    lab_panel_void(panel=panel, user=coordinator, reason="Wrong patient", expected_version=1)

    stored = LabPanel.objects.get(pk=panel.pk)
    assert stored.is_voided
    assert stored.void_reason == "Wrong patient"
    assert stored.history.first().history_change_reason == "Wrong patient"
    results = LabResult.objects.filter(panel=panel)
    assert results.exists()
    assert all(r.is_voided for r in results)
    assert not LabPanel.objects.active().filter(pk=panel.pk).exists()


def test_voiding_is_refused_without_reason_or_on_a_stale_version(panel, coordinator):
    with pytest.raises(ValidationError) as error:
        lab_panel_void(panel=panel, user=coordinator, reason="  ", expected_version=1)
    assert "void_reason" in error.value.error_dict
    with pytest.raises(StaleRecordError):
        lab_panel_void(panel=panel, user=coordinator, reason="Sent twice", expected_version=7)
    assert not LabPanel.objects.get(pk=panel.pk).is_voided
    assert not LabResult.objects.filter(panel=panel, voided_at__isnull=False).exists()


def test_the_void_page_voids_with_a_reason_and_returns_to_the_list(
    client_for, coordinator, patient, panel
):
    url = f"/patients/{patient.pk}/labs/{panel.pk}/void/"
    client = client_for(coordinator)
    assert client.get(url).status_code == 200
    missing = client.post(url, {"version": 1, "void_reason": ""})
    assert missing.status_code == 200
    assert not LabPanel.objects.get(pk=panel.pk).is_voided
    response = client.post(url, {"version": 1, "void_reason": "Sent twice by the LIS"})
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/labs/"
    assert LabPanel.objects.get(pk=panel.pk).is_voided
    # The edit page of a voided panel is gone.
    assert client.get(f"/patients/{patient.pk}/labs/{panel.pk}/").status_code == 404


def test_the_void_page_is_closed_to_other_sites_and_to_read_only_roles(
    client_for, coordinator_b, statistician, patient, panel
):
    url = f"/patients/{patient.pk}/labs/{panel.pk}/void/"
    assert client_for(coordinator_b).get(url).status_code == 404
    assert client_for(statistician).post(url, {"version": 1, "void_reason": "x"}).status_code == 403
    assert not LabPanel.objects.get(pk=panel.pk).is_voided
