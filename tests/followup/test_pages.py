"""The follow-up pages through the test client: every form as a coordinator (GET and POST),
the flow contact → recurrence / death, refusals shown on the field, stale edits, roles (403),
site scoping (404 everywhere, nothing written) and the patient-page panel's query count."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse

import followup.urls
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients.models import Patient
from tests.factories.followup import (
    contact_record,
    death_record,
    followup_patient,
    lost_record,
    recurrence_record,
    treatment_end_record,
)
from tests.pages import form_data

MODELS = (FollowUpContact, Recurrence, Death, LostToFollowUp, TreatmentEnd, Patient)
KINDS = ("contact", "recurrence", "death", "lost", "treatment-end")


def _snapshot() -> dict:
    return {
        model.__name__: (
            sorted(model._base_manager.values_list("pk", "version")),
            model.history.count(),
        )
        for model in MODELS
    }


def _full(site, user) -> dict:
    """A patient with one record of every kind: contacts (three failed attempts after a
    successful one), a progression, the end of treatment, a loss, then the death."""
    patient = followup_patient(site=site, user=user)
    treatment_end_record(patient, user, on=date(2026, 4, 1))
    contact = contact_record(patient, user, on=date(2026, 5, 1))
    recurrence = recurrence_record(patient, user, on=date(2026, 5, 1), kind="progression")
    for on in (date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1)):
        contact_record(patient, user, on=on, reached=False)
    loss = lost_record(patient, user, on=date(2026, 8, 5))
    death = death_record(patient, user, on=date(2026, 9, 1))
    patient.refresh_from_db()
    return {
        "patient": patient,
        "contact": contact,
        "recurrence": recurrence,
        "lost": loss,
        "death": death,
        "treatment-end": TreatmentEnd.objects.get(patient=patient),
    }


def _urls(records: dict) -> dict[str, str]:
    patient = records["patient"]
    urls = {}
    for pattern in followup.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kind = pattern.default_args.get("kind")
        kwargs = {"patient_id": patient.pk}
        if "pk" in pattern.pattern.converters:
            kwargs["pk"] = records[kind].pk
        urls[pattern.name] = reverse(f"followup:{pattern.name}", kwargs=kwargs)
    return urls


def test_every_kind_has_new_edit_and_void_urls():
    names = {p.name for p in followup.urls.urlpatterns}
    expected = {f"{kind}-{action}" for kind in KINDS for action in ("new", "edit", "void")}
    assert names == expected | {"followup"}


@pytest.fixture
def patient(site_a, coordinator):
    return followup_patient(site=site_a, user=coordinator)


def _post(client, url: str, **values):
    response = client.get(url)
    assert response.status_code == 200
    data = form_data(response)
    data.update(values)
    data.setdefault("save_complete", "1")
    return client.post(url, data)


def test_a_coordinator_records_the_follow_up_through_the_pages(client_for, coordinator, patient):
    client = client_for(coordinator)
    page = f"/patients/{patient.pk}/followup/"
    assert client.get(page).status_code == 200

    # End of treatment.
    response = _post(
        client,
        reverse("followup:treatment-end-new", args=[patient.pk]),
        ended_on="2026-04-01",
        reason="completed",
    )
    assert response.status_code == 302
    assert response.url == page
    end = TreatmentEnd.objects.get(patient=patient)
    assert (end.ended_on, end.created_by) == (date(2026, 4, 1), coordinator)
    # "New" opens the existing one.
    response = client.get(reverse("followup:treatment-end-new", args=[patient.pk]))
    assert response.status_code == 302
    assert response.url == reverse("followup:treatment-end-edit", args=[patient.pk, end.pk])

    # A contact that reports a new progression leads to the recurrence form, prefilled.
    response = _post(
        client,
        reverse("followup:contact-new", args=[patient.pk]),
        contacted_on="2026-05-04",
        mode="clinic",
        vital_status="alive",
        ecog="1",
        recurrence="True",
    )
    contact = FollowUpContact.objects.get(patient=patient)
    assert (contact.recurrence, contact.ecog, contact.reached) == (True, 1, True)
    assert response.status_code == 302
    assert response.url == (
        reverse("followup:recurrence-new", args=[patient.pk]) + f"?contact={contact.pk}"
    )
    response = client.get(response.url)
    data = form_data(response)
    assert (data["contact"], data["detected_on"], data["kind"]) == (
        str(contact.pk),
        "2026-05-04",
        "progression",
    )
    data.update(site_liver="on", site_peritoneum="on", detected_by="imaging", save_complete="1")
    assert client.post(response.request["PATH_INFO"], data).status_code == 302
    recurrence = Recurrence.objects.get(patient=patient)
    assert recurrence.sites == ["liver", "peritoneum"]
    assert recurrence.contact == contact

    # A contact that reports the death leads to the death form, prefilled with its date.
    response = _post(
        client,
        reverse("followup:contact-new", args=[patient.pk]),
        contacted_on="2026-07-02",
        mode="phone",
        vital_status="dead",
        ecog="",
        recurrence="",
    )
    assert response.status_code == 302
    assert response.url == reverse("followup:death-new", args=[patient.pk])
    assert "reported the patient dead" in client.get(f"/patients/{patient.pk}/").content.decode()
    response = client.get(response.url)
    assert form_data(response)["died_on"] == "2026-07-02"
    response = _post(
        client,
        reverse("followup:death-new", args=[patient.pk]),
        died_on="2026-06-30",
        cause="progression",
        source="family",
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.status, patient.died_on) == (Patient.Status.DECEASED, date(2026, 6, 30))

    # Edit with a reason, then void.
    death = Death.objects.get(patient=patient)
    edit = reverse("followup:death-edit", args=[patient.pk, death.pk])
    response = _post(client, edit, died_on="2026-07-01", change_reason="certificate")
    assert response.status_code == 302
    death.refresh_from_db()
    assert (death.died_on, death.version) == (date(2026, 7, 1), 2)
    response = client.post(
        reverse("followup:death-void", args=[patient.pk, death.pk]),
        {"version": "2", "void_reason": "the family was mistaken"},
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.status, patient.died_on) == (Patient.Status.ENROLLED, None)

    # The follow-up page lists everything.
    text = client.get(page).content.decode()
    assert "2026-05-04" in text
    assert "the family was mistaken" in text


def test_loss_to_follow_up_through_the_pages(client_for, coordinator, patient):
    client = client_for(coordinator)
    contact_record(patient, coordinator, on=date(2026, 5, 1))
    for on in (date(2026, 6, 1), date(2026, 7, 1)):
        contact_record(patient, coordinator, on=on, reached=False)
    url = reverse("followup:lost-new", args=[patient.pk])
    response = client.get(url)
    assert "2 failed attempts since then" in response.content.decode()
    before = _snapshot()
    response = _post(client, url, declared_on="2026-07-10")
    assert response.status_code == 200
    assert "at least 3 are needed" in response.content.decode()
    assert _snapshot() == before
    response = _post(
        client,
        reverse("followup:contact-new", args=[patient.pk]),
        contacted_on="2026-08-01",
        mode="phone",
        reached="",
        vital_status="unknown",
        ecog="",
        recurrence="",
    )
    assert response.status_code == 302
    assert _post(client, url, declared_on="2026-08-02").status_code == 302
    patient.refresh_from_db()
    assert patient.status == Patient.Status.LOST
    assert LostToFollowUp.objects.get(patient=patient).failed_attempts == 3
    # A contact that reaches the patient now is refused on the field, nothing saved.
    before = _snapshot()
    response = _post(
        client,
        reverse("followup:contact-new", args=[patient.pk]),
        contacted_on="2026-09-01",
        mode="clinic",
        vital_status="alive",
    )
    assert response.status_code == 200
    assert response.context["form"].errors["reached"] == [
        "The patient was declared lost to follow-up on Aug. 2, 2026: void the loss to "
        "follow-up first."
    ]
    assert _snapshot() == before


def test_a_refusal_is_shown_on_its_field_and_nothing_is_saved(client_for, coordinator, patient):
    client = client_for(coordinator)
    before = _snapshot()
    response = _post(
        client,
        reverse("followup:recurrence-new", args=[patient.pk]),
        detected_on="2026-06-01",
        kind="recurrence",
        detected_by="imaging",
        site_liver="on",
    )
    assert response.status_code == 200
    assert response.context["form"].errors["kind"] == [
        "No resection precedes June 1, 2026: record it as progression."
    ]
    assert _snapshot() == before


def test_a_stale_edit_is_refused_on_the_page(client_for, coordinator, investigator, patient):
    contact = contact_record(patient, coordinator, on=date(2026, 5, 1))
    url = reverse("followup:contact-edit", args=[patient.pk, contact.pk])
    client = client_for(coordinator)
    data = form_data(client.get(url))
    # Someone else saves first.
    other = client_for(investigator)
    assert _post(other, url, ecog="2", change_reason="ECOG corrected").status_code == 302
    client = client_for(coordinator)
    data.update(ecog="0", change_reason="mine", save_complete="1")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "This record was changed by" in response.content.decode()
    contact.refresh_from_db()
    assert (contact.ecog, contact.version) == (2, 2)


def test_a_monitor_reads_but_cannot_write(client_for, site_a, coordinator, monitor):
    records = _full(site_a, coordinator)
    urls = _urls(records)
    client = client_for(monitor)
    before = _snapshot()
    for name, url in urls.items():
        expected = 200 if name == "followup" else 403
        assert client.get(url).status_code == expected, name
        if expected == 403:
            post = {"void_reason": "probe", "version": "1", "save_complete": "1"}
            assert client.post(url, post).status_code == 403, name
    assert _snapshot() == before


def test_another_sites_patient_is_a_404_on_every_url(
    client_for, site_a, coordinator, coordinator_b
):
    urls = _urls(_full(site_a, coordinator))
    client = client_for(coordinator_b)
    before = _snapshot()
    for name, url in urls.items():
        assert client.get(url).status_code == 404, name
        post = {"void_reason": "probe", "version": "1", "save_complete": "1"}
        assert client.post(url, post).status_code == 404, name
    assert _snapshot() == before


def test_the_own_site_reaches_every_page(client_for, site_a, coordinator):
    records = _full(site_a, coordinator)
    client = client_for(coordinator)
    for name, url in _urls(records).items():
        assert client.get(url).status_code in (200, 302), name
    text = client.get(f"/patients/{records['patient'].pk}/").content.decode()
    assert "Follow-up history" in text
    assert "died 2026-09-01" in text


def _page_queries(client, patient) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/patients/{patient.pk}/").status_code == 200
    return len(captured)


def test_the_panel_adds_no_query_per_contact(client_for, site_a, coordinator, patient):
    client = client_for(coordinator)
    contact_record(patient, coordinator, on=date(2026, 3, 1))
    few = _page_queries(client, patient)
    for month in range(4, 11):
        contact_record(patient, coordinator, on=date(2026, month, 1))
        contact_record(patient, coordinator, on=date(2026, month, 15), reached=False)
    recurrence_record(patient, coordinator, on=date(2026, 10, 2), kind="progression")
    recurrence_record(patient, coordinator, on=date(2026, 10, 20), kind="progression")
    assert _page_queries(client, patient) == few
    text = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "all 15" in text


def test_a_second_death_posted_on_the_new_page_is_refused(client_for, coordinator, patient):
    client = client_for(coordinator)
    url = reverse("followup:death-new", args=[patient.pk])
    data = form_data(client.get(url))
    death_record(patient, coordinator, on=date(2026, 8, 1))  # someone else, meanwhile
    before = _snapshot()
    data.update(died_on="2026-08-02", cause="progression", source="family", save_complete="1")
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["form"].errors["died_on"] == [
        "A death is already recorded for this patient."
    ]
    assert _snapshot() == before
