"""Chemotherapy: regimen lines, cycles with per-drug doses, and adverse events (CTCAE v5.0).

Line numbers, cycle numbers, BSA and dose reductions are derived by the services, never typed.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from trial.models import AuditedModel, ClinicalModel


class Regimen(models.TextChoices):
    AG = "AG", _("AG (nab-paclitaxel + gemcitabine)")
    FOLFIRINOX = "FOLFIRINOX", "FOLFIRINOX"
    MFOLFIRINOX = "mFOLFIRINOX", _("mFOLFIRINOX (modified)")
    NALIRIFOX = "NALIRIFOX", _("NALIRIFOX (liposomal irinotecan + oxaliplatin + 5-FU/LV)")
    OTHER = "other", _("Other (name it)")


class Drug(models.TextChoices):
    NAB_PACLITAXEL = "nab_paclitaxel", _("nab-paclitaxel")
    GEMCITABINE = "gemcitabine", _("gemcitabine")
    OXALIPLATIN = "oxaliplatin", _("oxaliplatin")
    IRINOTECAN = "irinotecan", _("irinotecan")
    LIPOSOMAL_IRINOTECAN = "liposomal_irinotecan", _("liposomal irinotecan")
    LEUCOVORIN = "leucovorin", _("leucovorin")
    FLUOROURACIL_BOLUS = "fluorouracil_bolus", _("5-fluorouracil bolus")
    FLUOROURACIL_INFUSION = "fluorouracil_infusion", _("5-fluorouracil 46-h infusion")
    CAPECITABINE = "capecitabine", _("capecitabine")
    S1 = "s1", _("S-1 (tegafur/gimeracil/oteracil)")
    CISPLATIN = "cisplatin", _("cisplatin")
    OTHER = "other", _("other")


class RegimenLine(ClinicalModel):
    """A line of systemic therapy; a later line records why the regimen changed."""

    class ChangeReason(models.TextChoices):
        PROGRESSION = "progression", _("Disease progression")
        TOXICITY = "toxicity", _("Toxicity")
        PATIENT_CHOICE = "patient_choice", _("Patient's choice")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="regimen_lines",
        verbose_name=_("patient"),
    )
    line_number = models.PositiveSmallIntegerField(_("line"), editable=False)
    regimen = models.CharField(_("regimen"), max_length=16, choices=Regimen.choices)
    regimen_other = models.CharField(_("regimen name"), max_length=120, blank=True)
    cycle_length_days = models.PositiveSmallIntegerField(
        _("cycle length (days)"),
        validators=[MinValueValidator(7), MaxValueValidator(42)],
        help_text=_("Set from the regimen: 14 for (m)FOLFIRINOX and NALIRIFOX, 28 for AG."),
    )
    started_on = models.DateField(_("start date"))
    change_reason = models.CharField(
        _("reason for the change"), max_length=16, choices=ChangeReason.choices, blank=True
    )
    change_reason_detail = models.CharField(_("details"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("regimen line")
        verbose_name_plural = _("regimen lines")
        ordering = ["patient", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "line_number"],
                condition=Q(voided_at__isnull=True),
                name="unique_active_line_number",
            )
        ]

    def __str__(self) -> str:
        name = self.regimen_other if self.regimen == Regimen.OTHER else self.regimen
        return f"L{self.line_number} {name}"

    @property
    def name(self) -> str:
        return self.regimen_other if self.regimen == Regimen.OTHER else self.get_regimen_display()


class ChemoCycle(ClinicalModel):
    """One cycle of a line: its day-1 date, BSA of the day and the doses given."""

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="chemo_cycles",
        verbose_name=_("patient"),
    )
    line = models.ForeignKey(
        RegimenLine, on_delete=models.PROTECT, related_name="cycles", verbose_name=_("line")
    )
    cycle_number = models.PositiveSmallIntegerField(_("cycle"), editable=False)
    given_on = models.DateField(_("day 1 date"))
    weight_kg = models.DecimalField(
        _("weight (kg)"),
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(25), MaxValueValidator(250)],
        help_text=_("Today's weight; empty uses the latest one recorded."),
    )
    bsa_m2 = models.DecimalField(
        _("BSA (m²)"), max_digits=4, decimal_places=2, editable=False, null=True
    )
    delay_days = models.PositiveSmallIntegerField(
        _("delay (days)"), default=0, validators=[MaxValueValidator(120)]
    )
    delay_reason = models.CharField(_("reason for the delay"), max_length=200, blank=True)
    dose_reduced = models.BooleanField(_("dose reduced"), default=False, editable=False)
    dose_reduction_reason = models.CharField(
        _("reason for the dose reduction"), max_length=200, blank=True
    )
    gcsf = models.BooleanField(_("G-CSF given"), default=False)
    adjuvant = models.BooleanField(
        _("adjuvant"), default=False, help_text=_("Given after the operation.")
    )

    class Meta:
        verbose_name = _("chemotherapy cycle")
        verbose_name_plural = _("chemotherapy cycles")
        ordering = ["patient", "given_on", "id"]
        indexes = [models.Index(fields=["patient", "given_on"], name="cycle_patient_date")]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "cycle_number"],
                condition=Q(voided_at__isnull=True),
                name="unique_active_cycle_number",
            )
        ]

    def __str__(self) -> str:
        return f"C{self.cycle_number} {self.given_on:%Y-%m-%d}"


class CycleDose(AuditedModel):
    """The dose of one drug in a cycle: planned per m², and what was given."""

    cycle = models.ForeignKey(
        ChemoCycle, on_delete=models.PROTECT, related_name="doses", verbose_name=_("cycle")
    )
    drug = models.CharField(_("drug"), max_length=24, choices=Drug.choices)
    drug_other = models.CharField(_("drug name"), max_length=80, blank=True)
    planned_mg_m2 = models.DecimalField(
        _("planned dose (mg/m²)"),
        max_digits=7,
        decimal_places=1,
        validators=[MinValueValidator(0)],
    )
    given_mg = models.DecimalField(
        _("given dose (mg)"),
        max_digits=8,
        decimal_places=1,
        validators=[MinValueValidator(0)],
        help_text=_("Total given per administration; 0 when the drug was omitted."),
    )
    planned_days = models.PositiveSmallIntegerField(
        _("planned administrations"), default=1, validators=[MinValueValidator(1)]
    )
    given_days = models.PositiveSmallIntegerField(
        _("administrations given"), default=1, validators=[MaxValueValidator(31)]
    )

    class Meta:
        verbose_name = _("dose")
        verbose_name_plural = _("doses")
        ordering = ["cycle", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "drug", "drug_other"], name="unique_drug_per_cycle"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_drug_display()} {self.given_mg} mg"


class AdverseEvent(ClinicalModel):
    """An adverse event graded by CTCAE v5.0."""

    class Attribution(models.TextChoices):
        UNRELATED = "unrelated", _("Unrelated")
        UNLIKELY = "unlikely", _("Unlikely")
        POSSIBLE = "possible", _("Possible")
        PROBABLE = "probable", _("Probable")
        DEFINITE = "definite", _("Definite")

    class Action(models.TextChoices):
        NONE = "none", _("None")
        DOSE_REDUCED = "dose_reduced", _("Dose reduced")
        DELAYED = "delayed", _("Cycle delayed")
        INTERRUPTED = "interrupted", _("Drug interrupted")
        WITHDRAWN = "withdrawn", _("Drug withdrawn")
        NOT_APPLICABLE = "not_applicable", _("Not applicable")

    class Outcome(models.TextChoices):
        RECOVERED = "recovered", _("Recovered / resolved")
        RECOVERING = "recovering", _("Recovering / resolving")
        NOT_RECOVERED = "not_recovered", _("Not recovered")
        SEQUELAE = "sequelae", _("Recovered with sequelae")
        FATAL = "fatal", _("Fatal")
        UNKNOWN = "unknown", _("Unknown")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="adverse_events",
        verbose_name=_("patient"),
    )
    line = models.ForeignKey(
        RegimenLine,
        on_delete=models.PROTECT,
        related_name="adverse_events",
        null=True,
        blank=True,
        verbose_name=_("regimen line"),
    )
    term = models.CharField(_("CTCAE term"), max_length=64)
    term_other = models.CharField(_("other term"), max_length=120, blank=True)
    grade = models.PositiveSmallIntegerField(
        _("grade"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    onset_on = models.DateField(_("onset date"))
    resolved_on = models.DateField(_("resolution date"), null=True, blank=True)
    serious = models.BooleanField(_("serious adverse event"))
    attribution = models.CharField(
        _("attribution to treatment"), max_length=16, choices=Attribution.choices
    )
    action_taken = models.CharField(_("action taken"), max_length=16, choices=Action.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)

    class Meta:
        verbose_name = _("adverse event")
        verbose_name_plural = _("adverse events")
        ordering = ["patient", "onset_on", "id"]

    def __str__(self) -> str:
        return f"{self.term} G{self.grade}"
