"""`manage.py import_retrospective FILE`: the retrospective-cohort import from the shell."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exchange.services import import_file
from trial.models import Site


class Command(BaseCommand):
    help = (
        "Import retrospective-cohort patients from a CSV (UTF-8) or XLSX file in the template "
        "of docs/import-template.md, all or nothing. Prints a row-by-row report; exits with "
        "status 1 when the file has errors (nothing is written then)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .csv or .xlsx file")
        parser.add_argument(
            "--site", help="site code of every row (default: the prefix of each subject code)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and run every write, then roll back: nothing is written",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="update patients already imported (history keeps the old values)",
        )
        parser.add_argument(
            "--user", help="username the records are attributed to (default: none, a system job)"
        )
        parser.add_argument(
            "--waiver-reference",
            default="",
            help="ethics-committee reference of the consent waiver, for rows without one",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        site = None
        if options["site"]:
            site = Site.objects.filter(code=options["site"].upper()).first()
            if site is None:
                raise CommandError(f"No site with the code {options['site']}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {options['user']}.")
        result = import_file(
            content=path.read_bytes(),
            file_name=path.name,
            user=user,
            site=site,
            dry_run=options["dry_run"],
            update=options["update"],
            waiver_reference=options["waiver_reference"],
        )
        for issue in result.issues:
            row = issue.row if issue.row is not None else "file"
            self.stdout.write(f"row {row}\t{issue.column or '-'}\t{issue.value!r}\t{issue.message}")
        run = result.run
        summary = (
            f"{run.file_name}: {result.rows} rows, {len(result.issues)} errors; "
            f"{run.get_status_display()}"
        )
        if result.ok:
            would = "would be " if run.dry_run else ""
            summary += (
                f"; patients {would}created: {result.created}, {would}updated: {result.updated}"
            )
        summary += f" ({run.seconds:.1f} s, run #{run.pk})."
        if not result.ok:
            self.stderr.write(summary)
            raise CommandError(
                "Nothing was imported: fix the rows above and run again.", returncode=1
            )
        self.stdout.write(self.style.SUCCESS(summary))
