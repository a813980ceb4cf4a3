"""The worklist: each coordinator sees the due and overdue visits of their own sites only,
filtered and sorted as asked, each row one click from its form, in a fixed number of
queries; closing a visit of another site is a 404."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import Patient
from tests.factories.patients import PatientFactory, enrolled_patient
from tests.factories.treatments import RegimenLineFactory
from tests.factories.visits import ExpectedVisitFactory
from visits import selectors
from visits.models import VisitClosure, VisitKind, VisitStatus

DAY = timedelta(days=1)
TODAY = date(2026, 11, 24)


def _visit(patient, code, kind, number, *, today, opens, closes, status=VisitStatus.DUE, **extra):
    """A stored visit whose window runs from today+`opens` to today+`closes` days."""
    return ExpectedVisitFactory(
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


@pytest.fixture
def two_sites(site_a, site_b):
    """Visits around `today` at two sites, returned as {name: visit} with the patients."""

    def build(today):
        a1 = PatientFactory(site=site_a, subject_code="SITEA-0001", status=Patient.Status.ENROLLED)
        a2 = PatientFactory(site=site_a, subject_code="SITEA-0002", status=Patient.Status.ENROLLED)
        b1 = PatientFactory(site=site_b, subject_code="SITEB-0001", status=Patient.Status.ENROLLED)
        visits = {
            "a1_cycle": _visit(a1, "C03", VisitKind.CYCLE, 3, today=today, opens=-3, closes=7),
            "a1_eval": _visit(
                a1,
                "E1",
                VisitKind.EVALUATION,
                1,
                today=today,
                opens=-20,
                closes=-5,
                status=VisitStatus.DUE,  # stored while it was due: read as overdue now
            ),
            "a2_postop": _visit(a2, "POD3", VisitKind.POSTOP, 3, today=today, opens=-1, closes=1),
            "a2_followup": _visit(
                a2, "FU002", VisitKind.FOLLOWUP, 2, today=today, opens=10, closes=24
            ),
            "a2_done": _visit(
                a2,
                "C02",
                VisitKind.CYCLE,
                2,
                today=today,
                opens=-2,
                closes=5,
                status=VisitStatus.DONE,
                done_on=today,
            ),
            "a2_missed": _visit(
                a2,
                "C01",
                VisitKind.CYCLE,
                1,
                today=today,
                opens=-40,
                closes=-30,
                status=VisitStatus.MISSED,
            ),
            "b1_cycle": _visit(b1, "C05", VisitKind.CYCLE, 5, today=today, opens=-1, closes=6),
        }
        return (a1, a2, b1), visits

    return build


def _codes(work) -> list[tuple[str, str]]:
    return [(v.patient.subject_code, v.code) for v in work.visits]


def test_each_coordinator_sees_only_the_due_and_overdue_visits_of_their_sites(
    two_sites, coordinator, coordinator_b, statistician
):
    two_sites(TODAY)

    work = selectors.worklist(user=coordinator, today=TODAY)
    assert _codes(work) == [
        ("SITEA-0001", "E1"),  # ordered by the end of the window: the most urgent first
        ("SITEA-0002", "POD3"),
        ("SITEA-0001", "C03"),
    ]
    assert (work.due, work.overdue) == (2, 1)
    rows = {r.code: r for r in work.rows()}
    assert rows["E1"].status == VisitStatus.OVERDUE
    assert rows["E1"].days_overdue == 5
    assert rows["C03"].status == VisitStatus.DUE
    assert rows["C03"].days_overdue == 0
    assert rows["POD3"].label == "Post-op day 3 labs"

    assert _codes(selectors.worklist(user=coordinator_b, today=TODAY)) == [("SITEB-0001", "C05")]
    assert len(_codes(selectors.worklist(user=statistician, today=TODAY))) == 4


def test_the_worklist_filters_by_kind_status_and_site(two_sites, coordinator, site_b, site_a):
    two_sites(TODAY)

    def codes(**filters):
        return [v.code for v in selectors.worklist(user=coordinator, today=TODAY, **filters).visits]

    assert codes(kind=VisitKind.POSTOP) == ["POD3"]
    assert codes(status=VisitStatus.OVERDUE) == ["E1"]
    assert codes(status=VisitStatus.DUE) == ["POD3", "C03"]
    assert codes(site=site_a.pk) == ["E1", "POD3", "C03"]
    assert codes(site=site_b.pk) == []  # not one of the coordinator's sites
    work = selectors.worklist(user=coordinator, today=TODAY, status=VisitStatus.DUE)
    assert (work.due, work.overdue) == (2, 1)  # the counts ignore the status filter
    # Two days later the post-op window (±1 day) has closed.
    later = selectors.worklist(user=coordinator, today=TODAY + 2 * DAY, status=VisitStatus.OVERDUE)
    assert [v.code for v in later.visits] == ["E1", "POD3"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("target", ["E1", "C03", "POD3"]),
        ("-target", ["POD3", "C03", "E1"]),
        ("patient", ["E1", "C03", "POD3"]),
        ("-patient", ["POD3", "C03", "E1"]),
        ("kind", ["C03", "E1", "POD3"]),
        ("window_end", ["E1", "POD3", "C03"]),
        ("nonsense", ["E1", "POD3", "C03"]),
    ],
)
def test_the_worklist_sorts_by_the_column_asked(two_sites, coordinator, order, expected):
    two_sites(TODAY)
    work = selectors.worklist(user=coordinator, today=TODAY, order=order)
    assert [v.code for v in work.visits] == expected


# --- the page -------------------------------------------------------------------------------


def test_the_page_lists_the_visits_with_a_link_to_each_form(two_sites, client_for, coordinator):
    today = timezone.localdate()
    (a1, a2, b1), _visits = two_sites(today)
    line = RegimenLineFactory(patient=a1)

    response = client_for(coordinator).get("/visits/worklist/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/visits/worklist/"' in html  # the top navigation
    assert "SITEA-0001" in html
    assert "SITEA-0002" in html
    assert "SITEB-0001" not in html
    assert "2 due" in html
    assert "1 overdue" in html
    assert f'href="/patients/{a1.pk}/treatment/line/{line.pk}/cycle/new/"' in html
    assert f'href="/patients/{a1.pk}/evaluations/new/"' in html
    assert f'href="/patients/{a2.pk}/surgery/postop-labs/day/3/new/"' in html
    assert f"/visits/patients/{a1.pk}/C03/close/?next=" in html


def test_the_page_filters_with_htmx_and_sorts_by_query_string(two_sites, client_for, coordinator):
    today = timezone.localdate()
    two_sites(today)
    client = client_for(coordinator)

    partial = client.get("/visits/worklist/?kind=postop", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    html = partial.content.decode()
    assert "<html" not in html
    assert "POD3" in html
    assert "C03" not in html

    page = client.get("/visits/worklist/?order=-target")
    assert [r.code for r in page.context["rows"]] == ["POD3", "C03", "E1"]
    assert 'aria-sort="descending"' in page.content.decode()
    # The target column sorted descending: its link sorts ascending again.
    assert page.context["sort"]["target"]["url"] == "?order=target"


def test_the_empty_worklist_says_so(client_for, coordinator):
    response = client_for(coordinator).get("/visits/worklist/")
    assert response.status_code == 200
    assert "Nothing is due or overdue today" in response.content.decode()


def test_the_worklist_needs_the_permission(client_for, site_admin):
    assert client_for(site_admin).get("/visits/worklist/").status_code == 403


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_worklist_query_count_does_not_grow_with_the_visits(site_a, client_for, coordinator):
    today = timezone.localdate()
    client = client_for(coordinator)

    def add(count: int, start: int) -> None:
        for index in range(start, start + count):
            patient = PatientFactory(site=site_a, status=Patient.Status.ENROLLED)
            RegimenLineFactory(patient=patient)
            kind = (VisitKind.CYCLE, VisitKind.FOLLOWUP, VisitKind.POSTOP)[index % 3]
            opens = -(index % 9) - 1
            _visit(patient, f"X{index}", kind, 1, today=today, opens=opens, closes=index % 5 - 2)

    add(3, 0)
    small = _queries(client, "/visits/worklist/")
    add(40, 3)
    large = _queries(client, "/visits/worklist/")
    assert large == small
    assert large <= 12


# --- closing as missed ----------------------------------------------------------------------


def test_a_coordinator_closes_a_visit_of_their_site_as_missed(site_a, client_for, coordinator):
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)  # BL is due
    client = client_for(coordinator)
    url = f"/visits/patients/{patient.pk}/BL/close/?next=/visits/worklist/"

    page = client.get(url)
    assert page.status_code == 200
    assert "Close Baseline (BL) as missed" in page.content.decode()

    empty = client.post(url, {"reason": ""})
    assert empty.status_code == 200
    assert empty.context["form"].errors == {"reason": ["This field is required."]}

    response = client.post(url, {"reason": "Baseline work-up done at another hospital"})
    assert response.status_code == 302
    assert response["Location"] == "/visits/worklist/"
    closure = VisitClosure.objects.get(patient=patient, code="BL")
    assert closure.created_by == coordinator
    assert patient.expected_visits.get(code="BL").status == VisitStatus.MISSED

    done = client.post(f"/visits/patients/{patient.pk}/SCR/close/", {"reason": "x"})
    assert done.status_code == 200
    assert "Screening (SCR) was done on" in done.content.decode()


def test_closing_a_visit_of_another_site_is_a_404(two_sites, client_for, coordinator):
    today = timezone.localdate()
    (_a1, _a2, b1), _visits = two_sites(today)
    client = client_for(coordinator)
    url = f"/visits/patients/{b1.pk}/C05/close/"

    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "Not my patient"}).status_code == 404
    assert not VisitClosure.objects.exists()


def test_closing_refuses_an_unsafe_next_url(site_a, client_for, coordinator):
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    response = client_for(coordinator).post(
        f"/visits/patients/{patient.pk}/BL/close/",
        {"reason": "Away", "next": "https://example.org/phish"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/"
