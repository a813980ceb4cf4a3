"""Demo data shared by every app's `demo.py`: sites, one user per role, a seeded RNG.

`python manage.py seed_demo` calls `seed(context)` of each installed app's `demo` module in
INSTALLED_APPS order (discovered through the app registry, so lower apps never import higher
ones). Same seed and same `today`, same data. Demo only: the passwords are public.
"""

import random
from dataclasses import dataclass, field
from datetime import date

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group

from trial.models import Role, Site, SiteMembership, Study

DEMO_PASSWORD = "plm-demo-2026"
DEMO_SITE = {
    "code": "DEMO",
    "name": "Demonstration Hospital (synthetic)",
    "name_zh": "演示医院（虚构）",
}

# username, role, sites ("*" = every site), is_staff
DEMO_USERS = [
    ("coordinator", Role.COORDINATOR, ["CJFH"], False),
    ("coordinator2", Role.COORDINATOR, ["DEMO"], False),
    ("investigator", Role.INVESTIGATOR, ["CJFH"], False),
    ("statistician", Role.STATISTICIAN, ["*"], False),
    ("monitor", Role.MONITOR, ["*"], False),
    ("datamanager", Role.DATA_MANAGER, ["*"], False),
    ("siteadmin", Role.SITE_ADMIN, ["CJFH"], True),
]


@dataclass
class DemoContext:
    rng: random.Random
    today: date
    patients: int
    sites: list[Site]
    users: dict[str, AbstractBaseUser]
    # Filled by the apps as they go, for the apps after them (e.g. enrolled patient ids).
    shared: dict = field(default_factory=dict)

    def user_for(self, site: Site) -> AbstractBaseUser:
        """The demo coordinator who enters data at `site`."""
        return self.users["coordinator" if site.code == "CJFH" else "coordinator2"]


def seed(context: DemoContext) -> None:
    """Sites and users are created by `setup`; nothing else for trial."""


def setup(*, seed_value: int, today: date, patients: int) -> DemoContext:
    """Create the demo site and users (idempotent) and return the context for the apps."""
    study = Study.objects.get(code=settings.STUDY_CODE)
    Site.objects.get_or_create(code=DEMO_SITE["code"], defaults={**DEMO_SITE, "study": study})
    sites = list(Site.objects.filter(code__in=["CJFH", "DEMO"]).order_by("code"))
    by_code = {s.code: s for s in sites}
    User = get_user_model()
    users = {}
    for username, role, site_codes, is_staff in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": username.capitalize(),
                "last_name": "(demo)",
                "is_staff": is_staff,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        user.groups.add(Group.objects.get(name=role))
        for code in by_code if site_codes == ["*"] else site_codes:
            SiteMembership.objects.get_or_create(user=user, site=by_code[code])
        users[username] = user
    return DemoContext(
        rng=random.Random(seed_value),
        today=today,
        patients=patients,
        sites=sites,
        users=users,
    )


def seed_data_management(context: DemoContext) -> None:
    """The monitor's and the investigator's work on the demo cohort, after every app's seed:
    source-verified and signed baselines, a casebook signature that a later correction broke,
    a locked casebook, and queries in each state. The automatic checks' system queries come
    from the checks refresher at the end of the seed."""
    from trial import lifecycle, queries
    from trial.services import clinical_save

    Baseline = apps.get_model("patients", "Baseline")
    monitor, investigator = context.users["monitor"], context.users["investigator"]
    coordinator, datamanager = context.users["coordinator"], context.users["datamanager"]
    baselines = list(
        Baseline.objects.active()
        .filter(patient__site__code="CJFH", status="complete")
        .select_related("patient")
        .order_by("patient__subject_code")[:6]
    )
    if len(baselines) < 6:
        return
    for baseline in baselines[:3]:
        lifecycle.form_verify(baseline, user=monitor, expected_version=baseline.version)
        lifecycle.form_sign(
            baseline, user=investigator, password=DEMO_PASSWORD, expected_version=baseline.version
        )
    # A casebook signed, then a correction of its baseline: the signature visibly lapses.
    signed = baselines[3]
    lifecycle.casebook_sign(signed.patient, user=investigator, password=DEMO_PASSWORD)
    signed.weight_kg = (signed.weight_kg or 60) + 1
    clinical_save(
        signed,
        user=coordinator,
        expected_version=signed.version,
        reason="Weight re-read from the nursing chart",
    )
    lifecycle.casebook_lock(
        baselines[4].patient, user=datamanager, reason="All visits done; awaiting analysis"
    )
    # Queries: one open, one answered, one closed.
    asked = baselines[5]
    queries.query_raise(
        asked, user=monitor, field="ecog", text="ECOG 2 in the CRF, 1 in the clinic letter?"
    )
    answered = queries.query_raise(
        asked, user=monitor, field="weight_kg", text="Weight differs from the nursing chart."
    )
    queries.query_answer(
        answered, user=coordinator, text="Checked: the chart was corrected; CRF value is right."
    )
    closed = queries.query_raise(
        baselines[0], user=monitor, field="", text="Please confirm the baseline date."
    )
    queries.query_answer(closed, user=coordinator, text="Confirmed against the CT report.")
    queries.query_close(closed, user=monitor, text="Thank you.")
