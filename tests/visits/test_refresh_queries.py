"""calendar_refresh reads the records of 500 patients with the same queries as those of 50
(one per source table per batch of 500), and writes in batches of many rows, never a query
per patient. Runs on SQLite and PostgreSQL (the `postgres` copy fails loudly in CI if the
database is not PostgreSQL)."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories.trial import UserFactory
from tests.factories.visits import synthetic_cohort
from trial.models import Role
from visits import services
from visits.models import ExpectedVisit

TODAY = date(2026, 11, 24)
ROWS_PER_WRITE = 50  # SQLite's 999-parameter limit still allows ~80 rows per INSERT


def _measure(patient_ids: list[int], today: date) -> tuple[int, int, services.RefreshStats]:
    """(SELECTs, writes, stats) of one refresh of `patient_ids`."""
    with CaptureQueriesContext(connection) as captured:
        stats = services.calendar_refresh(patient_ids=patient_ids, today=today)
    sql = [q["sql"].lstrip().upper() for q in captured.captured_queries]
    selects = sum(1 for s in sql if s.startswith("SELECT"))
    writes = sum(1 for s in sql if s.startswith(("INSERT", "UPDATE", "DELETE")))
    return selects, writes, stats


def _check_queries_do_not_grow_with_patients(site) -> None:
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
    small = synthetic_cohort(site=site, count=50, today=TODAY, investigator=investigator)
    large = synthetic_cohort(site=site, count=500, today=TODAY, investigator=investigator)

    small_selects, small_writes, small_stats = _measure(small, TODAY)
    large_selects, large_writes, large_stats = _measure(large, TODAY)

    assert large_stats.patients == 500
    assert large_stats.created > 5 * large_stats.patients  # a realistic calendar each
    assert small_selects == large_selects
    assert large_writes <= large_stats.created / ROWS_PER_WRITE + 1
    assert small_writes <= small_stats.created / ROWS_PER_WRITE + 1
    assert ExpectedVisit.objects.filter(patient_id__in=large).count() == large_stats.created

    # Nothing changed: the same reads, no write.
    selects, writes, stats = _measure(large, TODAY)
    assert (selects, writes) == (large_selects, 0)
    assert (stats.created, stats.updated, stats.deleted) == (0, 0, 0)

    # A month later: statuses and follow-up visits change, still batched.
    selects, writes, stats = _measure(large, TODAY + timedelta(days=30))
    assert selects == large_selects
    assert stats.updated + stats.created > 0
    assert writes <= (stats.created + stats.updated) / ROWS_PER_WRITE + 2


def test_refresh_queries_do_not_grow_with_the_number_of_patients(site_a):
    _check_queries_do_not_grow_with_patients(site_a)


@pytest.mark.postgres
def test_refresh_queries_do_not_grow_with_the_number_of_patients_on_postgresql(site_a):
    _check_queries_do_not_grow_with_patients(site_a)
