"""Labs (one panel model for every context), imaging with RECIST 1.1, response evaluations.

Flags, CTCAE grades, sums of diameters, RECIST responses and CA19-9 changes are derived by
the services from `assessments.analytes`, `assessments.ctcae` and `assessments.recist`.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from assessments import analytes
from trial.models import AuditedModel, ClinicalModel
from trial.validation import raise_if, required_if


class LabPanel(ClinicalModel):
    """Blood taken on one date, in one protocol context, with its results."""

    class Context(models.TextChoices):
        BASELINE = "baseline", _("Baseline")
        ASSESSMENT = "assessment", _("Response assessment")
        ON_TREATMENT = "on_treatment", _("On treatment (before a cycle)")
        POSTOP = "postop", _("Postoperative")
        FOLLOWUP = "followup", _("Follow-up")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="lab_panels",
        verbose_name=_("patient"),
    )
    sampled_on = models.DateField(_("sample date"))
    context = models.CharField(_("context"), max_length=16, choices=Context.choices)
    after_cycle = models.PositiveSmallIntegerField(
        _("after cycle"), null=True, blank=True, help_text=_("Derived for an assessment panel.")
    )
    postop_day = models.PositiveSmallIntegerField(
        _("postoperative day"), null=True, blank=True, validators=[MaxValueValidator(365)]
    )
    out_of_window = models.BooleanField(_("outside its window"), default=False, editable=False)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("lab panel")
        verbose_name_plural = _("lab panels")
        ordering = ["patient", "sampled_on", "id"]
        indexes = [models.Index(fields=["patient", "sampled_on"], name="labpanel_patient_date")]

    def __str__(self) -> str:
        return f"{self.get_context_display()} {self.sampled_on:%Y-%m-%d}"

    def clean(self) -> None:
        errors: dict = {}
        postop = self.context == self.Context.POSTOP
        required_if(
            errors,
            "postop_day",
            self.postop_day,
            postop,
            _("Give the postoperative day of a postoperative panel."),
        )
        if not postop and self.context and self.postop_day is not None:
            errors.setdefault("postop_day", []).append(
                _("A postoperative day is given, but the panel is not postoperative.")
            )
        raise_if(errors)


class LabResult(AuditedModel):
    """One analyte of a panel, stored in its SI unit with what was typed beside it."""

    class Flag(models.TextChoices):
        NORMAL = "", _("Normal")
        HIGH = "H", _("High")
        LOW = "L", _("Low")

    panel = models.ForeignKey(
        LabPanel, on_delete=models.PROTECT, related_name="results", verbose_name=_("panel")
    )
    analyte = models.CharField(_("analyte"), max_length=24)
    value = models.DecimalField(_("value (SI unit)"), max_digits=12, decimal_places=4)
    entered_value = models.DecimalField(_("value as entered"), max_digits=12, decimal_places=4)
    entered_unit = models.CharField(_("unit as entered"), max_length=16)
    flag = models.CharField(_("flag"), max_length=1, choices=Flag.choices, blank=True)
    ctcae_grade = models.PositiveSmallIntegerField(
        _("CTCAE grade"), null=True, blank=True, editable=False
    )
    ctcae_term = models.CharField(_("CTCAE term"), max_length=64, blank=True, editable=False)
    extreme_confirmed = models.BooleanField(
        _("extreme value confirmed"),
        default=False,
        help_text=_("The value is possible but extreme, and the coordinator confirmed it."),
    )

    class Meta:
        verbose_name = _("lab result")
        verbose_name_plural = _("lab results")
        ordering = ["panel", "id"]
        constraints = [
            # Voided rows stay (audit) but free the analyte for a corrected entry.
            models.UniqueConstraint(
                fields=["panel", "analyte"],
                condition=models.Q(voided_at__isnull=True),
                name="unique_active_analyte_per_panel",
            )
        ]

    def __str__(self) -> str:
        return f"{self.analyte} {self.value}"

    def clean(self) -> None:
        analyte = analytes.BY_CODE.get(self.analyte)
        if analyte is None:
            raise ValidationError(
                {"analyte": _("Unknown analyte “%(code)s”.") % {"code": self.analyte}}
            )
        errors: dict = {}
        if self.entered_unit not in analyte.unit_codes:
            errors["entered_unit"] = analytes.unknown_unit_message(analyte, self.entered_unit)
        if self.value is not None:
            if analytes.is_impossible(analyte, self.value):
                errors["value"] = analytes.impossible_message(
                    analyte, self.value, analyte.unit, self.value
                )
            elif (
                self._state.adding
                and analytes.is_extreme(analyte, self.value)
                and not self.extreme_confirmed
            ):
                # Checked when the row is created (the service checks every edit): a re-grade
                # of an older row must not fail because the usual range was narrowed since.
                errors["extreme_confirmed"] = analytes.extreme_message(
                    analyte, self.value, analyte.unit, self.value
                )
        raise_if(errors)


class ImagingStudy(ClinicalModel):
    """A CT / MRI / PET-CT read by RECIST 1.1; the response is computed, the radiologist's
    reading is recorded beside it."""

    class Modality(models.TextChoices):
        CT = "CT", _("CT")
        MRI = "MRI", _("MRI")
        PET_CT = "PET-CT", _("PET-CT")

    class NonTarget(models.TextChoices):
        ABSENT = "absent", _("Absent / normalised")
        PRESENT = "present", _("Present (non-CR / non-PD)")
        PROGRESSION = "progression", _("Unequivocal progression")
        NOT_EVALUATED = "not_evaluated", _("Not evaluated")

    class Response(models.TextChoices):
        CR = "CR", _("Complete response (CR)")
        PR = "PR", _("Partial response (PR)")
        SD = "SD", _("Stable disease (SD)")
        PD = "PD", _("Progressive disease (PD)")
        NE = "NE", _("Not evaluable (NE)")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="imaging_studies",
        verbose_name=_("patient"),
    )
    performed_on = models.DateField(_("imaging date"))
    modality = models.CharField(_("modality"), max_length=8, choices=Modality.choices)
    is_baseline = models.BooleanField(
        _("RECIST baseline"),
        default=False,
        help_text=_("The study the target lesions were chosen on."),
    )
    non_target = models.CharField(_("non-target lesions"), max_length=16, choices=NonTarget.choices)
    new_lesions = models.BooleanField(_("new lesions"), default=False)
    radiologist_response = models.CharField(
        _("radiologist's response"), max_length=2, choices=Response.choices, blank=True
    )
    # Derived by the services whenever any study of the patient changes:
    sum_mm = models.DecimalField(
        _("sum of diameters (mm)"), max_digits=6, decimal_places=1, null=True, editable=False
    )
    change_from_baseline_pct = models.DecimalField(
        _("change from baseline (%)"), max_digits=6, decimal_places=1, null=True, editable=False
    )
    change_from_nadir_pct = models.DecimalField(
        _("change from nadir (%)"), max_digits=6, decimal_places=1, null=True, editable=False
    )
    response = models.CharField(
        _("RECIST 1.1 response"),
        max_length=2,
        choices=Response.choices,
        blank=True,
        editable=False,
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("imaging study")
        verbose_name_plural = _("imaging studies")
        ordering = ["patient", "performed_on", "id"]

    def __str__(self) -> str:
        return f"{self.modality} {self.performed_on:%Y-%m-%d}"

    @property
    def disagrees(self) -> bool:
        """The radiologist's response differs from the one RECIST 1.1 computes."""
        return bool(self.radiologist_response and self.response) and (
            self.radiologist_response != self.response
        )


