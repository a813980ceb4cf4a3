"""Patient-page panels of the surgery app (registered on import)."""

from django.http import HttpRequest

from assessments.models import ResponseEvaluation
from surgery import selectors
from trial.panels import Panel, register_patient_panel


def surgery_context(request: HttpRequest, patient) -> dict | None:
    """The "Surgery" card: MDT decisions, the operation and its course. Hidden when nothing
    is recorded and the patient was never referred to the MDT. Six queries at most, however
    long the history (see `selectors.surgery_summary`)."""
    if not request.user.has_perm("surgery.view_operation"):
        return None
    if getattr(patient, "enrollment", None) is None:
        return None
    summary = selectors.surgery_summary(patient=patient)
    referred = False
    if summary.is_empty:
        referred = (
            ResponseEvaluation.objects.active()
            .filter(patient=patient, decision=ResponseEvaluation.Decision.REFER_MDT)
            .exists()
        )
        if not referred:
            return None
    return {"summary": summary, "referred": referred}


register_patient_panel(
    Panel(
        key="surgery", order=400, template="surgery/partials/_panel.html", context=surgery_context
    )
)
