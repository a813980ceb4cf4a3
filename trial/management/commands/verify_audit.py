"""`manage.py verify_audit [--model app.Model …]`: check the hash chain of the audit history.

Prints one line per history table (rows checked, and the first broken link with what is wrong)
and exits with status 1 when any table is broken, so cron or a monitoring job can alert.
"""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import audit


class Command(BaseCommand):
    help = (
        "Verify the hash chain of every audit-history table (or of --model app.Model) and the "
        "agreement of each stored record with its latest history row; exit 1 on a broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            action="append",
            default=None,
            metavar="APP.MODEL",
            help="Check only this model's history (repeatable), e.g. patients.Baseline.",
        )

    def handle(self, *args, **options) -> None:
        try:
            models = audit.history_models(options["model"])
        except LookupError as exc:
            raise CommandError(f"No audited model {exc.args[0]!r}.") from exc
        started = time.monotonic()
        broken = 0
        rows = 0
        for model in models:
            report = audit.verify_table(model)
            rows += report.rows_checked
            if report.ok:
                self.stdout.write(
                    f"OK      {report.label}: {report.rows_checked} rows, "
                    f"{report.records_checked} records"
                )
                continue
            broken += 1
            kinds = ", ".join(f"{kind}: {count}" for kind, count in report.problem_kinds.items())
            self.stdout.write(
                self.style.ERROR(
                    f"BROKEN  {report.label}: {report.rows_checked} rows, "
                    f"{report.problems} problem(s) ({kinds})\n"
                    f"        first broken link: {report.first_broken}"
                )
            )
        elapsed = time.monotonic() - started
        summary = f"{len(models)} tables, {rows} history rows checked in {elapsed:.1f} s"
        if broken:
            raise CommandError(
                f"The audit trail is broken in {broken} table(s); {summary}.", returncode=1
            )
        self.stdout.write(self.style.SUCCESS(f"The audit trail verifies: {summary}."))
