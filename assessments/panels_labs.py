"""Patient-page panels of the lab results (registered on import)."""

from django.http import HttpRequest

from assessments import analytes
from assessments.selectors import labs as selectors
from trial.panels import Panel, register_patient_panel


def latest_labs_context(request: HttpRequest, patient) -> dict | None:
    """The "Latest labs" card: the last panel's flagged or graded values. Two queries (one when
    the patient has no panel); not shown to users who may not see labs, nor for a patient who
    is not enrolled and has no panel."""
    if not request.user.has_perm("assessments.view_labpanel"):
        return None
    enrollment = getattr(patient, "enrollment", None)
    enrolled = enrollment is not None and not enrollment.is_voided
    panel = selectors.lab_panel_latest(patient=patient)
    if panel is None and not enrolled:
        return None
    abnormal = []
    if panel is not None:
        abnormal = [
            {
                "analyte": analyte,
                "cell": cell,
                "unit": analytes.unit_label(analyte.unit),
                "reference": analyte.reference_for(patient.sex).display(),
            }
            for analyte, cell in selectors.abnormal_cells(panel)
        ]
    return {
        "panel": panel,
        "abnormal": abnormal,
        "can_add": enrolled and request.user.has_perm("assessments.add_labpanel"),
    }


register_patient_panel(
    Panel(
        key="labs",
        order=300,
        template="assessments/labs/_latest_card.html",
        context=latest_labs_context,
    )
)
