"""MDT decisions, the index operation, pathology, postoperative complications and discharge.

Length of stay, the Comprehensive Complication Index and 30/90-day mortality are derived, never
typed. Postoperative labs are assessments.LabPanel rows (context "postop", day derived here).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from trial.models import AuditedModel, ClinicalModel


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
