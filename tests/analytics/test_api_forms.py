"""The read endpoints of every CRF (/api/v1/forms/…): the list of forms, every form's rows
equal to the export registry's, site scoping per role, cursor pagination, the filters, JSON
errors, and a query count that does not grow with the page."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.exports.forms import FORMS, FORMS_BY_NAME, export_patients, export_rows
from assessments.models import LabPanel
from tests.analytics.test_exports import full_patient, second_patient
from tests.factories.trial import UserFactory
from tests.factories.visits import synthetic_cohort
from trial.models import Role

pytestmark = pytest.mark.django_db

FORMS_URL = "/api/v1/forms/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def study_cohort(site_a, investigator):
    return full_patient(site_a, investigator), second_patient(site_a, investigator)


@pytest.fixture
def site_b_patient(site_b):
    investigator_b = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_b], username="inv_b")
    return full_patient(site_b, investigator_b)


def get(client, name: str, **params):
    url = f"{FORMS_URL}{name}/" + ("?" + urlencode(params) if params else "")
    response = client.get(url)
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response


def all_rows(client, name: str, **params) -> list[dict]:
    """Every page of a form, following the `next` links."""
    response = get(client, name, **params)
    assert response.status_code == 200, response.json()
    data = response.json()
    rows = list(data["results"])
    while data["next"]:
        data = client.get(data["next"]).json()
        rows += data["results"]
    return rows


def test_the_list_of_forms_gives_every_form_with_its_columns(client_for, statistician):
    response = client_for(statistician).get(FORMS_URL)
    assert response.status_code == 200
    forms = response.json()["forms"]
    assert [f["name"] for f in forms] == [form.name for form in FORMS]
    for described, form in zip(forms, FORMS, strict=True):
        assert [c["name"] for c in described["columns"]] == form.column_names
        assert described["url"] == f"/api/v1/forms/{form.name}/"
    sex = next(c for c in forms[0]["columns"] if c["name"] == "sex")
    assert {code["code"] for code in sex["codes"]} == {"M", "F"}


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_every_form_gives_the_rows_of_the_export(client_for, statistician, study_cohort, form):
    client = client_for(statistician)
    rows = all_rows(client, form.name, page_size=1)
    assert rows, form.name
    assert all(list(row) == form.column_names for row in rows)
    patients = export_patients(user=statistician)
    expected = sorted(export_rows(form, patients_qs=patients), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [r["id"] for r in expected]
    assert [r["subject_code"] for r in rows] == [r["subject_code"] for r in expected]
    if form.date_field:
        first = expected[0][form.date_field]
        assert rows[0][form.date_field] == (first.isoformat() if first else None)


def test_scoped_by_site_for_every_role(client_for, site_a, study_cohort, site_b_patient):
    a_codes = {p.subject_code for p in study_cohort}
    statistician_a = UserFactory(roles=[Role.STATISTICIAN], sites=[site_a], username="stat_a")
    coordinator_b = UserFactory(roles=[Role.COORDINATOR], sites=[site_b_patient.site])
    for user, expected in (
        (statistician_a, a_codes),
        (coordinator_b, {site_b_patient.subject_code}),
    ):
        client = client_for(user)
        for form in FORMS:
            codes = {r["subject_code"] for r in all_rows(client, form.name, page_size=1000)}
            assert codes <= expected, (user, form.name)
        assert {r["subject_code"] for r in all_rows(client, "patients")} == expected
    response = get(client_for(statistician_a), "patients", site="SITEB")
    assert response.status_code == 400
    assert "site" in response.json()


def test_a_site_admin_without_the_view_permission_is_refused(client_for, site_admin):
    assert get(client_for(site_admin), "cycles").status_code == 403
    forms = client_for(site_admin).get(FORMS_URL).json()["forms"]
    assert [f["name"] for f in forms] == ["patients"]  # site admins see the patient list only


def test_cursor_pagination_by_record_id(client_for, statistician, site_a, investigator):
    synthetic_cohort(site=site_a, count=12, today=timezone.localdate(), investigator=investigator)
    client = client_for(statistician)
    first = get(client, "patients", page_size=5).json()
    assert set(first) == {"next", "previous", "results"}
    assert len(first["results"]) == 5
    assert first["previous"] is None
    ids = [r["id"] for r in all_rows(client, "patients", page_size=5)]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) == 12
    assert len(get(client, "patients").json()["results"]) == 12  # 100 by default
    assert len(get(client, "patients", page_size=5000).json()["results"]) == 12  # capped at 1000


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "cD1hYmM="}, "cursor"),  # p=abc
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_to": "12/03/2026"}, "date_to"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
        ({"include_voided": "perhaps"}, "include_voided"),
        ({"cohort": "past"}, "cohort"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_refusals_are_400_keyed_by_the_parameter(client_for, statistician, params, parameter):
    response = get(client_for(statistician), "lab_panels", **params)
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


def test_a_form_without_a_date_refuses_a_date_filter(client_for, statistician):
    response = get(client_for(statistician), "patients", date_from="2026-01-01")
    assert response.status_code == 400
    assert "no date" in response.json()["date_from"][0]


def test_an_unknown_form_is_a_json_404_naming_the_forms(client_for, statistician):
    response = get(client_for(statistician), "patient_identity")
    assert response.status_code == 404
    assert "lab_results" in response.json()["form"][0]


def test_filters(client_for, statistician, study_cohort):
    first, second = study_cohort
    client = client_for(statistician)
    rows = all_rows(client, "lab_panels", subject_code=first.subject_code)
    assert rows
    assert {r["subject_code"] for r in rows} == {first.subject_code}
    # The second patient's panel is voided: only on request, flagged.
    assert all_rows(client, "lab_panels", subject_code=second.subject_code) == []
    voided = all_rows(client, "lab_panels", subject_code=second.subject_code, include_voided="true")
    assert [r["voided"] for r in voided] == [True]
    # Dates on the form's own date, inclusive.
    panel_on = first.enrollment.enrolled_on + timedelta(days=1)
    on_day = all_rows(client, "lab_panels", date_from=panel_on, date_to=panel_on)
    assert [r["sampled_on"] for r in on_day] == [panel_on.isoformat()]
    assert all_rows(client, "lab_panels", date_from=panel_on + timedelta(days=1)) == []
    # A datetime date field (specimens.collected_at) filters by its local date.
    assert all_rows(client, "specimens", date_to="2000-01-01") == []
    assert all_rows(client, "specimens", date_from="2000-01-01")
    # updated_since: only what changed since.
    later = timezone.now() + timedelta(minutes=1)
    assert all_rows(client, "lab_panels", updated_since=later.isoformat()) == []
    panel = LabPanel.objects.filter(patient=first).first()
    LabPanel.objects.filter(pk=panel.pk).update(updated_at=later + timedelta(minutes=1))
    changed = all_rows(client, "lab_panels", updated_since=later.isoformat())
    assert [r["id"] for r in changed] == [panel.pk]
    assert all_rows(client, "expected_visits", updated_since="2000-01-01")  # refreshed_at


def test_query_count_does_not_grow_with_the_page(
    client_for, statistician, site_a, investigator, django_assert_max_num_queries
):
    synthetic_cohort(site=site_a, count=30, today=timezone.localdate(), investigator=investigator)
    client = client_for(statistician)
    get(client, "cycles", page_size=2)  # warm the session and permission caches
    for size in (2, 200):
        with django_assert_max_num_queries(8):
            response = get(client, "cycles", page_size=size)
        assert response.status_code == 200
    assert len(response.json()["results"]) > 30


def test_rows_carry_iso_dates_numbers_and_codes(client_for, statistician, study_cohort):
    rows = all_rows(client_for(statistician), "lab_results")
    ca19_9 = next(r for r in rows if r["analyte"] == "ca19_9")
    assert ca19_9["value"] == 530.0
    assert ca19_9["unit"] == "U/mL"
    assert FORMS_BY_NAME["lab_results"].column_names == list(ca19_9)
