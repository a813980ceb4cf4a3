"""The record write API (/api/v1/records/<form>/): create, read, update and void of every
form with a token, through the forms' services; optimistic locking with ETag / If-Match; the
reason for change; scoping, permissions and locks; the audit trail and the derived values."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.exports.forms import FORMS_BY_NAME
from assessments.models import LabPanel, LabResult
from exchange.api.records import FORMS
from followup.models import Death, FollowUpContact, Recurrence
from patients.models import Patient
from tests.exchange.api.helpers import dose_items, etag, records_url, token_client
from tests.factories.imaging import ResponseEvaluationFactory
from treatments.models import AdverseEvent, ChemoCycle, CycleDose
from trial.models import Casebook, FormStatus, Study
from visits.models import ExpectedVisit

pytestmark = pytest.mark.django_db

MODELS = {
    "lab_panels": LabPanel,
    "followup_contacts": FollowUpContact,
    "adverse_events": AdverseEvent,
    "cycles": ChemoCycle,
    "recurrences": Recurrence,
    "deaths": Death,
}
# One edit per form: a field and its new value.
EDITS = {
    "lab_panels": ("sampled_on", "2026-06-06"),
    "followup_contacts": ("ecog", 2),
    "adverse_events": ("grade", 2),
    "cycles": ("gcsf", False),
    "recurrences": ("detected_by", "clinical"),
    "deaths": ("source", "family"),
}


def _create(client, form: str, body: dict):
    response = client.post(records_url(form), body, format="json")
    assert response.status_code == 201, (form, response.json())
    return response


def test_every_form_of_the_registry_is_exposed():
    assert [form.name for form in FORMS] == list(MODELS)


@pytest.mark.parametrize("form", list(MODELS))
def test_create_read_update_void_with_a_token(form, world, coordinator):
    patient, _line, valid = world
    client = token_client(coordinator)
    model = MODELS[form]

    created = _create(client, form, valid[form])
    record = created.json()
    assert created["ETag"] == 'W/"1"'
    assert created["Location"] == records_url(form, record["id"])
    assert record["subject_code"] == patient.subject_code
    assert (record["status"], record["version"], record["voided"]) == ("complete", 1, False)
    stored = model.objects.get(pk=record["id"])
    assert stored.patient == patient
    assert stored.created_by == coordinator
    # The same field names as the read endpoint of the form.
    read_columns = FORMS_BY_NAME[form].column_names
    children = {"lab_panels": "results", "cycles": "doses"}.get(form)
    assert [name for name in record if name != children] == read_columns

    read = client.get(records_url(form, record["id"]))
    assert read.status_code == 200
    assert read.json() == record
    assert etag(read) == 'W/"1"'

    name, value = EDITS[form]
    changed = client.patch(
        records_url(form, record["id"]),
        {name: value, "change_reason": "Corrected from the source document"},
        format="json",
        HTTP_IF_MATCH=etag(read),
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()[name] == value
    assert changed.json()["version"] == 2
    assert etag(changed) == 'W/"2"'
    history = model.history.filter(id=record["id"]).order_by("-history_id").first()
    assert history.history_user == coordinator
    assert history.history_change_reason == "Corrected from the source document"

    voided = client.delete(
        records_url(form, record["id"]),
        {"void_reason": "Sent twice by the hospital system"},
        format="json",
        HTTP_IF_MATCH=etag(changed),
    )
    assert voided.status_code == 200, voided.json()
    assert voided.json()["voided"] is True
    stored.refresh_from_db()
    assert stored.voided_at is not None
    assert stored.voided_by == coordinator
    assert stored.void_reason == "Sent twice by the hospital system"
    assert model.history.filter(id=record["id"]).count() == 3
    # Voided, it stays readable and can no longer change.
    assert client.get(records_url(form, record["id"])).json()["voided"] is True
    again = client.patch(
        records_url(form, record["id"]),
        {name: value, "change_reason": "x"},
        format="json",
        HTTP_IF_MATCH=etag(voided),
    )
    assert again.status_code == 409


@pytest.mark.parametrize("form", list(MODELS))
def test_a_stale_if_match_is_412_and_changes_nothing(form, world, coordinator, investigator):
    _patient, _line, valid = world
    record = _create(token_client(coordinator), form, valid[form]).json()
    name, value = EDITS[form]
    # Someone else edits first (version 2).
    first = token_client(investigator).patch(
        records_url(form, record["id"]),
        {name: value, "change_reason": "First correction"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert first.status_code == 200, first.json()
    before = MODELS[form].history.filter(id=record["id"]).count()

    late = token_client(coordinator).patch(
        records_url(form, record["id"]),
        {"change_reason": "Second correction", name: value},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )

    assert late.status_code == 412
    body = late.json()
    assert body["current_version"] == 2
    assert body["changed_by"] == str(investigator)
    assert "changed by" in body["detail"]
    assert late["ETag"] == 'W/"2"'
    assert MODELS[form].history.filter(id=record["id"]).count() == before
    assert MODELS[form].objects.get(pk=record["id"]).version == 2
    # A stale void is refused the same way.
    void = token_client(coordinator).delete(
        records_url(form, record["id"]),
        {"void_reason": "x"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert void.status_code == 412
    assert MODELS[form].objects.get(pk=record["id"]).voided_at is None


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_an_edit_without_if_match_is_428(method, world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    record = _create(client, "adverse_events", valid["adverse_events"]).json()
    body = {**valid["adverse_events"], "grade": 2, "void_reason": "x", "change_reason": "x"}
    response = getattr(client, method)(
        records_url("adverse_events", record["id"]), body, format="json"
    )
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert AdverseEvent.objects.get(pk=record["id"]).version == 1


def test_an_if_match_that_is_no_etag_is_a_400(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    record = _create(client, "deaths", valid["deaths"]).json()
    response = client.patch(
        records_url("deaths", record["id"]), {"source": "family"}, format="json", HTTP_IF_MATCH="1"
    )
    assert response.status_code == 400
    assert "If-Match" in response.json()


def test_editing_a_complete_record_needs_a_reason(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    record = _create(client, "followup_contacts", valid["followup_contacts"]).json()
    url = records_url("followup_contacts", record["id"])

    refused = client.patch(url, {"ecog": 2}, format="json", HTTP_IF_MATCH='W/"1"')

    assert refused.status_code == 400
    assert refused.json() == {
        "change_reason": ["This form is complete: give a reason for the change."]
    }
    assert FollowUpContact.objects.get(pk=record["id"]).ecog == 1
    # A draft is edited without one.
    draft = _create(client, "lab_panels", {**valid["lab_panels"], "complete": False}).json()
    assert draft["status"] == FormStatus.DRAFT
    edited = client.patch(
        records_url("lab_panels", draft["id"]),
        {"sampled_on": "2026-06-06"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert edited.status_code == 200, edited.json()


def test_another_sites_records_and_patients_are_404_like_unknown_ones(
    world, coordinator, coordinator_b
):
    _patient, _line, valid = world
    record = _create(token_client(coordinator), "deaths", valid["deaths"]).json()
    other = token_client(coordinator_b)

    unknown = other.get(records_url("deaths", 999999))
    foreign = other.get(records_url("deaths", record["id"]))
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    edit = other.patch(
        records_url("deaths", record["id"]),
        {"source": "family", "change_reason": "x"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert edit.status_code == 404
    assert edit.json() == unknown.json()

    created = other.post(
        records_url("followup_contacts"), valid["followup_contacts"], format="json"
    )
    nobody = other.post(
        records_url("followup_contacts"),
        {**valid["followup_contacts"], "subject_code": "NOBODY-0001"},
        format="json",
    )
    assert created.status_code == nobody.status_code == 404
    assert created.json() == nobody.json()
    assert not FollowUpContact.objects.exists()


def test_statistician_and_monitor_may_not_write(world, coordinator, statistician, monitor):
    _patient, _line, valid = world
    record = _create(token_client(coordinator), "adverse_events", valid["adverse_events"]).json()
    url = records_url("adverse_events", record["id"])
    for user in (statistician, monitor):
        client = token_client(user)
        assert (
            client.post(
                records_url("adverse_events"), valid["adverse_events"], format="json"
            ).status_code
            == 403
        )
        patch = client.patch(
            url, {"grade": 2, "change_reason": "x"}, format="json", HTTP_IF_MATCH='W/"1"'
        )
        assert patch.status_code == 403
        delete = client.delete(url, {"void_reason": "x"}, format="json", HTTP_IF_MATCH='W/"1"')
        assert delete.status_code == 403
    assert AdverseEvent.objects.count() == 1
    assert AdverseEvent.objects.get().version == 1
    assert token_client(statistician).get(url).status_code == 200  # reading is allowed


def test_no_token_is_401(world):
    _patient, _line, valid = world
    from rest_framework.test import APIClient

    response = APIClient().post(records_url("deaths"), valid["deaths"], format="json")
    assert response.status_code == 401


def test_a_cycle_posted_through_the_api_moves_the_calendar(world, coordinator):
    patient, line, valid = world
    visits = {v.code: v for v in ExpectedVisit.objects.filter(patient=patient)}
    assert visits["C03"].target_on == date(2026, 6, 22)
    assert visits["C03"].done_on is None
    assert "C04" not in visits

    cycle = _create(token_client(coordinator), "cycles", valid["cycles"]).json()

    visits = {v.code: v for v in ExpectedVisit.objects.filter(patient=patient)}
    assert visits["C03"].done_on == date(2026, 6, 23)
    assert visits["C04"].target_on == date(2026, 7, 7)
    # Derived by the service: number, BSA, the dose grid.
    assert (cycle["cycle_number"], cycle["bsa_m2"], cycle["dose_reduced"]) == (3, 1.74, False)
    assert {d["drug"] for d in cycle["doses"]} == {d["drug"] for d in dose_items()}
    assert CycleDose.objects.filter(cycle_id=cycle["id"]).count() == len(dose_items())


def test_a_cycle_with_a_reduced_dose_needs_its_reason_and_keeps_its_dose_rows(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    reduced = dose_items(oxaliplatin=Decimal("100"))
    refused = client.post(
        records_url("cycles"), {**valid["cycles"], "doses": reduced}, format="json"
    )
    assert refused.status_code == 400
    assert "dose_reduction_reason" in refused.json()
    body = {**valid["cycles"], "doses": reduced, "dose_reduction_reason": "Neuropathy"}
    cycle = _create(client, "cycles", body).json()
    assert cycle["dose_reduced"] is True
    ids = sorted(d["id"] for d in cycle["doses"])
    # An edit of the grid without ids keeps the saved rows (matched by drug).
    edit = client.patch(
        records_url("cycles", cycle["id"]),
        {"doses": dose_items(), "dose_reduction_reason": "", "change_reason": "Typo in the dose"},
        format="json",
        HTTP_IF_MATCH=etag(client.get(records_url("cycles", cycle["id"]))),
    )
    assert edit.status_code == 200, edit.json()
    assert sorted(d["id"] for d in edit.json()["doses"]) == ids
    assert edit.json()["dose_reduced"] is False
    # A dose error lands on its row.
    bad = dose_items()
    bad[1]["given_mg"] = "99999"
    response = client.patch(
        records_url("cycles", cycle["id"]),
        {"doses": bad, "change_reason": "x"},
        format="json",
        HTTP_IF_MATCH=etag(edit),
    )
    assert response.status_code == 400
    rows = response.json()["doses"]
    assert rows[0] == {}
    assert "given_mg" in rows[1]


def test_a_cycle_on_a_line_that_is_not_the_patients_is_400(world, coordinator):
    _patient, _line, valid = world
    response = token_client(coordinator).post(
        records_url("cycles"), {**valid["cycles"], "line_id": 99999}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["line_id"]


def test_lab_values_are_converted_graded_and_checked(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    panel = _create(client, "lab_panels", valid["lab_panels"]).json()
    results = {r["analyte"]: r for r in panel["results"]}
    assert results["anc"]["ctcae_grade"] == 3  # 0.8 ×10⁹/L: CTCAE v5.0 grade 3
    assert results["anc"]["ctcae_term"] == "Neutrophil count decreased"
    assert results["hemoglobin"]["unit"] == "g/L"
    stored = LabResult.objects.get(panel_id=panel["id"], analyte="anc")
    assert stored.ctcae_grade == 3
    assert stored.created_by == coordinator

    # The whole list replaces the panel's values: anc edited (re-graded), haemoglobin voided.
    edit = client.patch(
        records_url("lab_panels", panel["id"]),
        {
            "results": [{"analyte": "anc", "entered_value": "1200", "entered_unit": "/µL"}],
            "change_reason": "Laboratory correction",
        },
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert edit.status_code == 200, edit.json()
    [anc] = edit.json()["results"]
    assert (anc["analyte"], anc["value"], anc["ctcae_grade"]) == ("anc", 1.2, 2)
    assert LabResult.objects.get(panel_id=panel["id"], analyte="hemoglobin").voided_at

    duplicate = client.post(
        records_url("lab_panels"),
        {**valid["lab_panels"], "results": [{"analyte": "anc", "entered_value": "1"}] * 2},
        format="json",
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["results"][1]["analyte"]
    impossible = client.post(
        records_url("lab_panels"),
        {**valid["lab_panels"], "results": [{"analyte": "hemoglobin", "entered_value": "900"}]},
        format="json",
    )
    assert impossible.status_code == 400
    assert impossible.json()["results"][0]["entered_value"]
    extreme = {"analyte": "hemoglobin", "entered_value": "30"}
    refused = client.post(
        records_url("lab_panels"), {**valid["lab_panels"], "results": [extreme]}, format="json"
    )
    assert refused.status_code == 400
    confirmed = {**extreme, "extreme_confirmed": True}
    _create(client, "lab_panels", {**valid["lab_panels"], "results": [confirmed]})
    assert LabPanel.objects.count() == 2


def test_a_second_death_is_a_conflict_with_the_first(world, coordinator):
    patient, _line, valid = world
    client = token_client(coordinator)
    first = _create(client, "deaths", valid["deaths"]).json()
    assert Patient.objects.get(pk=patient.pk).died_on == date(2026, 8, 1)
    second = client.post(records_url("deaths"), valid["deaths"], format="json")
    assert second.status_code == 409
    assert second.json()["id"] == first["id"]
    assert Death.objects.count() == 1


def test_writes_are_refused_with_409_while_the_casebook_or_study_is_locked(
    world, coordinator, data_manager
):
    patient, _line, valid = world
    client = token_client(coordinator)
    record = _create(client, "adverse_events", valid["adverse_events"]).json()
    Casebook.objects.filter(patient=patient).update(
        locked_at=timezone.now(), locked_by=data_manager
    )
    url = records_url("adverse_events", record["id"])

    edit = client.patch(
        url, {"grade": 2, "change_reason": "x"}, format="json", HTTP_IF_MATCH='W/"1"'
    )
    create = client.post(
        records_url("followup_contacts"), valid["followup_contacts"], format="json"
    )
    void = client.delete(url, {"void_reason": "x"}, format="json", HTTP_IF_MATCH='W/"1"')

    for response in (edit, create, void):
        assert response.status_code == 409
        assert "casebook is locked" in response.json()["detail"]
    event = AdverseEvent.objects.get(pk=record["id"])
    assert (event.version, event.grade, event.voided_at) == (1, 3, None)
    assert not FollowUpContact.objects.exists()

    Casebook.objects.filter(patient=patient).update(locked_at=None)
    Study.objects.update(locked_at=timezone.now())
    study = client.patch(
        url, {"grade": 2, "change_reason": "x"}, format="json", HTTP_IF_MATCH='W/"1"'
    )
    assert study.status_code == 409
    assert "study database is locked" in study.json()["detail"]


def test_a_locked_form_is_409(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    record = _create(client, "recurrences", valid["recurrences"]).json()
    Recurrence.objects.filter(pk=record["id"]).update(status=FormStatus.LOCKED)
    response = client.patch(
        records_url("recurrences", record["id"]),
        {"site_lung": True, "change_reason": "x"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert response.status_code == 409
    assert "form is locked" in response.json()["detail"]


def test_service_rules_come_back_as_field_errors(world, coordinator):
    patient, _line, valid = world
    client = token_client(coordinator)
    # Before the enrollment (24 May 2026): the study period of the service.
    early = client.post(
        records_url("followup_contacts"),
        {**valid["followup_contacts"], "contacted_on": "2026-01-02"},
        format="json",
    )
    assert early.status_code == 400
    assert list(early.json()) == ["contacted_on"]
    # No resection: a recurrence is a progression (the service's rule, keyed "kind").
    kind = client.post(
        records_url("recurrences"), {**valid["recurrences"], "kind": "recurrence"}, format="json"
    )
    assert kind.status_code == 400
    assert "kind" in kind.json()
    # Serializer checks: codes, types.
    codes = client.post(
        records_url("adverse_events"),
        {**valid["adverse_events"], "term": "Hiccups of doom", "grade": 7, "onset_on": "soon"},
        format="json",
    )
    assert codes.status_code == 400
    assert {"term", "grade", "onset_on"} <= set(codes.json())
    # The AE's line is the patient's: another number names no line of theirs.
    line = client.post(
        records_url("adverse_events"), {**valid["adverse_events"], "line_id": 424242}, format="json"
    )
    assert line.status_code == 400
    assert "line_id" in line.json()
    assert not AdverseEvent.objects.exists()
    assert not Recurrence.objects.filter(patient=patient).exists()


def test_a_record_cannot_move_to_another_patient_or_line(world, coordinator, site_a):
    _patient, _line, valid = world
    client = token_client(coordinator)
    cycle = _create(client, "cycles", valid["cycles"]).json()
    response = client.patch(
        records_url("cycles", cycle["id"]),
        {"subject_code": "OTHER-1", "line_id": cycle["line_id"] + 1, "change_reason": "x"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert response.status_code == 400
    assert set(response.json()) == {"subject_code", "line_id"}


def test_put_replaces_the_record(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    contact = _create(client, "followup_contacts", valid["followup_contacts"]).json()
    body = {
        **valid["followup_contacts"],
        "reached": False,
        "vital_status": "unknown",
        "change_reason": "It was a failed attempt",
    }
    body.pop("ecog")
    body.pop("recurrence")
    response = client.put(
        records_url("followup_contacts", contact["id"]), body, format="json", HTTP_IF_MATCH='W/"1"'
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["ecog"], response.json()["recurrence"]) == (None, None)
    missing = client.put(
        records_url("followup_contacts", contact["id"]),
        {"subject_code": contact["subject_code"]},
        format="json",
        HTTP_IF_MATCH='W/"2"',
    )
    assert missing.status_code == 400
    assert "contacted_on" in missing.json()


def test_a_void_needs_a_reason(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    death = _create(client, "deaths", valid["deaths"]).json()
    response = client.delete(
        records_url("deaths", death["id"]), {}, format="json", HTTP_IF_MATCH='W/"1"'
    )
    assert response.status_code == 400
    assert "void_reason" in response.json()
    assert Death.objects.get().voided_at is None


def test_a_lab_panel_an_evaluation_rests_on_is_not_voided(world, coordinator):
    patient, _line, valid = world
    client = token_client(coordinator)
    panel = _create(client, "lab_panels", valid["lab_panels"]).json()
    ResponseEvaluationFactory(
        patient=patient,
        evaluated_on=date(2026, 6, 10),
        imaging__performed_on=date(2026, 6, 9),
        lab_panel_id=panel["id"],
    )
    response = client.delete(
        records_url("lab_panels", panel["id"]),
        {"void_reason": "Wrong patient"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert response.status_code == 400
    assert "evaluation" in response.json()["void_reason"][0]
    assert LabPanel.objects.get(pk=panel["id"]).voided_at is None
    assert not LabResult.objects.filter(panel_id=panel["id"], voided_at__isnull=False).exists()


def test_voiding_a_lab_panel_voids_its_results_and_regrades_the_others(world, coordinator):
    _patient, _line, valid = world
    client = token_client(coordinator)
    panel = _create(client, "lab_panels", valid["lab_panels"]).json()
    response = client.delete(
        records_url("lab_panels", panel["id"]),
        {"void_reason": "Wrong patient"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert response.status_code == 200
    results = LabResult.objects.filter(panel_id=panel["id"])
    assert results.count() == 2
    assert all(r.void_reason == "Wrong patient" for r in results)
    # The voided panel's results still show with it.
    assert {r["analyte"] for r in response.json()["results"]} == {"anc", "hemoglobin"}
