"""Patient-page panel of the follow-up app (registered on import)."""

from django.http import HttpRequest

from followup import selectors
from trial.panels import Panel, register_patient_panel


def followup_context(request: HttpRequest, patient) -> dict | None:
    """The "Follow-up" card: vital status, last known alive, end of treatment, recent contacts,
    recurrences, death and loss, with buttons to record each. Shown to users who may read
    follow-up, for enrolled patients. Four queries, six at most (see
    `selectors.followup_summary`), however long the follow-up."""
    user = request.user
    if not user.has_perm("followup.view_followupcontact"):
        return None
    enrollment = getattr(patient, "enrollment", None)
    if enrollment is None or enrollment.is_voided:
        return None
    return {"summary": selectors.followup_summary(patient=patient)}


register_patient_panel(
    Panel(
        key="followup",
        order=600,
        template="followup/partials/_panel.html",
        context=followup_context,
    )
)
