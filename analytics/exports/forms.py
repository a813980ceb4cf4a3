"""The export registry: one long table per CRF, with explicit columns.

Every form lists the model fields it exports; nothing is exported by default. A table starts
with the subject code (the pseudonym, through the patient foreign key), the record id and, for
audited records, the form status, the version and the voided flag; then dates, stored codes
(never labels: the codebook gives the labels) and numbers. Free-text fields, which may name
people (notes, descriptions, reason details, "other" texts, attendees…), are never exported:
each is listed in the form's `excluded` with the reason, and tests/analytics/test_exports.py
checks that every text field of every exported model is either a deliberate column or
excluded with a reason. Nothing of patients.PatientIdentity is reachable from here.

`export_rows` streams a form's rows from one query (a server-side cursor on PostgreSQL, read
2,000 rows at a time), so memory stays flat whatever the size of the table; `csv_stream` and
`json_stream` turn rows into text chunks for Django's StreamingHttpResponse.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from analytics.exports import deid
from assessments import analytes
from assessments.models import ImagingStudy, LabPanel, LabResult, ResponseEvaluation, TargetLesion
from biobank.models import CustodyEvent, Specimen
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients.models import Baseline, Consent, Enrollment, Patient, Screening, Withdrawal
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology
from treatments import ctcae_terms
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine
from trial.models import AuditedModel, ClinicalModel
from trial.scoping import scope_to_user_sites
from visits.models import ExpectedVisit

if TYPE_CHECKING:
    from analytics.exports.version import ContentHash

CHUNK_SIZE = 2000


class Kind(StrEnum):
    """The type of a column (the codebook's `type`; ODM DataType through odm.DATA_TYPES)."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


class Phase(StrEnum):
    """The protocol phase a form belongs to (one ODM StudyEventDef each)."""

    ENROLMENT = "enrolment"
    TREATMENT = "treatment"
    ASSESSMENT = "assessment"
    SURGERY = "surgery"
    BIOBANK = "biobank"
    FOLLOWUP = "followup"
    CALENDAR = "calendar"


PHASE_LABELS: dict[Phase, Promise] = {
    Phase.ENROLMENT: _("Screening, consent, enrollment and baseline"),
    Phase.TREATMENT: _("Chemotherapy"),
    Phase.ASSESSMENT: _("Labs, imaging and response evaluations"),
    Phase.SURGERY: _("MDT decisions and surgery"),
    Phase.BIOBANK: _("Biobank"),
    Phase.FOLLOWUP: _("Follow-up"),
    Phase.CALENDAR: _("Protocol calendar"),
}

# Units from the field-name suffixes the conventions give (`ca19_9_u_ml`, `weight_kg`, …);
# longest suffix first.
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_mg_m2", "mg/m²"),
    ("_u_ml", "U/mL"),
    ("_ng_ml", "ng/mL"),
    ("_u_l", "U/L"),
    ("_m2", "m²"),
    ("_mm", "mm"),
    ("_cm", "cm"),
    ("_kg", "kg"),
    ("_mg", "mg"),
    ("_ml", "mL"),
    ("_min", "min"),
    ("_minutes", "min"),
    ("_days", "days"),
    ("_pct", "%"),
)

# Base fields of every audited record that are never columns (the audit trail is in ODM).
AUDIT_EXCLUDED: dict[str, str] = {
    "void_reason": "free text typed when voiding a record; may name people",
}

_INTEGER_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.BigIntegerField,
)


def unit_of(name: str) -> str:
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


def _kind_of(model_field: models.Field) -> Kind:
    if model_field.is_relation:
        return Kind.INTEGER
    if isinstance(model_field, models.BooleanField):
        return Kind.BOOLEAN
    if isinstance(model_field, models.DateTimeField):
        return Kind.DATETIME
    if isinstance(model_field, models.DateField):
        return Kind.DATE
    if isinstance(model_field, models.DecimalField | models.FloatField):
        return Kind.DECIMAL
    if isinstance(model_field, _INTEGER_FIELDS):
        return Kind.INTEGER
    return Kind.TEXT


