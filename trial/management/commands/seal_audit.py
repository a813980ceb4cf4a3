"""`manage.py seal_audit`: give a hash to the history rows written before the hash chain.

Run it once after upgrading an existing database, or after the first `migrate` of a new one
(with `--populate-missing`, for the rows data migrations inserted without history), before
users come in, then `verify_audit`. Afterwards a row without a hash is itself evidence: a row
without a hash that follows a sealed row of the same record is reported and left alone unless
`--include-gaps` (check `verify_audit` first and find out why it has none).
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import audit


class Command(BaseCommand):
    help = "Fill the hash of audit-history rows that have none, in order (existing databases)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            action="append",
            default=None,
            metavar="APP.MODEL",
            help="Seal only this model's history (repeatable).",
        )
        parser.add_argument(
            "--include-gaps",
            action="store_true",
            help="Also seal rows without a hash that follow a sealed row of the same record.",
        )
        parser.add_argument(
            "--populate-missing",
            action="store_true",
            help=(
                "Also start the history of stored records that have none (rows inserted by "
                "data migrations, e.g. the study): a sealed initial row saying so."
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be sealed; write nothing."
        )

    def handle(self, *args, **options) -> None:
        try:
            models = audit.history_models(options["model"])
        except LookupError as exc:
            raise CommandError(f"No audited model {exc.args[0]!r}.") from exc
        totals = {"sealed": 0, "relinked": 0, "gaps_left": 0, "invalid_left": 0, "populated": 0}
        for model in models:
            report = audit.seal_table(
                model, include_gaps=options["include_gaps"], dry_run=options["dry_run"]
            )
            if options["populate_missing"]:
                report.populated = audit.populate_missing(model, dry_run=options["dry_run"])
            for name in totals:
                totals[name] += getattr(report, name)
            if any(getattr(report, name) for name in totals):
                self.stdout.write(
                    f"{report.label}: sealed {report.sealed}, re-linked {report.relinked}, "
                    f"left without hash {report.gaps_left}, invalid left {report.invalid_left}, "
                    f"history started {report.populated}"
                )
        verb = "would seal" if options["dry_run"] else "sealed"
        self.stdout.write(
            f"{len(models)} tables: {verb} {totals['sealed']} rows, re-linked "
            f"{totals['relinked']}, started the history of {totals['populated']} records; "
            f"left {totals['gaps_left']} gap rows and "
            f"{totals['invalid_left']} invalid rows for verify_audit to report."
        )
