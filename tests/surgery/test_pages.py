"""The surgery pages: the phase end to end through the test client, site scoping (404 on every
URL, GET and POST, nothing written), role 403s, and flat query counts of the patient card."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse

import surgery.urls
from assessments.models import LabPanel
from patients.selectors import patient_get
from surgery import services
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology
from surgery.panels import surgery_context
from tests.factories.surgery import (
    OPERATED_ON,
    TODAY,
    operated_patient,
    surgical_patient,
)
from tests.factories.trial import UserFactory
from tests.pages import form_data, options
from trial.models import Role

DAY = timedelta(days=1)
MODELS = (MdtDecision, MdtEvidence, Operation, Pathology, Complication, Discharge, LabPanel)
READ_PAGES = {"surgery", "mdt-list", "complication-list", "postop-labs"}
MDT_PAGES = {"mdt-new", "mdt-edit", "mdt-void"}


def _snapshot() -> dict:
    state = {}
    for model in MODELS:
        state[model.__name__] = sorted(model._base_manager.values_list("pk", "version"))
        state[f"{model.__name__} history"] = model.history.count()
    return state


def _full_case(site, investigator, *, complications: int = 1) -> Operation:
    """Evaluation → MDT → operation → pathology, complications, discharge, a POD 1 panel."""
    operation = operated_patient(site=site, investigator=investigator)
    services.pathology_save(
        pathology=Pathology(
            operation=operation,
            reported_on=OPERATED_ON + 7 * DAY,
            ypt="ypT2",
            ypn="ypN1",
            margin_pancreas="R0",
            nodes_examined=18,
            nodes_positive=2,
            regression_grade=2,
            differentiation="moderate",
            perineural_invasion=False,
            lymphovascular_invasion=False,
        ),
        user=investigator,
        today=TODAY,
    )
    for index in range(complications):
        services.complication_save(
            complication=Complication(
                operation=operation,
                onset_on=OPERATED_ON + (2 + index % 10) * DAY,
                kind="ssi",
                clavien_dindo="I" if index % 2 else "II",
            ),
            user=investigator,
            today=TODAY,
        )
    services.discharge_save(
        discharge=Discharge(operation=operation, discharged_on=OPERATED_ON + 12 * DAY),
        user=investigator,
        today=TODAY,
    )
    services.postop_panel_record(
        operation=operation,
        sampled_on=OPERATED_ON + DAY,
        values={"wbc": (Decimal("13.1"), None)},
        user=investigator,
        today=TODAY,
    )
    return operation


def _urls(operation) -> dict[str, str]:
    patient = operation.patient
    ids = {
        "patient_id": patient.pk,
        "decision_id": operation.mdt_decision_id,
        "complication_id": Complication.objects.filter(operation=operation).first().pk,
        "panel_id": LabPanel.objects.filter(patient=patient, context="postop").first().pk,
        "day": 3,
    }
    urls = {}
    for pattern in surgery.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        converters = pattern.pattern.converters
        assert not set(converters) - set(ids), pattern.name
        urls[pattern.name] = reverse(
            f"surgery:{pattern.name}", kwargs={k: ids[k] for k in converters}
        )
    return urls


@pytest.fixture
def investigator_b(site_b):
    return UserFactory(roles=[Role.INVESTIGATOR], sites=[site_b], username="inv_b")


@pytest.fixture
def case_b(site_b, investigator_b):
    return _full_case(site_b, investigator_b)


def test_another_sites_patient_is_a_404_on_every_url(client_for, investigator, case_b):
    urls = _urls(case_b)
    assert set(urls) == {
        "surgery",
        "mdt-list",
        "mdt-new",
        "mdt-edit",
        "mdt-void",
        "operation",
        "pathology",
        "discharge",
        "complication-list",
        "complication-new",
        "complication-edit",
        "complication-void",
        "postop-labs",
        "postop-lab-new",
        "postop-lab-edit",
    }
    client = client_for(investigator)
    before = _snapshot()
    for name, url in urls.items():
        assert client.get(url).status_code == 404, name
        post = {"void_reason": "probe", "version": "1", "save_complete": "1"}
        assert client.post(url, post).status_code == 404, name
    assert _snapshot() == before


def test_the_own_site_reaches_every_page(client_for, investigator_b, case_b):
    client = client_for(investigator_b)
    for name, url in _urls(case_b).items():
        assert client.get(url).status_code == 200, name


def test_records_of_another_patient_are_a_404_under_an_own_patient(
    client_for, site_a, investigator, case_b
):
    own = _full_case(site_a, investigator)
    client = client_for(investigator)
    for name, url in _urls(case_b).items():
        if name in {"mdt-edit", "mdt-void", "complication-edit", "complication-void"} | {
            "postop-lab-edit"
        }:
            mixed = url.replace(f"/patients/{case_b.patient_id}/", f"/patients/{own.patient_id}/")
            assert client.get(mixed).status_code == 404, name


def test_roles(client_for, site_a, investigator, coordinator, statistician):
    operation = _full_case(site_a, investigator)
    urls = _urls(operation)
    before = _snapshot()
    client = client_for(coordinator)
    for name in MDT_PAGES:
        assert client.get(urls[name]).status_code == 403, name
        assert client.post(urls[name], {"void_reason": "x"}).status_code == 403, name
    for name in set(urls) - MDT_PAGES:
        assert client.get(urls[name]).status_code == 200, name
    client = client_for(statistician)
    for name, url in urls.items():
        expected = 200 if name in READ_PAGES else 403
        assert client.get(url).status_code == expected, name
        if expected == 403:
            assert client.post(url, {}).status_code == 403, name
    assert _snapshot() == before


def test_the_phase_end_to_end(client_for, site_a, investigator, coordinator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    base = f"/patients/{patient.pk}/surgery/"

    # The patient page shows the card because the evaluation referred to the MDT.
    page = client_for(coordinator).get(f"/patients/{patient.pk}/")
    assert "referred to the MDT" in page.content.decode()

    # MDT by the investigator, on the evaluation.
    client = client_for(investigator)
    response = client.get(base + "mdt/new/")
    assert [v for v, _ in options(response, "planned_pancreatic")][1:] == [
        "pd",
        "pppd",
        "dps",
        "tp",
    ]
    data = form_data(response)
    data.update(
        decided_on="2026-03-30",
        evaluations=str(evaluation.pk),
        decision="radical_surgery",
        rationale="Partial response; resectable.",
        planned_pancreatic="pd",
        planned_liver_wedge="on",
        save_complete="1",
    )
    assert client.post(base + "mdt/new/", data).status_code == 302
    decision = MdtDecision.objects.get(patient=patient)
    assert decision.investigator == investigator
    assert decision.evidence.get().evaluation == evaluation

    # An operation dated before the MDT is refused on the page, nothing saved.
    response = client.get(base + "operation/")
    data = form_data(response)
    data.update(
        mdt_decision=str(decision.pk),
        operated_on="2026-03-29",
        pancreatic_procedure="pd",
        liver_wedge="on",
        liver_lesions_resected="2",
        approach="open",
        operative_minutes="380",
        blood_loss_ml="450",
        save_complete="1",
    )
    response = client.post(base + "operation/", data)
    assert response.status_code == 200
    assert "is before the MDT decision" in str(response.context["form"].errors["operated_on"])
    assert not Operation.objects.exists()
    data["operated_on"] = OPERATED_ON.isoformat()
    assert client.post(base + "operation/", data).status_code == 302
    operation = Operation.objects.get(patient=patient)

    # Pathology (positive above examined is refused first).
    data = form_data(client.get(base + "pathology/"))
    data.update(
        reported_on="2026-04-28",
        ypt="ypT2",
        ypn="ypN1",
        margin_pancreas="R0",
        margin_liver="R0",
        nodes_examined="3",
        nodes_positive="5",
        regression_grade="2",
        differentiation="moderate",
        perineural_invasion="True",
        lymphovascular_invasion="False",
        save_complete="1",
    )
    response = client.post(base + "pathology/", data)
    assert "cannot outnumber the nodes examined" in str(response.context["form"].errors)
    data.update(nodes_examined="18", nodes_positive="2")
    assert client.post(base + "pathology/", data).status_code == 302

    # Complications by the coordinator: a grade B fistula.
    client = client_for(coordinator)
    data = form_data(client.get(base + "complications/new/"))
    data.update(
        onset_on="2026-04-24",
        kind="popf",
        clavien_dindo="II",
        isgps_grade="B",
        drain_amylase_u_l="2400",
        save_complete="1",
    )
    assert client.post(base + "complications/new/", data).status_code == 302
    listing = client.get(base + "complications/").content.decode()
    assert "20.9" in listing  # CCI of one grade II complication

    # Postoperative labs on days 1, 3, 5, 7 and 30.
    for day in (1, 3, 5, 7, 30):
        url = base + f"postop-labs/day/{day}/new/"
        data = form_data(client.get(url))
        assert data["sampled_on"] == (OPERATED_ON + day * DAY).isoformat()
        data.update(wbc="12.5", amylase="180", save_complete="1")
        response = client.post(url, data)
        assert response.status_code == 302, response.context["form"].errors
    panels = LabPanel.objects.filter(patient=patient, context="postop").order_by("postop_day")
    assert [p.postop_day for p in panels] == [1, 3, 5, 7, 30]
    assert not any(p.out_of_window for p in panels)
    table = client.get(base + "postop-labs/").content.decode()
    assert table.count("badge ok") == 5

    # A discharge before the operation is refused; then the discharge.
    data = form_data(client.get(base + "discharge/"))
    data.update(discharged_on="2026-04-19", save_complete="1")
    response = client.post(base + "discharge/", data)
    assert "is before the operation" in str(response.context["form"].errors["discharged_on"])
    data["discharged_on"] = "2026-05-04"
    assert client.post(base + "discharge/", data).status_code == 302
    assert Discharge.objects.get(operation=operation).length_of_stay == 14

    # The overview and the patient card tie it together.
    overview = client.get(base).content.decode()
    assert "14 days in hospital" in overview
    card = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Pancreaticoduodenectomy" in card
    assert "D1 D3 D5 D7 D30" in card


def test_coordinator_gets_403_recording_an_mdt(client_for, site_a, coordinator):
    patient, _evaluation = surgical_patient(site=site_a, user=coordinator)
    client = client_for(coordinator)
    response = client.post(
        f"/patients/{patient.pk}/surgery/mdt/new/",
        {"decided_on": "2026-03-30", "decision": "continue_systemic", "rationale": "x"},
    )
    assert response.status_code == 403
    assert not MdtDecision.objects.exists()


def test_postop_panel_out_of_window_asks_for_confirmation(client_for, site_a, investigator):
    operation = operated_patient(site=site_a, investigator=investigator)
    client = client_for(investigator)
    url = f"/patients/{operation.patient_id}/surgery/postop-labs/day/7/new/"
    data = form_data(client.get(url))
    data.update(sampled_on=(OPERATED_ON + 11 * DAY).isoformat(), wbc="9", save_complete="1")
    response = client.post(url, data)
    assert "outside the window of day 7" in str(response.context["form"].errors["sampled_on"])
    assert not LabPanel.objects.exists()
    data["confirm_out_of_window"] = "on"
    assert client.post(url, data).status_code == 302
    assert LabPanel.objects.get().out_of_window


def _panel_queries(rf, user, patient) -> int:
    request = rf.get("/")
    request.user = user
    user.has_perm("surgery.view_operation")  # the permission cache, as on the page
    patient = patient_get(patient_id=patient.pk, user=user)
    with CaptureQueriesContext(connection) as queries:
        context = surgery_context(request, patient)
    assert context is not None
    return len(queries)


def test_the_surgery_card_is_flat(rf, site_a, investigator):
    small = _full_case(site_a, investigator, complications=1)
    large = _full_case(site_a, investigator, complications=12)
    counts = [_panel_queries(rf, investigator, op.patient) for op in (small, large)]
    assert counts[0] == counts[1] == 5, counts


def test_the_card_is_hidden_without_surgery_or_referral(rf, site_a, investigator):
    patient, evaluation = surgical_patient(site=site_a, user=investigator)
    evaluation.decision = "continue"
    evaluation.save()
    request = rf.get("/")
    request.user = investigator
    assert surgery_context(request, patient_get(patient_id=patient.pk, user=investigator)) is None


def test_pages_are_flat(client_for, site_a, investigator):
    small = _full_case(site_a, investigator, complications=1)
    large = _full_case(site_a, investigator, complications=12)
    client = client_for(investigator)
    client.get(f"/patients/{small.patient_id}/")
    limits = {
        "surgery/": 13,
        "surgery/complications/": 15,
        "surgery/postop-labs/": 14,
        "surgery/mdt/": 10,
        "": None,  # the patient page: the other apps' cards count too
    }
    for page, limit in limits.items():
        counts = []
        for operation in (small, large):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(f"/patients/{operation.patient_id}/{page}").status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1], (page, counts)
        if limit is not None:
            assert counts[1] <= limit, (page, counts)
