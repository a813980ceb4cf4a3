"""Patient-page panel of the biobank (registered on import)."""

from django.http import HttpRequest

from biobank import selectors
from trial.panels import Panel, register_patient_panel


def specimens_context(request: HttpRequest, patient) -> dict | None:
    """The "Biobank" card: the patient's specimens counted by type and custody status, and a
    warning when some await destruction. One query; not shown to users who may not see
    specimens, nor for a patient without specimens who is not enrolled."""
    if not request.user.has_perm("biobank.view_specimen"):
        return None
    summary = selectors.patient_specimen_summary(patient=patient)
    enrollment = getattr(patient, "enrollment", None)
    enrolled = enrollment is not None and not enrollment.is_voided
    if not summary.total and not enrolled:
        return None
    return {
        "summary": summary,
        "can_add": enrolled and request.user.has_perm("biobank.add_specimen"),
    }


register_patient_panel(
    Panel(
        key="biobank",
        order=500,
        template="biobank/partials/_patient_panel.html",
        context=specimens_context,
    )
)
