"""Recompute the materialized protocol calendar.

    python manage.py refresh_calendar [--patients 12 15 40] [--today 2026-11-24]

Without --patients, every enrolled patient (and any patient that still has stored visits).
Safe to rerun: only the difference is written. Run it after an upgrade that changes
visits/protocol.py; the daily reminder run refreshes the calendar itself first.
"""

import time
from datetime import date

from django.core.management.base import BaseCommand

from visits.services import calendar_refresh


class Command(BaseCommand):
    help = "Recompute the expected visits of every enrolled patient (or of --patients)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, nargs="+", metavar="ID", default=None)
        parser.add_argument("--today", type=date.fromisoformat, default=None)

    def handle(self, *args, patients: list[int] | None, today: date | None, **options):
        started = time.perf_counter()
        stats = calendar_refresh(patient_ids=patients, today=today)
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Calendar refreshed for {stats.patients} patients in {seconds:.1f} s: "
                f"{stats.created} visits created, {stats.updated} updated, "
                f"{stats.deleted} deleted."
            )
        )
