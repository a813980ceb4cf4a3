"""Chemotherapy: regimen lines, cycles with per-drug doses, and adverse events (CTCAE v5.0).

Line numbers, cycle numbers, BSA and dose reductions are derived by the services, never typed.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from treatments import ctcae_terms, regimens
from trial.models import AuditedModel, ClinicalModel
from trial.validation import fmt, not_applicable_if, raise_if, required_if


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

    def clean(self) -> None:
        errors: dict = {}
        other = self.regimen == Regimen.OTHER
        required_if(
            errors,
            "regimen_other",
            self.regimen_other.strip(),
            other,
            gettext("Name the regimen."),
        )
        not_applicable_if(
            errors,
            "regimen_other",
            self.regimen_other.strip(),
            bool(self.regimen) and not other,
            gettext("A regimen name is only given for an other regimen."),
        )
        required_if(
            errors,
            "cycle_length_days",
            self.cycle_length_days,
            other,
            gettext("Give the cycle length of this regimen in days."),
        )
        spec = regimens.regimen_spec(self.regimen)
        if spec and self.cycle_length_days and self.cycle_length_days != spec.cycle_length_days:
            errors.setdefault("cycle_length_days", []).append(
                gettext("%(regimen)s cycles last %(days)s days, not %(typed)s.")
                % {
                    "regimen": self.regimen,
                    "days": spec.cycle_length_days,
                    "typed": self.cycle_length_days,
                }
            )
        required_if(
            errors,
            "change_reason_detail",
            self.change_reason_detail.strip(),
            self.change_reason == self.ChangeReason.OTHER,
            gettext("Describe the reason for the change."),
        )
        not_applicable_if(
            errors,
            "change_reason_detail",
            self.change_reason_detail.strip(),
            not self.change_reason,
            gettext("Details are given but no reason for a change of regimen."),
        )
        raise_if(errors)


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

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "delay_reason",
            self.delay_reason.strip(),
            bool(self.delay_days),
            gettext("Give the reason for the delay."),
        )
        not_applicable_if(
            errors,
            "delay_reason",
            self.delay_reason.strip(),
            not self.delay_days,
            gettext("A reason for a delay is given but the delay is 0 days."),
        )
        raise_if(errors)


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
            # Voided rows stay (audit) but free the drug for a corrected entry.
            models.UniqueConstraint(
                fields=["cycle", "drug", "drug_other"],
                condition=Q(voided_at__isnull=True),
                name="unique_active_drug_per_cycle",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_drug_display()} {self.given_mg} mg"

    @property
    def drug_name(self) -> str:
        return self.drug_other if self.drug == Drug.OTHER else self.get_drug_display()

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "drug_other",
            self.drug_other.strip(),
            self.drug == Drug.OTHER,
            gettext("Name the drug."),
        )
        not_applicable_if(
            errors,
            "drug_other",
            self.drug_other.strip(),
            bool(self.drug) and self.drug != Drug.OTHER,
            gettext("A drug name is only given for an other drug."),
        )
        if self.planned_mg_m2 is not None and self.planned_mg_m2 <= 0:
            errors.setdefault("planned_mg_m2", []).append(
                gettext("The planned dose must be above 0 mg/m².")
            )
        if self.planned_days is not None and self.planned_days > 31:
            errors.setdefault("planned_days", []).append(
                gettext("%(days)s administrations in one cycle is not plausible (at most 31).")
                % {"days": self.planned_days}
            )
        if self.given_days is not None and self.planned_days is not None:
            if self.given_days > self.planned_days:
                errors.setdefault("given_days", []).append(
                    gettext("%(given)s administrations given but only %(planned)s planned.")
                    % {"given": self.given_days, "planned": self.planned_days}
                )
            if self.given_mg is not None and self.given_days == 0 and self.given_mg > 0:
                errors.setdefault("given_mg", []).append(
                    gettext("No administration was given, so the given dose must be 0 mg.")
                )
            if self.given_mg is not None and self.given_days > 0 and self.given_mg == 0:
                errors.setdefault("given_days", []).append(
                    gettext("The drug was omitted (0 mg): set the administrations given to 0.")
                )
        raise_if(errors)


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

    @property
    def term_display(self) -> str:
        return ctcae_terms.term_label(self.term, self.term_other)

    @property
    def is_open(self) -> bool:
        """Not resolved yet (no resolution date and not fatal)."""
        return self.resolved_on is None and self.outcome != self.Outcome.FATAL

    def clean(self) -> None:
        errors: dict = {}
        term = ctcae_terms.term_get(self.term) if self.term else None
        if self.term and term is None:
            errors.setdefault("term", []).append(
                gettext(
                    "“%(term)s” is not a CTCAE v5.0 term of the catalogue: choose one, or "
                    "“Other, specify”."
                )
                % {"term": self.term}
            )
        is_other = self.term == ctcae_terms.OTHER
        required_if(
            errors,
            "term_other",
            self.term_other.strip(),
            is_other,
            gettext("Name the adverse event."),
        )
        not_applicable_if(
            errors,
            "term_other",
            self.term_other.strip(),
            bool(term) and not is_other,
            gettext("A name is only typed for “Other, specify”."),
        )
        if term and self.grade and not term.allows(self.grade):
            low, high = term.grades
            errors.setdefault("grade", []).append(
                gettext("CTCAE v5.0 grades %(term)s from %(low)s to %(high)s, not %(grade)s.")
                % {"term": term.label, "low": low, "high": high, "grade": self.grade}
            )
        if self.onset_on and self.resolved_on and self.resolved_on < self.onset_on:
            errors.setdefault("resolved_on", []).append(
                gettext("Resolution (%(value)s) is before the onset (%(other)s).")
                % {"value": fmt(self.resolved_on), "other": fmt(self.onset_on)}
            )
        fatal = self.outcome == self.Outcome.FATAL
        if self.grade == 5 and self.outcome and not fatal:
            errors.setdefault("outcome", []).append(
                gettext("A grade 5 event is death: the outcome must be Fatal.")
            )
        if fatal and self.grade and self.grade != 5:
            errors.setdefault("grade", []).append(
                gettext("A fatal outcome is grade 5, not grade %(grade)s.") % {"grade": self.grade}
            )
        if self.grade == 5 and self.serious is False:
            errors.setdefault("serious", []).append(gettext("A fatal event is serious."))
        required_if(
            errors,
            "resolved_on",
            self.resolved_on,
            self.outcome in (self.Outcome.RECOVERED, self.Outcome.SEQUELAE),
            gettext("Give the date the event resolved."),
        )
        not_applicable_if(
            errors,
            "resolved_on",
            self.resolved_on,
            self.outcome in (self.Outcome.RECOVERING, self.Outcome.NOT_RECOVERED),
            gettext("The event has not resolved: leave the resolution date empty."),
        )
        raise_if(errors)
