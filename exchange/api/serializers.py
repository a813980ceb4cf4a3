"""Request and response bodies of the record write endpoints (/api/v1/records/<form>/).

Field names are those of the read endpoints (/api/v1/forms/<form>/): a foreign key is
`<name>_id`, codes are the stored values (the codebook gives their labels), dates ISO 8601.
A request body carries the writable fields only; derived values (cycle number, BSA, dose
reduction, flags and CTCAE grades, the cycle count of a panel…) are computed by the services
and come back in the response. Free-text fields the exports leave out (notes, "other"
texts, reasons) may be written but are never returned: the API answers with the export
columns only, so no response carries text that may name people.

The request serializers only check types, codes, lengths and ranges (the model's field
validators, through ModelSerializer). Every rule that compares values or records runs in the
app's service, exactly as for the form; the view maps its errors onto these field names.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from assessments import analytes
from assessments.models import LabPanel, LabResult
from followup.models import Death, FollowUpContact, Recurrence
from treatments import ctcae_terms
from treatments.models import AdverseEvent, ChemoCycle, CycleDose
from trial.models import ClinicalModel

# Record ids and foreign keys: positive 32-bit integers (a larger number cannot name a record,
# and would overflow the database's integer on PostgreSQL).
MAX_ID = 2**31 - 1


def record_id_field(**options) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **options)


# Fields whose name the read API already uses for other choice sets (the baseline's ECOG, the
# kinds of other forms): a shared enum component would need a new name in the settings, so
# their codes are listed in place (an enum inside allOf, which drf-spectacular leaves there).
INLINE_ENUMS = ("ecog", "kind")


def inline_choice_field(choices, **options) -> serializers.ChoiceField:
    """A ChoiceField whose allowed codes the schema lists in place."""
    values = [value for value, _label in choices]
    kind = "integer" if all(isinstance(v, int) for v in values) else "string"
    field_class = extend_schema_field({"allOf": [{"type": kind, "enum": values}]})(
        type("InlineChoiceField", (serializers.ChoiceField,), {})
    )
    return field_class(choices=choices, **options)


# Each request body is named after its response (CycleRecord → CycleRecordRequest): the schema
# then pairs them, and their coded fields share the response's enums instead of clashing
# with the read API's enums of the same name (ECOG, kind).


class WriteSerializer(serializers.ModelSerializer):
    """The fields shared by every write body: the patient and the form's bookkeeping.

    `subject_code` names the patient on a create (required) and may be repeated on an edit
    (it must then be the record's). `change_reason` is the reason for change an edit of a
    complete record needs (stored in the audit trail); `complete` false saves a draft, as the
    form's "save as draft" button does (a complete record never goes back to draft).
    """

    subject_code = serializers.CharField(
        max_length=32, help_text=_("The patient's subject code (e.g. SITEA-0001).")
    )
    change_reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Reason for change: required to edit a complete record (audit trail)."),
    )
    complete = serializers.BooleanField(
        required=False,
        default=True,
        help_text=_("false saves the record as a draft (only while it is a draft)."),
    )

    BOOKKEEPING = ("subject_code", "change_reason", "complete")

    class Meta:
        validators: list = []  # uniqueness is the service's (with the form's messages)

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.DecimalField):
            kwargs["coerce_to_string"] = False  # numbers in, numbers out (as the read API)
        return field_class, kwargs

    @classmethod
    def model_fields(cls) -> tuple[str, ...]:
        """The names of the body's fields that are model attributes (`line_id` included)."""
        return tuple(name for name in cls.Meta.fields if name not in cls.BOOKKEEPING)


# --- follow-up ----------------------------------------------------------------------------


@extend_schema_serializer(component_name="FollowUpContactRecord")
class FollowUpContactWrite(WriteSerializer):
    ecog = inline_choice_field(
        FollowUpContact._meta.get_field("ecog").choices,
        required=False,
        allow_null=True,
        help_text=_("ECOG (0-4); null when not assessed."),
    )

    class Meta(WriteSerializer.Meta):
        model = FollowUpContact
        fields = (
            "subject_code",
            "contacted_on",
            "mode",
            "reached",
            "vital_status",
            "ecog",
            "recurrence",
            "subsequent_therapy",
            "subsequent_therapy_detail",
            "notes",
            "change_reason",
            "complete",
        )
        extra_kwargs = {
            "subsequent_therapy_detail": {"write_only": True},
            "notes": {"write_only": True},
        }


@extend_schema_serializer(component_name="RecurrenceRecord")
class RecurrenceWrite(WriteSerializer):
    contact_id = record_id_field(
        required=False,
        allow_null=True,
        help_text=_("The follow-up contact that reported it (its record id), if any."),
    )
    kind = inline_choice_field(
        Recurrence.Kind.choices, help_text=_("Recurrence after a resection, else progression.")
    )

    class Meta(WriteSerializer.Meta):
        model = Recurrence
        fields = (
            "subject_code",
            "contact_id",
            "detected_on",
            "kind",
            "site_local",
            "site_liver",
            "site_peritoneum",
            "site_lung",
            "site_distant_nodes",
            "site_other",
            "site_other_detail",
            "detected_by",
            "notes",
            "change_reason",
            "complete",
        )


@extend_schema_serializer(component_name="DeathRecord")
class DeathWrite(WriteSerializer):
    class Meta(WriteSerializer.Meta):
        model = Death
        fields = (
            "subject_code",
            "died_on",
            "cause",
            "cause_detail",
            "source",
            "notes",
            "change_reason",
            "complete",
        )


# --- treatments ---------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdverseEventRecord")
class AdverseEventWrite(WriteSerializer):
    line_id = record_id_field(
        required=False,
        allow_null=True,
        help_text=_("Regimen line (record id); empty takes the line given at the onset date."),
    )
    term = serializers.ChoiceField(
        choices=[(term.term, str(term.label)) for term in ctcae_terms.TERMS],
        help_text=_("CTCAE v5.0 term; 'other' with term_other."),
    )

    class Meta(WriteSerializer.Meta):
        model = AdverseEvent
        fields = (
            "subject_code",
            "line_id",
            "term",
            "term_other",
            "grade",
            "onset_on",
            "resolved_on",
            "serious",
            "attribution",
            "action_taken",
            "outcome",
            "change_reason",
            "complete",
        )


@extend_schema_serializer(component_name="DoseRecord")
class DoseWrite(serializers.ModelSerializer):
    """One drug of a cycle's dose grid. `id` names a saved dose of the cycle; without it a
    saved dose of the same drug is taken, else the dose is new. On an edit that gives
    `doses`, the grid is the whole list: a saved dose left out is voided."""

    id = record_id_field(required=False, help_text=_("A saved dose of this cycle."))

    class Meta:
        model = CycleDose
        fields = (
            "id",
            "drug",
            "drug_other",
            "planned_mg_m2",
            "given_mg",
            "planned_days",
            "given_days",
        )
        validators: list = []

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.DecimalField):
            kwargs["coerce_to_string"] = False
        return field_class, kwargs


