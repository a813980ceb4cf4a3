"""Research specimens: storage (freezer → rack → box → row/column), specimens and aliquots, and
the append-only chain of custody from which each specimen's position and status derive.

The current position is stored on the specimen (kept by the services from the custody events)
so that the database can refuse two specimens in one position, even under concurrent writes.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from trial.models import AuditedModel, ClinicalModel, Site


def position_label(row: int | None, column: int | None) -> str:
    """A grid position as printed on the boxes: row letter and column number, e.g. "B7"."""
    if not row or not column:
        return ""
    return f"{chr(ord('A') + row - 1)}{column}"


class Freezer(AuditedModel):
    """A freezer (or liquid-nitrogen tank) of a site's biobank."""

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="freezers", verbose_name=_("site")
    )
    name = models.CharField(_("name"), max_length=64)
    temperature_c = models.SmallIntegerField(
        _("temperature (°C)"), validators=[MinValueValidator(-200), MaxValueValidator(8)]
    )

    class Meta:
        verbose_name = _("freezer")
        verbose_name_plural = _("freezers")
        ordering = ["site", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="unique_freezer_name_per_site")
        ]

    def __str__(self) -> str:
        return self.name


class Rack(AuditedModel):
    freezer = models.ForeignKey(
        Freezer, on_delete=models.PROTECT, related_name="racks", verbose_name=_("freezer")
    )
    name = models.CharField(_("name"), max_length=64)

    class Meta:
        verbose_name = _("rack")
        verbose_name_plural = _("racks")
        ordering = ["freezer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["freezer", "name"], name="unique_rack_name_per_freezer")
        ]

    def __str__(self) -> str:
        return self.name


