"""Study, sites, cohorts, roles, site memberships and the CRF base every clinical model inherits."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
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


class ChainedHistory(models.Model):
    """Base of every history table: each row carries an HMAC over its content and the hash of
    the record's previous history row (`trial.audit`), so an edit made to the history in the
    database, outside the application, is evident to `manage.py verify_audit`."""

    row_hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        abstract = True


class Study(models.Model):
    code = models.CharField(_("registry number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=300)
    title_zh = models.CharField(_("title (Chinese)"), max_length=300, blank=True)
    sponsor = models.CharField(_("sponsor"), max_length=200, blank=True)
    # Database lock before analysis: while set, no clinical record of the study can change.
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True, editable=False)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("locked by"),
    )
    lock_reason = models.CharField(_("reason"), max_length=500, blank=True, editable=False)
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        permissions = [
            ("view_analytics", _("Can see the analyses, survival statistics and dashboards")),
            ("verify_source", _("Can verify forms against the source (SDV)")),
            ("sign_record", _("Can sign forms and casebooks electronically")),
            ("lock_record", _("Can lock and unlock forms, casebooks and the study")),
            ("raise_query", _("Can raise, close and re-open data queries")),
            ("answer_query", _("Can answer data queries")),
            ("view_audit", _("Can read and export the audit trail")),
            ("view_login_log", _("Can read the login log")),
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
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="unique_membership_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site.code}"


class FormStatus(models.TextChoices):
    """Lifecycle of a CRF: draft → complete → verified (SDV by a monitor) → signed (investigator)
    → locked (data manager). Editing a verified or signed form returns it to complete; a locked
    form cannot change until a data manager unlocks it (`trial.lifecycle`)."""

    DRAFT = "draft", _("Draft")
    COMPLETE = "complete", _("Complete")
    VERIFIED = "verified", _("Source-verified")
    SIGNED = "signed", _("Signed")
    LOCKED = "locked", _("Locked")


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
    history = HistoricalRecords(inherit=True, bases=[ChainedHistory])

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


class Casebook(models.Model):
    """A patient's casebook: the counter every save of one of the patient's records moves (a
    casebook signature is valid while it has not moved), and the patient-level lock."""

    patient = models.OneToOneField(
        "patients.Patient",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="casebook",
        verbose_name=_("patient"),
    )
    version = models.PositiveIntegerField(_("casebook version"), default=0)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("locked by"),
    )
    lock_reason = models.CharField(_("reason"), max_length=500, blank=True)
    history = HistoricalRecords(bases=[ChainedHistory], excluded_fields=["version"])

    class Meta:
        verbose_name = _("casebook")
        verbose_name_plural = _("casebooks")

    def __str__(self) -> str:
        return str(self.patient)


class RecordLink(models.Model):
    """The record a signature, a verification or a query is about (any clinical model)."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("form")
    )
    object_id = models.PositiveBigIntegerField(_("record id"))
    record = GenericForeignKey("content_type", "object_id")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="+", verbose_name=_("patient")
    )

    class Meta:
        abstract = True


class SignatureMeaning(models.TextChoices):
    APPROVAL = "approval", _("I approve the data of this record as accurate and complete.")
    CASEBOOK = (
        "casebook",
        _("I have reviewed this casebook and confirm that its data are accurate and complete."),
    )


class Signature(RecordLink):
    """An investigator's electronic signature of a record (or, with `scope=casebook`, of the
    patient's whole casebook, then the record is the patient). Append-only. Linked to the exact
    version signed: the record's version, or the casebook's; once that moves, the signature no
    longer holds, and the page says so."""

    class Scope(models.TextChoices):
        RECORD = "record", _("Form")
        CASEBOOK = "casebook", _("Casebook")

    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices)
    version = models.PositiveIntegerField(_("version signed"))
    meaning = models.CharField(_("meaning"), max_length=16, choices=SignatureMeaning.choices)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("signed by"),
    )
    signed_at = models.DateTimeField(_("signed at"), auto_now_add=True)
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        indexes = [models.Index(fields=["content_type", "object_id"], name="signature_record")]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} v{self.version} · {self.signed_by}"


class SourceVerification(RecordLink):
    """A monitor's source-data verification of a record: of the whole form (`field` empty) or
    of one field. Append-only; current while the record's version is the one verified."""

    field = models.CharField(_("field"), max_length=64, blank=True)
    version = models.PositiveIntegerField(_("version verified"))
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("verified by"),
    )
    verified_at = models.DateTimeField(_("verified at"), auto_now_add=True)
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("source-data verification")
        verbose_name_plural = _("source-data verifications")
        indexes = [models.Index(fields=["content_type", "object_id"], name="sdv_record")]

    def __str__(self) -> str:
        return f"SDV {self.field or '*'} v{self.version} · {self.verified_by}"


class QueryStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class DataQuery(RecordLink):
    """A question on a field of a record (or on the whole form, `field` empty), raised by a
    monitor or a data manager, or by an automatic check (`rule`). Its thread is the messages."""

    class Kind(models.TextChoices):
        MANUAL = "manual", _("Raised by a person")
        SYSTEM = "system", _("Automatic check")

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="queries", verbose_name=_("site")
    )
    field = models.CharField(_("field"), max_length=64, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    rule = models.CharField(_("check"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=QueryStatus.choices, default=QueryStatus.OPEN
    )
    text = models.CharField(_("query"), max_length=1000)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("raised by"),
    )
    raised_at = models.DateTimeField(_("raised at"), auto_now_add=True)
    status_changed_at = models.DateTimeField(_("status changed at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("data query")
        verbose_name_plural = _("data queries")
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="query_record"),
            models.Index(fields=["site", "status"], name="query_site_status"),
        ]
        constraints = [
            # An automatic check raises one query per record at a time.
            models.UniqueConstraint(
                fields=["rule", "content_type", "object_id"],
                condition=models.Q(kind="system") & ~models.Q(status="closed"),
                name="one_open_system_query_per_record",
            )
        ]

    def __str__(self) -> str:
        return f"Q{self.pk} {self.get_status_display()}: {self.text[:40]}"


class QueryMessage(models.Model):
    """One step of a query's thread: raised, answered, closed, re-opened (by a person or by the
    automatic check that raised it)."""

    class Action(models.TextChoices):
        RAISE = "raise", _("Raised")
        ANSWER = "answer", _("Answered")
        CLOSE = "close", _("Closed")
        REOPEN = "reopen", _("Re-opened")

    query = models.ForeignKey(
        DataQuery, on_delete=models.PROTECT, related_name="messages", verbose_name=_("query")
    )
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    text = models.CharField(_("message"), max_length=2000, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("author"),
    )
    at = models.DateTimeField(_("at"), auto_now_add=True)
    history = HistoricalRecords(bases=[ChainedHistory])

    class Meta:
        verbose_name = _("query message")
        verbose_name_plural = _("query messages")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.author or 'system'}"


class LoginEvent(models.Model):
    """The account log: logins, logouts, failed logins and lockouts (never the password)."""

    class Kind(models.TextChoices):
        LOGIN = "login", _("Login")
        LOGOUT = "logout", _("Logout")
        FAILED = "failed", _("Failed login")
        LOCKED_OUT = "locked_out", _("Locked out")
        SESSION_EXPIRED = "expired", _("Session expired")

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("event"), max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("user"),
    )
    username = models.CharField(_("user name given"), max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.username}"
