"""Patient-page panels of the treatments app (registered on import)."""

from django.http import HttpRequest

from treatments import selectors
from trial.panels import Panel, register_patient_panel


def chemotherapy_context(request: HttpRequest, patient) -> dict | None:
    """The "Chemotherapy" card: shown to users who may read cycles, for enrolled patients.

    A fixed number of queries (see `selectors.chemotherapy_overview`).
    """
    if not request.user.has_perm("treatments.view_chemocycle"):
        return None
    if getattr(patient, "enrollment", None) is None:
        return None
    overview = selectors.chemotherapy_overview(patient=patient)
    current = overview.summary.current
    return {
        "overview": overview,
        "current": current,
        "can_view_events": request.user.has_perm("treatments.view_adverseevent"),
    }


register_patient_panel(
    Panel(
        key="treatments",
        order=100,
        template="treatments/partials/_panel.html",
        context=chemotherapy_context,
    )
)
