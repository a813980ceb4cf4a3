"""The Celery app. Without REDIS_URL tasks run inline (see settings); beat schedules live here."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("plm_edc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _beat_schedule(sender: Celery, **kwargs) -> None:
    """The periodic tasks, read from the settings once Celery has loaded them (not at import).

    The reminder digests go out daily at REMINDER_HOUR:00 in the app's timezone (CELERY_TIMEZONE
    = TIME_ZONE, Asia/Shanghai by default). Run exactly one beat per deployment.
    """
    from django.conf import settings

    sender.conf.beat_schedule = {
        "send-daily-reminders": {
            "task": "visits.tasks.send_daily_reminders",
            "schedule": crontab(hour=settings.REMINDER_HOUR, minute=0),
        },
        # The automatic data checks (trial/checks.py) for every patient: time-based rules (an
        # operation without pathology after 30 days, a visit overdue 30 days) raise and close
        # their queries even when nobody saves anything.
        "run-data-checks": {
            "task": "trial.tasks.run_data_checks",
            "schedule": crontab(hour=2, minute=0),
        },
    }
