"""The patient page (with its Chemotherapy card), the treatment page and the adverse-event list
run a fixed number of SQL queries, whether the patient had 4 cycles or 40."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.selectors import patient_get
from tests.factories.patients import baselined_patient
from tests.factories.treatments import (
    AdverseEventFactory,
    ChemoCycleFactory,
    CycleDoseFactory,
    RegimenLineFactory,
)
from treatments import regimens
from treatments.panels import chemotherapy_context

DAY = timedelta(days=1)
# Measured on SQLite and PostgreSQL at 4 and at 40 cycles: the treatment page 11 (session, user,
# two permission reads, site ids, patient, consents, then lines, cycles and doses, the user's
# groups), the adverse-event list 9, and the Chemotherapy card 4 (lines, cycles, doses, adverse
# events). One query of slack; a query per cycle or per dose would add dozens at 40 cycles. The
# whole patient page also holds other apps' panels: it is checked to be flat, not counted.
TREATMENT_PAGE_MAX = 12
AE_LIST_MAX = 10
PANEL_QUERIES = 4


def _history(patient, cycles: int) -> None:
    """`cycles` cycles of mFOLFIRINOX over two lines with all their doses, and an adverse event
    every other cycle (factories: test data, not the services)."""
    start = timezone.localdate() - (14 * cycles + 30) * DAY
    first = RegimenLineFactory(
        patient=patient, regimen="AG", cycle_length_days=28, started_on=start - 30 * DAY
    )
    line = RegimenLineFactory(
        patient=patient,
        line_number=2,
        regimen="mFOLFIRINOX",
        cycle_length_days=14,
        started_on=start,
        change_reason="progression",
    )
    spec = regimens.regimen_spec("mFOLFIRINOX")
    for number in range(1, cycles + 1):
        cycle = ChemoCycleFactory(
            line=line,
            cycle_number=number,
            given_on=start + 14 * (number - 1) * DAY,
            bsa_m2=Decimal("1.74"),
            gcsf=number % 3 == 0,
        )
        for standard in spec.doses:
            CycleDoseFactory(
                cycle=cycle,
                drug=standard.drug,
                planned_mg_m2=standard.mg_m2,
                given_mg=regimens.dose_for_bsa(standard.mg_m2, Decimal("1.74")),
                planned_days=1,
                given_days=1,
            )
        if number % 2:
            AdverseEventFactory(
                patient=patient,
                line=line,
                grade=3 if number % 4 == 1 else 2,
                onset_on=cycle.given_on + 3 * DAY,
                resolved_on=None,
                outcome="recovering",
            )
    assert first.pk


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.fixture
def patients(site_a, coordinator):
    today = timezone.localdate()
    small = baselined_patient(site=site_a, user=coordinator, today=today - 700 * DAY)
    large = baselined_patient(site=site_a, user=coordinator, today=today - 700 * DAY)
    _history(small, 4)
    _history(large, 40)
    return small, large


@pytest.mark.parametrize(
    ("page", "limit"),
    [("", None), ("treatment/", TREATMENT_PAGE_MAX), ("adverse-events/", AE_LIST_MAX)],
)
def test_query_counts_are_flat(client_for, coordinator, patients, page, limit):
    small, large = patients
    client = client_for(coordinator)
    client.get(f"/patients/{small.pk}/")  # warm the session and permission caches alike
    counts = [_count(client, f"/patients/{p.pk}/{page}") for p in (small, large)]
    assert counts[0] == counts[1], counts
    if limit is not None:
        assert counts[1] <= limit, counts


def test_the_chemotherapy_card_uses_four_queries(
    rf, coordinator, patients, django_assert_num_queries
):
    request = rf.get("/")
    request.user = coordinator
    coordinator.has_perm("treatments.view_chemocycle")  # the permission cache, as on the page
    for patient in patients:
        patient = patient_get(patient_id=patient.pk, user=coordinator)
        with django_assert_num_queries(PANEL_QUERIES):
            context = chemotherapy_context(request, patient)
        assert context["overview"].summary.cycle_count in (4, 40)


def test_the_pages_show_the_whole_history(
    client_for, coordinator, patients, django_assert_max_num_queries
):
    _small, large = patients
    client = client_for(coordinator)
    with django_assert_max_num_queries(TREATMENT_PAGE_MAX):
        page = client.get(f"/patients/{large.pk}/treatment/").content.decode()
    assert "C40" in page
    assert page.count("oxaliplatin") >= 40
    card = client.get(f"/patients/{large.pk}/").content.decode()
    assert "Line 2 · mFOLFIRINOX (modified)" in card
    assert "40" in card
