"""Load a deterministic synthetic cohort and one demo user per role.

    python manage.py seed_demo --patients 60 --seed 2025 [--today 2026-11-24]

Same seed and same --today give the same data. Refuses to add a cohort to a database that
already holds patients unless --force, so `make run` can call it every time.
"""

from datetime import date
from importlib import import_module, util

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from trial import demo, derived


class Command(BaseCommand):
    help = "Load a deterministic synthetic demo cohort and one demo user per role."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=60)
        parser.add_argument("--seed", type=int, default=2025)
        parser.add_argument("--today", type=date.fromisoformat, default=None)
        parser.add_argument(
            "--force",
            action="store_true",
            help="Add patients even if some already exist.",
        )

    def handle(
        self,
        *args,
        patients: int,
        seed: int,
        today: date | None,
        force: bool,
        **options,
    ):
        if patients < 0:
            raise CommandError("--patients must be 0 or more.")
        today = today or timezone.localdate()
        patient_model = apps.get_model("patients", "Patient")
        existing = patient_model.objects.count()
        with transaction.atomic(), derived.refreshes_deferred():
            context = demo.setup(seed_value=seed, today=today, patients=patients)
            if existing and not force:
                self.stdout.write(
                    f"{existing} patients already present: demo cohort left as it is."
                )
                patients = 0
                context.patients = 0
            for config in apps.get_app_configs():
                module_name = f"{config.name}.demo"
                if config.name == "trial" or util.find_spec(module_name) is None:
                    continue
                import_module(module_name).seed(context)
            if patients:
                demo.seed_data_management(context)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo cohort: {patients} new patients (seed {seed}, today {today})."
            )
        )
        self.stdout.write("Demo users (password for all: %s):" % demo.DEMO_PASSWORD)
        for username, role, site_codes, _staff in demo.DEMO_USERS:
            self.stdout.write(
                f"  {username:<13} {role.label:<24} sites: "
                + ", ".join(site_codes).replace("*", "all")
            )
