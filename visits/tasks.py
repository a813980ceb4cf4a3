"""Celery tasks of the visits app: the daily reminder run (scheduled in config/celery.py).

Thin: the work is `visits.reminders.reminders_daily`, which `manage.py send_reminders` runs
inline where there is no Redis.
"""

import logging
from datetime import date
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from visits import reminders

logger = logging.getLogger("visits.reminders")


@shared_task(
    bind=True,
    name="visits.tasks.send_daily_reminders",
    autoretry_for=(SMTPException, OSError, ConnectionError),
    # 60 s, 120 s, 240 s … up to 30 min: a mail server that is down for a while is retried
    # for about an hour before the run gives up (the next day's run catches up).
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=False,
    max_retries=5,
    acks_late=True,
)
def send_daily_reminders(self, day: str | None = None) -> dict:
    """Refresh the calendar, then send the day's reminder digests (`reminders_daily`).

    `day`: an ISO date (YYYY-MM-DD) to run as; the local date when None. Safe to rerun: a
    reminder is sent once per visit, reason, recipient and day. Mail failures (SMTPException,
    OSError, ConnectionError) are retried with an exponential backoff, up to 5 times; each
    retry sends only the digests that failed. Returns the counts (`SendStats.as_dict()`).
    """
    today = date.fromisoformat(day) if day else timezone.localdate()
    logger.info("Reminder run for %s (attempt %d).", today.isoformat(), self.request.retries + 1)
    stats = reminders.reminders_daily(today=today)
    logger.info(
        "Reminder run for %s done: %d reminders sent in %d e-mails, %d cancelled, "
        "calendar refreshed for %s patients.",
        today.isoformat(),
        stats.reminders_sent,
        stats.mails_sent,
        stats.cancelled,
        stats.refreshed_patients,
    )
    return stats.as_dict()
