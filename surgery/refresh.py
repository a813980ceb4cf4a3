"""Keeps ChemoCycle.adjuvant derived: a cycle given after the index operation is adjuvant
(registered with trial.derived in SurgeryConfig.ready; runs on cycle and operation changes)."""

from django.utils.translation import gettext_noop

from surgery.models import Operation
from treatments.models import ChemoCycle
from trial.derived import Refresher, register_refresher
from trial.services import clinical_save

ADJUVANT_DERIVED = gettext_noop("Adjuvant flag derived: given after the operation (or not)")
SOURCES = ("treatments.cycle", "surgery.operation")


def adjuvant_refresh(*, patient, user) -> int:
    """Set `adjuvant` = given after the operation on the patient's active cycles; saves only
    the cycles that change and returns how many did."""
    operation = Operation.objects.active().filter(patient=patient).first()
    changed = 0
    for cycle in ChemoCycle.objects.active().filter(patient=patient):
        wanted = operation is not None and cycle.given_on > operation.operated_on
        if cycle.adjuvant != wanted:
            cycle.adjuvant = wanted
            clinical_save(cycle, user=user, reason=ADJUVANT_DERIVED)
            changed += 1
    return changed


def _refresh(*, patient, user, source: str) -> None:
    if source in SOURCES:
        adjuvant_refresh(patient=patient, user=user)


register_refresher(Refresher(key="surgery", order=200, refresh=_refresh))
