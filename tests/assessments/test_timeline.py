"""The treatment timeline: the selector (lines, cycles numbered across lines, evaluations,
imaging, CA19-9), its fixed query count at 4 and 40 cycles, the SVG charts (well-formed,
accessible, escaped) and the patient-page card."""

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assessments import charts
from assessments.models import LabPanel
from assessments.panels_imaging import timeline_context
from assessments.selectors.imaging import Ca199Point, timeline
from patients.selectors import patient_get
from tests.factories.imaging import (
    ENROLLED_TODAY,
    ImagingStudyFactory,
    ResponseEvaluationFactory,
    cycles_record,
    evaluation_record,
    panel_record,
    study_record,
)
from tests.factories.patients import baselined_patient
from treatments.models import Regimen

D = Decimal
SVG = "{http://www.w3.org/2000/svg}"
FIRST_CYCLE = date(2026, 1, 8)
TODAY = date(2026, 11, 24)


@pytest.fixture
def patient(site_a, coordinator):
    return baselined_patient(
        site=site_a, user=coordinator, today=ENROLLED_TODAY, ca19_9_u_ml=D("845")
    )


@pytest.fixture
def course(patient, coordinator):
    """Line 1 mFOLFIRINOX × 4, PD at the first evaluation, line 2 AG × 2, then an evaluation
    referring the patient to the MDT; CA19-9 at baseline and at both evaluations."""
    cycles_record(patient, coordinator, FIRST_CYCLE, 4)
    study_record(patient, coordinator, date(2026, 1, 5), {"T1": 40, "T2": 30}, baseline=True)
    panel_record(
        patient, coordinator, date(2026, 1, 6), context=LabPanel.Context.BASELINE, ca19_9=900
    )
    first = study_record(
        patient, coordinator, date(2026, 3, 2), {"T1": 45, "T2": 35}, new_lesions=True
    )
    panel = panel_record(patient, coordinator, date(2026, 3, 2), ca19_9=1500)
    evaluation_record(patient, coordinator, date(2026, 3, 3), first, panel=panel, decision="adjust")
    cycles_record(
        patient,
        coordinator,
        date(2026, 3, 9),
        2,
        number=2,
        regimen=Regimen.AG,
        cycle_length=28,
        first_number=1,
    )
    second = study_record(patient, coordinator, date(2026, 4, 30), {"T1": 25, "T2": 20})
    panel = panel_record(patient, coordinator, date(2026, 4, 30), ca19_9=120)
    evaluation_record(
        patient, coordinator, date(2026, 5, 1), second, panel=panel, decision="refer_mdt"
    )
    return patient


def test_the_timeline_gathers_lines_cycles_evaluations_imaging_and_ca19_9(course):
    result = timeline(patient=course, today=TODAY)
    assert result.origin == date(2026, 1, 2)  # enrollment
    first, second = result.lines
    assert (first.number, first.regimen, first.start) == (1, "mFOLFIRINOX", FIRST_CYCLE)
    assert [c.number for c in first.cycles] == [1, 2, 3, 4]
    assert first.end == date(2026, 2, 19) + timedelta(days=14)  # last cycle + cycle length
    # Cycles are counted across lines, as the protocol counts them.
    assert [c.number for c in second.cycles] == [5, 6]
    assert second.end == date(2026, 4, 6) + timedelta(days=28)
    assert [(e.sequence, e.response, e.decision) for e in result.evaluations] == [
        (1, "PD", "adjust"),
        (2, "PR", "refer_mdt"),
    ]
    assert [(i.is_baseline, i.response) for i in result.imaging] == [
        (True, ""),
        (False, "PD"),
        (False, "PR"),
    ]
    assert [(p.on, p.value) for p in result.ca19_9] == [
        (date(2026, 1, 6), D(900)),
        (date(2026, 3, 2), D(1500)),
        (date(2026, 4, 30), D(120)),
    ]
    assert result.ca19_9_baseline == D(900)
    assert (result.best_response, result.first_progression_on) == ("PR", date(2026, 3, 2))
    assert (result.interval_cycles, result.cycle_count) == (2, 6)
    assert (result.start, result.end) == (date(2026, 1, 2), TODAY)


