"""Builders for the reminder tests: stored calendar rows made directly (independent of the
calendar's refresh rules), staff with e-mail addresses, a mail backend that fails on demand,
and the Celery app pointed at a real Redis broker for a worker thread."""

import threading
from datetime import date, timedelta
from smtplib import SMTPException

import kombu.pools
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from config.celery import app
from patients.models import Patient
from tests.factories.patients import PatientFactory
from tests.factories.trial import UserFactory
from trial.models import Role
from visits.models import ExpectedVisit, VisitKind, VisitStatus

TODAY = date(2026, 11, 24)
DAY = timedelta(days=1)


def patient_at(site, **fields) -> Patient:
    return PatientFactory(site=site, status=Patient.Status.ENROLLED, **fields)


def stored_visit(
    patient: Patient,
    *,
    code: str = "C03",
    kind: str = VisitKind.CYCLE,
    number: int | None = 3,
    opens: int | None = None,
    closes: int = 7,
    status: str | None = None,
    today: date = TODAY,
) -> ExpectedVisit:
    """A calendar row whose window runs from today + `opens` to today + `closes` days, with the
    status a refresh on `today` would have stored (or `status`). The window opens 10 days
    before it closes unless `opens` says otherwise."""
    opens = closes - 10 if opens is None else opens
    window_start, window_end = today + opens * DAY, today + closes * DAY
    if status is None:
        if today < window_start:
            status = VisitStatus.UPCOMING
        elif today <= window_end:
            status = VisitStatus.DUE
        else:
            status = VisitStatus.OVERDUE
    return ExpectedVisit.objects.create(
        patient=patient,
        site=patient.site,
        code=code,
        kind=kind,
        number=number,
        target_on=min(max(today, window_start), window_end),
        window_start=window_start,
        window_end=window_end,
        forms="treatments.chemocycle",
        status=status,
        done_on=today if status == VisitStatus.DONE else None,
    )


def staff(username: str, role: str, *sites, email: str | None = None, **extra):
    """A user in `role` at `sites`, with an e-mail address unless `email=""`."""
    return UserFactory(
        username=username,
        roles=[role],
        sites=list(sites),
        email=f"{username}@hospital.example" if email is None else email,
        **extra,
    )


def coordinator_at(username: str, *sites, **extra):
    return staff(username, Role.COORDINATOR, *sites, **extra)


def investigator_at(username: str, *sites, **extra):
    return staff(username, Role.INVESTIGATOR, *sites, **extra)


class FlakyEmailBackend(BaseEmailBackend):
    """Like the locmem backend (messages land in mail.outbox), but the first `failures`
    messages raise SMTPException, as a mail server that is briefly down would."""

    failures = 0
    attempts = 0
    lock = threading.Lock()

    @classmethod
    def reset(cls, *, failures: int) -> None:
        cls.failures, cls.attempts = failures, 0

    def send_messages(self, messages):
        sent = 0
        for message in messages:
            with self.lock:
                type(self).attempts += 1
                if type(self).failures > 0:
                    type(self).failures -= 1
                    raise SMTPException("421 Service not available, closing channel")
            message.message()  # renders it, as a real backend would
            mail.outbox.append(message)
            sent += 1
        return sent


def forget_celery_connections() -> None:
    """Drop the broker pool, routing and result backend Celery built from its previous
    configuration, so a config change takes effect (as tests/config/test_celery.py does)."""
    backend = app._backend
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
    kombu.pools.reset()
    app._pool = None
    app.__dict__.pop("amqp", None)
    app._backend_cache = None
    app._local = threading.local()
