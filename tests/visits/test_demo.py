"""The demo calendar: after every other app's demo, each enrolled patient has a calendar
computed on the demo's "today", visits overdue by more than 8 weeks were closed as missed (the
worklist keeps what a coordinator still chases), and the same seed gives the same calendar."""

from datetime import date
from importlib import import_module, util

import pytest
from django.apps import apps
from django.conf import settings
from django.db import transaction

from patients.models import Enrollment
from tests.factories.trial import SiteFactory, StudyFactory
from trial import demo as trial_demo
from trial.roles import sync_role_groups
from visits import demo as visits_demo
from visits.models import ExpectedVisit, VisitClosure, VisitStatus
from visits.services import calendar_refresh

TODAY = date(2026, 11, 24)


def _seed(patients: int, seed: int) -> dict:
    with transaction.atomic():
        study = StudyFactory(code=settings.STUDY_CODE)
        SiteFactory(code="CJFH", study=study, name="China-Japan Friendship Hospital")
        sync_role_groups()
        context = trial_demo.setup(seed_value=seed, today=TODAY, patients=patients)
        for config in apps.get_app_configs():
            name = f"{config.name}.demo"
            if config.name in ("trial", "visits") or util.find_spec(name) is None:
                continue
            import_module(name).seed(context)
        visits_demo.seed(context)
        code = "patient__subject_code"
        snapshot = {
            "visits": sorted(
                ExpectedVisit.objects.values_list(code, "code", "status", "target_on", "done_on")
            ),
            "closures": sorted(VisitClosure.objects.values_list(code, "code", "reason")),
            "enrolled": set(Enrollment.objects.active().values_list(code, flat=True)),
            "stale": ExpectedVisit.objects.filter(
                status=VisitStatus.OVERDUE,
                window_end__lt=TODAY - visits_demo.MISSED_AFTER,
            ).count(),
            "again": calendar_refresh(today=TODAY),
        }
        transaction.set_rollback(True)
    return snapshot


@pytest.mark.django_db
def test_the_demo_calendar_is_deterministic_and_current():
    first = _seed(6, 2025)
    again = _seed(6, 2025)

    assert {k: v for k, v in first.items() if k != "again"} == {
        k: v for k, v in again.items() if k != "again"
    }
    assert {row[0] for row in first["visits"]} == first["enrolled"]
    assert first["stale"] == 0
    assert all(reason in visits_demo.REASONS for _p, _c, reason in first["closures"])
    missed = {(p, c) for p, c, status, *_rest in first["visits"] if status == VisitStatus.MISSED}
    assert missed == {(p, c) for p, c, _reason in first["closures"]}
    # The stored calendar is the one the records give on the demo's today.
    stats = first["again"]
    assert (stats.created, stats.updated, stats.deleted) == (0, 0, 0)
    assert any(status == VisitStatus.DONE for _p, _c, status, *_rest in first["visits"])
    assert all(
        on <= TODAY for _p, _c, status, _t, on in first["visits"] if status == VisitStatus.DONE
    )