@dataclass(frozen=True)
class Column:
    """One exported variable of a table."""

    name: str
    kind: Kind
    label: Promise | str
    lookup: str | None = None  # the ORM path read with values_list; None when computed
    model_field: models.Field | None = None
    codes: tuple[tuple[object, Promise | str], ...] = ()
    unit: str = ""
    description: Promise | str = ""
    compute: Callable[[dict], object] | None = None

    @property
    def is_date(self) -> bool:
        return self.kind in (Kind.DATE, Kind.DATETIME)

    @property
    def max_length(self) -> int | None:
        return getattr(self.model_field, "max_length", None)


def _resolve(model: type[models.Model], lookup: str) -> models.Field:
    """The model field at the end of `lookup` (e.g. "panel__sampled_on" → LabPanel.sampled_on)."""
    current, model_field = model, None
    for part in lookup.split("__"):
        model_field = current._meta.get_field(part)
        if model_field.is_relation:
            current = model_field.related_model
    assert model_field is not None
    return model_field


def field_column(model: type[models.Model], spec: str | tuple[str, str]) -> Column:
    """A column from a model field: `spec` is a field name or (column name, ORM lookup)."""
    name, lookup = spec if isinstance(spec, tuple) else (spec, spec)
    model_field = _resolve(model, lookup)
    label: Promise | str = model_field.verbose_name
    description: Promise | str = ""
    if model_field.is_relation:
        if not isinstance(spec, tuple):
            name = f"{name}_id"
        label = format_lazy("{} ({})", model_field.verbose_name, _("record id"))
        description = format_lazy(
            "{} {}", _("Record id in the table of"), model_field.related_model._meta.verbose_name
        )
    codes = tuple((value, text) for value, text in (model_field.flatchoices or ()))
    return Column(
        name=name,
        kind=_kind_of(model_field),
        label=label,
        lookup=lookup,
        model_field=model_field,
        codes=codes,
        unit=unit_of(name),
        description=description or (model_field.help_text or ""),
    )


