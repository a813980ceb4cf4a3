"""The treatment pages through the test client: start a line, record cycles from the prefilled
dose grid, errors on the field (and dose row) to fix, a stale edit, voiding, adverse events and
the patient-page card.

The views take today from the clock, so dates here are relative to `timezone.localdate()`.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories.forms import post_from_form
from tests.factories.patients import baselined_patient, screened_patient
from tests.factories.treatments import cycle_doses, cycle_given, line_started
from treatments import services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine

DAY = timedelta(days=1)


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    # Enrolled 78 days ago with a baseline of 170 cm and 64 kg (BSA 1.74 m²).
    return baselined_patient(site=site_a, user=coordinator, today=today - 70 * DAY)


def _page_data(response, button: str = "save_complete", **changes) -> dict:
    """What the browser posts for the page as rendered, with `changes` by posted name."""
    data: dict = {}
    for form in response.context["forms"]:
        data.update(post_from_form(form, button=None))
    data[button] = "1"
    data.update({k: str(v) for k, v in changes.items()})
    return data


def _start_line(client, patient, on, **fields) -> RegimenLine:
    data = {"regimen": "AG", "started_on": on.isoformat(), "save_complete": "1", **fields}
    response = client.post(f"/patients/{patient.pk}/treatment/line/new/", data)
    assert response.status_code == 302, response.context["form"].errors
    return RegimenLine.objects.filter(patient=patient).order_by("-line_number").first()


def test_a_coordinator_starts_a_line_and_records_cycles(client_for, coordinator, patient, today):
    client = client_for(coordinator)
    page = client.get(f"/patients/{patient.pk}/treatment/")
    assert page.status_code == 200
    assert "Start the first line" in page.content.decode()

    start = today - 75 * DAY
    line = _start_line(client, patient, start)
    assert (line.line_number, line.regimen, line.cycle_length_days) == (1, "AG", 28)
    assert line.created_by == coordinator

    url = f"/patients/{patient.pk}/treatment/line/{line.pk}/cycle/new/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "BSA 1.74 m²" in html
    cycle_form, nab, gem = page.context["forms"]
    assert cycle_form["given_on"].value() == start
    assert (nab["planned_mg_m2"].value(), nab["given_mg"].value()) == (Decimal(125), Decimal(218))
    assert (gem["planned_mg_m2"].value(), gem["given_mg"].value()) == (Decimal(1000), Decimal(1740))
    assert nab.reference_mg == Decimal(218)
    assert "autofocus" in str(cycle_form["given_on"])

    response = client.post(url, _page_data(page))
    assert response.status_code == 302
    assert response.url == f"/patients/{patient.pk}/treatment/"
    cycle = ChemoCycle.objects.get()
    assert (cycle.cycle_number, cycle.bsa_m2, cycle.dose_reduced) == (1, Decimal("1.74"), False)
    assert sorted(CycleDose.objects.values_list("drug", "given_mg")) == [
        ("gemcitabine", Decimal(1740)),
        ("nab_paclitaxel", Decimal(218)),
    ]

    # The next cycle is prefilled one cycle length later, with today's weight typed in.
    page = client.get(url)
    assert page.context["forms"][0]["given_on"].value() == start + 28 * DAY
    response = client.post(url, _page_data(page, weight_kg="70.0"))
    assert response.status_code == 302
    second = ChemoCycle.objects.get(cycle_number=2)
    assert (second.weight_kg, second.bsa_m2) == (Decimal("70.0"), Decimal("1.82"))

    page = client.get(f"/patients/{patient.pk}/treatment/").content.decode()
    assert "C2" in page
    assert "Record cycle 3" in page
    assert "Relative dose intensity" in page


def test_dose_errors_land_on_their_row_and_nothing_is_saved(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    line = _start_line(client, patient, today - 75 * DAY)
    url = f"/patients/{patient.pk}/treatment/line/{line.pk}/cycle/new/"
    page = client.get(url)
    response = client.post(url, _page_data(page, **{"doses-1-given_mg": "3200"}))
    assert response.status_code == 200
    cycle_form, nab, gem = response.context["forms"]
    assert gem.errors["given_mg"] == [
        "Given 3,200 mg is 184% of the standard dose (1,740 mg for 1.74 m²); at most 150%."
    ]
    assert not nab.errors
    assert cycle_form.non_field_errors() == [
        "Some doses need correcting: see the marked rows of the grid."
    ]
    assert "Given 3,200 mg is 184%" in response.content.decode()
    assert ChemoCycle.objects.count() == 0

    # A reduced dose asks for the reason on the cycle's field.
    response = client.post(url, _page_data(page, **{"doses-0-given_mg": "150"}))
    assert response.context["forms"][0].errors["dose_reduction_reason"] == [
        "The doses of nab-paclitaxel are reduced: give the reason for the reduction."
    ]
    response = client.post(
        url,
        _page_data(page, **{"doses-0-given_mg": "150", "dose_reduction_reason": "Neuropathy"}),
    )
    assert response.status_code == 302
    assert ChemoCycle.objects.get().dose_reduced is True


def test_a_date_before_the_enrollment_is_refused_on_the_date_field(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    line = _start_line(client, patient, today - 75 * DAY)
    url = f"/patients/{patient.pk}/treatment/line/{line.pk}/cycle/new/"
    page = client.get(url)
    before = patient.enrollment.enrolled_on - DAY
    response = client.post(url, _page_data(page, given_on=before.isoformat()))
    errors = response.context["forms"][0].errors["given_on"]
    assert any("is before the enrollment" in e for e in errors)
    assert ChemoCycle.objects.count() == 0


def test_a_stale_cycle_edit_is_a_conflict_and_keeps_the_input(
    client_for, coordinator, investigator, patient, today
):
    line = line_started(patient, user=coordinator, started_on=today - 75 * DAY, today=today)
    cycle = cycle_given(line, user=coordinator, given_on=line.started_on, today=today)
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/treatment/cycle/{cycle.pk}/"
    page = client.get(url)
    assert page.status_code == 200
    mine = _page_data(page, change_reason="Weight from the ward chart", weight_kg="66.0")

    # Meanwhile the investigator records G-CSF on the same cycle.
    theirs = ChemoCycle.objects.get(pk=cycle.pk)
    theirs.gcsf = True
    services.cycle_record(
        cycle=theirs,
        doses=list(CycleDose.objects.filter(cycle=cycle).order_by("id")),
        user=investigator,
        expected_version=1,
        reason="G-CSF given on day 3",
        today=today,
    )

    response = client.post(url, mine)
    assert response.status_code == 200
    html = response.content.decode()
    assert "This record was changed by" in html
    assert "G-CSF given" in html  # the field that differs
    cycle.refresh_from_db()
    assert (cycle.version, cycle.gcsf, cycle.weight_kg) == (2, True, None)
    form = response.context["forms"][0]
    assert form["weight_kg"].value() == "66.0"  # the user's input is kept
    assert form["version"].value() == 2  # ... and saving again is deliberate

    again = dict(mine, version="2", gcsf="on")
    response = client.post(url, again)
    assert response.status_code == 302
    cycle.refresh_from_db()
    assert (cycle.version, cycle.weight_kg, cycle.gcsf) == (3, Decimal("66.0"), True)


def test_voiding_a_cycle_from_its_page(client_for, coordinator, patient, today):
    line = line_started(patient, user=coordinator, started_on=today - 75 * DAY, today=today)
    first = cycle_given(line, user=coordinator, given_on=line.started_on, today=today)
    second = cycle_given(line, user=coordinator, given_on=line.started_on + 28 * DAY, today=today)
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/treatment/cycle/{first.pk}/void/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"version": "1", "void_reason": ""})
    assert response.context["form"].errors["void_reason"]
    response = client.post(url, {"version": "1", "void_reason": "Recorded for the wrong patient"})
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.cycle_number == 1
    page = client.get(f"/patients/{patient.pk}/treatment/").content.decode()
    assert "Recorded for the wrong patient" in page  # struck through, with its reason


def test_a_second_line_asks_why_the_regimen_changes(client_for, coordinator, patient, today):
    line = line_started(patient, user=coordinator, started_on=today - 75 * DAY, today=today)
    cycle_given(line, user=coordinator, given_on=line.started_on, today=today)
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/treatment/line/new/"
    page = client.get(url)
    assert "Why the regimen changes" in page.content.decode()
    data = {
        "regimen": "mFOLFIRINOX",
        "started_on": (today - 40 * DAY).isoformat(),
        "save_complete": "1",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["form"].errors["switch_reason"] == [
        "Give the reason for changing the regimen (line 2)."
    ]
    response = client.post(url, {**data, "switch_reason": "other", "change_reason_detail": ""})
    assert response.context["form"].errors["change_reason_detail"] == [
        "Describe the reason for the change."
    ]
    response = client.post(url, {**data, "switch_reason": "progression"})
    assert response.status_code == 302
    second = RegimenLine.objects.get(line_number=2)
    assert (second.change_reason, second.cycle_length_days) == ("progression", 14)

    # Editing the completed line without a reason for the change is refused on that field.
    edit_url = f"/patients/{patient.pk}/treatment/line/{second.pk}/"
    page = client.get(edit_url)
    response = client.post(edit_url, _page_data(page, started_on=(today - 39 * DAY).isoformat()))
    assert response.context["form"].errors["change_reason"] == [
        "This form is complete: give a reason for the change."
    ]
    response = client.post(
        edit_url,
        _page_data(page, started_on=(today - 39 * DAY).isoformat(), change_reason="Date typo"),
    )
    assert response.status_code == 302
    second.refresh_from_db()
    assert (second.version, second.started_on) == (2, today - 39 * DAY)


def test_an_other_regimen_has_a_free_dose_grid(client_for, coordinator, patient, today):
    client = client_for(coordinator)
    line = _start_line(
        client,
        patient,
        today - 75 * DAY,
        regimen="other",
        regimen_other="Gemcitabine + S-1",
        cycle_length_days="21",
    )
    url = f"/patients/{patient.pk}/treatment/line/{line.pk}/cycle/new/"
    page = client.get(url)
    assert len(page.context["dose_forms"]) == 3  # empty rows to fill
    data = _page_data(
        page,
        **{
            "doses-0-drug": "gemcitabine",
            "doses-0-planned_mg_m2": "1000",
            "doses-0-given_mg": "1740",
            "doses-0-planned_days": "2",
            "doses-0-given_days": "2",
            "doses-1-drug": "other",
            "doses-1-drug_other": "S-1",
            "doses-1-planned_mg_m2": "80",
            "doses-1-given_mg": "",
            "doses-1-planned_days": "14",
            "doses-1-given_days": "14",
        },
    )
    response = client.post(url, data)
    assert response.context["dose_forms"][1].errors["given_mg"] == ["This field is required."]
    data["doses-1-given_mg"] = "140"
    response = client.post(url, data)
    assert response.status_code == 302
    assert sorted(CycleDose.objects.values_list("drug", "drug_other")) == [
        ("gemcitabine", ""),
        ("other", "S-1"),
    ]
    # The next cycle offers the same drugs again, plus empty rows.
    page = client.get(url)
    rows = page.context["dose_forms"]
    assert [r["drug"].value() for r in rows[:2]] == ["gemcitabine", "other"]
    assert len(rows) == 5


def test_a_patient_who_is_not_enrolled_cannot_start_a_line(client_for, coordinator, site_a, today):
    candidate = screened_patient(site=site_a, user=coordinator, today=today)
    client = client_for(coordinator)
    page = client.get(f"/patients/{candidate.pk}/treatment/").content.decode()
    assert "The patient is not enrolled" in page
    assert "/treatment/line/new/" not in page
    response = client.post(
        f"/patients/{candidate.pk}/treatment/line/new/",
        {"regimen": "AG", "started_on": today.isoformat(), "save_complete": "1"},
    )
    assert response.context["form"].non_field_errors() == [
        "Enroll the patient before recording chemotherapy."
    ]
    assert RegimenLine.objects.count() == 0


# --- adverse events and the patient page ----------------------------------------------------


def test_adverse_events_and_the_grade_5_flag(client_for, coordinator, patient, today):
    line = line_started(patient, user=coordinator, started_on=today - 75 * DAY, today=today)
    cycle_given(line, user=coordinator, given_on=line.started_on, today=today)
    client = client_for(coordinator)
    url = f"/patients/{patient.pk}/adverse-events/new/"
    page = client.get(url)
    html = page.content.decode()
    assert '<optgroup label="Blood and lymphatic system disorders">' in html
    event = {
        "term": "other",
        "term_other": "",
        "grade": "2",
        "serious": "False",
        "onset_on": (today - 70 * DAY).isoformat(),
        "resolved_on": (today - 60 * DAY).isoformat(),
        "line": "",
        "attribution": "possible",
        "action_taken": "none",
        "outcome": "recovered",
        "save_complete": "1",
    }
    response = client.post(url, event)
    assert response.context["form"].errors["term_other"] == ["Name the adverse event."]
    response = client.post(url, {**event, "term_other": "Hiccups"})
    assert response.status_code == 302
    assert AdverseEvent.objects.get().line == line  # the line in effect at the onset

    fatal = {
        **event,
        "term": "Sepsis",
        "grade": "5",
        "serious": "True",
        "resolved_on": "",
        "outcome": "fatal",
    }
    assert client.post(url, fatal).status_code == 302
    listing = client.get(f"/patients/{patient.pk}/adverse-events/").content.decode()
    assert "Hiccups" in listing
    assert "death record missing" in listing
    detail = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Chemotherapy" in detail
    assert "no death record exists yet" in detail

    edit = AdverseEvent.objects.get(term_other="Hiccups")
    page = client.get(f"/patients/{patient.pk}/adverse-events/{edit.pk}/")
    response = client.post(
        f"/patients/{patient.pk}/adverse-events/{edit.pk}/",
        _page_data(page, grade="3", change_reason="Hospitalised"),
    )
    assert response.status_code == 302
    edit.refresh_from_db()
    assert (edit.grade, edit.version) == (3, 2)


def test_the_patient_page_card(client_for, coordinator, patient, today):
    line = line_started(patient, user=coordinator, started_on=today - 75 * DAY, today=today)
    cycle_given(line, user=coordinator, given_on=line.started_on, today=today)
    reduced = cycle_doses("AG", Decimal("1.74"), gemcitabine=Decimal("1392"))
    cycle_given(
        line,
        user=coordinator,
        given_on=line.started_on + 28 * DAY,
        today=today,
        doses=reduced,
        dose_reduction_reason="Neutropenia",
    )
    services.adverse_event_save(
        event=AdverseEvent(
            patient=patient,
            term="Neutrophil count decreased",
            grade=3,
            onset_on=line.started_on + 35 * DAY,
            serious=False,
            attribution="probable",
            action_taken="delayed",
            outcome="recovering",
        ),
        user=coordinator,
        today=today,
    )
    page = client_for(coordinator).get(f"/patients/{patient.pk}/")
    card = page.content.decode()
    assert "G3</span> Neutrophil count decreased" in card  # open grade ≥ 3 events
    assert "Line 1 · AG (nab-paclitaxel + gemcitabine)" in card
    assert (line.started_on + 28 * DAY).isoformat() in card  # the last cycle
    # RDI of gemcitabine: 3.0 + 2.4 = 5.4 g/m² over 8 weeks, 6.0 g/m² planned: 90%.
    assert 'gemcitabine <span class="">90%</span>' in card
    assert f"/patients/{patient.pk}/treatment/" in card
    assert f"/patients/{patient.pk}/adverse-events/" in card
