"""Study, sites, cohorts, roles, site memberships and the CRF base every clinical model inherits."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Cohort(models.TextChoices):
    RETROSPECTIVE = "retrospective", _("Retrospective")
    PROSPECTIVE = "prospective", _("Prospective")


class Role(models.TextChoices):
    """Roles are Django groups of these names; `trial.roles` holds what each may do."""

    COORDINATOR = "coordinator", _("Research coordinator")
    INVESTIGATOR = "investigator", _("Investigator")
    STATISTICIAN = "statistician", _("Statistician")
    MONITOR = "monitor", _("Monitor")
    DATA_MANAGER = "data_manager", _("Data manager")
    SITE_ADMIN = "site_admin", _("Site administrator")


class Study(models.Model):
    code = models.CharField(_("registry number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=300)
    title_zh = models.CharField(_("title (Chinese)"), max_length=300, blank=True)
    sponsor = models.CharField(_("sponsor"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        permissions = [
            ("view_analytics", _("Can see the analyses, survival statistics and dashboards"))
        ]

    def __str__(self) -> str:
        return self.code


class Site(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(
        _("site code"),
        max_length=8,
        unique=True,
        help_text=_("Prefix of the subject codes, e.g. CJFH gives CJFH-0001."),
        validators=[
            RegexValidator(r"^[A-Z][A-Z0-9]{1,7}$", _("Use 2–8 capital letters or digits."))
        ],
    )
    name = models.CharField(_("name"), max_length=200)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # Subject numbers only ever grow, so a code is never given twice (see patient_register).
    last_subject_number = models.PositiveIntegerField(_("last subject number"), default=0)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class SiteMembership(models.Model):
    """A user works at a site: they see that site's patients and nothing of other sites."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="site_memberships",
        verbose_name=_("user"),
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("site"),
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="unique_membership_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site.code}"


class FormStatus(models.TextChoices):
    """Lifecycle of a CRF. Later stages (verified, signed, locked) come with data management."""

    DRAFT = "draft", _("Draft")
    COMPLETE = "complete", _("Complete")


class ClinicalQuerySet(models.QuerySet):
    def active(self) -> "ClinicalQuerySet":
        """Rows that have not been voided."""
        return self.filter(voided_at__isnull=True)


class AuditedModel(models.Model):
    """Who and when, an optimistic-lock version, voiding instead of deletion, audit history.

    Writes go through `trial.services.clinical_save` / `clinical_void`, which check the
    version, require a reason for change once a record is complete, and attribute the history.
    """

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("updated by"),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True, editable=False)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("voided by"),
    )
    void_reason = models.CharField(_("reason for voiding"), max_length=500, blank=True)
    history = HistoricalRecords(inherit=True)

    objects = ClinicalQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None

    @property
    def is_complete(self) -> bool:
        """Edits of a complete record need a reason for change (subclasses say when)."""
        return False


class ClinicalModel(AuditedModel):
    """The CRF base: an audited record with a form status (draft → complete → …)."""

    status = models.CharField(
        _("form status"),
        max_length=16,
        choices=FormStatus.choices,
        default=FormStatus.DRAFT,
    )

    class Meta:
        abstract = True

    @property
    def is_complete(self) -> bool:
        return self.status != FormStatus.DRAFT
