"""The statisticians' exports (/api/v1/exports/…) and the token endpoint: a statistician's
session end to end (token → CSV → the same numbers as the survival API and the dataset), every
export in every format, the date shift, the counting-process layout, refusals as JSON 400 keyed
by the parameter, 401/403, no PHI on any endpoint, the export log and its page."""

import csv
import io
import json
from datetime import date
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from analytics import dataset, selectors, survival_surgery
from analytics.exports.forms import FORMS, export_patients
from analytics.models import ExportLog
from followup.models import Death
from patients.models import Patient
from tests.analytics.synthetic import synthetic_outcomes
from tests.analytics.test_exports import PHI, full_patient, second_patient
from tests.factories.trial import UserFactory
from tests.factories.visits import synthetic_cohort
from trial.models import Role

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 24)
TOKEN = "/api/v1/auth/token/"
DATASET = "/api/v1/exports/analysis-dataset/"
CODEBOOK = "/api/v1/exports/codebook/"
ODM = "/api/v1/exports/odm/"
SURVIVAL = "/api/v1/analytics/survival/"
LOG_PAGE = "/analytics/exports/log/"
PASSWORD = "correct-horse-battery-9"


def form_url(name: str) -> str:
    return f"/api/v1/exports/forms/{name}/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def study_cohort(site_a, investigator):
    return full_patient(site_a, investigator), second_patient(site_a, investigator)


@pytest.fixture
def synthetic(site_a, site_b):
    """40 patients at A and 12 at B with outcomes (deaths, last contacts)."""
    ids = []
    for site, count, seed in ((site_a, 40, 1), (site_b, 12, 2)):
        investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
        made = synthetic_cohort(site=site, count=count, today=TODAY, investigator=investigator)
        synthetic_outcomes(patient_ids=made, today=TODAY, seed=seed, median_days=300)
        ids += made
    return ids


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response).decode("utf-8"))))


