"""Run the automatic data checks and sync their system queries.

    python manage.py run_checks [--patients 12 15 40] [--today 2026-11-24]

Without --patients, every patient. Safe to rerun: a finding never gets a second open query,
and queries whose data were fixed are closed. Celery beat runs the same daily
(`trial.tasks.run_data_checks`); this command is for deployments without a beat, and after an
upgrade that adds a check.
"""

from datetime import date

from django.core.management.base import BaseCommand

from trial.checks import run_checks


class Command(BaseCommand):
    help = "Run the automatic data checks for every patient (or --patients) and sync queries."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, nargs="+", metavar="ID", default=None)
        parser.add_argument("--today", type=date.fromisoformat, default=None)

    def handle(self, *args, patients: list[int] | None, today: date | None, **options):
        results = run_checks(patients, today=today)
        for code, result in results.items():
            self.stdout.write(
                f"{code}: {result.raised} raised, {result.closed} closed, {result.kept} still open"
            )
        self.stdout.write(self.style.SUCCESS(f"{len(results)} checks run."))
