"""The demo biobank: nothing without operations; with them, specimens stored in free
positions, aliquots, a withdrawn consent with its worklist, deterministic for a seed."""

import random
from datetime import date

from django.db import transaction

from biobank import demo, selectors
from biobank.models import Specimen
from tests.factories.biobank import operated_patient
from trial.demo import DemoContext

TODAY = date(2026, 11, 24)


def _context(site, user, seed=7) -> DemoContext:
    return DemoContext(
        rng=random.Random(seed),
        today=TODAY,
        patients=0,
        sites=[site],
        users={"coordinator": user, "coordinator2": user},
    )


def test_without_operations_the_demo_does_nothing(site_a, coordinator):
    demo.seed(_context(site_a, coordinator))
    assert not Specimen.objects.exists()


def _dump() -> list[tuple]:
    return list(
        Specimen.objects.order_by("code").values_list(
            "code", "weight_mg", "state", "box__name", "row", "column", "flagged_for_destruction"
        )
    )


def test_the_demo_biobank(site_a, coordinator):
    for _ in range(3):
        operated_patient(site=site_a, user=coordinator, today=TODAY, operated_days_ago=40)
    runs = []
    for _ in range(2):
        with transaction.atomic():
            demo.seed(_context(site_a, coordinator))
            runs.append(_dump())
            specimens = Specimen.objects.active()
            assert specimens.filter(kind="tumour").count() >= 3
            assert specimens.filter(kind="discarded", weight_mg__gte=400).count() == 3
            assert specimens.filter(parent__isnull=False).exists()
            assert specimens.filter(state="destroyed", flagged_for_destruction=True).count() == 1
            worklist = selectors.destruction_worklist(user=coordinator)
            assert worklist
            assert all(s.state != "destroyed" for s in worklist)
            stored = specimens.filter(state="stored")
            assert stored.count() == len(set(stored.values_list("box", "row", "column")))
            transaction.set_rollback(True)
    assert runs[0] == runs[1]
