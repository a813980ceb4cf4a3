"""The reminder task (visits.tasks.send_daily_reminders): retried on mail failures, run by a
real Celery worker on Redis, scheduled by beat; and the web app keeps saving forms when the
broker is down.

The calendar refresh the task runs first is replaced by a recorder here (the rows are made
directly); tests/visits/test_reminders.py goes from real records to a reminder.
"""

import os
import uuid
from datetime import timedelta
from smtplib import SMTPException

import kombu.exceptions
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from celery.signals import task_postrun
from django.conf import settings
from django.core import mail
from django.db import connections
from django.utils import timezone

from config.celery import app
from patients.models import Baseline
from tests.factories.forms import baseline_post
from tests.factories.patients import enrolled_patient
from tests.visits.reminder_fixtures import (
    TODAY,
    FlakyEmailBackend,
    coordinator_at,
    forget_celery_connections,
    patient_at,
    stored_visit,
)
from trial.tasks import ping_database
from visits.models import Reminder
from visits.tasks import send_daily_reminders


class _Refreshed:
    patients = 0


@pytest.fixture
def refresh_calls(monkeypatch):
    """Record the task's calendar refresh instead of running it (the rows are hand-made)."""
    calls = []

    def record(**kwargs):
        calls.append(kwargs)
        return _Refreshed()

    monkeypatch.setattr("visits.services.calendar_refresh", record)
    return calls


@pytest.fixture
def overdue_at_site_a(site_a):
    coordinator = coordinator_at("coord_mail_a", site_a)
    stored_visit(patient_at(site_a, subject_code="SITEA-0005"), closes=-2)
    return coordinator


@pytest.fixture
def flaky_mail(settings):
    """A mail server that refuses the first messages; the task run eagerly as a worker would
    run it: a failure is the task's result, not an exception in the caller, so the retries
    happen (an eager run that propagates raises the first Retry instead)."""
    settings.EMAIL_BACKEND = "tests.visits.reminder_fixtures.FlakyEmailBackend"
    settings.CELERY_TASK_EAGER_PROPAGATES = False  # the app reads the Django settings live
    assert app.conf.task_eager_propagates is False
    return FlakyEmailBackend


# --- the task, eagerly ----------------------------------------------------------------------


def test_the_task_refreshes_the_calendar_then_sends(db, refresh_calls, overdue_at_site_a):
    result = send_daily_reminders.apply(args=[TODAY.isoformat()])
    assert result.successful()
    assert refresh_calls == [{"today": TODAY}]
    assert result.get()["reminders_sent"] == 1
    assert result.get()["day"] == "2026-11-24"
    assert [m.to for m in mail.outbox] == [[overdue_at_site_a.email]]


def test_a_mail_failure_is_retried_and_the_mail_sent_once(
    db, refresh_calls, overdue_at_site_a, flaky_mail
):
    flaky_mail.reset(failures=1)
    result = send_daily_reminders.apply(args=[TODAY.isoformat()])
    assert result.successful()
    assert flaky_mail.attempts == 2  # failed once, then sent by the retry
    assert len(mail.outbox) == 1
    assert len(refresh_calls) == 2  # the retry is a whole run, on the records as they are then
    row = Reminder.objects.get()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert row.sent_at is not None


def test_the_task_gives_up_after_five_retries_with_the_rows_failed(
    db, refresh_calls, overdue_at_site_a, flaky_mail
):
    flaky_mail.reset(failures=100)
    result = send_daily_reminders.apply(args=[TODAY.isoformat()])
    assert result.failed()
    assert isinstance(result.result, SMTPException)
    assert flaky_mail.attempts == 6  # the run and 5 retries
    row = Reminder.objects.get()
    assert (row.status, row.attempts) == ("failed", 6)
    assert "421" in row.last_error
    assert mail.outbox == []


