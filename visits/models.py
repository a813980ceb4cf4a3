"""The materialized protocol calendar, the visits a coordinator closed as missed, and the
reminder log.

`ExpectedVisit` rows are derived: `visits.services.calendar_refresh` rebuilds them from the
patient's records and `visits.protocol` whenever a relevant form is saved or voided, so they
are not audited clinical records (the forms they are derived from are). What a person
decides about a visit — closing it as missed — is a `VisitClosure`, audited and voidable.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from trial.models import AuditedModel


class VisitKind(models.TextChoices):
    SCREENING = "screening", _("Screening")
    BASELINE = "baseline", _("Baseline")
    CYCLE = "cycle", _("Chemotherapy cycle")
    EVALUATION = "evaluation", _("Response evaluation")
    MDT = "mdt", _("MDT decision")
    POSTOP = "postop", _("Postoperative labs")
    ADJUVANT = "adjuvant", _("Adjuvant cycle")
    FOLLOWUP = "followup", _("Follow-up contact")


class VisitStatus(models.TextChoices):
    UPCOMING = "upcoming", _("Upcoming")
    DUE = "due", pgettext_lazy("visit status", "Due")
    OVERDUE = "overdue", _("Overdue")
    DONE = "done", _("Done")
    MISSED = "missed", _("Missed")
    NOT_APPLICABLE = "na", _("Not applicable")


class ExpectedVisit(models.Model):
    """One visit the protocol expects of a patient, with its window and current status."""

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.CASCADE,
        related_name="expected_visits",
        verbose_name=_("patient"),
    )
    # A copy of patient.site: the worklist filters by site and status without a join.
    site = models.ForeignKey(
        "trial.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    code = models.CharField(_("visit"), max_length=24)  # from visits.protocol; stable
    kind = models.CharField(_("kind"), max_length=16, choices=VisitKind.choices)
    number = models.PositiveSmallIntegerField(_("number"), null=True, blank=True)
    target_on = models.DateField(_("target date"))
    window_start = models.DateField(_("window opens"))
    window_end = models.DateField(_("window closes"))
    forms = models.CharField(_("forms"), max_length=200)  # "app.model" labels, comma-separated
    status = models.CharField(_("status"), max_length=8, choices=VisitStatus.choices)
    done_on = models.DateField(_("done on"), null=True, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed at"), auto_now=True)

    class Meta:
        verbose_name = _("expected visit")
        verbose_name_plural = _("expected visits")
        ordering = ["patient", "target_on", "code"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "code"], name="one_expected_visit_per_code")
        ]
        indexes = [
            models.Index(fields=["site", "status", "window_end"], name="visit_site_status_end"),
            models.Index(fields=["status", "window_start"], name="visit_status_start"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: {self.code} {self.target_on} ({self.status})"

    @property
    def form_labels(self) -> list[str]:
        return [label for label in self.forms.split(",") if label]


class VisitClosure(AuditedModel):
    """A coordinator closed an expected visit as missed, with the reason; voiding it reopens
    the visit."""

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="visit_closures",
        verbose_name=_("patient"),
    )
    code = models.CharField(_("visit"), max_length=24)
    reason = models.CharField(_("reason the visit was missed"), max_length=300)

    class Meta:
        verbose_name = _("missed visit")
        verbose_name_plural = _("missed visits")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "code"],
                condition=Q(voided_at__isnull=True),
                name="one_active_closure_per_visit",
                violation_error_message=_("This visit is already closed as missed."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: {self.code} missed"

    @property
    def is_complete(self) -> bool:
        return True


class Reminder(models.Model):
    """The reminder log: one row per patient visit, reason, day and recipient. The unique
    constraint makes the daily run idempotent: a visit is never reminded twice to the same
    person for the same reason on the same day."""

    class Reason(models.TextChoices):
        DUE_SOON = "due_soon", _("Due within 3 days")
        OVERDUE = "overdue", _("Overdue")
        MDT_PENDING = "mdt_pending", _("Referred to MDT, no decision after 14 days")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        # Planned, then dropped unsent: the visit was no longer open (or the recipient no
        # longer a recipient) when the mail went out.
        CANCELLED = "cancelled", _("Cancelled")

    day = models.DateField(_("day"))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="+", verbose_name=_("patient")
    )
    site = models.ForeignKey(
        "trial.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    visit_code = models.CharField(_("visit"), max_length=24)
    target_on = models.DateField(_("target date"))
    window_end = models.DateField(_("window closes"))
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recipient"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["-day", "site", "recipient", "reason", "visit_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "visit_code", "reason", "day", "recipient"],
                name="one_reminder_per_visit_reason_day_recipient",
            )
        ]
        indexes = [models.Index(fields=["day", "status"], name="reminder_day_status")]

    def __str__(self) -> str:
        return f"{self.day} {self.reason} {self.visit_code} → {self.recipient_id}"