def test_a_line_without_cycles_runs_to_today_and_the_baseline_form_gives_ca19_9(
    patient, coordinator
):
    from tests.factories.imaging import line_record

    line_record(patient, coordinator, date(2026, 1, 8))
    result = timeline(patient=patient, today=TODAY)
    assert (result.lines[0].start, result.lines[0].end, result.lines[0].cycles) == (
        date(2026, 1, 8),
        TODAY,
        [],
    )
    assert result.ca19_9_baseline == D("845.0")
    assert (result.best_response, result.interval_cycles) == (None, 4)


def _many(patient, user, cycles: int, evaluations: int) -> None:
    cycles_record(patient, user, FIRST_CYCLE, cycles)
    ImagingStudyFactory(patient=patient, performed_on=date(2026, 1, 5))
    for index in range(evaluations):
        on = FIRST_CYCLE + timedelta(days=56 * (index + 1))
        study = ImagingStudyFactory(
            patient=patient, performed_on=on, is_baseline=False, response="SD"
        )
        ResponseEvaluationFactory(
            patient=patient, imaging=study, evaluated_on=on, recist_response="SD"
        )
        panel_record(patient, user, on, ca19_9=100 + index)


@pytest.mark.parametrize(("cycles", "evaluations"), [(4, 1), (40, 12)])
def test_the_timeline_has_a_fixed_query_count(
    patient, coordinator, cycles, evaluations, django_assert_num_queries
):
    _many(patient, coordinator, cycles, evaluations)
    loaded = patient_get(patient_id=patient.pk, user=coordinator)
    # Lines, their cycles, evaluations, imaging and CA19-9 results.
    with django_assert_num_queries(5):
        result = timeline(patient=loaded, today=TODAY)
        charts.timeline_svg(result)
    assert result.cycle_count == cycles
    assert len(result.evaluations) == evaluations


def _panel_queries(patient, user) -> int:
    request = RequestFactory().get("/")
    request.user = user
    loaded = patient_get(patient_id=patient.pk, user=user)
    user.has_perm("assessments.view_imagingstudy")  # the page has loaded the permissions
    with CaptureQueriesContext(connection) as captured:
        context = timeline_context(request, loaded)
        str(context["timeline_svg"]) + str(context["ca19_9_svg"])
    return len(captured)


def test_the_panel_is_flat_at_4_and_40_cycles(site_a, coordinator):
    small = baselined_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)
    large = baselined_patient(site=site_a, user=coordinator, today=ENROLLED_TODAY)
    _many(small, coordinator, 4, 1)
    _many(large, coordinator, 40, 12)
    assert _panel_queries(small, coordinator) == _panel_queries(large, coordinator) == 5