@extend_schema_serializer(component_name="CycleRecord")
class CycleWrite(WriteSerializer):
    line_id = record_id_field(help_text=_("The regimen line of the cycle (record id)."))
    doses = DoseWrite(
        many=True,
        max_length=20,
        help_text=_("The cycle's dose grid, one entry per drug (the regimen's drugs)."),
    )

    CHILDREN = "doses"

    class Meta(WriteSerializer.Meta):
        model = ChemoCycle
        fields = (
            "subject_code",
            "line_id",
            "given_on",
            "weight_kg",
            "delay_days",
            "delay_reason",
            "gcsf",
            "dose_reduction_reason",
            "doses",
            "change_reason",
            "complete",
        )

    @classmethod
    def model_fields(cls) -> tuple[str, ...]:
        return tuple(name for name in super().model_fields() if name != "doses")


# --- assessments --------------------------------------------------------------------------

UNIT_CODES = sorted({code for analyte in analytes.ANALYTES for code in analyte.unit_codes})


@extend_schema_serializer(component_name="LabResultRecord")
class ResultWrite(serializers.Serializer):
    """One value of a lab panel, as the laboratory reported it; it is converted to the SI
    unit, flagged and CTCAE-graded by the service."""

    analyte = serializers.ChoiceField(
        choices=[(a.code, str(a.label)) for a in analytes.ANALYTES],
        help_text=_("Analyte code of the catalogue (GET /api/v1/exports/codebook/)."),
    )
    entered_value = serializers.DecimalField(
        max_digits=12, decimal_places=4, coerce_to_string=False, help_text=_("The value.")
    )
    entered_unit = serializers.ChoiceField(
        choices=UNIT_CODES,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Its unit (one the analyte accepts); empty for the SI unit."),
    )
    extreme_confirmed = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("Confirms a possible but extreme value (refused without it)."),
    )


@extend_schema_serializer(component_name="LabPanelRecord")
class LabPanelWrite(WriteSerializer):
    results = ResultWrite(
        many=True,
        max_length=len(analytes.ANALYTES),
        help_text=_(
            "The panel's values, one per analyte. On an edit that gives `results`, the list "
            "is the whole panel: a saved value left out is voided."
        ),
    )

    CHILDREN = "results"

    class Meta(WriteSerializer.Meta):
        model = LabPanel
        fields = (
            "subject_code",
            "sampled_on",
            "context",
            "postop_day",
            "notes",
            "results",
            "change_reason",
            "complete",
        )

    @classmethod
    def model_fields(cls) -> tuple[str, ...]:
        return tuple(name for name in super().model_fields() if name != "results")


class VoidSerializer(serializers.Serializer):
    """DELETE body: voiding keeps the record and its history, with the reason."""

    void_reason = serializers.CharField(
        max_length=500, help_text=_("Why the record is voided (audit trail).")
    )


