"""Celery tasks of the trial app. Tasks stay thin: they take primary keys and call a service."""

from dataclasses import asdict
from datetime import date

from celery import shared_task
from django.db import connection
from django.utils import timezone

from trial.checks import run_checks


@shared_task(name="trial.tasks.ping_database")
def ping_database() -> str:
    """Check that a Celery worker reaches the database; return its vendor ("postgresql", …).

    Runs `SELECT 1` through Django's default connection, so a round trip through the broker
    proves the whole chain: broker → worker → database → result backend. Takes no arguments,
    writes nothing and is safe to rerun. Raises the driver's `DatabaseError` when the database
    cannot be reached, and `RuntimeError` if it answers with something other than 1.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        raise RuntimeError("The database answered SELECT 1 with %r." % (row,))
    return connection.vendor


@shared_task(name="trial.tasks.run_data_checks", acks_late=True)
def run_data_checks(day: str | None = None) -> dict[str, dict[str, int]]:
    """The daily run of the automatic checks for every patient (`trial.checks.run_checks`):
    system queries are raised for new findings and closed where the data were fixed.

    `day`: an ISO date (YYYY-MM-DD) to judge "30 days after" on; the local date when None.
    Safe to rerun: a finding never gets a second open query. Returns the counts raised,
    closed and kept, by check code.
    """
    today = date.fromisoformat(day) if day else timezone.localdate()
    return {code: asdict(result) for code, result in run_checks(today=today).items()}
