"""The Celery app and trial.tasks.ping_database, inline and through a real worker on Redis."""

import os
import threading
import uuid

import celery.contrib.testing.tasks  # noqa: F401 - registers celery.ping for the ping check
import kombu.pools
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, connections

from config.celery import app
from tests.config import child_environment, run_django
from trial.tasks import ping_database


def test_the_app_reads_the_celery_settings():
    assert app.main == "plm_edc"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.timezone == settings.TIME_ZONE
    # pytest-django runs this (no database) after the worker test: its changes were undone.
    assert app.conf.task_always_eager is True
    assert app.conf.broker_url == settings.CELERY_BROKER_URL


def test_a_worker_discovers_ping_database_by_its_name():
    # A worker imports each app's tasks module through autodiscovery, not through this test.
    code = (
        "import django; django.setup(); from config.celery import app;"
        "app.loader.import_default_modules(); print(sorted(n for n in app.tasks if 'trial' in n))"
    )
    result = run_django(["-c", code], child_environment("config.settings.local"))
    assert result.returncode == 0, result.stderr
    assert "'trial.tasks.ping_database'" in result.stdout
    assert ping_database.name == "trial.tasks.ping_database"


def test_ping_database_returns_the_vendor(db):
    assert ping_database() == connection.vendor


def test_ping_database_runs_inline_when_tasks_are_eager(db):
    # The test settings (like local ones without REDIS_URL) run tasks in-process.
    assert app.conf.task_always_eager is True
    assert ping_database.delay().get(timeout=5) == connection.vendor


def _forget_connections() -> None:
    """Drop the broker pool, routing and result backend built from the previous config.

    Celery caches these on first use; without this, a config change would keep talking to
    the old broker (private attributes, as Celery's own fork handler resets them).
    """
    backend = app._backend
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
    kombu.pools.reset()  # closes and forgets the process-wide connection/producer pools
    app._pool = None
    app.__dict__.pop("amqp", None)
    app._backend_cache = None
    app._local = threading.local()


def _close_worker_connections(**kwargs) -> None:
    # Runs in the worker thread after each task: its database connection must not outlive
    # the test (PostgreSQL would keep the test database busy).
    connections.close_all()


@pytest.fixture
def redis_worker():
    """A solo-pool worker thread on the real Redis broker, on a queue of its own."""
    url = settings.REDIS_URL or os.environ["REDIS_URL"]
    queue = f"plm-edc-test-{uuid.uuid4().hex[:12]}"
    changes = {
        "broker_url": url,
        "result_backend": url,
        "task_always_eager": False,
        "task_default_queue": queue,  # a developer's own worker on this Redis never sees it
        "worker_hijack_root_logger": False,  # leave pytest's log capture alone
    }
    saved = {key: app.conf.get(key) for key in changes}
    _forget_connections()
    app.conf.update(changes)
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            hostname=f"{queue}@localhost",
            perform_ping_check=True,
            shutdown_timeout=20,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(_close_worker_connections)
        _forget_connections()
        app.conf.update(saved)
        # The transport's queue and its binding set would otherwise stay in Redis for good.
        redis.Redis.from_url(url).delete(queue, f"_kombu.binding.{queue}")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_ping_database_round_trips_through_a_real_worker(redis_worker):
    result = ping_database.delay()
    assert result.get(timeout=20) == connection.vendor
    assert result.successful()
    assert redis_worker.hostname.startswith("plm-edc-test-")
