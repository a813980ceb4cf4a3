"""MDT decisions, the index operation, pathology, postoperative complications and discharge.

Length of stay, the Comprehensive Complication Index and 30/90-day mortality are derived, never
typed. Postoperative labs are assessments.LabPanel rows (context "postop", day derived here).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from surgery import cci, isgps
from trial.models import AuditedModel, ClinicalModel
from trial.validation import fmt, not_applicable_if, raise_if, required_if


class PancreaticProcedure(models.TextChoices):
    PD = "pd", _("Pancreaticoduodenectomy (Whipple)")
    PPPD = "pppd", _("Pylorus-preserving pancreaticoduodenectomy")
    DPS = "dps", _("Distal pancreatectomy with splenectomy")
    TP = "tp", _("Total pancreatectomy")


class MdtDecision(ClinicalModel):
    """A multidisciplinary team decision, recorded by an investigator."""

    class Decision(models.TextChoices):
        RADICAL_SURGERY = "radical_surgery", _("Radical surgery")
        CONTINUE_SYSTEMIC = "continue_systemic", _("Continue systemic therapy")
        CHANGE_REGIMEN = "change_regimen", _("Change the regimen")
        BEST_SUPPORTIVE_CARE = "bsc", _("Best supportive care")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="mdt_decisions",
        verbose_name=_("patient"),
    )
    decided_on = models.DateField(_("MDT date"))
    attended_surgeon = models.BooleanField(_("hepatobiliary surgeon"), default=False)
    attended_oncologist = models.BooleanField(_("medical oncologist"), default=False)
    attended_radiologist = models.BooleanField(_("radiologist"), default=False)
    attended_pathologist = models.BooleanField(_("pathologist"), default=False)
    attended_other = models.CharField(_("other attendees"), max_length=200, blank=True)
    decision = models.CharField(_("decision"), max_length=24, choices=Decision.choices)
    rationale = models.TextField(_("rationale"))
    planned_pancreatic = models.CharField(
        _("planned pancreatic procedure"),
        max_length=8,
        choices=PancreaticProcedure.choices,
        blank=True,
    )
    planned_liver_wedge = models.BooleanField(_("planned wedge resection"), default=False)
    planned_liver_segmentectomy = models.BooleanField(_("planned segmentectomy"), default=False)
    planned_liver_hemihepatectomy = models.BooleanField(_("planned hemihepatectomy"), default=False)
    planned_liver_ablation = models.BooleanField(_("planned ablation"), default=False)
    investigator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("investigator"),
        help_text=_("The investigator who recorded and approved the decision."),
    )

    class Meta:
        verbose_name = _("MDT decision")
        verbose_name_plural = _("MDT decisions")
        ordering = ["patient", "decided_on", "id"]

    def __str__(self) -> str:
        return f"MDT {self.decided_on:%Y-%m-%d} {self.decision}"

    @property
    def is_surgery(self) -> bool:
        return self.decision == self.Decision.RADICAL_SURGERY

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "planned_pancreatic",
            self.planned_pancreatic,
            self.is_surgery,
            gettext("Give the planned pancreatic procedure of a decision for radical surgery."),
        )
        not_applicable_if(
            errors,
            "planned_pancreatic",
            self.planned_pancreatic,
            bool(self.decision) and not self.is_surgery,
            gettext("A procedure is planned only when the decision is radical surgery."),
        )
        planned_liver = (
            self.planned_liver_wedge
            or self.planned_liver_segmentectomy
            or self.planned_liver_hemihepatectomy
            or self.planned_liver_ablation
        )
        not_applicable_if(
            errors,
            "planned_liver_wedge",
            planned_liver,
            bool(self.decision) and not self.is_surgery,
            gettext("Liver procedures are planned only when the decision is radical surgery."),
        )
        raise_if(errors)


class MdtEvidence(AuditedModel):
    """A response evaluation an MDT decision was based on."""

    decision = models.ForeignKey(
        MdtDecision, on_delete=models.PROTECT, related_name="evidence", verbose_name=_("decision")
    )
    evaluation = models.ForeignKey(
        "assessments.ResponseEvaluation",
        on_delete=models.PROTECT,
        related_name="mdt_evidence",
        verbose_name=_("response evaluation"),
    )

    class Meta:
        verbose_name = _("MDT evidence")
        verbose_name_plural = _("MDT evidence")
        constraints = [
            models.UniqueConstraint(
                fields=["decision", "evaluation"],
                condition=Q(voided_at__isnull=True),
                name="unique_active_mdt_evidence",
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision_id} ← {self.evaluation_id}"


class Operation(ClinicalModel):
    """The index operation: at most one (not voided) per patient."""

    class VascularResection(models.TextChoices):
        NONE = "none", _("None")
        VEIN = "vein", _("Portal / superior mesenteric vein")
        ARTERY = "artery", _("Artery")
        BOTH = "both", _("Vein and artery")

    class Approach(models.TextChoices):
        OPEN = "open", _("Open")
        LAPAROSCOPIC = "laparoscopic", _("Laparoscopic")
        ROBOTIC = "robotic", _("Robotic")

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="operations",
        verbose_name=_("patient"),
    )
    mdt_decision = models.ForeignKey(
        MdtDecision,
        on_delete=models.PROTECT,
        related_name="operations",
        null=True,
        blank=True,
        verbose_name=_("MDT decision"),
    )
    mdt_document_missing = models.BooleanField(
        _("MDT decision document missing (retrospective case)"), default=False
    )
    mdt_missing_reason = models.CharField(
        _("why the MDT document is missing"), max_length=300, blank=True
    )
    operated_on = models.DateField(_("date of operation"))
    pancreatic_procedure = models.CharField(
        _("pancreatic procedure"), max_length=8, choices=PancreaticProcedure.choices
    )
    liver_wedge = models.BooleanField(_("wedge resection"), default=False)
    liver_segmentectomy = models.BooleanField(_("segmentectomy"), default=False)
    liver_hemihepatectomy = models.BooleanField(_("hemihepatectomy"), default=False)
    liver_ablation = models.BooleanField(_("ablation"), default=False)
    liver_lesions_resected = models.PositiveSmallIntegerField(
        _("liver lesions resected"), default=0, validators=[MaxValueValidator(99)]
    )
    liver_lesions_ablated = models.PositiveSmallIntegerField(
        _("liver lesions ablated"), default=0, validators=[MaxValueValidator(99)]
    )
    vascular_resection = models.CharField(
        _("vascular resection"),
        max_length=8,
        choices=VascularResection.choices,
        default=VascularResection.NONE,
    )
    approach = models.CharField(_("approach"), max_length=16, choices=Approach.choices)
    converted = models.BooleanField(_("converted to open"), default=False)
    operative_minutes = models.PositiveSmallIntegerField(
        _("operative time (min)"), validators=[MinValueValidator(30), MaxValueValidator(1440)]
    )
    blood_loss_ml = models.PositiveIntegerField(
        _("blood loss (mL)"), validators=[MaxValueValidator(30000)]
    )
    transfusion_units = models.PositiveSmallIntegerField(
        _("red-cell transfusion (units)"), default=0, validators=[MaxValueValidator(100)]
    )
    findings = models.TextField(_("intraoperative findings"), blank=True)

    class Meta:
        verbose_name = _("operation")
        verbose_name_plural = _("operations")
        ordering = ["patient", "operated_on", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(voided_at__isnull=True),
                name="one_index_operation_per_patient",
                violation_error_message=_("This patient already has an index operation."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_pancreatic_procedure_display()} {self.operated_on:%Y-%m-%d}"

    @property
    def liver_resected(self) -> bool:
        """Liver tissue was resected (not only ablated): the pathology gives a liver margin."""
        return bool(
            self.liver_wedge
            or self.liver_segmentectomy
            or self.liver_hemihepatectomy
            or self.liver_lesions_resected
        )

    def clean(self) -> None:
        errors: dict = {}
        minimally_invasive = self.approach in (self.Approach.LAPAROSCOPIC, self.Approach.ROBOTIC)
        not_applicable_if(
            errors,
            "converted",
            self.converted,
            bool(self.approach) and not minimally_invasive,
            gettext("Only a laparoscopic or robotic operation can be converted to open."),
        )
        resection = self.liver_wedge or self.liver_segmentectomy or self.liver_hemihepatectomy
        if (self.liver_lesions_resected or 0) > 0 and not resection:
            errors.setdefault("liver_lesions_resected", []).append(
                gettext(
                    "%(count)s liver lesion(s) resected, but no liver resection is ticked "
                    "(wedge, segmentectomy or hemihepatectomy)."
                )
                % {"count": self.liver_lesions_resected}
            )
        if resection and not self.liver_lesions_resected:
            errors.setdefault("liver_lesions_resected", []).append(
                gettext("A liver resection is ticked: give the number of lesions resected.")
            )
        if (self.liver_lesions_ablated or 0) > 0 and not self.liver_ablation:
            errors.setdefault("liver_lesions_ablated", []).append(
                gettext("%(count)s liver lesion(s) ablated, but ablation is not ticked.")
                % {"count": self.liver_lesions_ablated}
            )
        if self.liver_ablation and not self.liver_lesions_ablated:
            errors.setdefault("liver_lesions_ablated", []).append(
                gettext("Ablation is ticked: give the number of lesions ablated.")
            )
        required_if(
            errors,
            "mdt_missing_reason",
            self.mdt_missing_reason.strip(),
            self.mdt_document_missing,
            gettext("Say why the MDT decision document is missing."),
        )
        not_applicable_if(
            errors,
            "mdt_missing_reason",
            self.mdt_missing_reason.strip(),
            not self.mdt_document_missing,
            gettext("A reason is given only when the MDT document is missing."),
        )
        if self.mdt_document_missing and self.mdt_decision_id:
            errors.setdefault("mdt_document_missing", []).append(
                gettext("An MDT decision is chosen: the document is not missing.")
            )
        raise_if(errors)


class Pathology(ClinicalModel):
    """The pathology report of the index operation (AJCC 8th, CAP regression grade)."""

    class YpT(models.TextChoices):
        T0 = "ypT0", "ypT0"
        TIS = "ypTis", "ypTis"
        T1A = "ypT1a", "ypT1a"
        T1B = "ypT1b", "ypT1b"
        T1C = "ypT1c", "ypT1c"
        T2 = "ypT2", "ypT2"
        T3 = "ypT3", "ypT3"
        T4 = "ypT4", "ypT4"
        TX = "ypTX", "ypTX"

    class YpN(models.TextChoices):
        N0 = "ypN0", "ypN0"
        N1 = "ypN1", "ypN1"
        N2 = "ypN2", "ypN2"
        NX = "ypNX", "ypNX"

    class Margin(models.TextChoices):
        R0 = "R0", "R0"
        R1 = "R1", "R1"
        R2 = "R2", "R2"

    class Differentiation(models.TextChoices):
        WELL = "well", _("Well differentiated")
        MODERATE = "moderate", _("Moderately differentiated")
        POOR = "poor", _("Poorly differentiated")
        NOT_ASSESSABLE = "na", _("Not assessable (complete response)")

    operation = models.OneToOneField(
        Operation,
        on_delete=models.PROTECT,
        related_name="pathology",
        verbose_name=_("operation"),
        error_messages={"unique": _("This operation already has a pathology report.")},
    )
    reported_on = models.DateField(_("report date"))
    ypt = models.CharField(_("ypT (AJCC 8th)"), max_length=6, choices=YpT.choices)
    ypn = models.CharField(_("ypN (AJCC 8th)"), max_length=6, choices=YpN.choices)
    margin_pancreas = models.CharField(_("pancreatic margin"), max_length=2, choices=Margin.choices)
    margin_liver = models.CharField(
        _("liver margin"),
        max_length=2,
        choices=Margin.choices,
        blank=True,
        help_text=_("Empty when no liver lesion was resected (ablation only)."),
    )
    nodes_examined = models.PositiveSmallIntegerField(
        _("lymph nodes examined"), validators=[MaxValueValidator(200)]
    )
    nodes_positive = models.PositiveSmallIntegerField(
        _("lymph nodes positive"), validators=[MaxValueValidator(200)]
    )
    regression_grade = models.PositiveSmallIntegerField(
        _("tumour regression grade (CAP)"),
        validators=[MaxValueValidator(3)],
        help_text=_("0 no viable cancer … 3 poor or no response."),
    )
    differentiation = models.CharField(
        _("differentiation"), max_length=16, choices=Differentiation.choices
    )
    perineural_invasion = models.BooleanField(_("perineural invasion"))
    lymphovascular_invasion = models.BooleanField(_("lymphovascular invasion"))

    class Meta:
        verbose_name = _("pathology")
        verbose_name_plural = _("pathology reports")
        constraints = [
            models.CheckConstraint(
                condition=Q(nodes_positive__lte=F("nodes_examined")),
                name="positive_nodes_within_examined",
                violation_error_message=_(
                    "Positive lymph nodes cannot outnumber the nodes examined."
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.ypt} {self.ypn} {self.margin_pancreas}"

    @staticmethod
    def expected_ypn(positive: int) -> str:
        """The ypN category of `positive` positive regional nodes (AJCC 8th)."""
        if positive == 0:
            return "ypN0"
        return "ypN1" if positive <= 3 else "ypN2"

    def clean(self) -> None:
        errors: dict = {}
        examined, positive = self.nodes_examined, self.nodes_positive
        if examined is not None and positive is not None:
            if positive > examined:
                errors.setdefault("nodes_positive", []).append(
                    gettext(
                        "Positive lymph nodes (%(positive)s) cannot outnumber the nodes "
                        "examined (%(examined)s)."
                    )
                    % {"positive": positive, "examined": examined}
                )
            elif self.ypn and self.ypn != self.YpN.NX and self.ypn != self.expected_ypn(positive):
                errors.setdefault("ypn", []).append(
                    gettext(
                        "%(ypn)s does not match %(positive)s positive node(s): AJCC 8th gives "
                        "%(expected)s (N0 none, N1 1–3, N2 4 or more)."
                    )
                    % {
                        "ypn": self.ypn,
                        "positive": positive,
                        "expected": self.expected_ypn(positive),
                    }
                )
        operation = self.operation if self.operation_id else None
        if operation is not None:
            required_if(
                errors,
                "margin_liver",
                self.margin_liver,
                operation.liver_resected,
                gettext("Liver tissue was resected: give the liver margin."),
            )
            not_applicable_if(
                errors,
                "margin_liver",
                self.margin_liver,
                not operation.liver_resected,
                gettext("No liver tissue was resected: leave the liver margin empty."),
            )
        raise_if(errors)


class Complication(ClinicalModel):
    """A postoperative complication, graded by Clavien-Dindo and, where it applies, ISGPS."""

    class ClavienDindo(models.TextChoices):
        I = "I", "I"  # noqa: E741 - the grade's name
        II = "II", "II"
        IIIA = "IIIa", "IIIa"
        IIIB = "IIIb", "IIIb"
        IVA = "IVa", "IVa"
        IVB = "IVb", "IVb"
        V = "V", "V"

    class Kind(models.TextChoices):
        POPF = "popf", _("Postoperative pancreatic fistula (ISGPS 2016)")
        DGE = "dge", _("Delayed gastric emptying (ISGPS)")
        PPH = "pph", _("Post-pancreatectomy haemorrhage (ISGPS)")
        BILE_LEAK = "bile_leak", _("Bile leak")
        SSI = "ssi", _("Surgical-site infection")
        ABSCESS = "abscess", _("Intra-abdominal abscess / collection")
        PNEUMONIA = "pneumonia", _("Pneumonia")
        LIVER_FAILURE = "liver_failure", _("Post-hepatectomy liver failure")
        CHYLE_LEAK = "chyle_leak", _("Chyle leak")
        THROMBOSIS = "thrombosis", _("Venous thromboembolism")
        CARDIAC = "cardiac", _("Cardiac")
        OTHER = "other", _("Other")

    class IsgpsGrade(models.TextChoices):
        BIOCHEMICAL_LEAK = "BL", _("Biochemical leak (not a fistula)")
        A = "A", _("Grade A")
        B = "B", _("Grade B")
        C = "C", _("Grade C")

    operation = models.ForeignKey(
        Operation,
        on_delete=models.PROTECT,
        related_name="complications",
        verbose_name=_("operation"),
    )
    onset_on = models.DateField(_("onset date"))
    kind = models.CharField(_("complication"), max_length=16, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=300, blank=True)
    clavien_dindo = models.CharField(
        _("Clavien-Dindo grade"), max_length=4, choices=ClavienDindo.choices
    )
    isgps_grade = models.CharField(
        _("ISGPS grade"), max_length=2, choices=IsgpsGrade.choices, blank=True
    )
    drain_amylase_u_l = models.PositiveIntegerField(
        _("drain amylase (U/L)"), null=True, blank=True, validators=[MaxValueValidator(1000000)]
    )

    class Meta:
        verbose_name = _("complication")
        verbose_name_plural = _("complications")
        ordering = ["operation", "onset_on", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} CD {self.clavien_dindo}"

    @property
    def is_death(self) -> bool:
        """Clavien-Dindo V is the death of the patient."""
        return self.clavien_dindo == self.ClavienDindo.V

    @property
    def cci_weight(self) -> float:
        return cci.cci([self.clavien_dindo]) if self.clavien_dindo else 0.0

    def clean(self) -> None:
        raise_if(
            isgps.complication_errors(
                kind=self.kind,
                isgps_grade=self.isgps_grade,
                clavien_dindo=self.clavien_dindo,
                drain_amylase_u_l=self.drain_amylase_u_l,
            )
        )


class Discharge(ClinicalModel):
    """Discharge after the index operation and readmissions; length of stay is derived."""

    operation = models.OneToOneField(
        Operation,
        on_delete=models.PROTECT,
        related_name="discharge",
        verbose_name=_("operation"),
        error_messages={"unique": _("This operation already has a discharge record.")},
    )
    discharged_on = models.DateField(_("discharge date"))
    readmitted_on = models.DateField(_("readmission date"), null=True, blank=True)
    readmission_reason = models.CharField(_("reason for readmission"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("discharge")
        verbose_name_plural = _("discharges")

    def __str__(self) -> str:
        return f"discharged {self.discharged_on:%Y-%m-%d}"

    @property
    def length_of_stay(self) -> int | None:
        """Days from the operation to the discharge."""
        if self.discharged_on is None or self.operation_id is None:
            return None
        return (self.discharged_on - self.operation.operated_on).days

    def readmitted_within(self, days: int) -> bool:
        """Readmitted within `days` days of the operation."""
        if self.readmitted_on is None or self.operation_id is None:
            return False
        return (self.readmitted_on - self.operation.operated_on).days <= days

    @property
    def readmitted_30(self) -> bool:
        return self.readmitted_within(30)

    @property
    def readmitted_90(self) -> bool:
        return self.readmitted_within(90)

    def clean(self) -> None:
        errors: dict = {}
        if self.readmitted_on and self.discharged_on and self.readmitted_on <= self.discharged_on:
            errors.setdefault("readmitted_on", []).append(
                gettext(
                    "The readmission (%(readmitted)s) must be after the discharge (%(discharged)s)."
                )
                % {"readmitted": fmt(self.readmitted_on), "discharged": fmt(self.discharged_on)}
            )
        required_if(
            errors,
            "readmission_reason",
            self.readmission_reason.strip(),
            bool(self.readmitted_on),
            gettext("Give the reason for the readmission."),
        )
        not_applicable_if(
            errors,
            "readmission_reason",
            self.readmission_reason.strip(),
            not self.readmitted_on,
            gettext("A reason is given only with a readmission date."),
        )
        raise_if(errors)