class Box(AuditedModel):
    """A storage box: a grid of `rows` × `columns` positions (e.g. 9 × 9)."""

    rack = models.ForeignKey(
        Rack, on_delete=models.PROTECT, related_name="boxes", verbose_name=_("rack")
    )
    name = models.CharField(_("name"), max_length=64)
    rows = models.PositiveSmallIntegerField(
        _("rows"), default=9, validators=[MinValueValidator(1), MaxValueValidator(26)]
    )
    columns = models.PositiveSmallIntegerField(
        _("columns"), default=9, validators=[MinValueValidator(1), MaxValueValidator(26)]
    )

    class Meta:
        verbose_name = _("box")
        verbose_name_plural = _("boxes")
        ordering = ["rack", "name"]
        constraints = [
            models.UniqueConstraint(fields=["rack", "name"], name="unique_box_name_per_rack")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def capacity(self) -> int:
        return self.rows * self.columns


class Specimen(ClinicalModel):
    """A research specimen taken at the index operation, or an aliquot of one (`parent`)."""

    class Kind(models.TextChoices):
        TUMOUR = "tumour", _("Tumour tissue")
        ADJACENT = "adjacent", _("Adjacent non-tumour tissue")
        DISCARDED = "discarded", _("Discarded postoperative specimen")

    class Origin(models.TextChoices):
        PANCREAS = "pancreas", _("Pancreatic primary")
        LIVER = "liver", _("Liver metastasis")

    class Preservation(models.TextChoices):
        FRESH_FROZEN = "fresh_frozen", _("Fresh-frozen in liquid nitrogen")
        FFPE = "ffpe", _("FFPE")
        RNALATER = "rnalater", _("RNAlater")
        OCT = "oct", _("OCT")

    class State(models.TextChoices):
        COLLECTED = "collected", _("Collected")
        STORED = "stored", _("Stored")
        THAWED = "thawed", _("Thawed")
        SHIPPED = "shipped", _("Shipped")
        DESTROYED = "destroyed", _("Destroyed")

    # The letter of the kind in the specimen code (CJFH-0001-T01).
    KIND_LETTERS = {Kind.TUMOUR: "T", Kind.ADJACENT: "A", Kind.DISCARDED: "D"}

    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="specimens",
        verbose_name=_("patient"),
    )
    operation = models.ForeignKey(
        "surgery.Operation",
        on_delete=models.PROTECT,
        related_name="specimens",
        verbose_name=_("operation"),
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        related_name="aliquots",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("aliquot of"),
    )
    code = models.CharField(_("specimen code"), max_length=32, unique=True, editable=False)
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices)
    origin = models.CharField(_("origin"), max_length=16, choices=Origin.choices)
    weight_mg = models.DecimalField(
        _("weight (mg)"),
        max_digits=7,
        decimal_places=1,
        help_text=_("Research tissue about 100 mg, a discarded specimen about 500 mg."),
    )
    collected_at = models.DateTimeField(_("collection time"))
    warm_ischaemia_min = models.PositiveSmallIntegerField(
        _("warm ischaemia (min)"), null=True, blank=True, validators=[MaxValueValidator(600)]
    )
    cold_ischaemia_min = models.PositiveSmallIntegerField(
        _("cold ischaemia (min)"), null=True, blank=True, validators=[MaxValueValidator(1440)]
    )
    preservation = models.CharField(_("preservation"), max_length=16, choices=Preservation.choices)
    notes = models.CharField(_("notes"), max_length=500, blank=True)
    # Derived from the custody events by biobank.services; never typed.
    state = models.CharField(
        _("custody status"),
        max_length=16,
        choices=State.choices,
        default=State.COLLECTED,
        editable=False,
    )
    box = models.ForeignKey(
        Box,
        on_delete=models.PROTECT,
        related_name="specimens",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("box"),
    )
    row = models.PositiveSmallIntegerField(_("row"), null=True, blank=True, editable=False)
    column = models.PositiveSmallIntegerField(_("column"), null=True, blank=True, editable=False)
    flagged_for_destruction = models.BooleanField(
        _("flagged for destruction"), default=False, editable=False
    )
    flagged_on = models.DateField(_("flagged on"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("specimen")
        verbose_name_plural = _("specimens")
        ordering = ["code"]
        constraints = [
            # The race guard: one specimen per box position, enforced by the database.
            models.UniqueConstraint(
                fields=["box", "row", "column"],
                condition=Q(box__isnull=False, voided_at__isnull=True),
                name="one_specimen_per_box_position",
                violation_error_message=_("This box position is already taken."),
            ),
            models.CheckConstraint(
                condition=Q(weight_mg__gt=Decimal("0")),
                name="specimen_weight_positive",
                violation_error_message=_("The weight must be more than 0 mg."),
            ),
            models.CheckConstraint(
                condition=Q(box__isnull=True) | Q(row__isnull=False, column__isnull=False),
                name="specimen_position_complete",
            ),
        ]
        indexes = [models.Index(fields=["patient", "state"], name="specimen_patient_state")]

    def __str__(self) -> str:
        return self.code

    @property
    def position(self) -> str:
        return position_label(self.row, self.column)

    @property
    def is_aliquot(self) -> bool:
        return self.parent_id is not None

    def clean(self) -> None:
        if self.weight_mg is not None and self.weight_mg <= 0:
            message = _("The weight must be more than 0 mg (entered: %(weight)s mg).")
            raise ValidationError({"weight_mg": message % {"weight": self.weight_mg}})


class CustodyEvent(AuditedModel):
    """One step of a specimen's chain of custody. Append-only: voided with a reason, never
    edited."""

    class Kind(models.TextChoices):
        COLLECTED = "collected", _("Collected")
        STORED = "stored", _("Stored")
        MOVED = "moved", _("Moved")
        ALIQUOTED = "aliquoted", _("Aliquoted")
        THAWED = "thawed", _("Thawed")
        SHIPPED = "shipped", _("Shipped")
        DESTROYED = "destroyed", _("Destroyed")
        FLAGGED = "flagged", _("Flagged for destruction")
        UNFLAGGED = "unflagged", _("Destruction flag lifted")

    specimen = models.ForeignKey(
        Specimen, on_delete=models.PROTECT, related_name="events", verbose_name=_("specimen")
    )
    kind = models.CharField(_("event"), max_length=16, choices=Kind.choices)
    at = models.DateTimeField(_("when"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("by"),
    )
    box = models.ForeignKey(
        Box,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("to box"),
    )
    row = models.PositiveSmallIntegerField(_("row"), null=True, blank=True)
    column = models.PositiveSmallIntegerField(_("column"), null=True, blank=True)
    destination = models.CharField(_("destination"), max_length=200, blank=True)
    notes = models.CharField(_("notes"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("custody event")
        verbose_name_plural = _("custody events")
        ordering = ["specimen", "at", "id"]

    def __str__(self) -> str:
        return f"{self.specimen_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"

    @property
    def position(self) -> str:
        return position_label(self.row, self.column)
