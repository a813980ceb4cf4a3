"""Follow-up after treatment: monthly contacts, recurrence / progression, death, loss to
follow-up and the end of treatment that starts the monthly schedule."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from patients.models import Ecog
from trial.models import ClinicalModel
from trial.validation import not_applicable_if, raise_if, required_if


class FollowUpContact(ClinicalModel):
    """One follow-up contact (or attempt): a clinic visit, a phone call, a message, or a
    review of the hospital records. An attempt that reached nobody counts towards loss to
    follow-up."""

    class Mode(models.TextChoices):
        CLINIC = "clinic", _("Clinic visit")
        PHONE = "phone", _("Phone call")
        MESSAGE = "message", _("Message (WeChat / SMS)")
        RECORDS = "records", _("Hospital records")

    class VitalStatus(models.TextChoices):
        ALIVE = "alive", _("Alive")
        DEAD = "dead", _("Dead")
        UNKNOWN = "unknown", _("Unknown")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="followup_contacts",
        verbose_name=_("patient"),
    )
    contacted_on = models.DateField(_("contact date"))
    mode = models.CharField(_("contact"), max_length=16, choices=Mode.choices)
    reached = models.BooleanField(
        _("patient or family reached"),
        default=True,
        help_text=_("Untick for a failed attempt; three in a row allow loss to follow-up."),
    )
    vital_status = models.CharField(
        _("vital status"), max_length=8, choices=VitalStatus.choices, default=VitalStatus.ALIVE
    )
    ecog = models.PositiveSmallIntegerField(
        _("ECOG"), choices=Ecog.choices[:5], null=True, blank=True
    )
    recurrence = models.BooleanField(
        _("new recurrence or progression since the last contact"), null=True, blank=True
    )
    subsequent_therapy = models.BooleanField(_("subsequent anticancer therapy"), default=False)
    subsequent_therapy_detail = models.CharField(
        _("subsequent therapy"), max_length=300, blank=True
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("follow-up contact")
        verbose_name_plural = _("follow-up contacts")
        ordering = ["patient", "contacted_on", "id"]
        indexes = [models.Index(fields=["patient", "contacted_on"], name="fu_contact_patient_on")]

    def __str__(self) -> str:
        return f"{self.patient_id}: follow-up {self.contacted_on}"

    def clean(self) -> None:
        errors: dict = {}
        if not self.reached:
            if self.vital_status != self.VitalStatus.UNKNOWN:
                errors["vital_status"] = [
                    _("Nobody was reached, so the vital status is unknown: choose Unknown.")
                ]
            unreached = _("Nobody was reached: leave this empty.")
            not_applicable_if(errors, "ecog", self.ecog, True, unreached)
            not_applicable_if(errors, "recurrence", self.recurrence, True, unreached)
        elif self.vital_status == self.VitalStatus.UNKNOWN:
            errors["vital_status"] = [
                _("The patient or family was reached: record whether the patient is alive.")
            ]
        if self.vital_status == self.VitalStatus.DEAD:
            not_applicable_if(
                errors, "ecog", self.ecog, True, _("The patient has died: leave ECOG empty.")
            )
        required_if(
            errors,
            "subsequent_therapy_detail",
            self.subsequent_therapy_detail,
            self.subsequent_therapy,
            _("Name the subsequent therapy (regimen, radiotherapy, ablation …)."),
        )
        raise_if(errors)


class Recurrence(ClinicalModel):
    """Disease recurrence after a resection, or progression without one, with its sites and
    how it was found. The first recurrence after the operation ends RFS."""

    class Kind(models.TextChoices):
        RECURRENCE = "recurrence", _("Recurrence (after resection)")
        PROGRESSION = "progression", _("Progression (no resection before it)")

    class DetectedBy(models.TextChoices):
        IMAGING = "imaging", _("Imaging")
        TUMOUR_MARKER = "tumour_marker", _("Tumour marker")
        CLINICAL = "clinical", _("Clinical")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="recurrences",
        verbose_name=_("patient"),
    )
    contact = models.ForeignKey(
        FollowUpContact,
        on_delete=models.PROTECT,
        related_name="recurrences",
        null=True,
        blank=True,
        verbose_name=_("follow-up contact"),
    )
    detected_on = models.DateField(_("date detected"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    site_local = models.BooleanField(_("local / pancreatic bed"), default=False)
    site_liver = models.BooleanField(_("liver"), default=False)
    site_peritoneum = models.BooleanField(_("peritoneum"), default=False)
    site_lung = models.BooleanField(_("lung"), default=False)
    site_distant_nodes = models.BooleanField(_("distant lymph nodes"), default=False)
    site_other = models.BooleanField(_("other site"), default=False)
    site_other_detail = models.CharField(_("other site"), max_length=120, blank=True)
    detected_by = models.CharField(_("how detected"), max_length=16, choices=DetectedBy.choices)
    notes = models.TextField(_("notes"), blank=True)

    SITE_FIELDS = (
        "site_local",
        "site_liver",
        "site_peritoneum",
        "site_lung",
        "site_distant_nodes",
        "site_other",
    )

    class Meta:
        verbose_name = _("recurrence / progression")
        verbose_name_plural = _("recurrences / progressions")
        ordering = ["patient", "detected_on", "id"]

    def __str__(self) -> str:
        return f"{self.patient_id}: {self.kind} {self.detected_on}"

    @property
    def sites(self) -> list[str]:
        """The site codes ticked, e.g. ["liver", "peritoneum"]."""
        return [name.removeprefix("site_") for name in self.SITE_FIELDS if getattr(self, name)]

    def clean(self) -> None:
        errors: dict = {}
        if not any(getattr(self, name) for name in self.SITE_FIELDS):
            errors["site_local"] = [_("Tick at least one site.")]
        required_if(
            errors,
            "site_other_detail",
            self.site_other_detail,
            self.site_other,
            _("Name the other site."),
        )
        raise_if(errors)


class Death(ClinicalModel):
    """The patient's death: one per patient. After it no visit is expected and no form may be
    dated later."""

    class Cause(models.TextChoices):
        PROGRESSION = "progression", _("Disease progression")
        TREATMENT = "treatment", _("Treatment-related")
        SURGICAL = "surgical", _("Surgical complication")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    class Source(models.TextChoices):
        HOSPITAL = "hospital", _("Hospital record")
        FAMILY = "family", _("Family")
        CERTIFICATE = "certificate", _("Death certificate")
        REGISTRY = "registry", _("Population registry")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="deaths",
        verbose_name=_("patient"),
    )
    died_on = models.DateField(_("date of death"))
    cause = models.CharField(_("cause"), max_length=16, choices=Cause.choices)
    cause_detail = models.CharField(_("details of the cause"), max_length=300, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("death")
        verbose_name_plural = _("deaths")
        ordering = ["patient", "died_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(voided_at__isnull=True),
                name="one_death_per_patient",
                violation_error_message=_("A death is already recorded for this patient."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: died {self.died_on}"

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "cause_detail",
            self.cause_detail,
            self.cause == self.Cause.OTHER,
            _("Describe the cause of death."),
        )
        raise_if(errors)


class LostToFollowUp(ClinicalModel):
    """The patient could not be reached after repeated attempts (recorded as contacts that
    reached nobody); no further visit is expected. Voided when the patient is found again."""

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="lost_to_followup",
        verbose_name=_("patient"),
    )
    declared_on = models.DateField(_("date declared lost"))
    failed_attempts = models.PositiveSmallIntegerField(
        _("failed attempts"),
        editable=False,
        default=0,
        help_text=_("Contacts that reached nobody since the last successful one."),
    )
    last_contact_on = models.DateField(
        _("last successful contact"), null=True, blank=True, editable=False
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("loss to follow-up")
        verbose_name_plural = _("losses to follow-up")
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(voided_at__isnull=True),
                name="one_active_lost_per_patient",
                violation_error_message=_("This patient is already lost to follow-up."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: lost {self.declared_on}"


class TreatmentEnd(ClinicalModel):
    """The end of study treatment, which starts the monthly follow-up schedule."""

    class Reason(models.TextChoices):
        COMPLETED = "completed", _("Planned treatment completed")
        PROGRESSION = "progression", _("Disease progression")
        TOXICITY = "toxicity", _("Toxicity")
        PATIENT_CHOICE = "patient_choice", _("Patient's choice")
        SUPPORTIVE_CARE = "bsc", _("Best supportive care")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="treatment_ends",
        verbose_name=_("patient"),
    )
    ended_on = models.DateField(
        _("end of treatment"), help_text=_("The date of the last treatment given.")
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    reason_detail = models.CharField(_("details"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("end of treatment")
        verbose_name_plural = _("ends of treatment")
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(voided_at__isnull=True),
                name="one_treatment_end_per_patient",
                violation_error_message=_("The end of treatment is already recorded."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: treatment ended {self.ended_on}"

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "reason_detail",
            self.reason_detail,
            self.reason == self.Reason.OTHER,
            _("Describe the reason."),
        )
        raise_if(errors)
