"""Demo data shared by every app's `demo.py`: sites, one user per role, a seeded RNG.

`python manage.py seed_demo` calls `seed(context)` of each installed app's `demo` module in
INSTALLED_APPS order (discovered through the app registry, so lower apps never import higher
ones). Same seed and same `today`, same data. Demo only: the passwords are public.
"""

import random
from dataclasses import dataclass, field
from datetime import date

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
