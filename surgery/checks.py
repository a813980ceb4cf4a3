"""Automatic check of the surgery app (registered in SurgeryConfig.ready()): an operation
without a pathology report 30 days after it (every index operation is a resection, so a report
is always expected; a report is usually out within two weeks)."""

from collections.abc import Collection, Iterator
from datetime import date, timedelta

from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from surgery.models import Operation, Pathology
from trial.checks import Check, Finding, register_check
from trial.validation import fmt

CODE = "operation_without_pathology"
DAYS = 30


def operations_without_pathology(
    patient_ids: Collection[int] | None, today: date
) -> Iterator[Finding]:
    """Active operations done `DAYS` or more days before `today` with no active pathology
    report. One query."""
    report = Pathology.objects.active().filter(operation=OuterRef("pk"))
    operations = Operation.objects.active().filter(
        ~Exists(report), operated_on__lte=today - timedelta(days=DAYS)
    )
    if patient_ids is not None:
        operations = operations.filter(patient_id__in=list(patient_ids))
    for operation in operations.select_related("patient").order_by("pk"):
        yield Finding(
            record=operation,
            field="",
            text=_(
                "No pathology report %(days)s days after the operation of %(on)s: enter the "
                "report, or say why it is missing."
            )
            % {"days": (today - operation.operated_on).days, "on": fmt(operation.operated_on)},
        )


register_check(
    Check(
        CODE,
        gettext_lazy("Operation without pathology after 30 days"),
        operations_without_pathology,
    )
)
