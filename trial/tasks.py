"""Celery tasks of the trial app. Tasks stay thin: they take primary keys and call a service."""

from celery import shared_task
from django.db import connection


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