class TargetLesion(AuditedModel):
    """A RECIST target lesion measured on one study; `label` follows it across studies."""

    class Organ(models.TextChoices):
        LIVER = "liver", _("Liver")
        PANCREAS = "pancreas", _("Pancreas")
        LYMPH_NODE = "lymph_node", _("Lymph node")
        LUNG = "lung", _("Lung")
        PERITONEUM = "peritoneum", _("Peritoneum")
        OTHER = "other", _("Other")

    study = models.ForeignKey(
        ImagingStudy, on_delete=models.PROTECT, related_name="lesions", verbose_name=_("study")
    )
    label = models.CharField(_("lesion"), max_length=8, help_text=_("e.g. T1 … T5"))
    organ = models.CharField(_("organ"), max_length=16, choices=Organ.choices)
    diameter_mm = models.DecimalField(
        _("diameter (mm)"),
        max_digits=5,
        decimal_places=1,
        validators=[MinValueValidator(0), MaxValueValidator(400)],
        help_text=_("Longest diameter; short axis for a lymph node; 0 when it disappeared."),
    )

    class Meta:
        verbose_name = _("target lesion")
        verbose_name_plural = _("target lesions")
        ordering = ["study", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "label"],
                condition=models.Q(voided_at__isnull=True),
                name="unique_active_lesion_per_study",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.get_organ_display()} {self.diameter_mm} mm"

    @property
    def is_lymph_node(self) -> bool:
        return self.organ == self.Organ.LYMPH_NODE


