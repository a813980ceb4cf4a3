"""Write the access matrix (docs/access-matrix.md) from trial/access.py and trial/roles.py.

    python manage.py access_matrix            # (re)write the file
    python manage.py access_matrix --check    # fail when the file is out of date (CI)

The file is generated so the documentation of who may do what cannot drift from the rules
the middleware enforces.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trial.access import matrix_markdown


def default_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "access-matrix.md"


class Command(BaseCommand):
    help = "Write docs/access-matrix.md from the access rules, or --check that it is current."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit with an error when the file differs from the rules.",
        )
        parser.add_argument(
            "--output", type=Path, default=None, help="The file (default docs/access-matrix.md)."
        )

    def handle(self, *args, check: bool, output: Path | None, **options):
        path = output or default_path()
        text = matrix_markdown()
        if check:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                raise CommandError(
                    f"{path} is out of date with trial/access.py: run "
                    "`python manage.py access_matrix` and commit the result."
                )
            self.stdout.write(self.style.SUCCESS(f"{path} is up to date."))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"Wrote {path}."))
