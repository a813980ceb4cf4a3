"""Automatic check of the treatments app (registered in TreatmentsConfig.ready()): an adverse
event of grade 3 or more with no action taken on the treatment. Such an event usually leads to
a dose reduction, a delay, an interruption or a withdrawal; "none" may be right, but the site
should confirm it (or record the action)."""

from collections.abc import Collection, Iterator
from datetime import date

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from treatments.models import AdverseEvent
from trial.checks import Check, Finding, register_check
from trial.validation import fmt

CODE = "severe_ae_without_action"
MIN_GRADE = 3
NO_ACTION = ("", AdverseEvent.Action.NONE)


def severe_events_without_action(
    patient_ids: Collection[int] | None, today: date
) -> Iterator[Finding]:
    """Active adverse events of grade ≥ 3 whose action taken is empty or "none". One query."""
    events = AdverseEvent.objects.active().filter(grade__gte=MIN_GRADE, action_taken__in=NO_ACTION)
    if patient_ids is not None:
        events = events.filter(patient_id__in=list(patient_ids))
    for event in events.select_related("patient").order_by("pk"):
        yield Finding(
            record=event,
            field="action_taken",
            text=_(
                "%(term)s of grade %(grade)s (onset %(on)s) has no action taken: record the "
                "action on the treatment, or confirm that none was taken."
            )
            % {
                "term": event.term_other or event.term,
                "grade": event.grade,
                "on": fmt(event.onset_on),
            },
        )


register_check(
    Check(
        CODE,
        gettext_lazy("Grade ≥3 adverse event without action taken"),
        severe_events_without_action,
    )
)
