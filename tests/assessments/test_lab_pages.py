"""The lab pages through the test client: the overview grid, a new panel, an edit with a reason,
the extreme-value confirmation round trip, a stale edit, the patient-page card; site scoping
(404) and roles (403) over every lab URL.

The views take today from the clock, so dates here are relative to `timezone.localdate()`.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from assessments import analytes
from assessments.models import LabPanel, LabResult
from tests.factories.labs import as_values, lab_post, record_panel
from tests.factories.patients import baselined_patient, enrolled_patient
from trial.models import FormStatus

D = Decimal


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    return baselined_patient(site=site_a, user=coordinator, today=today)


@pytest.fixture
def panel(patient, coordinator, today):
    return record_panel(
        patient,
        coordinator,
        patient.enrollment.enrolled_on,
        today=today,
        alt=38,
        tbil=("1.2", "mg/dL"),
        hemoglobin=("10.9", "g/dL"),
    )


def _urls(patient, panel) -> dict[str, str]:
    base = f"/patients/{patient.pk}/labs/"
    return {"list": base, "new": f"{base}new/", "edit": f"{base}{panel.pk}/"}


def _value_of(content: str, name: str) -> str | None:
    match = re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', content)
    return match.group(1) if match else None


# --- the overview ---------------------------------------------------------------------------


def test_the_overview_shows_one_grid_with_flags_grades_and_typed_units(
    client_for, coordinator, patient, panel, today
):
    record_panel(
        patient,
        coordinator,
        today,
        context=LabPanel.Context.OTHER,
        today=today,
        anc="0.9",
        alt=90,
    )
    page = client_for(coordinator).get(f"/patients/{patient.pk}/labs/").content.decode()
    assert page.count('class="table lab-grid"') == 1
    assert "Total bilirubin" in page
    assert ">20.5<" in page
    assert "entered as 1.2 mg/dL" in page
    # Hb 109 (F: 115–150) and ALT 90 (> 40): colour and a text marker.
    assert re.search(r'class="lab-flag lab-flag-l"[^>]*>L<', page)
    assert re.search(r'class="lab-flag lab-flag-h"[^>]*>H<', page)
    assert ">G3<" in page  # ANC 0.9: neutrophil count decreased, grade 3
    assert f"/patients/{patient.pk}/labs/{panel.pk}/" in page  # each column links to its edit
    assert f"/patients/{patient.pk}/labs/new/" in page
    assert "Neutrophils (ANC)" in page
    assert "D-dimer" not in page  # analytes never measured get no row


def test_the_overview_of_a_patient_without_panels(client_for, coordinator, patient):
    page = client_for(coordinator).get(f"/patients/{patient.pk}/labs/").content.decode()
    assert "No lab panel has been recorded" in page


# --- the panel form ---------------------------------------------------------------------------


def test_the_form_is_one_grid_of_every_analyte_and_tab_goes_down_the_values(
    client_for, coordinator, patient
):
    page = client_for(coordinator).get(f"/patients/{patient.pk}/labs/new/").content.decode()
    for analyte in analytes.ANALYTES:
        assert f'name="{analyte.code}"' in page
    assert page.count('class="table lab-entry"') == 1
    assert "115–150" in page  # the woman's haemoglobin range
    assert "130–175" not in page
    tabs = {
        name: int(tab)
        for name, tab in re.findall(r'name="([a-z0-9_]+)"[^>]*tabindex="(\d+)"', page)
        + [(n, t) for t, n in re.findall(r'tabindex="(\d+)"[^>]*name="([a-z0-9_]+)"', page)]
    }
    values = [tabs[a.code] for a in analytes.ANALYTES]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert tabs["sampled_on"] < min(values)
    units = [v for k, v in tabs.items() if k.endswith("__unit")]
    assert len(units) == sum(1 for a in analytes.ANALYTES if a.alternatives)
    assert min(units) > max(values)
    assert "__confirm" not in page  # no confirmation before an extreme value is typed


def test_a_coordinator_records_a_panel(client_for, coordinator, patient, today):
    on = patient.enrollment.enrolled_on
    response = client_for(coordinator).post(
        f"/patients/{patient.pk}/labs/new/",
        lab_post(on=on, hemoglobin=("10.9", "g/dL"), tbil=("1.2", "mg/dL"), alt="38"),
    )
    assert response.status_code == 302
    assert response.url == f"/patients/{patient.pk}/labs/"
    panel = LabPanel.objects.get()
    assert (panel.sampled_on, panel.context, panel.status) == (on, "baseline", "complete")
    tbil = LabResult.objects.get(panel=panel, analyte="tbil")
    assert (tbil.value, tbil.entered_value, tbil.entered_unit) == (D("20.5"), D("1.2"), "mg/dL")


def test_a_draft_stays_a_draft(client_for, coordinator, patient):
    data = lab_post(on=patient.enrollment.enrolled_on, button="save_draft", alt="38")
    assert (
        client_for(coordinator).post(f"/patients/{patient.pk}/labs/new/", data).status_code == 302
    )
    assert LabPanel.objects.get().status == FormStatus.DRAFT


def test_errors_are_shown_on_their_row_and_nothing_is_saved(client_for, coordinator, patient):
    data = lab_post(
        on=patient.enrollment.enrolled_on,
        hemoglobin="900",
        creatinine=("1.0", "mg/dL"),
        alt="abc",
    )
    response = client_for(coordinator).post(f"/patients/{patient.pk}/labs/new/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Haemoglobin 900 g/L is not possible (0–250 g/L): check the unit." in page
    assert "Enter a number." in page
    assert 'id="id_hemoglobin_errors"' in page
    assert _value_of(page, "hemoglobin") == "900"  # the typed values are kept
    assert LabPanel.objects.count() == 0


def test_service_errors_land_on_their_rows(client_for, coordinator, patient):
    # An extreme value is the service's to question (the form alone lets it through).
    data = lab_post(on=patient.enrollment.enrolled_on, hemoglobin="45", alt="40")
    page = client_for(coordinator).post(f"/patients/{patient.pk}/labs/new/", data)
    errors = page.context["form"].errors.as_data()
    assert list(errors) == ["hemoglobin"]
    assert "unusually low" in errors["hemoglobin"][0].message
    assert LabPanel.objects.count() == 0


def test_an_extreme_value_is_confirmed_on_its_row(client_for, coordinator, patient):
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/labs/new/"
    data = lab_post(on=patient.enrollment.enrolled_on, hemoglobin="45", platelets="180")
    response = client.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Haemoglobin 45 g/L is unusually low (usual 50–200 g/L)" in page
    assert re.findall(r'name="([a-z0-9_]+)__confirm"', page) == ["hemoglobin"]
    assert LabPanel.objects.count() == 0

    response = client.post(url, {**data, "hemoglobin__confirm": "on"})
    assert response.status_code == 302
    result = LabResult.objects.get(analyte="hemoglobin")
    assert (result.value, result.extreme_confirmed, result.ctcae_grade) == (D(45), True, 3)


def test_an_edit_shows_the_typed_values_and_needs_a_reason(client_for, coordinator, patient, panel):
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/labs/{panel.pk}/"
    page = client.get(url).content.decode()
    assert _value_of(page, "tbil") == "1.2"
    assert re.search(r'<option value="mg/dL" selected>', page)
    assert _value_of(page, "version") == "1"
    assert "Reason for change" in page

    data = lab_post(
        on=panel.sampled_on, alt="45", tbil=("1.2", "mg/dL"), hemoglobin=("10.9", "g/dL")
    )
    data["version"] = "1"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "give a reason for the change" in response.content.decode()
    assert LabResult.objects.get(panel=panel, analyte="alt").value == D(38)

    data["change_reason"] = "Copied from the wrong report"
    data.pop("hemoglobin")  # left empty: voided with the reason
    response = client.post(url, data)
    assert response.status_code == 302
    panel.refresh_from_db()
    assert panel.version == 2
    assert LabResult.objects.get(panel=panel, analyte="alt").value == D(45)
    hemoglobin = LabResult.objects.get(panel=panel, analyte="hemoglobin")
    assert hemoglobin.void_reason == "Copied from the wrong report"


def test_a_stale_edit_shows_the_conflict_and_keeps_the_typed_values(
    client_for, coordinator, investigator, patient, panel, today
):
    from assessments.services.labs import lab_panel_record

    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/labs/{panel.pk}/"
    data = lab_post(on=panel.sampled_on, alt="77", tbil=("1.2", "mg/dL"))
    data.update({"version": "1", "change_reason": "mine"})
    # Another user saves the panel after the coordinator opened it.
    lab_panel_record(
        panel=LabPanel.objects.get(pk=panel.pk),
        values=as_values(alt=52, tbil=("1.2", "mg/dL"), hemoglobin=("10.9", "g/dL")),
        user=investigator,
        expected_version=1,
        reason="theirs",
        today=today,
    )
    response = client.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "This record was changed by inv_a" in page
    assert "Saved now" in page
    assert _value_of(page, "alt") == "77"  # the typed value is kept
    assert _value_of(page, "version") == "2"  # saving again applies it deliberately
    assert LabResult.objects.get(panel=panel, analyte="alt").value == D(52)

    response = client.post(url, {**data, "version": "2"})
    assert response.status_code == 302
    assert LabResult.objects.get(panel=panel, analyte="alt").value == D(77)


def test_the_patient_page_shows_the_latest_abnormal_values(client_for, coordinator, patient, panel):
    page = client_for(coordinator).get(f"/patients/{patient.pk}/").content.decode()
    assert "Latest labs" in page
    card = page[page.index("Latest labs") :]
    assert "Haemoglobin" in card
    assert ">L<" in card
    assert ">G1<" in card
    assert "ALT" not in card  # 38 U/L is normal
    assert f"/patients/{patient.pk}/labs/" in card


def test_a_patient_not_enrolled_gets_no_new_panel_button(client_for, coordinator, site_a):
    from tests.factories.patients import screened_patient

    candidate = screened_patient(site=site_a, user=coordinator)
    client = client_for(coordinator)
    assert "Latest labs" not in client.get(f"/patients/{candidate.pk}/").content.decode()
    page = client.get(f"/patients/{candidate.pk}/labs/").content.decode()
    assert f"/patients/{candidate.pk}/labs/new/" not in page
    response = client.post(
        f"/patients/{candidate.pk}/labs/new/", lab_post(on=timezone.localdate(), alt="40")
    )
    assert "Enroll the patient before recording lab results." in response.content.decode()


# --- scoping and roles ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "new", "edit"])
def test_another_sites_patient_is_not_found(client_for, coordinator_b, patient, panel, page):
    client = client_for(coordinator_b)
    url = _urls(patient, panel)[page]
    assert client.get(url).status_code == 404
    if page != "list":
        data = lab_post(on=panel.sampled_on, alt="40")
        assert client.post(url, data).status_code == 404
    assert LabPanel.objects.count() == 1


def test_a_panel_of_another_patient_is_not_found(client_for, coordinator, site_a, panel, today):
    other = enrolled_patient(site=site_a, user=coordinator, today=today)
    url = f"/patients/{other.pk}/labs/{panel.pk}/"
    assert client_for(coordinator).get(url).status_code == 404


@pytest.mark.parametrize(
    ("role", "page", "status"),
    [
        ("statistician", "list", 200),
        ("statistician", "new", 403),
        ("statistician", "edit", 403),
        ("data_manager", "list", 200),
        ("data_manager", "edit", 403),
        ("monitor", "list", 200),
        ("monitor", "new", 403),
        ("monitor", "edit", 403),
        ("site_admin", "list", 403),
        ("site_admin", "new", 403),
        ("investigator", "new", 200),
        ("investigator", "edit", 200),
    ],
)
def test_roles(client_for, request, patient, panel, role, page, status):
    user = request.getfixturevalue(role)
    client = client_for(user)
    url = _urls(patient, panel)[page]
    assert client.get(url).status_code == status
    if status == 403:
        data = {**lab_post(on=panel.sampled_on, alt="99"), "version": "1", "change_reason": "x"}
        assert client.post(url, data).status_code == 403
        assert LabResult.objects.get(panel=panel, analyte="alt").value == D(38)


def test_anonymous_users_are_sent_to_the_login(client, patient, panel):
    for url in _urls(patient, panel).values():
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response.url


def test_read_only_roles_see_no_entry_links(client_for, statistician, patient, panel):
    page = client_for(statistician).get(f"/patients/{patient.pk}/labs/").content.decode()
    assert f"/patients/{patient.pk}/labs/new/" not in page
    assert f"/patients/{patient.pk}/labs/{panel.pk}/" not in page


def test_dates_relative_to_today(patient):
    # The fixture patient was enrolled 8 days ago (views read today from the clock).
    assert patient.enrollment.enrolled_on == timezone.localdate() - timedelta(days=8)