def token_client(client, user) -> str:
    user.set_password(PASSWORD)
    user.save()
    response = client.post(
        TOKEN, {"username": user.username, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


# --- the token ----------------------------------------------------------------------------


def test_token_for_good_credentials_is_the_users_token(client, statistician):
    token = token_client(client, statistician)
    assert Token.objects.get(user=statistician).key == token
    assert token_client(client, statistician) == token  # the same one on every call


def test_wrong_credentials_are_a_json_400(client, statistician):
    statistician.set_password(PASSWORD)
    statistician.save()
    response = client.post(
        TOKEN, {"username": "stat", "password": "wrong-password"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "credentials" in response.json()["non_field_errors"][0]
    assert not Token.objects.exists()


def test_the_token_endpoint_takes_json_only_and_is_throttled(client, statistician, monkeypatch):
    response = client.post(TOKEN, {"username": "stat", "password": PASSWORD})  # a form post
    assert response.status_code == 415
    from config.api import TokenThrottle

    monkeypatch.setattr(TokenThrottle, "rate", "2/min", raising=False)
    cache.clear()
    payload = {"username": "stat", "password": "nope"}
    codes = [
        client.post(TOKEN, payload, content_type="application/json").status_code for _ in range(3)
    ]
    assert codes == [400, 400, 429]


def test_token_authenticates_an_export_and_a_bad_token_is_401(client, statistician, study_cohort):
    token = token_client(client, statistician)
    client.logout()
    response = client.get(DATASET, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert len(read_csv(response)) == 2
    response = client.get(DATASET, HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "url", [DATASET, form_url("cycles"), CODEBOOK, ODM, "/api/v1/forms/", "/api/v1/forms/cycles/"]
)
def test_without_authentication_every_endpoint_is_401_json(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("url", [DATASET, form_url("cycles"), CODEBOOK, ODM])
def test_a_coordinator_may_not_export(client_for, coordinator, monitor, url):
    for user in (coordinator, monitor):
        response = client_for(user).get(url)
        assert response.status_code == 403, user
        assert response["Content-Type"] == "application/json"
    assert not ExportLog.objects.exists()


# --- a statistician's session -------------------------------------------------------------


def test_statistician_session_token_csv_equals_the_survival_api_and_the_dataset(
    client, statistician, synthetic
):
    token = token_client(client, statistician)
    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    response = client.get(DATASET + "?format=csv", **auth)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="analysis-dataset.csv"'
    assert len(response["X-Data-Version"]) == 64
    rows = read_csv(response)
    assert list(rows[0]) == list(dataset.COLUMNS)
    with_outcome = [r for r in rows if r["os_days"] != ""]
    events = sum(int(r["os_event"]) for r in with_outcome)

    km = client.get(SURVIVAL + "?endpoint=os", **auth).json()
    assert (km["n"], km["events"]) == (len(with_outcome), events)
    assert events == Death.objects.count() > 0
    assert len(rows) == len(synthetic)

    expected = {
        r["subject_code"]: (r["os_days"], r["os_event"])
        for r in selectors.analysis_rows(user=statistician)
    }
    got = {r["subject_code"]: (r["os_days"], r["os_event"]) for r in rows}
    assert got == {
        code: ("" if days is None else str(days), "" if event is None else str(int(event)))
        for code, (days, event) in expected.items()
    }


def test_json_dataset_carries_rows_and_the_data_version(client_for, statistician, synthetic):
    response = client_for(statistician).get(DATASET + "?format=json&origin=diagnosis")
    assert response["Content-Type"] == "application/json"
    data = json.loads(body(response))
    assert data["origin"] == "diagnosis"
    assert data["row_count"] == len(data["rows"]) == len(synthetic)
    assert data["data_version"] == response["X-Data-Version"]
    assert response["X-Data-As-Of"]


def test_date_shift_moves_dates_and_keeps_os_days(client_for, statistician, study_cohort):
    client = client_for(statistician)
    plain = {r["subject_code"]: r for r in read_csv(client.get(DATASET))}
    shifted = {r["subject_code"]: r for r in read_csv(client.get(DATASET + "?date_shift=true"))}
    assert plain.keys() == shifted.keys()
    for code, row in plain.items():
        assert shifted[code]["os_days"] == row["os_days"]
        assert shifted[code]["os_event"] == row["os_event"]
        assert shifted[code]["enrolled_on"] != row["enrolled_on"]
        offset = date.fromisoformat(shifted[code]["enrolled_on"]) - date.fromisoformat(
            row["enrolled_on"]
        )
        assert date.fromisoformat(row["origin_on"]) + offset == date.fromisoformat(
            shifted[code]["origin_on"]
        )


def test_counting_process_layout_splits_at_the_operation(client_for, statistician, study_cohort):
    operated, _second = study_cohort
    client = client_for(statistician)
    response = client.get(DATASET + "?layout=counting-process")
    assert response.status_code == 200
    assert "counting-process.csv" in response["Content-Disposition"]
    rows = read_csv(response)
    assert list(rows[0]) == ["subject_code", "start", "stop", "event", "surgery"]
    frame = selectors.analysis_frame(user=statistician)
    expected = survival_surgery.to_counting_process(frame)
    assert [(r["subject_code"], float(r["start"]), float(r["stop"])) for r in rows] == [
        (i, s, t)
        for i, s, t in zip(expected["id"], expected["start"], expected["stop"], strict=True)
    ]
    mine = [r for r in rows if r["subject_code"] == operated.subject_code]
    row = frame.set_index("subject_code").loc[operated.subject_code]
    assert [(float(r["start"]), float(r["stop"]), r["event"], r["surgery"]) for r in mine] == [
        (0.0, float(row["surgery_days"]), "0", "0"),
        (float(row["surgery_days"]), float(row["os_days"]), "1", "1"),
    ]
    data = json.loads(body(client.get(DATASET + "?layout=counting-process&format=json")))
    assert data["layout"] == "counting-process"
    assert data["row_count"] == len(rows)
    log = ExportLog.objects.filter(parameters__layout="counting-process").get(format="csv")
    assert log.row_count == len(rows)


def test_form_tables_in_csv_and_json(client_for, statistician, study_cohort):
    client = client_for(statistician)
    for form in FORMS:
        response = client.get(form_url(form.name))
        assert response.status_code == 200, form.name
        assert response["Content-Disposition"] == f'attachment; filename="{form.name}.csv"'
        rows = read_csv(response)
        assert rows, form.name
        assert list(rows[0]) == form.column_names, form.name
    response = client.get(form_url("lab_results") + "?format=json&include_voided=true")
    data = json.loads(body(response))
    assert data["table"] == "lab_results"
    assert any(row["voided"] for row in data["rows"])
    assert len(data["data_version"]) == 64


def test_codebook_and_odm(client_for, statistician, data_manager, study_cohort):
    client = client_for(statistician)
    entries = json.loads(body(client.get(CODEBOOK)))
    assert entries
    rows = read_csv(client.get(CODEBOOK + "?format=csv"))
    assert rows
    response = client.get(ODM)
    assert response["Content-Type"] == "application/xml"
    assert body(response).startswith(b"<?xml")
    # The audit records are for data managers only, and never date-shifted.
    assert client.get(ODM + "?audit=true").status_code == 403
    client = client_for(data_manager)
    assert b"AuditRecord" in body(client.get(ODM + "?audit=true"))
    response = client.get(ODM + "?audit=true&date_shift=true")
    assert response.status_code == 400
    assert "date_shift" in response.json()


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        (DATASET + "?format=xlsx", "format"),
        (DATASET + "?origin=birth", "origin"),
        (DATASET + "?layout=long", "layout"),
        (DATASET + "?date_shift=maybe", "date_shift"),
        (DATASET + "?colour=red", "colour"),
        (DATASET + "?format=csv&format=json", "format"),
        (DATASET + "?site=NOWHERE", "site"),
        (DATASET + "?cohort=future", "cohort"),
        (form_url("patient_identity"), "form"),
        (form_url("cycles") + "?format=xml", "format"),
        (CODEBOOK + "?format=xml", "format"),
        (ODM + "?format=csv", "format"),
    ],
)
def test_refusals_are_400_keyed_by_the_parameter(client_for, statistician, url, parameter):
    response = client_for(statistician).get(url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == [parameter]


def test_site_and_cohort_filter_the_export(client_for, statistician, study_cohort, site_b):
    other = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_b])
    b_patient = second_patient(site_b, other)
    client = client_for(statistician)
    codes = {r["subject_code"] for r in read_csv(client.get(DATASET + "?site=SITEB"))}
    assert codes == {b_patient.subject_code}
    everyone = read_csv(client.get(form_url("patients")))
    assert len(everyone) == 3
    assert read_csv(client.get(form_url("patients") + "?cohort=retrospective")) == [
        r for r in everyone if r["cohort"] == "retrospective"
    ]


def test_a_statistician_of_site_a_exports_only_site_a(client_for, site_a, site_b, study_cohort):
    other = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_b])
    second_patient(site_b, other)
    only_a = UserFactory(roles=[Role.STATISTICIAN], sites=[site_a])
    client = client_for(only_a)
    codes = {r["subject_code"] for r in read_csv(client.get(form_url("patients")))}
    assert codes == {p.subject_code for p in study_cohort}
    assert client.get(DATASET + "?site=SITEB").status_code == 400


# --- no PHI anywhere ----------------------------------------------------------------------


def _phi_texts() -> list[str]:
    born = PHI["date_of_birth"]
    return [
        PHI["full_name"],
        PHI["hospital_record_number"],
        PHI["phone"],
        born.isoformat(),
        born.strftime("%Y%m%d"),
    ]


def test_no_phi_on_any_endpoint_for_a_statistician(client, statistician, study_cohort):
    first, _second = study_cohort
    assert first.identity.full_name == PHI["full_name"]
    token = token_client(client, statistician)
    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    urls = ["/api/v1/forms/", DATASET, DATASET + "?format=json", CODEBOOK, CODEBOOK + "?format=csv"]
    urls += [DATASET + "?layout=counting-process", ODM, ODM + "?date_shift=true"]
    for form in FORMS:
        urls += [f"/api/v1/forms/{form.name}/?include_voided=true", form_url(form.name)]
        urls += [form_url(form.name) + "?format=json&include_voided=true"]
    for origin in dataset.Origin:
        urls.append(DATASET + "?" + urlencode({"origin": origin.value}))
    seen = 0
    for url in urls:
        response = client.get(url, **auth)
        assert response.status_code == 200, url
        content = body(response) if response.streaming else response.content
        text = content.decode("utf-8")
        seen += len(text)
        for phi in _phi_texts():
            assert phi not in text, (url, phi)
    assert seen > 10_000


# --- the export log -----------------------------------------------------------------------


def test_every_export_is_logged_with_who_what_and_rows(client_for, statistician, study_cohort):
    client = client_for(statistician)
    body(client.get(DATASET + "?site=SITEA"))
    body(client.get(form_url("cycles") + "?format=json"))
    body(client.get(CODEBOOK))
    body(client.get(ODM))
    logs = list(ExportLog.objects.order_by("id"))
    assert [(log.what, log.format) for log in logs] == [
        ("analysis-dataset", "csv"),
        ("cycles", "json"),
        ("codebook", "json"),
        ("odm", "xml"),
    ]
    assert all(log.user == statistician and log.is_complete for log in logs)
    assert logs[0].row_count == 2
    assert logs[0].parameters["site"] == "SITEA"
    assert logs[1].row_count == 1
    patients = export_patients(user=statistician)
    assert logs[3].row_count > patients.count()


def test_the_export_log_page_is_for_data_managers(
    client_for, client, statistician, data_manager, coordinator, study_cohort
):
    body(client_for(statistician).get(DATASET + "?date_shift=true"))
    log = ExportLog.objects.get()
    response = client_for(data_manager).get(LOG_PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("stat", "analysis-dataset", "date_shift=True"):
        assert text in page, text
    assert log.data_version[:10] in page
    assert 'href="/analytics/exports/log/"' in page  # linked from the analysis navigation
    for user in (statistician, coordinator):
        assert client_for(user).get(LOG_PAGE).status_code == 403
    client.logout()
    assert client.get(LOG_PAGE).status_code == 302


def test_export_log_of_another_site_is_not_shown(client_for, site_b, study_cohort):
    from tests.factories.trial import SiteFactory

    elsewhere = SiteFactory(code="SITEC", name="Site C")
    outsider = UserFactory(roles=[Role.STATISTICIAN], sites=[elsewhere], username="outsider")
    body(client_for(outsider).get(DATASET))
    manager_b = UserFactory(roles=[Role.DATA_MANAGER], sites=[site_b], username="dm_b")
    page = client_for(manager_b).get(LOG_PAGE).content.decode()
    assert "outsider" not in page
    assert Patient.objects.count() == 2
