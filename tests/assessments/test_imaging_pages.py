"""The imaging and evaluation pages through the test client: a baseline and a follow-up study,
an evaluation, a stale edit, voiding, field-level errors; site scoping (404) and roles (403)
over every URL; flat query counts.

The views take today from the clock, so dates here are relative to timezone.localdate().
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assessments.models import ImagingStudy, ResponseEvaluation, TargetLesion
from tests.factories.imaging import (
    ImagingStudyFactory,
    ResponseEvaluationFactory,
    TargetLesionFactory,
    cycles_record,
    panel_record,
)
from tests.factories.patients import baselined_patient
from trial.models import FormStatus

D = Decimal


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    """Enrolled 128 days ago; four mFOLFIRINOX cycles from 120 days ago."""
    patient = baselined_patient(
        site=site_a, user=coordinator, today=today - timedelta(days=120), ca19_9_u_ml=D("845")
    )
    cycles_record(patient, coordinator, today - timedelta(days=120), 4)
    return patient


def _url(name: str, patient, *args) -> str:
    return reverse(f"assessments:{name}", args=[patient.pk, *args])


def _study_post(on, rows, *, baseline=False, button="save_complete", **fields) -> dict:
    data = {
        "performed_on": on.isoformat(),
        "modality": "CT",
        "non_target": "present",
        "radiologist_response": "",
        "notes": "",
        button: "1",
    }
    if baseline:
        data["is_baseline"] = "on"
    for index, (label, organ, diameter) in enumerate(rows, start=1):
        data[f"lesion_{index}_label"] = label
        data[f"lesion_{index}_organ"] = organ
        data[f"lesion_{index}_diameter"] = "" if diameter is None else str(diameter)
    data.update(fields)
    return data


def _version_in(content: bytes) -> int:
    match = re.search(rb'name="version" value="(\d+)"', content)
    assert match, "the form carries no version"
    return int(match.group(1))


def test_imaging_and_evaluation_journey(client_for, coordinator, patient, today):
    client = client_for(coordinator)

    # The baseline: the form offers a baseline with labels T1… ready.
    page = client.get(_url("imaging-new", patient))
    assert page.status_code == 200
    assert page.context["form"].initial["is_baseline"] is True
    baseline_on = today - timedelta(days=125)
    response = client.post(
        _url("imaging-new", patient),
        _study_post(
            baseline_on,
            [("T1", "liver", "40"), ("t2", "pancreas", "32"), ("T3", "", "")],
            baseline=True,
        ),
    )
    assert response.status_code == 302, response.context and response.context["form"].errors
    assert response.url == _url("imaging-list", patient)
    baseline = ImagingStudy.objects.get(patient=patient)
    assert (baseline.is_baseline, baseline.sum_mm, baseline.status) == (True, D(72), "complete")
    assert list(baseline.lesions.values_list("label", "organ")) == [
        ("T1", "liver"),
        ("T2", "pancreas"),
    ]

    # A follow-up: the grid is prefilled with the baseline's labels and organs.
    page = client.get(_url("imaging-new", patient))
    form = page.context["form"]
    assert form.initial["is_baseline"] is False
    assert (form.initial["lesion_1_label"], form.initial["lesion_1_organ"]) == ("T1", "liver")
    assert (form.initial["lesion_2_label"], form.initial["lesion_2_organ"]) == ("T2", "pancreas")
    assert form.initial["lesion_2_diameter"] is None
    follow_up_on = today - timedelta(days=70)
    response = client.post(
        _url("imaging-new", patient),
        _study_post(
            follow_up_on,
            [("T1", "liver", "20"), ("T2", "pancreas", "20")],
            radiologist_response="SD",
        ),
    )
    assert response.status_code == 302
    follow_up = ImagingStudy.objects.get(patient=patient, is_baseline=False)
    assert (follow_up.sum_mm, follow_up.change_from_baseline_pct, follow_up.response) == (
        D(40),
        D("-44.4"),
        "PR",
    )

    # The imaging page: responses, the radiologist's disagreement, best response, lesion table.
    page = client.get(_url("imaging-list", patient))
    content = page.content.decode()
    assert page.status_code == 200
    assert page.context["history"].best_response == "PR"
    assert "disagrees" in content
    assert "-44.4%" in content
    assert "Target lesions across studies" in content

    # An evaluation: the imaging choices are the follow-up studies only.
    page = client.get(_url("evaluation-new", patient))
    choices = list(page.context["form"].fields["imaging"].queryset)
    assert choices == [follow_up]
    panel = panel_record(patient, coordinator, follow_up_on, ca19_9="210")
    response = client.post(
        _url("evaluation-new", patient),
        {
            "evaluated_on": (follow_up_on + timedelta(days=1)).isoformat(),
            "imaging": str(follow_up.pk),
            "lab_panel": str(panel.pk),
            "decision": "continue",
            "notes": "",
            "save_complete": "1",
        },
    )
    assert response.status_code == 302
    evaluation = ResponseEvaluation.objects.get(patient=patient)
    assert (evaluation.cycles_completed, evaluation.recist_response) == (4, "PR")
    assert (evaluation.ca19_9_change_pct, evaluation.interval_cycles) == (D("-75.1"), 4)
    page = client.get(_url("evaluation-list", patient))
    content = page.content.decode()
    assert "E1" in content
    assert "-75.1%" in content
    assert "Outside the protocol window" not in content
    page = client.get(_url("evaluation-edit", patient, evaluation.pk))
    assert "Derived values" in page.content.decode()

    # The patient page carries the timeline card with both charts.
    page = client.get(reverse("patients:patient-detail", args=[patient.pk]))
    content = page.content.decode()
    assert "Treatment timeline" in content
    assert content.count("<svg") >= 2

    # The follow-up cannot be voided while the evaluation rests on it; the evaluation can.
    response = client.post(
        _url("imaging-void", patient, follow_up.pk), {"version": "1", "void_reason": "Oops"}
    )
    assert response.status_code == 200
    assert "rests on this study" in response.content.decode()
    response = client.post(
        _url("evaluation-void", patient, evaluation.pk),
        {"version": str(evaluation.version), "void_reason": "Entered for the wrong date"},
    )
    assert response.status_code == 302
    follow_up.refresh_from_db()
    response = client.post(
        _url("imaging-void", patient, follow_up.pk),
        {"version": str(follow_up.version), "void_reason": "Wrong series"},
    )
    assert response.status_code == 302
    follow_up.refresh_from_db()
    assert follow_up.is_voided
    assert "Wrong series" in client.get(_url("imaging-list", patient)).content.decode()


def test_a_baseline_beyond_the_recist_limits_shows_the_errors_and_saves_nothing(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    response = client.post(
        _url("imaging-new", patient),
        _study_post(
            today - timedelta(days=125),
            [
                ("T1", "liver", "40"),
                ("T2", "liver", "30"),
                ("T3", "liver", "20"),
                ("N1", "lymph_node", "12"),
            ],
            baseline=True,
        ),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert any("at most 2 target lesions per organ" in e for e in form.lesion_errors)
    assert any(e.startswith("N1: a lymph node") for e in form.lesion_errors)
    content = response.content.decode()
    assert "T1, T2, T3: RECIST 1.1 allows at most 2 target lesions per organ" in content
    assert not ImagingStudy.objects.exists()
    assert not TargetLesion.objects.exists()


def test_grid_rows_get_field_level_errors(client_for, coordinator, patient, today):
    client = client_for(coordinator)
    response = client.post(
        _url("imaging-new", patient),
        _study_post(
            today - timedelta(days=125),
            [("T1", "liver", ""), ("T1", "pancreas", "30"), ("", "liver", "20")],
            baseline=True,
        ),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["lesion_1_diameter"] == ["Give the diameter of T1."]
    assert errors["lesion_3_label"] == ["Give the lesion a label, e.g. T1."]
    assert not ImagingStudy.objects.exists()


def test_an_evaluation_without_imaging_is_refused_on_the_imaging_field(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    response = client.post(
        _url("evaluation-new", patient),
        {
            "evaluated_on": (today - timedelta(days=60)).isoformat(),
            "imaging": "",
            "lab_panel": "",
            "decision": "continue",
            "save_complete": "1",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["imaging"] == [
        "Link the imaging study this evaluation rests on: an evaluation without its imaging "
        "cannot be saved."
    ]
    assert not ResponseEvaluation.objects.exists()


def test_a_stale_edit_shows_the_conflict_and_keeps_the_input(
    client_for, coordinator, investigator, patient, today
):
    client = client_for(coordinator)
    on = today - timedelta(days=125)
    rows = [("T1", "liver", "40"), ("T2", "pancreas", "32")]
    client.post(_url("imaging-new", patient), _study_post(on, rows, baseline=True))
    study = ImagingStudy.objects.get(patient=patient)
    page = client.get(_url("imaging-edit", patient, study.pk))
    assert _version_in(page.content) == 1

    # The investigator corrects it in between.
    other = client_for(investigator)
    edit = _study_post(on, [("T1", "liver", "41"), ("T2", "pancreas", "32")], baseline=True)
    response = other.post(
        _url("imaging-edit", patient, study.pk), {**edit, "version": "1", "change_reason": "R1"}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.version, study.sum_mm) == (2, D(73))

    client = client_for(coordinator)
    mine = _study_post(on, [("T1", "liver", "39"), ("T2", "pancreas", "32")], baseline=True)
    response = client.post(
        _url("imaging-edit", patient, study.pk), {**mine, "version": "1", "change_reason": "R2"}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "This record was changed by" in content
    assert _version_in(response.content) == 2  # saving again applies the edit deliberately
    assert 'value="39"' in content or 'value="39.0"' in content
    assert TargetLesion.objects.get(study=study, label="T1").diameter_mm == D(41)


def test_a_lesion_only_edit_of_a_complete_study_needs_a_reason(
    client_for, coordinator, patient, today
):
    client = client_for(coordinator)
    on = today - timedelta(days=125)
    client.post(
        _url("imaging-new", patient),
        _study_post(on, [("T1", "liver", "40"), ("T2", "pancreas", "32")], baseline=True),
    )
    study = ImagingStudy.objects.get(patient=patient)
    # The organs swap the lesions' diameters: the sum stays 72 mm, the study still changes.
    edit = _study_post(on, [("T1", "liver", "32"), ("T2", "pancreas", "40")], baseline=True)
    response = client.post(_url("imaging-edit", patient, study.pk), {**edit, "version": "1"})
    assert response.status_code == 200
    assert response.context["form"].errors["change_reason"] == [
        "This form is complete: give a reason for the change."
    ]
    response = client.post(
        _url("imaging-edit", patient, study.pk),
        {**edit, "version": "1", "change_reason": "Labels swapped"},
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.version, study.sum_mm) == (2, D(72))


# --- scoping and roles ----------------------------------------------------------------------


@pytest.fixture
def records(patient, coordinator):
    baseline = ImagingStudyFactory(patient=patient, is_baseline=True)
    follow_up = ImagingStudyFactory(
        patient=patient, is_baseline=False, performed_on=baseline.performed_on + timedelta(60)
    )
    evaluation = ResponseEvaluationFactory(
        patient=patient,
        imaging=follow_up,
        evaluated_on=follow_up.performed_on + timedelta(days=1),
    )
    return {"study": baseline, "evaluation": evaluation}


def _urls(patient, records) -> list[tuple[str, str]]:
    study, evaluation = records["study"].pk, records["evaluation"].pk
    return [
        ("view", _url("imaging-list", patient)),
        ("write", _url("imaging-new", patient)),
        ("write", _url("imaging-edit", patient, study)),
        ("write", _url("imaging-void", patient, study)),
        ("view", _url("evaluation-list", patient)),
        ("write", _url("evaluation-new", patient)),
        ("write", _url("evaluation-edit", patient, evaluation)),
        ("write", _url("evaluation-void", patient, evaluation)),
    ]


def test_every_url_is_a_404_for_another_sites_coordinator(
    client_for, coordinator_b, patient, records
):
    client = client_for(coordinator_b)
    for _kind, url in _urls(patient, records):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code in (404, 405), url


def test_read_only_roles_see_the_lists_and_get_403_on_entry(
    client_for, statistician, monitor, site_admin, patient, records
):
    for user in (statistician, monitor):
        client = client_for(user)
        for kind, url in _urls(patient, records):
            expected = 200 if kind == "view" else 403
            assert client.get(url).status_code == expected, (user, url)
            if kind == "write":
                assert client.post(url, {}).status_code == 403, (user, url)
    client = client_for(site_admin)
    for _kind, url in _urls(patient, records):
        assert client.get(url).status_code == 403, url


def test_another_patients_record_is_a_404(client_for, coordinator, site_a, patient, records, today):
    other = baselined_patient(site=site_a, user=coordinator, today=today - timedelta(days=30))
    client = client_for(coordinator)
    study, evaluation = records["study"].pk, records["evaluation"].pk
    assert client.get(_url("imaging-edit", other, study)).status_code == 404
    assert client.get(_url("imaging-void", other, study)).status_code == 404
    assert client.get(_url("evaluation-edit", other, evaluation)).status_code == 404
    assert client.get(_url("evaluation-void", other, evaluation)).status_code == 404


def test_the_pages_need_a_login(client, patient, records):
    for _kind, url in _urls(patient, records):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response.url


# --- query counts ---------------------------------------------------------------------------


def _history(patient, studies: int, *, start) -> None:
    """A baseline and `studies` follow-ups with three lesions each, and an evaluation each
    (plain rows: the page only reads them)."""
    baseline = ImagingStudyFactory(patient=patient, performed_on=start, sum_mm=D(90))
    for label in ("T1", "T2", "T3"):
        TargetLesionFactory(study=baseline, label=label, diameter_mm=D(30))
    for index in range(1, studies + 1):
        on = start + timedelta(days=28 * index)
        study = ImagingStudyFactory(
            patient=patient,
            performed_on=on,
            is_baseline=False,
            response="SD",
            radiologist_response="PR" if index % 3 == 0 else "SD",
            sum_mm=D(80),
        )
        for label in ("T1", "T2", "T3"):
            TargetLesionFactory(study=study, label=label, diameter_mm=D(26))
        ResponseEvaluationFactory(
            patient=patient,
            imaging=study,
            evaluated_on=on + timedelta(days=1),
            sequence=index,
            recist_response="SD",
            cycles_completed=4 * index,
            status=FormStatus.COMPLETE,
        )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


# Measured: 10 queries for the imaging page and 9 for the evaluation page (session, user,
# permissions, site ids, the patient, the page's own reads), the same for 2 and 30 studies.
IMAGING_PAGE_MAX_QUERIES = 11
EVALUATION_PAGE_MAX_QUERIES = 10


@pytest.mark.parametrize("studies", [2, 30])
def test_the_list_pages_have_a_fixed_query_count(
    client_for, coordinator, patient, today, studies, django_assert_max_num_queries
):
    _history(patient, studies, start=today - timedelta(days=125 + 28 * studies))
    client = client_for(coordinator)
    client.get(_url("imaging-list", patient))  # warm the session
    with django_assert_max_num_queries(IMAGING_PAGE_MAX_QUERIES):
        response = client.get(_url("imaging-list", patient))
    assert len(response.context["history"].studies) == studies + 1
    with django_assert_max_num_queries(EVALUATION_PAGE_MAX_QUERIES):
        response = client.get(_url("evaluation-list", patient))
    assert len(response.context["rows"]) == studies


def test_list_page_queries_do_not_grow_with_the_history(client_for, coordinator, site_a, today):
    def make(count: int):
        patient = baselined_patient(site=site_a, user=coordinator, today=today - timedelta(days=30))
        _history(patient, count, start=today - timedelta(days=1000))
        return patient

    client = client_for(coordinator)
    small, large = make(2), make(30)
    for name in ("imaging-list", "evaluation-list"):
        client.get(_url(name, small))
        assert _queries(client, _url(name, small)) == _queries(client, _url(name, large)), name
