"""The import log and the abstract of a retrospective chart: what the CRFs cannot hold.

A retrospective chart abstraction often has values that a CRF cannot carry without inventing
others (a cycle count without the cycles' dates and doses, a best response without the
imaging, a surgery date without the operative details). They are kept here, typed, one
abstract per imported patient, so the analysis dataset can fall back to them; CRF records
are created only where the row gives everything the CRF needs.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trial.models import AuditedModel


class ImportRun(models.Model):
    """One run of the retrospective import (upload page or command), with its report."""

    class Status(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        VALID = "valid", _("Valid (dry run, nothing written)")
        REJECTED = "rejected", _("Rejected (nothing written)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    site = models.ForeignKey(
        "trial.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("site"),
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    created_patients = models.PositiveIntegerField(_("patients created"), default=0)
    updated_patients = models.PositiveIntegerField(_("patients updated"), default=0)
    dry_run = models.BooleanField(_("dry run"), default=False)
    update = models.BooleanField(_("update existing patients"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    report = models.JSONField(_("report"), default=list, blank=True)
    seconds = models.FloatField(_("duration (s)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-created_at", "-id"]
        permissions = [("run_import", _("Can import the retrospective cohort from a file"))]

    def __str__(self) -> str:
        return f"{self.file_name} · {self.status}"


class RetrospectiveAbstract(AuditedModel):
    """The values abstracted from a retrospective chart, as imported (one per patient).

    Empty fields were not collected, or were "unknown" when their column is listed in
    `unknown_columns`. No PHI: the identity goes to patients.PatientIdentity only.
    """

    patient = models.OneToOneField(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="retrospective_abstract",
        verbose_name=_("patient"),
    )
    import_run = models.ForeignKey(
        ImportRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="abstracts",
        verbose_name=_("import run"),
    )
    source_file = models.CharField(_("source file"), max_length=255)
    source_row = models.PositiveIntegerField(_("source row"))
    age_years = models.PositiveSmallIntegerField(
        _("age at enrollment (years)"), null=True, blank=True
    )
    date_of_birth_estimated = models.BooleanField(
        _("date of birth estimated from the age"), default=False
    )
    identity_placeholder = models.BooleanField(
        _("name or record number not in the file (placeholder)"), default=False
    )
    vital_status = models.CharField(_("vital status"), max_length=8)
    last_contact_on = models.DateField(_("last contact"))
    death_on = models.DateField(_("date of death"), null=True, blank=True)
    death_cause = models.CharField(_("cause of death"), max_length=16, blank=True)
    death_cause_detail = models.CharField(_("details of the cause"), max_length=300, blank=True)
    death_source = models.CharField(_("source of the death information"), max_length=16, blank=True)
    diagnosed_on = models.DateField(_("diagnosis"), null=True, blank=True)
    baseline_on = models.DateField(_("baseline work-up"), null=True, blank=True)
    ecog = models.PositiveSmallIntegerField(_("ECOG"), null=True, blank=True)
    height_cm = models.DecimalField(
        _("height (cm)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    weight_kg = models.DecimalField(
        _("weight (kg)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    primary_site = models.CharField(_("primary tumour site"), max_length=16, blank=True)
    primary_size_mm = models.DecimalField(
        _("primary tumour size (mm)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    liver_mets_count = models.PositiveSmallIntegerField(
        _("number of liver metastases"), null=True, blank=True
    )
    liver_mets_largest_mm = models.DecimalField(
        _("largest liver metastasis (mm)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    liver_mets_distribution = models.CharField(
        _("liver metastases distribution"), max_length=16, blank=True
    )
    ajcc_t = models.CharField(_("AJCC 8th T"), max_length=4, blank=True)
    ajcc_n = models.CharField(_("AJCC 8th N"), max_length=4, blank=True)
    ca19_9_u_ml = models.DecimalField(
        _("CA19-9 (U/mL)"), max_digits=9, decimal_places=1, null=True, blank=True
    )
    cea_ng_ml = models.DecimalField(
        _("CEA (ng/mL)"), max_digits=8, decimal_places=2, null=True, blank=True
    )
    regimen = models.CharField(_("regimen"), max_length=16, blank=True)
    regimen_other = models.CharField(_("regimen name"), max_length=120, blank=True)
    first_cycle_on = models.DateField(_("first cycle"), null=True, blank=True)
    cycles_count = models.PositiveSmallIntegerField(_("cycles"), null=True, blank=True)
    best_response = models.CharField(_("best response"), max_length=2, blank=True)
    surgery_on = models.DateField(_("date of operation"), null=True, blank=True)
    pancreatic_procedure = models.CharField(_("pancreatic procedure"), max_length=8, blank=True)
    liver_procedures = models.CharField(_("liver procedures"), max_length=80, blank=True)
    liver_lesions_resected = models.PositiveSmallIntegerField(
        _("liver lesions resected"), null=True, blank=True
    )
    liver_lesions_ablated = models.PositiveSmallIntegerField(
        _("liver lesions ablated"), null=True, blank=True
    )
    approach = models.CharField(_("approach"), max_length=16, blank=True)
    operative_minutes = models.PositiveSmallIntegerField(
        _("operative time (min)"), null=True, blank=True
    )
    blood_loss_ml = models.PositiveIntegerField(_("blood loss (mL)"), null=True, blank=True)
    r_status = models.CharField(_("pancreatic margin"), max_length=2, blank=True)
    recurrence_on = models.DateField(_("recurrence / progression"), null=True, blank=True)
    recurrence_sites = models.CharField(_("recurrence sites"), max_length=80, blank=True)
    recurrence_site_other = models.CharField(_("other site"), max_length=120, blank=True)
    recurrence_detected_by = models.CharField(_("how detected"), max_length=16, blank=True)
    unknown_columns = models.JSONField(_("columns collected but unknown"), default=list, blank=True)

    class Meta:
        verbose_name = _("retrospective abstract")
        verbose_name_plural = _("retrospective abstracts")

    def __str__(self) -> str:
        return f"{self.patient_id}: {self.source_file} row {self.source_row}"

    @property
    def is_complete(self) -> bool:
        return True