# --- responses ----------------------------------------------------------------------------


def _read_field(model: type[models.Model], name: str) -> serializers.Field:
    """A read-only field for the model field `name` (or `<fk>_id`), typed as the read API
    types it: codes as enums, decimals as numbers."""
    model_field = model._meta.get_field(name.removesuffix("_id") if name.endswith("_id") else name)
    options: dict = {"read_only": True, "help_text": str(model_field.verbose_name)}
    if model_field.null or model_field.is_relation:
        options["allow_null"] = True
    if model_field.is_relation:
        if name != model_field.attname:
            options["source"] = model_field.attname
        return serializers.IntegerField(**options)
    if model_field.choices and name in INLINE_ENUMS:
        return inline_choice_field(model_field.choices, **options)
    if model_field.choices:
        return serializers.ChoiceField(choices=model_field.choices, **options)
    if isinstance(model_field, models.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(model_field, models.DateField):
        return serializers.DateField(**options)
    if isinstance(model_field, models.DecimalField):
        return serializers.FloatField(**options)
    if isinstance(model_field, models.IntegerField):
        return serializers.IntegerField(**options)
    return serializers.CharField(**options)


def record_serializer(
    component: str,
    model: type[models.Model],
    names: tuple[str, ...],
    *,
    patient: str | None = "patient",
    children: dict[str, Callable[[], serializers.Field]] | None = None,
    base: type[serializers.Serializer] = serializers.Serializer,
) -> type[serializers.Serializer]:
    """A response serializer: the record's columns of the read endpoint (subject code, id,
    status, version, voided, then `names`), plus nested child rows."""
    fields: dict[str, serializers.Field] = {}
    if patient is not None:
        fields["subject_code"] = serializers.CharField(
            source=f"{patient}.subject_code", read_only=True
        )
    fields["id"] = serializers.IntegerField(read_only=True)
    if issubclass(model, ClinicalModel):
        fields["status"] = _read_field(model, "status")
    fields["version"] = serializers.IntegerField(read_only=True)
    fields["voided"] = serializers.BooleanField(source="is_voided", read_only=True)
    for name in names:
        fields[name] = _read_field(model, name)
    # Built here, so they come last (DRF orders fields by creation).
    fields.update({name: build() for name, build in (children or {}).items()})
    return type(component, (base,), fields)


class _ResultRowBase(serializers.Serializer):
    unit = serializers.SerializerMethodField(help_text=_("SI unit"))

    def get_unit(self, result: LabResult) -> str | None:
        analyte = analytes.BY_CODE.get(result.analyte)
        return analyte.unit if analyte else None


ResultRow = record_serializer(
    "LabResultRecord",
    LabResult,
    (
        "analyte",
        "value",
        "entered_value",
        "entered_unit",
        "flag",
        "ctcae_grade",
        "ctcae_term",
        "extreme_confirmed",
    ),
    patient=None,
    base=_ResultRowBase,
)
DoseRow = record_serializer(
    "DoseRecord",
    CycleDose,
    ("drug", "planned_mg_m2", "given_mg", "planned_days", "given_days"),
    patient=None,
)

RESPONSES: dict[str, type[serializers.Serializer]] = {
    "followup_contacts": record_serializer(
        "FollowUpContactRecord",
        FollowUpContact,
        (
            "contacted_on",
            "mode",
            "reached",
            "vital_status",
            "ecog",
            "recurrence",
            "subsequent_therapy",
        ),
    ),
    "recurrences": record_serializer(
        "RecurrenceRecord",
        Recurrence,
        (
            "contact_id",
            "detected_on",
            "kind",
            "site_local",
            "site_liver",
            "site_peritoneum",
            "site_lung",
            "site_distant_nodes",
            "site_other",
            "detected_by",
        ),
    ),
    "deaths": record_serializer("DeathRecord", Death, ("died_on", "cause", "source")),
    "adverse_events": record_serializer(
        "AdverseEventRecord",
        AdverseEvent,
        (
            "line_id",
            "term",
            "grade",
            "onset_on",
            "resolved_on",
            "serious",
            "attribution",
            "action_taken",
            "outcome",
        ),
    ),
    "cycles": record_serializer(
        "CycleRecord",
        ChemoCycle,
        (
            "line_id",
            "cycle_number",
            "given_on",
            "weight_kg",
            "bsa_m2",
            "delay_days",
            "dose_reduced",
            "gcsf",
            "adjuvant",
        ),
        children={"doses": lambda: DoseRow(many=True, read_only=True, source="child_rows")},
    ),
    "lab_panels": record_serializer(
        "LabPanelRecord",
        LabPanel,
        ("sampled_on", "context", "after_cycle", "postop_day", "out_of_window"),
        children={"results": lambda: ResultRow(many=True, read_only=True, source="child_rows")},
    ),
}
