"""Demo calendar: runs after every other app's demo (visits is the last app) and materializes
the expected visits of every patient on context.today, so the worklist shows what is due and
overdue "today" in the demo cohort.

A study team closes visits that will never happen as missed; the demo does the same for
every visit overdue by more than 8 weeks on context.today (audited closures by the site's
coordinator, with one of a few usual reasons), so the worklist holds what a coordinator
would still chase, not years of backlog.
"""

from datetime import timedelta

from trial.demo import DemoContext
from trial.services import clinical_save
from visits.models import ExpectedVisit, VisitClosure, VisitStatus
from visits.services import calendar_refresh

MISSED_AFTER = timedelta(weeks=8)
REASONS = (
    "Patient not reached by phone or message.",
    "Visit done at another hospital; no records obtained.",
    "Patient declined the visit.",
    "Not done: patient too unwell to attend.",
)


def seed(context: DemoContext) -> None:
    """Refresh every patient's calendar on `context.today`, close the visits overdue by more
    than 8 weeks as missed and refresh those patients again; prints nothing."""
    calendar_refresh(today=context.today)
    stale = (
        ExpectedVisit.objects.filter(
            status=VisitStatus.OVERDUE, window_end__lt=context.today - MISSED_AFTER
        )
        .select_related("site")
        .order_by("patient_id", "target_on", "code")
    )
    closed = set()
    for visit in stale:
        reason = context.rng.choice(REASONS)
        closure = VisitClosure(patient_id=visit.patient_id, code=visit.code, reason=reason)
        clinical_save(closure, user=context.user_for(visit.site), reason=reason)
        closed.add(visit.patient_id)
    if closed:
        calendar_refresh(patient_ids=closed, today=context.today)
