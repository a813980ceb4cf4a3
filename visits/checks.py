"""Automatic check of the visits app (registered in VisitsConfig.ready()): an expected visit
still open more than 30 days after its window closed. The query is on the expected visit; it
closes itself once the visit's data are entered, the visit is closed as missed, or it no
longer applies (the calendar refresher, order 900, runs before the checks, order 950).

The retrospective cohort is left out: its patients are abstracted from charts after the fact
(often by the import), so a protocol visit without a form is "not collected", not a visit a
coordinator can still chase; a query on each would drown the real ones."""

from collections.abc import Collection, Iterator
from datetime import date, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from trial.checks import Check, Finding, register_check
from trial.models import Cohort
from trial.validation import fmt
from visits.models import ExpectedVisit, VisitStatus
from visits.selectors import visit_label

CODE = "visit_overdue_30_days"
DAYS = 30
OPEN = (VisitStatus.UPCOMING, VisitStatus.DUE, VisitStatus.OVERDUE)


def visits_overdue(patient_ids: Collection[int] | None, today: date) -> Iterator[Finding]:
    """Expected visits not done, missed or inapplicable whose window closed more than `DAYS`
    days before `today`. The stored status of an open visit may be a day old, so the window
    is what counts. One query."""
    visits = ExpectedVisit.objects.filter(
        status__in=OPEN, window_end__lt=today - timedelta(days=DAYS)
    ).exclude(patient__cohort=Cohort.RETROSPECTIVE)
    if patient_ids is not None:
        visits = visits.filter(patient_id__in=list(patient_ids))
    for visit in visits.select_related("patient").order_by("pk"):
        yield Finding(
            record=visit,
            field="",
            text=_(
                "%(visit)s is overdue by %(days)s days (its window closed on %(end)s): enter "
                "its data, or close it as missed with the reason."
            )
            % {
                "visit": visit_label(visit.kind, visit.number),
                "days": (today - visit.window_end).days,
                "end": fmt(visit.window_end),
            },
        )


register_check(Check(CODE, gettext_lazy("Visit overdue for more than 30 days"), visits_overdue))
