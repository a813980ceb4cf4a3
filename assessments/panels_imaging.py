"""Patient-page panels of imaging, evaluations and the treatment timeline (registered on import)."""

from django.http import HttpRequest

from assessments import charts
from assessments.selectors import imaging as selectors
from trial.panels import Panel, register_patient_panel


def timeline_context(request: HttpRequest, patient) -> dict | None:
    """The "Treatment timeline" card: regimen lines, cycles, imaging and evaluations on one
    axis, the CA19-9 trend below it, the best response, the first progression and the
    current evaluation interval. Shown to users who may read imaging, for enrolled patients.
    Five queries whatever the number of cycles, studies, evaluations or lab results."""
    if not request.user.has_perm("assessments.view_imagingstudy"):
        return None
    enrollment = getattr(patient, "enrollment", None)
    if enrollment is None or enrollment.is_voided:
        return None
    timeline = selectors.timeline(patient=patient)
    ca19_9 = charts.ca19_9_svg(
        timeline.ca19_9,
        baseline=timeline.ca19_9_baseline,
        start=timeline.start,
        end=timeline.end,
        origin=timeline.origin,
        uninformative=timeline.ca19_9_uninformative,
        today=timeline.today,
    )
    return {
        "timeline": timeline,
        "timeline_svg": charts.timeline_svg(timeline),
        "ca19_9_svg": ca19_9,
        "can_view_evaluations": request.user.has_perm("assessments.view_responseevaluation"),
    }


register_patient_panel(
    Panel(
        key="treatment-timeline",
        order=200,
        template="assessments/partials/_timeline_panel.html",
        context=timeline_context,
    )
)