class ResponseEvaluation(ClinicalModel):
    """The protocol's evaluation after every 4 cycles (2 after early progression): imaging and
    labs together, and the clinical decision that follows."""

    class Decision(models.TextChoices):
        CONTINUE = "continue", _("Continue the regimen")
        ADJUST = "adjust", _("Adjust the regimen")
        REFER_MDT = "refer_mdt", _("Refer to the MDT for surgery")
        BEST_SUPPORTIVE_CARE = "bsc", _("Best supportive care")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="response_evaluations",
        verbose_name=_("patient"),
    )
    evaluated_on = models.DateField(_("evaluation date"))
    imaging = models.ForeignKey(
        ImagingStudy,
        on_delete=models.PROTECT,
        related_name="evaluations",
        verbose_name=_("imaging study"),
    )
    lab_panel = models.ForeignKey(
        LabPanel,
        on_delete=models.PROTECT,
        related_name="evaluations",
        null=True,
        blank=True,
        verbose_name=_("lab panel"),
    )
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    notes = models.TextField(_("notes"), blank=True)
    # Derived by the services:
    cycles_completed = models.PositiveSmallIntegerField(
        _("cycles completed"), editable=False, default=0
    )
    sequence = models.PositiveSmallIntegerField(_("evaluation number"), editable=False, default=1)
    recist_response = models.CharField(
        _("RECIST 1.1 response"),
        max_length=2,
        choices=ImagingStudy.Response.choices,
        blank=True,
        editable=False,
    )
    ca19_9_baseline = models.DecimalField(
        _("baseline CA19-9 (U/mL)"), max_digits=9, decimal_places=1, null=True, editable=False
    )
    ca19_9_value = models.DecimalField(
        _("CA19-9 (U/mL)"), max_digits=9, decimal_places=1, null=True, editable=False
    )
    ca19_9_change_pct = models.DecimalField(
        _("CA19-9 change from baseline (%)"),
        max_digits=7,
        decimal_places=1,
        null=True,
        editable=False,
    )
    ca19_9_uninformative = models.BooleanField(
        _("CA19-9 uninformative"),
        default=False,
        editable=False,
        help_text=_("Baseline CA19-9 too low to follow (e.g. Lewis-antigen negative)."),
    )
    progression_at_first = models.BooleanField(
        _("progression at the first evaluation"), default=False, editable=False
    )
    interval_cycles = models.PositiveSmallIntegerField(
        _("cycles until the next evaluation"), default=4, editable=False
    )

    class Meta:
        verbose_name = _("response evaluation")
        verbose_name_plural = _("response evaluations")
        ordering = ["patient", "evaluated_on", "id"]

    def __str__(self) -> str:
        return f"E{self.sequence} {self.evaluated_on:%Y-%m-%d}"
