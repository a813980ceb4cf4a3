"""The protocol calendar on the patient page: the strip with one mark per visit (shape and
colour per status, a <title> each, a legend), the table of open and next visits with their
links, the missed visits with a way to reopen them; and the management command."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories.patients import enrolled_patient
from tests.factories.visits import ExpectedVisitFactory, VisitClosureFactory
from visits import panels, selectors
from visits.models import ExpectedVisit, VisitClosure, VisitKind, VisitStatus

DAY = timedelta(days=1)


@pytest.fixture
def calendar_patient(site_a, coordinator):
    """Enrolled 8 days ago (SCR done, BL and C01 due from the refresh), plus stored visits in
    every other state: C02 overdue, C03 upcoming, E1 missed (with its closure), POD1 not
    applicable."""
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)

    def add(code, kind, number, opens, closes, status, **extra):
        ExpectedVisitFactory(
            patient=patient,
            code=code,
            kind=kind,
            number=number,
            target_on=today + opens * DAY,
            window_start=today + opens * DAY,
            window_end=today + closes * DAY,
            status=status,
            **extra,
        )

    add("C02", VisitKind.CYCLE, 2, -20, -10, VisitStatus.DUE)
    add("C03", VisitKind.CYCLE, 3, 20, 30, VisitStatus.UPCOMING)
    add("E1", VisitKind.EVALUATION, 1, -60, -50, VisitStatus.MISSED)
    add("POD1", VisitKind.POSTOP, 1, -5, -3, VisitStatus.NOT_APPLICABLE)
    closure = VisitClosureFactory(patient=patient, code="E1", reason="Imaging not done")
    return patient, closure


def test_the_patient_page_shows_the_calendar(calendar_patient, client_for, coordinator):
    patient, closure = calendar_patient

    response = client_for(coordinator).get(f"/patients/{patient.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Protocol calendar" in html
    svg = re.search(r'<svg[^>]*id="visit-calendar".*?</svg>', html, re.S).group(0)
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    for expected in (
        "Screening (SCR): done on",
        "Baseline (BL): Due, window",
        "Cycle 2 (C02): overdue by 10 days",
        "Cycle 3 (C03): Upcoming, window",
        "Evaluation 1 (E1): Missed, window",
        "Post-op day 1 labs (POD1): Not applicable, window",
    ):
        assert any(t.startswith(expected) for t in titles), (expected, titles)
    for legend in ("Done", "Due", "Overdue", "Upcoming", "Missed", "Not applicable"):
        assert f">{legend}</text>" in svg
    assert "<circle" in svg  # done / upcoming
    assert "<rect" in svg  # due
    assert "<path" in svg  # missed
    # The table: open visits link to their form and can be closed; E1 can be reopened.
    assert f'href="/patients/{patient.pk}/baseline/"' in html
    assert f'href="/patients/{patient.pk}/treatment/line/new/"' in html  # no line yet
    assert f'href="/visits/patients/{patient.pk}/C02/close/"' in html
    assert f'href="/visits/patients/{patient.pk}/closures/{closure.pk}/reopen/"' in html
    assert "Imaging not done" in html


def test_the_calendar_reads_the_statuses_live(calendar_patient):
    patient, _closure = calendar_patient
    today = timezone.localdate()

    calendar = selectors.patient_calendar(patient=patient, today=today)

    status = {r.code: r.status for r in calendar.rows}
    assert status == {
        "SCR": VisitStatus.DONE,
        "BL": VisitStatus.DUE,
        "C01": VisitStatus.DUE,
        "C02": VisitStatus.OVERDUE,
        "C03": VisitStatus.UPCOMING,
        "E1": VisitStatus.MISSED,
        "POD1": VisitStatus.NOT_APPLICABLE,
    }
    assert [r.code for r in calendar.open] == ["C02", "BL", "C01"]
    assert [r.code for r in calendar.upcoming] == ["C03"]
    assert [r.code for r in calendar.missed] == ["E1"]
    assert calendar.missed[0].visit.closure_reason == "Imaging not done"
    # A month later BL's window has closed: overdue, without a refresh.
    later = selectors.patient_calendar(patient=patient, today=today + 30 * DAY)
    assert {r.code: r.status for r in later.rows}["BL"] == VisitStatus.OVERDUE


def test_there_is_no_strip_without_visits():
    empty = selectors.PatientCalendar(today=timezone.localdate(), rows=[])
    assert panels.calendar_svg(empty) is None


def test_the_panel_is_hidden_without_the_permission(calendar_patient, client_for, site_admin):
    patient, _closure = calendar_patient
    response = client_for(site_admin).get(f"/patients/{patient.pk}/")
    assert response.status_code == 200
    assert "visit-calendar" not in response.content.decode()


def test_a_missed_visit_is_reopened_with_a_reason(calendar_patient, client_for, coordinator):
    patient, _closure = calendar_patient
    client = client_for(coordinator)
    today = timezone.localdate()
    client.post(f"/visits/patients/{patient.pk}/BL/close/", {"reason": "Did not come"})
    closure = VisitClosure.objects.active().get(patient=patient, code="BL")
    assert patient.expected_visits.get(code="BL").status == VisitStatus.MISSED
    url = f"/visits/patients/{patient.pk}/closures/{closure.pk}/reopen/"

    page = client.get(url)
    assert page.status_code == 200
    assert "Did not come" in page.content.decode()

    response = client.post(url, {"version": closure.version, "void_reason": "He came after all"})

    assert response.status_code == 302
    closure.refresh_from_db()
    assert closure.is_voided
    visit = ExpectedVisit.objects.get(patient=patient, code="BL")
    assert selectors.live_status(visit, today=today) == VisitStatus.DUE


def test_reopening_a_closure_of_another_site_is_a_404(calendar_patient, client_for, coordinator_b):
    patient, closure = calendar_patient
    client = client_for(coordinator_b)
    url = f"/visits/patients/{patient.pk}/closures/{closure.pk}/reopen/"
    assert client.post(url, {"version": 1, "void_reason": "x"}).status_code == 404
    closure.refresh_from_db()
    assert not closure.is_voided


def test_the_command_refreshes_and_prints_counts(site_a, coordinator):
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    ExpectedVisit.objects.all().delete()
    out = StringIO()

    call_command("refresh_calendar", "--patients", str(patient.pk), stdout=out)

    assert "Calendar refreshed for 1 patients in" in out.getvalue()
    assert "3 visits created, 0 updated, 0 deleted." in out.getvalue()
    assert set(patient.expected_visits.values_list("code", flat=True)) == {"SCR", "BL", "C01"}
    out = StringIO()
    call_command("refresh_calendar", stdout=out)
    assert "0 visits created, 0 updated, 0 deleted." in out.getvalue()
