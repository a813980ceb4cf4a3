"""Keeps the assessments' derived values current when chemotherapy or enrollment changes:
`after_cycle`, flags and CTCAE grades of the lab panels, and the evaluations' cycle counts,
sequence and interval (registered with trial.derived in AssessmentsConfig.ready)."""

from django.utils.translation import gettext_noop

from assessments.models import LabPanel, ResponseEvaluation
from assessments.services.imaging import evaluations_refresh
from assessments.services.labs import CYCLE_CONTEXTS, lab_panels_regrade
from treatments.models import ChemoCycle
from trial.derived import Refresher, register_refresher
from trial.services import clinical_save

AFTER_CYCLE_RECOMPUTED = gettext_noop("After-cycle recomputed: the chemotherapy cycles changed")


def _after_cycles(patient, user) -> None:
    """Re-derive `after_cycle` of the patient's assessment and on-treatment panels."""
    dates = sorted(
        ChemoCycle.objects.active().filter(patient=patient).values_list("given_on", flat=True)
    )
    panels = LabPanel.objects.active().filter(patient=patient, context__in=CYCLE_CONTEXTS)
    for panel in panels:
        cycles = sum(1 for given_on in dates if given_on <= panel.sampled_on)
        if panel.after_cycle != cycles:
            panel.after_cycle = cycles
            clinical_save(panel, user=user, reason=AFTER_CYCLE_RECOMPUTED)


def _refresh(*, patient, user, source: str) -> None:
    if source != "treatments.cycle":
        return  # only the cycles feed these values (not a line's edit): the rest is wasted work
    if LabPanel.objects.active().filter(patient=patient).exists():
        _after_cycles(patient, user)
        lab_panels_regrade(patient=patient, user=user)
    if ResponseEvaluation.objects.active().filter(patient=patient).exists():
        evaluations_refresh(patient=patient, user=user)


register_refresher(Refresher(key="assessments", order=100, refresh=_refresh))
