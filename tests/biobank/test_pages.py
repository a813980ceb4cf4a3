"""The biobank pages through the test client: the phase collect → store → move → aliquot →
consent withdrawal → destroy, the label, scoping (404) and roles (403), flat query counts."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from biobank import services
from biobank.models import CustodyEvent, Specimen
from biobank.panels import specimens_context
from patients.models import PatientIdentity
from patients.selectors import patient_get
from tests.factories.biobank import box_at, collected, operated_patient
from tests.pages import form_data


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    return operated_patient(site=site_a, user=coordinator, today=today)


@pytest.fixture
def box(site_a):
    return box_at(site_a, name="BOX-A")


def _post(client, specimen, action, data):
    url = reverse("biobank:specimen-action", args=[specimen.pk, action])
    return client.post(url, {f"{action}-{k}": v for k, v in data.items()})


def test_the_biobank_phase_through_the_pages(client_for, coordinator, patient, box, today):
    client = client_for(coordinator)
    # Record a specimen from the patient.
    new_url = reverse("biobank:specimen-new", args=[patient.pk])
    page = client.get(new_url)
    assert page.status_code == 200
    data = form_data(page)
    data.update({"kind": "tumour", "origin": "pancreas", "weight_mg": "0"})
    page = client.post(new_url, data)
    assert "The weight must be more than 0 mg (entered: 0 mg)." in page.content.decode()
    data["weight_mg"] = "5000"
    page = client.post(new_url, data)
    assert "outside the usual 10–2000 mg" in page.content.decode()
    assert not Specimen.objects.exists()
    data["weight_mg"] = "120"
    page = client.post(new_url, data)
    assert page.status_code == 302
    specimen = Specimen.objects.get()
    assert specimen.code == f"{patient.subject_code}-T01"

    # Store it by picking a free cell in the box grid.
    grid = client.get(
        reverse("biobank:box-detail", args=[box.pk]),
        {"specimen": specimen.pk, "action": "store"},
    )
    assert "A1: put here" in grid.content.decode()
    detail = client.get(
        reverse("biobank:specimen-detail", args=[specimen.pk]),
        {"action": "store", "box": box.pk, "position": "B4"},
    )
    assert 'value="B4"' in detail.content.decode()
    assert _post(client, specimen, "store", {"box": box.pk, "position": "B4"}).status_code == 302
    specimen.refresh_from_db()
    assert (specimen.state, specimen.position) == ("stored", "B4")

    # A second specimen cannot go into the same position.
    other = collected(patient, user=coordinator, kind="adjacent", today=today)
    page = _post(client, other, "store", {"box": box.pk, "position": "b4"})
    assert (
        f"Position B4 of box BOX-A is already taken by specimen {specimen.code}."
        in page.content.decode()
    )
    other.refresh_from_db()
    assert other.state == "collected"

    # Move, aliquot.
    assert _post(client, specimen, "move", {"box": box.pk, "position": "I9"}).status_code == 302
    page = _post(client, specimen, "aliquot", {"count": 3, "weight_mg_each": "50"})
    assert "weigh more than specimen" in page.content.decode()
    assert (
        _post(client, specimen, "aliquot", {"count": 2, "weight_mg_each": "40"}).status_code == 302
    )
    assert Specimen.objects.filter(parent=specimen).count() == 2

    # The patient withdraws biobank consent: everything held is flagged.
    consent_url = reverse("patients:consent-new", args=[patient.pk])
    consent = form_data(client.get(consent_url))
    consent.update(
        {
            "basis": "signed",
            "consented_on": today.isoformat(),
            "consent_version": "v2",
            "study_consent": "True",
            "biobank_consent": "False",
        }
    )
    page = client.post(consent_url, consent)
    assert page.status_code == 302
    home = client.get(reverse("biobank:home")).content.decode()
    flagged = Specimen.objects.filter(flagged_for_destruction=True)
    assert flagged.count() == 4  # the specimen, its two aliquots and the adjacent one
    for code in flagged.values_list("code", flat=True):
        assert code in home
    panel = client.get(reverse("patients:patient-detail", args=[patient.pk])).content.decode()
    assert "4 specimens are flagged for destruction" in panel
    # Only destruction is offered now.
    page = _post(client, specimen, "thaw", {})
    assert "flagged for destruction" in page.content.decode()

    # Destroy: the position is freed, the specimen leaves the worklist.
    assert _post(client, specimen, "destroy", {"reason": "Consent withdrawn"}).status_code == 302
    specimen.refresh_from_db()
    assert (specimen.state, specimen.box_id) == ("destroyed", None)
    assert list(specimen.events.values_list("kind", flat=True)) == [
        "collected",
        "stored",
        "moved",
        "aliquoted",
        "flagged",
        "destroyed",
    ]
    home = client.get(reverse("biobank:home")).content.decode()
    worklist = home.split("Destruction worklist")[1].split("Storage boxes")[0]
    assert f">{specimen.code}</a>" not in worklist
    assert f">{specimen.code}-1</a>" in worklist


def test_search_by_code_subject_and_type(client_for, coordinator, patient, today):
    specimen = collected(patient, user=coordinator, today=today)
    client = client_for(coordinator)
    url = reverse("biobank:home")
    assert specimen.code in client.get(url, {"q": specimen.code.lower()}).content.decode()
    assert specimen.code in client.get(url, {"q": patient.subject_code}).content.decode()
    assert specimen.code not in client.get(url, {"kind": "adjacent"}).content.decode()


def test_label_has_the_barcode_and_no_phi(client_for, coordinator, patient, today):
    specimen = collected(patient, user=coordinator, today=today)
    identity = PatientIdentity.objects.get(patient=patient)
    page = client_for(coordinator).get(reverse("biobank:specimen-label", args=[specimen.pk]))
    html = page.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="barcode"' in html
    assert html.count("<rect ") > 20
    assert specimen.code in html
    assert patient.subject_code in html
    assert "@media print" in html
    for phi in (identity.full_name, identity.hospital_record_number, identity.phone):
        assert phi not in html
    assert identity.date_of_birth.isoformat() not in html


@pytest.fixture
def other_site_specimen(site_b, coordinator_b, today):
    patient = operated_patient(site=site_b, user=coordinator_b, today=today)
    return collected(patient, user=coordinator_b, today=today)


def test_other_sites_are_404_on_get_and_post(client_for, coordinator, other_site_specimen):
    client = client_for(coordinator)
    specimen = other_site_specimen
    box = box_at(specimen.patient.site)
    for url in (
        reverse("biobank:specimen-detail", args=[specimen.pk]),
        reverse("biobank:specimen-label", args=[specimen.pk]),
        reverse("biobank:patient-specimens", args=[specimen.patient_id]),
        reverse("biobank:specimen-new", args=[specimen.patient_id]),
        reverse("biobank:box-detail", args=[box.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("biobank:specimen-new", args=[specimen.patient_id]), {}).status_code
        == 404
    )
    for action in ("store", "move", "aliquot", "thaw", "ship", "destroy"):
        response = _post(client, specimen, action, {"reason": "x", "destination": "x"})
        assert response.status_code == 404, action
    assert specimen.events.count() == 1


def test_roles_view_only_or_nothing(
    client_for, statistician, site_admin, patient, coordinator, today
):
    specimen = collected(patient, user=coordinator, today=today)
    client = client_for(statistician)
    assert client.get(reverse("biobank:specimen-detail", args=[specimen.pk])).status_code == 200
    assert client.get(reverse("biobank:specimen-new", args=[patient.pk])).status_code == 403
    assert _post(client, specimen, "destroy", {"reason": "x"}).status_code == 403
    assert (
        _post(client, specimen, "aliquot", {"count": 1, "weight_mg_each": "1"}).status_code == 403
    )
    client = client_for(site_admin)
    assert client.get(reverse("biobank:home")).status_code == 403
    assert client.get(reverse("biobank:specimen-detail", args=[specimen.pk])).status_code == 403
    assert CustodyEvent.objects.filter(specimen=specimen).count() == 1


def _fill(patient, box, user, today, count):
    for index in range(count):
        specimen = collected(patient, user=user, today=today)
        services.specimen_store(
            specimen=specimen, box=box, row=index // 9 + 1, column=index % 9 + 1, user=user
        )


@pytest.mark.parametrize("count", [1, 12])
def test_patient_panel_is_one_query(
    rf, coordinator, patient, box, today, count, django_assert_num_queries
):
    _fill(patient, box, coordinator, today, count)
    services.biobank_consent_withdrawn(patient=patient, user=coordinator, on=today)
    request = rf.get("/")
    request.user = coordinator
    coordinator.has_perm("biobank.view_specimen")  # permission cache
    loaded = patient_get(patient_id=patient.pk, user=coordinator)  # as the patient page does
    with django_assert_num_queries(1):
        context = specimens_context(request, loaded)
    assert context["summary"].total == count
    assert context["summary"].flagged == count


@pytest.mark.parametrize("count", [1, 12])
def test_box_grid_and_lists_use_a_fixed_number_of_queries(
    client_for, coordinator, patient, box, today, count, django_assert_max_num_queries
):
    _fill(patient, box, coordinator, today, count)
    services.biobank_consent_withdrawn(patient=patient, user=coordinator, on=today)
    client = client_for(coordinator)
    client.get(reverse("biobank:home"))  # warm the session and permission caches
    with django_assert_max_num_queries(8):
        page = client.get(reverse("biobank:box-detail", args=[box.pk]))
    assert page.content.decode().count('class="occupied') == count
    with django_assert_max_num_queries(9):
        client.get(reverse("biobank:home"), {"q": patient.subject_code})
    with django_assert_max_num_queries(11):
        client.get(reverse("biobank:patient-specimens", args=[patient.pk]))
    specimen = Specimen.objects.order_by("pk").first()
    with django_assert_max_num_queries(11):
        client.get(reverse("biobank:specimen-detail", args=[specimen.pk]))


def test_collection_dated_days_after_the_operation_is_refused_on_the_page(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    url = reverse("biobank:specimen-new", args=[patient.pk])
    data = form_data(client.get(url))
    late = today - timedelta(days=1)
    data.update(
        {
            "kind": "tumour",
            "origin": "pancreas",
            "weight_mg": "100",
            "collected_at": f"{late.isoformat()}T10:00",
        }
    )
    page = client.post(url, data)
    assert "more than 1 day after the operation" in page.content.decode()
    assert not Specimen.objects.exists()