def test_the_patient_page_is_flat_at_4_and_40_cycles(client_for, site_a, coordinator):
    today = timezone.localdate()
    client = client_for(coordinator)
    counts = []
    for cycles, evaluations in ((4, 1), (40, 12)):
        patient = baselined_patient(site=site_a, user=coordinator, today=today - timedelta(days=30))
        _many(patient, coordinator, cycles, evaluations)
        url = reverse("patients:patient-detail", args=[patient.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        assert "Treatment timeline" in response.content.decode()
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_the_panel_is_hidden_without_the_permission(rf, site_admin, patient):
    request = rf.get("/")
    request.user = site_admin
    assert timeline_context(request, patient) is None


# --- the SVG --------------------------------------------------------------------------------


def _parse(svg) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def test_the_timeline_svg_is_well_formed_and_readable_without_colour(course):
    result = timeline(patient=course, today=TODAY)
    root = _parse(charts.timeline_svg(result))
    texts = _texts(root)
    assert "Line 1" in texts
    assert "Line 2" in texts
    assert any("mFOLFIRINOX" in t for t in texts)
    assert any("AG (nab-paclitaxel" in t for t in texts)
    # The responses are written, not only coloured, and the legend names them.
    assert "PD" in texts
    assert "PR" in texts
    assert "CR complete response" in texts
    assert "referred to the MDT" in texts
    assert texts.count("MDT") == 2  # the referral and its legend
    tips = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert sum(1 for t in tips if t.startswith("Cycle ")) == 6
    assert any(t.startswith("Evaluation 2,") and "Referred" not in t for t in tips)
    desc = root.find(f"{SVG}desc").text
    assert "E1" in desc
    assert "PD" in desc
    assert "E2" in desc


def test_the_timeline_escapes_a_malicious_regimen_name(patient, coordinator):
    name = '<script>alert("x")</script> & co'
    cycles_record(
        patient,
        coordinator,
        FIRST_CYCLE,
        2,
        regimen=Regimen.OTHER,
        regimen_other=name,
        cycle_length=21,
    )
    svg = str(charts.timeline_svg(timeline(patient=patient, today=TODAY)))
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = _parse(svg)
    assert name in _texts(root)
    assert any(name in "".join(t.itertext()) for t in root.iter(f"{SVG}title"))


def test_the_patient_page_escapes_it_too(client_for, coordinator, site_a):
    today = timezone.localdate()
    patient = baselined_patient(site=site_a, user=coordinator, today=today - timedelta(days=30))
    cycles_record(
        patient,
        coordinator,
        today - timedelta(days=20),
        1,
        regimen=Regimen.OTHER,
        regimen_other="<script>alert(1)</script>",
        cycle_length=21,
    )
    content = client_for(coordinator).get(f"/patients/{patient.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def _ca19_9(values, *, baseline=None, uninformative=False):
    points = [
        Ca199Point(on=date(2026, 1, 6) + timedelta(days=56 * i), value=D(str(v)), context="")
        for i, v in enumerate(values)
    ]
    return charts.ca19_9_svg(
        points,
        baseline=None if baseline is None else D(str(baseline)),
        start=date(2026, 1, 2),
        end=date(2026, 9, 1),
        origin=date(2026, 1, 2),
        uninformative=uninformative,
    )


def test_the_ca19_9_chart_uses_a_log_scale_for_a_wide_range():
    root = _parse(_ca19_9([900, 1500, 120, 40], baseline=900))
    texts = _texts(root)
    assert "CA19-9 (U/mL, log scale)" in texts
    assert "ULN 37 U/mL" in texts
    assert "baseline 900" in texts
    assert "120 (-87%)" in texts  # value and change from the baseline
    assert "2026-03-03" in texts  # the points' dates
    assert len(list(root.iter(f"{SVG}circle"))) == 4


def test_the_ca19_9_chart_is_linear_for_a_narrow_range():
    texts = _texts(_parse(_ca19_9([40, 55, 48], baseline=40)))
    assert "CA19-9 (U/mL, linear scale)" in texts


def test_an_uninformative_ca19_9_gives_no_percentages_and_says_why():
    root = _parse(_ca19_9(["2.1", "3.5"], baseline="1.2", uninformative=True))
    texts = _texts(root)
    assert not any("%" in t for t in texts if t[0].isdigit())
    assert any("uninformative" in t for t in texts)


def test_no_ca19_9_gives_no_chart():
    assert str(_ca19_9([])) == ""


def test_markers_have_a_shape_per_response():
    shapes = {
        code: charts.marker(code, 10, 10).split(" ", 1)[0] for code in charts.RESPONSE_COLOURS
    }
    assert shapes == {
        "CR": "<circle",
        "PR": "<polygon",
        "SD": "<rect",
        "PD": "<polygon",
        "NE": "<polygon",
        "": "<polygon",
    }
    assert charts.marker("PR", 10, 10) != charts.marker("PD", 10, 10)
    assert 'fill="#fff"' in charts.marker("NE", 10, 10)  # hollow