@dataclass(frozen=True)
class ExportForm:
    """One exported table: a model, its explicit columns, and what is left out and why."""

    name: str
    model: type[models.Model]
    fields: tuple[str | tuple[str, str], ...]
    date_field: str | None
    phase: Phase
    excluded: Mapping[str, str] = field(default_factory=dict)
    # Path from the model to patients.Patient ("" when the model is Patient itself).
    patient: str = "patient"
    # Foreign keys whose voiding voids this row too (a result of a voided panel).
    parents: tuple[str, ...] = ()
    computed: tuple[Column, ...] = ()

    @property
    def label(self) -> Promise | str:
        return self.model._meta.verbose_name_plural

    @property
    def audited(self) -> bool:
        return issubclass(self.model, AuditedModel)

    @property
    def patient_id_lookup(self) -> str:
        return self.patient or "id"

    @property
    def subject_code_lookup(self) -> str:
        return f"{self.patient}__subject_code" if self.patient else "subject_code"

    @property
    def date_lookup(self) -> str | None:
        if self.date_field is None:
            return None
        return dict(self._named_fields()).get(self.date_field, self.date_field)

    def _named_fields(self) -> list[tuple[str, str]]:
        return [spec if isinstance(spec, tuple) else (spec, spec) for spec in self.fields]

    @cached_property
    def columns(self) -> tuple[Column, ...]:
        """Every column of the table, in order."""
        subject = _resolve(Patient, "subject_code")
        columns = [
            Column(
                "subject_code",
                Kind.TEXT,
                subject.verbose_name,
                lookup=self.subject_code_lookup,
                model_field=subject,
            ),
            Column(
                "id",
                Kind.INTEGER,
                _("record id"),
                lookup="id",
                description=_("Unique within the table; other tables refer to it as <table>_id."),
            ),
        ]
        if issubclass(self.model, ClinicalModel):
            columns.append(field_column(self.model, "status"))
        if self.audited:
            columns.append(field_column(self.model, "version"))
            columns.append(
                Column(
                    "voided",
                    Kind.BOOLEAN,
                    _("voided"),
                    description=_(
                        "1 when the record (or the record it belongs to) was voided; voided "
                        "rows are only exported on request."
                    ),
                )
            )
        columns += [field_column(self.model, spec) for spec in self.fields]
        columns += list(self.computed)
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), f"duplicate column in {self.name}: {names}"
        return tuple(columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def finish_plan(
        self,
    ) -> tuple[tuple[str, ...], tuple[tuple[str, Callable], ...], tuple[str, ...]]:
        """What `finish_row` does to every row, worked out once per form: the stored datetime
        columns, the computed columns with their functions, the column names in order (walking
        `columns` twice per row was a fifth of a 1,000,000-row lab export; bench/exports.py)."""
        datetimes = tuple(c.name for c in self.columns if c.lookup and c.kind == Kind.DATETIME)
        computed = tuple((c.name, c.compute) for c in self.columns if c.compute)
        return datetimes, computed, tuple(self.column_names)


def _lab_unit(row: dict) -> str | None:
    analyte = analytes.BY_CODE.get(row.get("analyte") or "")
    return analyte.unit if analyte else None


_NOTES = "free text; may name people"
_DETAIL = "free-text details; may name people"
_OTHER = "free text for an 'other' choice; the coded column says 'other'"

FORMS: tuple[ExportForm, ...] = (
    # patients ----------------------------------------------------------------------------
    ExportForm(
        "patients",
        Patient,
        (("site", "site__code"), "sex", "status", "cohort", "died_on"),
        None,
        Phase.ENROLMENT,
        patient="",
    ),
    ExportForm(
        "screening",
        Screening,
        (
            "screened_on",
            "age_at_screening",
            "intended_cohort",
            "confirmation",
            "is_pdac",
            "synchronous_liver_metastases",
            "imaging_on",
            "prior_systemic_therapy",
        ),
        "screened_on",
        Phase.ENROLMENT,
        excluded={"notes": _NOTES},
    ),
    ExportForm(
        "consent",
        Consent,
        ("basis", "consented_on", "consent_version", "study_consent", "biobank_consent"),
        "consented_on",
        Phase.ENROLMENT,
        excluded={"waiver_reference": "an ethics-committee document number (administrative)"},
    ),
    ExportForm(
        "enrollment",
        Enrollment,
        ("enrolled_on", "cohort", "diagnosed_on"),
        "enrolled_on",
        Phase.ENROLMENT,
    ),
    ExportForm(
        "baseline",
        Baseline,
        (
            "assessed_on",
            "ecog",
            "height_cm",
            "weight_kg",
            "bsa_m2",
            "primary_site",
            "primary_size_mm",
            "vascular_smv_pv",
            "vascular_sma",
            "vascular_celiac",
            "vascular_cha",
            "liver_met_count",
            "liver_met_largest_mm",
            "liver_met_distribution",
            "other_met_peritoneum",
            "other_met_lung",
            "other_met_distant_nodes",
            "other_met_bone",
            "ajcc_t",
            "ajcc_n",
            "ca19_9_u_ml",
            "cea_ng_ml",
            "ca125_u_ml",
            "biliary_stent",
            "biliary_stent_type",
            "comorbid_diabetes",
            "comorbid_hypertension",
            "comorbid_coronary",
            "comorbid_liver",
            "comorbid_kidney",
        ),
        "assessed_on",
        Phase.ENROLMENT,
        excluded={"other_met_other": _OTHER, "comorbid_other": _OTHER},
    ),
    ExportForm(
        "withdrawal",
        Withdrawal,
        ("withdrawn_on", "kind", "reason", "no_medication_given", "last_medication_on"),
        "withdrawn_on",
        Phase.FOLLOWUP,
        excluded={"reason_detail": _DETAIL},
    ),
    # treatments --------------------------------------------------------------------------
    ExportForm(
        "regimen_lines",
        RegimenLine,
        ("line_number", "regimen", "cycle_length_days", "started_on", "change_reason"),
        "started_on",
        Phase.TREATMENT,
        excluded={"regimen_other": _OTHER, "change_reason_detail": _DETAIL},
    ),
    ExportForm(
        "cycles",
        ChemoCycle,
        (
            "line",
            "cycle_number",
            "given_on",
            "weight_kg",
            "bsa_m2",
            "delay_days",
            "dose_reduced",
            "gcsf",
            "adjuvant",
        ),
        "given_on",
        Phase.TREATMENT,
        excluded={"delay_reason": _DETAIL, "dose_reduction_reason": _DETAIL},
        parents=("line",),
    ),
    ExportForm(
        "doses",
        CycleDose,
        (
            "cycle",
            ("given_on", "cycle__given_on"),
            "drug",
            "planned_mg_m2",
            "given_mg",
            "planned_days",
            "given_days",
        ),
        "given_on",
        Phase.TREATMENT,
        excluded={"drug_other": _OTHER},
        patient="cycle__patient",
        parents=("cycle",),
    ),
    ExportForm(
        "adverse_events",
        AdverseEvent,
        (
            "line",
            "term",
            "grade",
            "onset_on",
            "resolved_on",
            "serious",
            "attribution",
            "action_taken",
            "outcome",
        ),
        "onset_on",
        Phase.TREATMENT,
        excluded={"term_other": _OTHER},
    ),
    # assessments -------------------------------------------------------------------------
    ExportForm(
        "lab_panels",
        LabPanel,
        ("sampled_on", "context", "after_cycle", "postop_day", "out_of_window"),
        "sampled_on",
        Phase.ASSESSMENT,
        excluded={"notes": _NOTES},
    ),
    ExportForm(
        "lab_results",
        LabResult,
        (
            "panel",
            ("sampled_on", "panel__sampled_on"),
            ("context", "panel__context"),
            ("after_cycle", "panel__after_cycle"),
            ("postop_day", "panel__postop_day"),
            "analyte",
            "value",
            "entered_value",
            "entered_unit",
            "flag",
            "ctcae_grade",
            "ctcae_term",
            "extreme_confirmed",
        ),
        "sampled_on",
        Phase.ASSESSMENT,
        patient="panel__patient",
        parents=("panel",),
        computed=(
            Column(
                "unit",
                Kind.TEXT,
                _("SI unit"),
                description=_("The SI unit of `value`, from the analyte catalogue."),
                compute=_lab_unit,
            ),
        ),
    ),
    ExportForm(
        "imaging_studies",
        ImagingStudy,
        (
            "performed_on",
            "modality",
            "is_baseline",
            "non_target",
            "new_lesions",
            "radiologist_response",
            "sum_mm",
            "change_from_baseline_pct",
            "change_from_nadir_pct",
            "response",
        ),
        "performed_on",
        Phase.ASSESSMENT,
        excluded={"notes": _NOTES},
    ),
    ExportForm(
        "target_lesions",
        TargetLesion,
        ("study", ("performed_on", "study__performed_on"), "label", "organ", "diameter_mm"),
        "performed_on",
        Phase.ASSESSMENT,
        patient="study__patient",
        parents=("study",),
    ),
    ExportForm(
        "evaluations",
        ResponseEvaluation,
        (
            "evaluated_on",
            "imaging",
            "lab_panel",
            "decision",
            "cycles_completed",
            "sequence",
            "recist_response",
            "ca19_9_baseline",
            "ca19_9_value",
            "ca19_9_change_pct",
            "ca19_9_uninformative",
            "progression_at_first",
            "interval_cycles",
        ),
        "evaluated_on",
        Phase.ASSESSMENT,
        excluded={"notes": _NOTES},
    ),
    # surgery -----------------------------------------------------------------------------
    ExportForm(
        "mdt_decisions",
        MdtDecision,
        (
            "decided_on",
            "attended_surgeon",
            "attended_oncologist",
            "attended_radiologist",
            "attended_pathologist",
            "decision",
            "planned_pancreatic",
            "planned_liver_wedge",
            "planned_liver_segmentectomy",
            "planned_liver_hemihepatectomy",
            "planned_liver_ablation",
        ),
        "decided_on",
        Phase.SURGERY,
        excluded={
            "attended_other": "names of attendees",
            "rationale": "free-text rationale; may name people",
        },
    ),
    ExportForm(
        "mdt_evidence",
        MdtEvidence,
        ("decision", ("decided_on", "decision__decided_on"), "evaluation"),
        "decided_on",
        Phase.SURGERY,
        patient="decision__patient",
        parents=("decision", "evaluation"),
    ),
    ExportForm(
        "operations",
        Operation,
        (
            "mdt_decision",
            "mdt_document_missing",
            "operated_on",
            "pancreatic_procedure",
            "liver_wedge",
            "liver_segmentectomy",
            "liver_hemihepatectomy",
            "liver_ablation",
            "liver_lesions_resected",
            "liver_lesions_ablated",
            "vascular_resection",
            "approach",
            "converted",
            "operative_minutes",
            "blood_loss_ml",
            "transfusion_units",
        ),
        "operated_on",
        Phase.SURGERY,
        excluded={"mdt_missing_reason": _DETAIL, "findings": "free-text operative findings"},
    ),
    ExportForm(
        "pathology",
        Pathology,
        (
            "operation",
            "reported_on",
            "ypt",
            "ypn",
            "margin_pancreas",
            "margin_liver",
            "nodes_examined",
            "nodes_positive",
            "regression_grade",
            "differentiation",
            "perineural_invasion",
            "lymphovascular_invasion",
        ),
        "reported_on",
        Phase.SURGERY,
        patient="operation__patient",
        parents=("operation",),
    ),
    ExportForm(
        "complications",
        Complication,
        ("operation", "onset_on", "kind", "clavien_dindo", "isgps_grade", "drain_amylase_u_l"),
        "onset_on",
        Phase.SURGERY,
        excluded={"description": "free-text description; may name people"},
        patient="operation__patient",
        parents=("operation",),
    ),
    ExportForm(
        "discharges",
        Discharge,
        ("operation", "discharged_on", "readmitted_on"),
        "discharged_on",
        Phase.SURGERY,
        excluded={"readmission_reason": _DETAIL},
        patient="operation__patient",
        parents=("operation",),
    ),
    # biobank -----------------------------------------------------------------------------
    ExportForm(
        "specimens",
        Specimen,
        (
            "operation",
            "parent",
            "code",
            "kind",
            "origin",
            "weight_mg",
            "collected_at",
            "warm_ischaemia_min",
            "cold_ischaemia_min",
            "preservation",
            "state",
            "flagged_for_destruction",
            "flagged_on",
        ),
        "collected_at",
        Phase.BIOBANK,
        excluded={"notes": _NOTES},
        parents=("operation",),
    ),
    ExportForm(
        "custody_events",
        CustodyEvent,
        ("specimen", ("specimen_code", "specimen__code"), "kind", "at"),
        "at",
        Phase.BIOBANK,
        excluded={"destination": "free text (a laboratory or a person)", "notes": _NOTES},
        patient="specimen__patient",
        parents=("specimen",),
    ),
    # followup ----------------------------------------------------------------------------
    ExportForm(
        "followup_contacts",
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
        "contacted_on",
        Phase.FOLLOWUP,
        excluded={"subsequent_therapy_detail": _DETAIL, "notes": _NOTES},
    ),
    ExportForm(
        "recurrences",
        Recurrence,
        (
            "contact",
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
        "detected_on",
        Phase.FOLLOWUP,
        excluded={"site_other_detail": _OTHER, "notes": _NOTES},
    ),
    ExportForm(
        "deaths",
        Death,
        ("died_on", "cause", "source"),
        "died_on",
        Phase.FOLLOWUP,
        excluded={"cause_detail": _DETAIL, "notes": _NOTES},
    ),
    ExportForm(
        "losses_to_followup",
        LostToFollowUp,
        ("declared_on", "failed_attempts", "last_contact_on"),
        "declared_on",
        Phase.FOLLOWUP,
        excluded={"notes": _NOTES},
    ),
    ExportForm(
        "treatment_ends",
        TreatmentEnd,
        ("ended_on", "reason"),
        "ended_on",
        Phase.FOLLOWUP,
        excluded={"reason_detail": _DETAIL},
    ),
    # visits ------------------------------------------------------------------------------
    ExportForm(
        "expected_visits",
        ExpectedVisit,
        (
            "code",
            "kind",
            "number",
            "target_on",
            "window_start",
            "window_end",
            "forms",
            "status",
            "done_on",
        ),
        "target_on",
        Phase.CALENDAR,
    ),
)
FORMS_BY_NAME: dict[str, ExportForm] = {form.name: form for form in FORMS}

# Clinical models (trial.roles.CLINICAL_FORMS) that have no table, and why.
NOT_EXPORTED: dict[str, str] = {
    "patients.patientidentity": "personal identifiers (PHI): never exported",
    "biobank.freezer": "storage equipment, not patient data",
    "biobank.rack": "storage equipment, not patient data",
    "biobank.box": "storage equipment, not patient data",
    "visits.visitclosure": (
        "a coordinator's free-text reason; a missed visit is status 'missed' in expected_visits"
    ),
}

# The AE term is stored as the CTCAE v5.0 term; the catalogue gives its allowed values.
_AE_TERM_CODES = tuple((term.term, term.label) for term in ctcae_terms.TERMS)
_ANALYTE_CODES = tuple((analyte.code, analyte.label) for analyte in analytes.ANALYTES)
CATALOGUE_CODES: dict[tuple[str, str], tuple[tuple[object, Promise | str], ...]] = {
    ("adverse_events", "term"): _AE_TERM_CODES,
    ("lab_results", "analyte"): _ANALYTE_CODES,
}


def form_get(name: str) -> ExportForm:
    """The registered form `name`; KeyError for an unknown name."""
    return FORMS_BY_NAME[name]


def column_codes(form_name: str, column: Column) -> tuple[tuple[object, Promise | str], ...]:
    """The allowed codes of a column: its model choices, or the catalogue it is checked
    against (CTCAE terms, lab analytes)."""
    return column.codes or CATALOGUE_CODES.get((form_name, column.name), ())


def export_patients(
    *, user: AbstractBaseUser | AnonymousUser, site: str | None = None, cohort: str | None = None
) -> QuerySet[Patient]:
    """The patients a user may export (not voided, at the user's sites), optionally of one site
    (by code) and one cohort. A queryset for `export_rows`, `odm_document` and `data_version`."""
    patients = scope_to_user_sites(Patient.objects.active(), user)
    if site:
        patients = patients.filter(site__code=site)
    if cohort:
        patients = patients.filter(cohort=cohort)
    return patients


def form_queryset(
    form: ExportForm, *, patients_qs: QuerySet, include_voided: bool, by_patient_id: bool
) -> QuerySet:
    """The records of `form` of these patients, with the annotation `export_voided` (the
    record or a parent voided) for audited models, without voided ones unless
    `include_voided`, ordered by subject code (or patient id), the form's date and id."""
    queryset = form.model._default_manager.filter(
        **{f"{form.patient_id_lookup}__in": patients_qs.values("pk")}
    )
    if form.audited:
        voided = Q(voided_at__isnull=False)
        for parent in form.parents:
            voided |= Q(**{f"{parent}__voided_at__isnull": False})
        queryset = queryset.annotate(
            export_voided=ExpressionWrapper(voided, output_field=BooleanField())
        )
        if not include_voided:
            queryset = queryset.filter(voided_at__isnull=True)
            for parent in form.parents:
                queryset = queryset.filter(**{f"{parent}__voided_at__isnull": True})
    first = form.patient_id_lookup if by_patient_id else form.subject_code_lookup
    order = [first] + ([form.date_lookup] if form.date_lookup else []) + ["id"]
    return queryset.order_by(*order)


def finish_row(form: ExportForm, row: dict, *, voided: bool) -> dict:
    """A row of the stored columns (keyed by column name) made into the form's export row:
    local times, the voided flag, the computed columns, in column order. Shared by the
    streamed exports and the read API, so the two cannot differ."""
    datetimes, computed, names = form.finish_plan
    for name in datetimes:
        if row[name] is not None:
            row[name] = timezone.localtime(row[name])
    if form.audited:
        row["voided"] = voided
    for name, compute in computed:
        row[name] = compute(row)
    return {name: row[name] for name in names}


def export_rows(
    form: ExportForm,
    *,
    patients_qs: QuerySet,
    include_voided: bool = False,
    date_shift: bool = False,
    hasher: ContentHash | None = None,
    by_patient_id: bool = False,
    with_patient_id: bool = False,
) -> Iterator[dict]:
    """The rows of `form` for the patients of `patients_qs` (already scoped to the user), as
    dicts keyed by column name in column order, ordered by subject code, the form's date and
    id. A generator over one query read in chunks of CHUNK_SIZE: memory does not grow with
    the table.

    Voided rows (and rows of a voided parent record) are left out unless `include_voided`.
    `date_shift` moves every date and datetime by the patient's offset (analytics.exports.deid).
    `hasher` (a version.ContentHash) is fed every row that is not voided, before the shift, so
    the data version of an export comes with the stream. `by_patient_id` orders by patient id
    first (the ODM writer merges tables on it); `with_patient_id` adds the key "_patient_id".
    """
    columns = form.columns
    read = [c for c in columns if c.lookup]
    lookups = [form.patient_id_lookup, *(c.lookup for c in read)]
    audited = form.audited
    if audited:
        lookups.append("export_voided")
    queryset = form_queryset(
        form, patients_qs=patients_qs, include_voided=include_voided, by_patient_id=by_patient_id
    )
    names = [c.name for c in read]
    dates = [c.name for c in columns if c.is_date]
    offsets = deid.Offsets() if date_shift else None
    for values in queryset.values_list(*lookups).iterator(chunk_size=CHUNK_SIZE):
        patient_id = values[0]
        row = dict(zip(names, values[1 : len(names) + 1], strict=True))
        voided = bool(values[-1]) if audited else False
        row = finish_row(form, row, voided=voided)
        if hasher is not None and not voided:
            hasher.update(form.name, row)
        if offsets is not None:
            offset = offsets(patient_id)
            for name in dates:
                row[name] = deid.shift(row[name], offset)
        if with_patient_id:
            row["_patient_id"] = patient_id
        yield row


# --- rendering ---------------------------------------------------------------------------


_CSV_AS_IS = frozenset({str, int, float, type(None)})


def csv_value(value) -> str:
    """A value as CSV text: empty for None, 1/0 for booleans, ISO 8601 for dates and times,
    plain decimals (no exponent)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Promise):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def csv_stream(
    rows: Iterable[dict], columns: Iterable[str], *, rows_per_chunk: int = 500
) -> Iterator[str]:
    """CSV text chunks: a header line of `columns`, then one line per row (RFC 4180 quoting,
    CRLF line ends, UTF-8 when encoded). Keys of a row not in `columns` are ignored."""
    columns = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    pending = 1
    for row in rows:
        # Text, integers, floats and None are written by the csv module exactly as csv_value
        # writes them (None as empty); only the other types need csv_value, and skipping the
        # call for the rest halves the time of this loop (bench/exports.py).
        writer.writerow(
            [v if type(v) in _CSV_AS_IS else csv_value(v) for v in map(row.get, columns)]
        )
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending or buffer.tell():
        yield buffer.getvalue()


def json_stream(
    rows: Iterable[dict],
    *,
    header: Mapping | None = None,
    trailer: Callable[[], Mapping] | None = None,
    columns: Iterable[str] | None = None,
) -> Iterator[str]:
    """JSON text chunks of one object: the `header` entries, "rows" (a list of objects: ISO
    dates, numbers, null for missing), "row_count", then the `trailer()` entries (evaluated
    after the last row, e.g. the data version hash computed while streaming). `columns`
    limits and orders the keys of each row."""
    columns = list(columns) if columns is not None else None
    yield "{"
    for key, value in (header or {}).items():
        yield json.dumps(key) + ": " + json.dumps(value, default=json_default) + ", "
    yield '"rows": ['
    count = 0
    for row in rows:
        if columns is not None:
            row = {name: row.get(name) for name in columns}
        yield (
            ("," if count else "")
            + "\n"
            + json.dumps(row, default=json_default, ensure_ascii=False)
        )
        count += 1
    yield '\n], "row_count": %d' % count
    for key, value in (trailer() if trailer else {}).items():
        yield ", " + json.dumps(key) + ": " + json.dumps(value, default=json_default)
    yield "}\n"
