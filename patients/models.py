"""The patient (pseudonymous), PHI kept apart, screening, consent, enrollment, baseline and
withdrawal."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from trial.models import AuditedModel, ClinicalModel, Cohort, Site
from trial.validation import not_applicable_if, not_before, raise_if, required_if


class Ecog(models.IntegerChoices):
    FULLY_ACTIVE = 0, _("0 — Fully active")
    RESTRICTED = 1, _("1 — Restricted in strenuous activity, ambulatory")
    AMBULATORY = 2, _("2 — Ambulatory and capable of self-care, up more than half of waking hours")
    LIMITED = 3, _("3 — Limited self-care, in bed or chair more than half of waking hours")
    DISABLED = 4, _("4 — Completely disabled")
    DEAD = 5, _("5 — Dead")


class Sex(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class Patient(AuditedModel):
    """A study subject, known everywhere by a subject code; identity lives in PatientIdentity."""

    class Status(models.TextChoices):
        SCREENING = "screening", _("Screening")
        SCREEN_FAILED = "screen_failed", _("Screen failure")
        ENROLLED = "enrolled", _("Enrolled")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        DECEASED = "deceased", _("Deceased")
        LOST = "lost", _("Lost to follow-up")

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="patients", verbose_name=_("site")
    )
    subject_code = models.CharField(_("subject code"), max_length=16, unique=True, editable=False)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SCREENING
    )
    cohort = models.CharField(_("cohort"), max_length=16, choices=Cohort.choices, blank=True)
    # Kept by followup's death service (patients.services.patient_death_set): the last date any
    # clinical form of the patient may carry.
    died_on = models.DateField(_("date of death"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["subject_code"]
        permissions = [("view_phi", _("Can see personal identifiers (PHI)"))]
        indexes = [
            models.Index(fields=["site", "status"], name="patient_site_status"),
            models.Index(fields=["site", "cohort"], name="patient_site_cohort"),
        ]

    def __str__(self) -> str:
        return self.subject_code

    @property
    def is_complete(self) -> bool:
        return True


class PatientIdentity(AuditedModel):
    """Personal identifiers (PHI): seen by staff of the patient's site only, never exported."""

    patient = models.OneToOneField(
        Patient,
        on_delete=models.PROTECT,
        related_name="identity",
        verbose_name=_("patient"),
    )
    # A copy of patient.site so the database can keep record numbers unique within a site.
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", editable=False)
    full_name = models.CharField(_("full name"), max_length=120)
    hospital_record_number = models.CharField(_("hospital record number"), max_length=32)
    date_of_birth = models.DateField(_("date of birth"))
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("patient identity")
        verbose_name_plural = _("patient identities")
        constraints = [
            models.UniqueConstraint(
                fields=["site", "hospital_record_number"],
                name="unique_record_number_per_site",
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: identity"

    @property
    def is_complete(self) -> bool:
        return True

    def validate_unique(self, exclude=None) -> None:
        # A clearer message than the generic constraint text, on the field to fix.
        clash = (
            PatientIdentity.objects.filter(
                site_id=self.site_id, hospital_record_number=self.hospital_record_number
            )
            .exclude(pk=self.pk)
            .select_related("patient")
            .first()
        )
        if self.site_id and clash:
            message = _("Record number %(number)s is already registered at this site as %(code)s.")
            params = {
                "number": self.hospital_record_number,
                "code": clash.patient.subject_code,
            }
            raise ValidationError({"hospital_record_number": message % params})
        super().validate_unique(exclude=exclude)


class Screening(ClinicalModel):
    """The eligibility checklist; the verdict is computed by `patients.eligibility`."""

    class Confirmation(models.TextChoices):
        HISTOLOGY = "histology", _("Histology")
        CYTOLOGY = "cytology", _("Cytology")
        NONE = "none", _("Not confirmed")

    patient = models.OneToOneField(
        Patient,
        on_delete=models.PROTECT,
        related_name="screening",
        verbose_name=_("patient"),
    )
    screened_on = models.DateField(_("screening date"))
    age_at_screening = models.PositiveSmallIntegerField(
        _("age at screening (years)"), editable=False, null=True
    )
    intended_cohort = models.CharField(_("intended cohort"), max_length=16, choices=Cohort.choices)
    confirmation = models.CharField(
        _("pathological confirmation"), max_length=16, choices=Confirmation.choices
    )
    is_pdac = models.BooleanField(
        _("pancreatic ductal adenocarcinoma"),
        help_text=_("The histology or cytology shows pancreatic ductal adenocarcinoma."),
    )
    synchronous_liver_metastases = models.BooleanField(
        _("synchronous liver metastases on imaging"),
        help_text=_("Liver metastases seen on CT / MRI / PET-CT at the time of diagnosis."),
    )
    imaging_on = models.DateField(_("date of the staging imaging"), null=True, blank=True)
    prior_systemic_therapy = models.BooleanField(
        _("prior systemic therapy for pancreatic cancer"),
        help_text=_("Excludes a patient from the prospective cohort."),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("screening")
        verbose_name_plural = _("screenings")

    def __str__(self) -> str:
        return f"{self.patient_id}: screening {self.screened_on}"

    def clean(self) -> None:
        errors: dict = {}
        not_applicable_if(
            errors,
            "is_pdac",
            self.is_pdac,
            self.confirmation == self.Confirmation.NONE,
            _("Without histological or cytological confirmation the diagnosis is not PDAC yet."),
        )
        not_before(
            errors,
            "screened_on",
            self.screened_on,
            self.imaging_on,
            _("Screening (%(value)s) is before the staging imaging (%(other)s)."),
        )
        raise_if(errors)


class Consent(ClinicalModel):
    """Informed consent, or for retrospective cases an ethics-committee waiver."""

    class Basis(models.TextChoices):
        SIGNED = "signed", _("Signed informed consent")
        WAIVER = (
            "waiver",
            _("Ethics-committee waiver of consent (retrospective cases only)"),
        )

    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("patient"),
    )
    basis = models.CharField(_("basis"), max_length=16, choices=Basis.choices)
    consented_on = models.DateField(
        _("date"),
        help_text=_("Date the form was signed, or date of the waiver decision."),
    )
    consent_version = models.CharField(
        _("consent form version"),
        max_length=32,
        blank=True,
        help_text=_("e.g. v2.1 2025-03-01"),
    )
    waiver_reference = models.CharField(_("ethics approval reference"), max_length=64, blank=True)
    study_consent = models.BooleanField(_("consents to the study"))
    biobank_consent = models.BooleanField(
        _("consents to the biobank"),
        help_text=_("Storage of tumour, adjacent and discarded tissue for research."),
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["consented_on", "id"]

    def __str__(self) -> str:
        return f"{self.get_basis_display()} · {self.consented_on:%Y-%m-%d}"

    @property
    def grants_study_participation(self) -> bool:
        return not self.is_voided and (self.basis == self.Basis.WAIVER or self.study_consent)

    def clean(self) -> None:
        errors: dict = {}
        signed = self.basis == self.Basis.SIGNED
        waiver = self.basis == self.Basis.WAIVER
        required_if(
            errors,
            "consent_version",
            self.consent_version,
            signed,
            _("Give the version of the consent form the patient signed."),
        )
        required_if(
            errors,
            "waiver_reference",
            self.waiver_reference,
            waiver,
            _("Give the ethics committee's reference for the waiver."),
        )
        not_applicable_if(
            errors,
            "biobank_consent",
            self.biobank_consent,
            waiver,
            _("A waiver does not cover the biobank: biobank use needs signed consent."),
        )
        raise_if(errors)


class Enrollment(ClinicalModel):
    """The patient enters a cohort. One per patient; refused when any criterion fails."""

    patient = models.OneToOneField(
        Patient,
        on_delete=models.PROTECT,
        related_name="enrollment",
        verbose_name=_("patient"),
        error_messages={"unique": _("This patient is already enrolled.")},
    )
    enrolled_on = models.DateField(_("enrollment date"))
    cohort = models.CharField(_("cohort"), max_length=16, choices=Cohort.choices)
    diagnosed_on = models.DateField(
        _("date of pathological diagnosis"),
        null=True,
        blank=True,
        help_text=_("Optional origin for overall survival."),
    )

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")

    def __str__(self) -> str:
        return f"{self.patient_id}: enrolled {self.enrolled_on}"

    def clean(self) -> None:
        errors: dict = {}
        not_before(
            errors,
            "diagnosed_on",
            self.enrolled_on,
            self.diagnosed_on,
            _("Enrollment (%(value)s) is before the diagnosis (%(other)s)."),
        )
        raise_if(errors)


def _between(low: str, high: str) -> list:
    return [MinValueValidator(Decimal(low)), MaxValueValidator(Decimal(high))]


class Baseline(ClinicalModel):
    """Disease and patient status at enrollment."""

    class PrimarySite(models.TextChoices):
        HEAD = "head", _("Head")
        UNCINATE = "uncinate", _("Uncinate process")
        NECK = "neck", _("Neck")
        BODY = "body", _("Body")
        TAIL = "tail", _("Tail")

    class Distribution(models.TextChoices):
        UNILOBAR = "unilobar", _("Unilobar")
        BILOBAR = "bilobar", _("Bilobar")

    class TCategory(models.TextChoices):
        TX = "TX", "TX"
        T1A = "T1a", "T1a"
        T1B = "T1b", "T1b"
        T1C = "T1c", "T1c"
        T2 = "T2", "T2"
        T3 = "T3", "T3"
        T4 = "T4", "T4"

    class NCategory(models.TextChoices):
        NX = "NX", "NX"
        N0 = "N0", "N0"
        N1 = "N1", "N1"
        N2 = "N2", "N2"

    class StentType(models.TextChoices):
        PLASTIC = "plastic", _("Plastic")
        METAL = "metal", _("Self-expanding metal")
        PTCD = "ptcd", _("Percutaneous drainage (PTCD)")

    patient = models.OneToOneField(
        Patient,
        on_delete=models.PROTECT,
        related_name="baseline",
        verbose_name=_("patient"),
        error_messages={"unique": _("This patient already has a baseline form.")},
    )
    assessed_on = models.DateField(_("assessment date"))
    ecog = models.PositiveSmallIntegerField(
        _("ECOG performance status"), choices=Ecog.choices, validators=[MaxValueValidator(5)]
    )
    height_cm = models.DecimalField(
        _("height (cm)"),
        max_digits=4,
        decimal_places=1,
        validators=_between("100", "230"),
    )
    weight_kg = models.DecimalField(
        _("weight (kg)"),
        max_digits=4,
        decimal_places=1,
        validators=_between("25", "250"),
    )
    bsa_m2 = models.DecimalField(
        _("body-surface area (m²)"),
        max_digits=4,
        decimal_places=2,
        editable=False,
        help_text=_("Mosteller: √(height × weight / 3600), computed."),
    )
    primary_site = models.CharField(
        _("primary tumour site"), max_length=16, choices=PrimarySite.choices
    )
    primary_size_mm = models.DecimalField(
        _("primary tumour size (mm)"),
        max_digits=4,
        decimal_places=1,
        validators=_between("1", "250"),
        help_text=_("Longest diameter on the staging CT / MRI."),
    )
    vascular_smv_pv = models.BooleanField(_("SMV / portal vein involved"), default=False)
    vascular_sma = models.BooleanField(_("superior mesenteric artery involved"), default=False)
    vascular_celiac = models.BooleanField(_("celiac axis involved"), default=False)
    vascular_cha = models.BooleanField(_("common hepatic artery involved"), default=False)
    liver_met_count = models.PositiveSmallIntegerField(
        _("number of liver metastases"),
        validators=[MinValueValidator(1), MaxValueValidator(99)],
    )
    liver_met_largest_mm = models.DecimalField(
        _("largest liver metastasis (mm)"),
        max_digits=4,
        decimal_places=1,
        validators=_between("1", "300"),
    )
    liver_met_distribution = models.CharField(
        _("liver metastases distribution"), max_length=16, choices=Distribution.choices
    )
    other_met_peritoneum = models.BooleanField(_("peritoneal metastases"), default=False)
    other_met_lung = models.BooleanField(_("lung metastases"), default=False)
    other_met_distant_nodes = models.BooleanField(_("distant lymph nodes"), default=False)
    other_met_bone = models.BooleanField(_("bone metastases"), default=False)
    other_met_other = models.CharField(_("other metastatic sites"), max_length=200, blank=True)
    ajcc_t = models.CharField(_("AJCC 8th T"), max_length=4, choices=TCategory.choices)
    ajcc_n = models.CharField(_("AJCC 8th N"), max_length=4, choices=NCategory.choices)
    ca19_9_u_ml = models.DecimalField(
        _("CA19-9 (U/mL)"),
        max_digits=9,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_between("0", "1000000"),
    )
    cea_ng_ml = models.DecimalField(
        _("CEA (ng/mL)"),
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=_between("0", "100000"),
    )
    ca125_u_ml = models.DecimalField(
        _("CA125 (U/mL)"),
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_between("0", "100000"),
    )
    biliary_stent = models.BooleanField(_("biliary stent or drainage"), default=False)
    biliary_stent_type = models.CharField(
        _("stent type"), max_length=16, choices=StentType.choices, blank=True
    )
    comorbid_diabetes = models.BooleanField(_("diabetes mellitus"), default=False)
    comorbid_hypertension = models.BooleanField(_("hypertension"), default=False)
    comorbid_coronary = models.BooleanField(_("coronary heart disease"), default=False)
    comorbid_liver = models.BooleanField(_("chronic liver disease / hepatitis B"), default=False)
    comorbid_kidney = models.BooleanField(_("chronic kidney disease"), default=False)
    comorbid_other = models.CharField(_("other comorbidities"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("baseline")
        verbose_name_plural = _("baselines")

    def __str__(self) -> str:
        return f"{self.patient_id}: baseline {self.assessed_on}"

    @property
    def ajcc_stage(self) -> str:
        # Synchronous liver metastases make every study patient M1, which is stage IV (AJCC 8th).
        return "IV"

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "biliary_stent_type",
            self.biliary_stent_type,
            self.biliary_stent,
            _("Say which kind of stent or drainage."),
        )
        not_applicable_if(
            errors,
            "biliary_stent_type",
            self.biliary_stent_type,
            not self.biliary_stent,
            _("A stent type is given but no stent is recorded."),
        )
        if self.liver_met_count == 1 and self.liver_met_distribution == self.Distribution.BILOBAR:
            errors.setdefault("liver_met_distribution", []).append(
                _("A single liver metastasis cannot be bilobar.")
            )
        raise_if(errors)


class Withdrawal(ClinicalModel):
    """Withdrawal or drop-out; the protocol requires the reason and the last medication date."""

    class Kind(models.TextChoices):
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Patient withdrew consent")
        DROP_OUT = "drop_out", _("Drop-out")
        INVESTIGATOR = "investigator", _("Withdrawn by the investigator")

    class Reason(models.TextChoices):
        PATIENT_DECISION = "patient_decision", _("Patient's decision")
        ADVERSE_EVENT = "adverse_event", _("Adverse event / toxicity")
        PROGRESSION = "progression", _("Disease progression")
        CONDITION = "condition", _("Deterioration of general condition")
        TRANSFERRED = "transferred", _("Treated at another hospital")
        NON_COMPLIANCE = "non_compliance", _("Non-compliance with the protocol")
        OTHER = "other", _("Other")

    patient = models.OneToOneField(
        Patient,
        on_delete=models.PROTECT,
        related_name="withdrawal",
        verbose_name=_("patient"),
        error_messages={"unique": _("A withdrawal is already recorded for this patient.")},
    )
    withdrawn_on = models.DateField(_("date of withdrawal"))
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    reason = models.CharField(_("reason"), max_length=24, choices=Reason.choices)
    reason_detail = models.CharField(_("details"), max_length=300, blank=True)
    no_medication_given = models.BooleanField(_("no study treatment was ever given"), default=False)
    last_medication_on = models.DateField(_("date of last medication"), null=True, blank=True)

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")

    def __str__(self) -> str:
        return f"{self.patient_id}: withdrawn {self.withdrawn_on}"

    def clean(self) -> None:
        errors: dict = {}
        required_if(
            errors,
            "reason_detail",
            self.reason_detail.strip(),
            self.reason == self.Reason.OTHER,
            _("Describe the reason."),
        )
        required_if(
            errors,
            "last_medication_on",
            self.last_medication_on,
            not self.no_medication_given,
            _("The protocol requires the date of the last medication."),
        )
        not_applicable_if(
            errors,
            "last_medication_on",
            self.last_medication_on,
            self.no_medication_given,
            _("No treatment was given, so there is no last medication date."),
        )
        if (
            self.last_medication_on
            and self.withdrawn_on
            and self.last_medication_on > self.withdrawn_on
        ):
            errors.setdefault("last_medication_on", []).append(
                _("The last medication cannot be after the withdrawal.")
            )
        raise_if(errors)
