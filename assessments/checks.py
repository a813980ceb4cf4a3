"""Automatic check of the assessments app (registered in AssessmentsConfig.ready()): a lab
panel sampled after the patient's date of death. The death date is recorded after the panels,
so the form's own date check cannot catch it; the query asks the site to correct one of them.
"""

from collections.abc import Collection, Iterator
from datetime import date

from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assessments.models import LabPanel
from trial.checks import Check, Finding, register_check
from trial.validation import fmt

CODE = "lab_after_death"


def labs_after_death(patient_ids: Collection[int] | None, today: date) -> Iterator[Finding]:
    """Active lab panels dated after their patient's death. One query."""
    panels = LabPanel.objects.active().filter(
        patient__died_on__isnull=False, sampled_on__gt=F("patient__died_on")
    )
    if patient_ids is not None:
        panels = panels.filter(patient_id__in=list(patient_ids))
    for panel in panels.select_related("patient").order_by("pk"):
        yield Finding(
            record=panel,
            field="sampled_on",
            text=_(
                "The sample date (%(sampled)s) is after the patient's death (%(died)s): "
                "correct the sample date or the date of death."
            )
            % {"sampled": fmt(panel.sampled_on), "died": fmt(panel.patient.died_on)},
        )


register_check(Check(CODE, gettext_lazy("Lab panel dated after the death"), labs_after_death))