def test_the_task_is_retried_on_mail_errors_with_a_backoff():
    assert set(send_daily_reminders.autoretry_for) == {SMTPException, OSError, ConnectionError}
    assert send_daily_reminders.max_retries == 5
    assert send_daily_reminders.acks_late is True
    assert send_daily_reminders.retry_backoff == 60
    assert send_daily_reminders.retry_jitter is False


def test_beat_runs_the_reminders_daily_at_the_reminder_hour():
    entry = app.conf.beat_schedule["send-daily-reminders"]
    assert entry["task"] == send_daily_reminders.name == "visits.tasks.send_daily_reminders"
    assert entry["schedule"] == crontab(hour=settings.REMINDER_HOUR, minute=0)
    assert app.conf.timezone == settings.TIME_ZONE == "Asia/Shanghai"


# --- a real worker on Redis -----------------------------------------------------------------


def _close_worker_connections(**kwargs) -> None:
    # The worker thread's database connection must not outlive the test (PostgreSQL would
    # keep the test database busy).
    connections.close_all()


@pytest.fixture
def redis_worker():
    """A solo-pool worker thread on the real Redis broker, on a queue of its own; in this
    process, so it has the test settings (test database, locmem mail)."""
    url = settings.REDIS_URL or os.environ["REDIS_URL"]
    queue = f"plm-edc-test-{uuid.uuid4().hex[:12]}"
    changes = {
        "broker_url": url,
        "result_backend": url,
        "task_always_eager": False,
        "task_default_queue": queue,
        "worker_hijack_root_logger": False,
    }
    saved = {key: app.conf.get(key) for key in changes}
    forget_celery_connections()
    app.conf.update(changes)
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            hostname=f"{queue}@localhost",
            perform_ping_check=False,
            shutdown_timeout=20,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(_close_worker_connections)
        forget_celery_connections()
        app.conf.update(saved)
        redis.Redis.from_url(url).delete(queue, f"_kombu.binding.{queue}")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_reminders(refresh_calls, site_a, redis_worker):
    coordinator = coordinator_at("coord_mail_a", site_a)
    stored_visit(patient_at(site_a, subject_code="SITEA-0005"), closes=-2)

    result = send_daily_reminders.delay(TODAY.isoformat())
    stats = result.get(timeout=30)

    assert result.successful()
    assert (stats["mails_sent"], stats["reminders_sent"]) == (1, 1)
    assert refresh_calls == [{"today": TODAY}]
    [message] = mail.outbox  # locmem: the worker thread shares this process's outbox
    assert message.to == [coordinator.email]
    assert "SITEA-0005" in message.body
    row = Reminder.objects.get()
    assert (row.status, row.attempts) == ("sent", 1)

    # Sent again (a second beat, a manual rerun): nothing new goes out.
    again = send_daily_reminders.delay(TODAY.isoformat()).get(timeout=30)
    assert again["mails_sent"] == 0
    assert len(mail.outbox) == 1


# --- the web app without its broker ---------------------------------------------------------


@pytest.fixture
def dead_broker(settings):
    """Redis configured but not running: the broker URL points at a port nothing listens on,
    tasks are not eager (the Celery app reads these Django settings live)."""
    url = "redis://127.0.0.1:6390/0"
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.CELERY_RESULT_BACKEND = None
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # Fail at once instead of retrying the connection for ~6 s (kombu's default).
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
    forget_celery_connections()
    assert app.conf.broker_url == url
    assert app.conf.task_always_eager is False
    yield url
    forget_celery_connections()


def test_forms_are_saved_and_health_says_why_when_redis_is_down(
    client_for, coordinator, site_a, dead_broker
):
    # The broker really is unreachable: anything that enqueued a task would fail.
    with pytest.raises(kombu.exceptions.OperationalError):
        ping_database.apply_async(retry=False)

    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    client = client_for(coordinator)
    response = client.post(
        f"/patients/{patient.pk}/baseline/", baseline_post(on=today - timedelta(days=7))
    )
    assert response.status_code == 302
    assert Baseline.objects.filter(patient=patient).exists()

    health = client.get("/health/")
    assert health.status_code == 503
    assert health.json() == {"database": True, "redis": False}
