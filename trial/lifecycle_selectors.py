"""Reads of the form lifecycle: where a record stands (status, source-data verification by
field, signatures and whether each still holds, the record / casebook / study locks) and where a
patient's whole casebook stands.

Nothing here imports the apps above `trial/`: the clinical models are found with
`django.apps.apps.get_models()` (subclasses of `ClinicalModel`), and a record's patient is its
`patient` field, or one foreign key further for the forms that hang off another record (the
pathology of an operation, say).
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from trial.models import (
    Casebook,
    ClinicalModel,
    FormStatus,
    Signature,
    SourceVerification,
    Study,
)
from trial.scoping import site_ids_for

# Columns every clinical record carries that are bookkeeping, not the data a monitor verifies
# against the source or an investigator signs.
_NOT_DATA = {
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
    "voided_at",
    "voided_by",
    "void_reason",
    "status",
    "patient",
}

# The statuses counted on the casebook page, in lifecycle order.
STATUS_ORDER: tuple[str, ...] = tuple(FormStatus.values)


def patient_model() -> type[models.Model]:
    """patients.Patient, reached through the casebook's key (trial must not import patients)."""
    return Casebook._meta.get_field("patient").related_model


def clinical_models() -> list[type[ClinicalModel]]:
    """Every concrete CRF model (with a lifecycle status) that belongs to a patient, in the
    order of INSTALLED_APPS and of the models' definitions: the protocol's order."""
    return [
        model
        for model in apps.get_models()
        if issubclass(model, ClinicalModel) and patient_path(model) is not None
    ]


@cache
def patient_path(model: type[models.Model]) -> str | None:
    """The ORM path from a record of `model` to its patient: "patient", or "<fk>__patient" for a
    form that hangs off another record of the patient (pathology → operation → patient)."""
    names = {f.name for f in model._meta.concrete_fields}
    if "patient" in names:
        return "patient"
    for model_field in model._meta.concrete_fields:
        if not model_field.many_to_one and not model_field.one_to_one:
            continue
        target = model_field.related_model
        if target is None or target is patient_model():
            continue
        if "patient" in {f.name for f in target._meta.concrete_fields}:
            return f"{model_field.name}__patient"
    return None


def record_patient_id(record: models.Model) -> int | None:
    """The id of the patient `record` belongs to (one query at most, none when the parent
    record is already loaded)."""
    path = patient_path(type(record))
    if path is None:
        return None
    if path == "patient":
        return record.patient_id
    parent = getattr(record, path.split("__", 1)[0])
    return parent.patient_id if parent is not None else None


def data_fields(model: type[models.Model]) -> list[models.Field]:
    """The fields that hold the record's data: what the form edits and what is verified."""
    hop = (patient_path(model) or "").split("__", 1)[0]
    return [
        f
        for f in model._meta.concrete_fields
        if f.editable and not f.primary_key and f.name not in _NOT_DATA and f.name != hop
    ]


def _display(record: models.Model, model_field: models.Field) -> str:
    """A field's value as a reader sees it: the choice label, Yes/No, a date, "—" when empty."""
    value = getattr(record, model_field.name)
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if model_field.choices:
        labels = dict(model_field.flatchoices)
        if isinstance(value, list | tuple):
            return ", ".join(str(labels.get(item, item)) for item in value)
        return str(labels.get(value, value))
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


# --- one record --------------------------------------------------------------------------


def record_model(label: str) -> type[ClinicalModel]:
    """The clinical model named "<app_label>.<model_name>"; Http404 for anything else."""
    app_label, _sep, model_name = label.partition(".")
    try:
        model = apps.get_model(app_label, model_name)
    except (LookupError, ValueError) as exc:
        raise Http404("No such form.") from exc
    if model not in clinical_models():
        raise Http404("No such form.")
    return model


def view_permission(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


def record_get(
    *, model: type[ClinicalModel], pk: int, user: AbstractBaseUser | AnonymousUser
) -> ClinicalModel:
    """One record (voided ones included) of a patient of the user's sites, with its patient,
    the patient's site and the records its data fields point to; Http404 otherwise."""
    path = patient_path(model)
    related = [path, f"{path}__site"]
    related += [f.name for f in data_fields(model) if f.many_to_one or f.one_to_one]
    queryset = model._base_manager.select_related(*related).filter(
        **{f"{path}__site_id__in": site_ids_for(user)}
    )
    try:
        return queryset.get(pk=pk)
    except model.DoesNotExist as exc:
        raise Http404("No such record at your sites.") from exc


def record_patient(record: ClinicalModel) -> models.Model:
    """The patient object of a record fetched by `record_get` (already loaded: no query)."""
    target = record
    for step in patient_path(type(record)).split("__"):
        target = getattr(target, step)
    return target


@dataclass(frozen=True)
class FieldState:
    name: str
    label: str
    value: str
    verification: SourceVerification | None

    @property
    def verified(self) -> bool:
        """Verified against the source at the record's current version."""
        return self.verification is not None and getattr(self.verification, "current", False)


@dataclass(frozen=True)
class SignatureState:
    signature: Signature
    current_version: int

    @property
    def holds(self) -> bool:
        return self.signature.version == self.current_version


@dataclass(frozen=True)
class LockState:
    """A lock of the record, the casebook or the study: who set it, when and why."""

    locked: bool
    at: datetime | None = None
    by: str = ""
    reason: str = ""


@dataclass
class RecordLifecycle:
    record: ClinicalModel
    patient: models.Model
    fields: list[FieldState]
    whole_form: SourceVerification | None
    signatures: list[SignatureState]
    record_lock: LockState
    casebook_lock: LockState
    study_lock: LockState
    verifications: list[SourceVerification] = field(default_factory=list)

    @property
    def whole_form_verified(self) -> bool:
        return self.whole_form is not None and self.whole_form.version == self.record.version

    @property
    def every_field_verified(self) -> bool:
        return bool(self.fields) and all(state.verified for state in self.fields)

    @property
    def fully_verified(self) -> bool:
        return self.whole_form_verified or self.every_field_verified

    @property
    def signature_holds(self) -> bool:
        return any(state.holds for state in self.signatures)

    @property
    def locked(self) -> bool:
        """Nothing of the record may change: it, its casebook or the study is locked."""
        return self.record_lock.locked or self.casebook_lock.locked or self.study_lock.locked


def verification_state(record: ClinicalModel) -> tuple[SourceVerification | None, dict]:
    """The latest whole-form verification and the latest verification of each field, each
    marked `current` when it was made at the record's version (one query)."""
    content_type = ContentType.objects.get_for_model(type(record))
    rows = list(
        SourceVerification.objects.filter(content_type=content_type, object_id=record.pk)
        .select_related("verified_by")
        .order_by("verified_at", "id")
    )
    latest: dict[str, SourceVerification] = {}
    for row in rows:
        row.current = row.version == record.version
        latest[row.field] = row
    whole = latest.pop("", None)
    return whole, latest


def record_signatures(record: ClinicalModel) -> list[SignatureState]:
    """The record's signatures, newest first, each with whether it still holds (one query)."""
    content_type = ContentType.objects.get_for_model(type(record))
    rows = (
        Signature.objects.filter(
            content_type=content_type, object_id=record.pk, scope=Signature.Scope.RECORD
        )
        .select_related("signed_by")
        .order_by("-signed_at", "-id")
    )
    return [SignatureState(row, record.version) for row in rows]


def _record_lock(record: ClinicalModel) -> LockState:
    """Who locked the record, from its latest history row with the locked status (one query,
    only when the record is locked)."""
    if record.status != FormStatus.LOCKED:
        return LockState(False)
    row = (
        type(record)
        .history.filter(id=record.pk, status=FormStatus.LOCKED)
        .select_related("history_user")
        .order_by("-history_date", "-history_id")
        .first()
    )
    if row is None:
        return LockState(True)
    return LockState(
        True, row.history_date, str(row.history_user or ""), row.history_change_reason or ""
    )


def casebook_lock_state(casebook: Casebook | None) -> LockState:
    if casebook is None or casebook.locked_at is None:
        return LockState(False)
    return LockState(True, casebook.locked_at, str(casebook.locked_by or ""), casebook.lock_reason)


def study_lock_state(study: Study | None) -> LockState:
    if study is None or study.locked_at is None:
        return LockState(False)
    return LockState(True, study.locked_at, str(study.locked_by or ""), study.lock_reason)


def record_lifecycle(record: ClinicalModel) -> RecordLifecycle:
    """Where `record` (fetched by `record_get`) stands in its lifecycle: its fields with their
    displayed values and verification, the whole-form verification, the signatures with
    `holds`, and the record / casebook / study locks. Six queries at most, whatever the
    number of verifications and signatures."""
    patient = record_patient(record)
    whole, by_field = verification_state(record)
    states = [
        FieldState(
            name=f.name,
            label=str(f.verbose_name),
            value=_display(record, f),
            verification=by_field.get(f.name),
        )
        for f in data_fields(type(record))
    ]
    casebook = Casebook.objects.select_related("locked_by").filter(patient_id=patient.pk).first()
    study = Study.objects.select_related("locked_by").filter(pk=patient.site.study_id).first()
    return RecordLifecycle(
        record=record,
        patient=patient,
        fields=states,
        whole_form=whole,
        signatures=record_signatures(record),
        record_lock=_record_lock(record),
        casebook_lock=casebook_lock_state(casebook),
        study_lock=study_lock_state(study),
    )


# --- a patient's casebook ----------------------------------------------------------------


@dataclass(frozen=True)
class CasebookRow:
    record: ClinicalModel
    label: str
    on: date | None

    @property
    def voided(self) -> bool:
        return self.record.voided_at is not None


@dataclass
class CasebookForm:
    """The records of one form (model) of the patient, with counts by status (voided apart)."""

    label: str
    model_label: str
    rows: list[CasebookRow]

    @property
    def counts(self) -> list[tuple[str, str, int]]:
        counted = Counter(row.record.status for row in self.rows if not row.voided)
        labels = dict(FormStatus.choices)
        return [(status, labels[status], counted[status]) for status in STATUS_ORDER]

    @property
    def voided_count(self) -> int:
        return sum(1 for row in self.rows if row.voided)


@dataclass
class CasebookSignatureState:
    signature: Signature
    current_version: int

    @property
    def holds(self) -> bool:
        return self.signature.version == self.current_version


@dataclass
class CasebookState:
    patient: models.Model
    forms: list[CasebookForm]
    casebook: Casebook | None
    lock: LockState
    study_lock: LockState
    signatures: list[CasebookSignatureState]

    @property
    def version(self) -> int:
        return self.casebook.version if self.casebook is not None else 0

    @property
    def latest_signature(self) -> CasebookSignatureState | None:
        return self.signatures[0] if self.signatures else None

    @property
    def totals(self) -> list[tuple[str, str, int]]:
        counted: Counter = Counter()
        for form in self.forms:
            for status, _label, count in form.counts:
                counted[status] += count
        labels = dict(FormStatus.choices)
        return [(status, labels[status], counted[status]) for status in STATUS_ORDER]

    @property
    def record_count(self) -> int:
        return sum(len(form.rows) for form in self.forms)


def _first_date_field(model: type[models.Model]) -> str | None:
    for model_field in data_fields(model):
        if isinstance(model_field, models.DateField) and not isinstance(
            model_field, models.DateTimeField
        ):
            return model_field.name
    return None


def casebook_signatures(patient: models.Model, casebook: Casebook | None) -> list:
    """The patient's casebook signatures, newest first, with whether each holds (one query)."""
    version = casebook.version if casebook is not None else 0
    rows = (
        Signature.objects.filter(patient_id=patient.pk, scope=Signature.Scope.CASEBOOK)
        .select_related("signed_by")
        .order_by("-signed_at", "-id")
    )
    return [CasebookSignatureState(row, version) for row in rows]


def casebook_state(
    *, patient: models.Model, user: AbstractBaseUser | AnonymousUser
) -> CasebookState:
    """Every record of `patient` across the clinical models the user may read, grouped by form,
    with status counts; the casebook lock and signatures; the study lock. One query per model
    plus three, however many records the patient has."""
    forms = []
    for model in clinical_models():
        if not user.has_perm(view_permission(model)):
            continue
        on_field = _first_date_field(model)
        rows = [
            CasebookRow(
                record=record,
                label=f"{capfirst(model._meta.verbose_name)} #{record.pk}",
                on=getattr(record, on_field) if on_field else None,
            )
            for record in model._base_manager.filter(**{patient_path(model): patient}).order_by(
                "pk"
            )
        ]
        if rows:
            forms.append(
                CasebookForm(
                    label=str(model._meta.verbose_name_plural).capitalize(),
                    model_label=model._meta.label_lower,
                    rows=rows,
                )
            )
    casebook = Casebook.objects.select_related("locked_by").filter(patient_id=patient.pk).first()
    study = Study.objects.select_related("locked_by").filter(pk=patient.site.study_id).first()
    return CasebookState(
        patient=patient,
        forms=forms,
        casebook=casebook,
        lock=casebook_lock_state(casebook),
        study_lock=study_lock_state(study),
        signatures=casebook_signatures(patient, casebook),
    )


def casebook_summary(*, patient: models.Model) -> dict:
    """For the patient-page panel: the casebook lock, the latest casebook signature and whether
    it holds, and the study lock, in one query (the patient page counts its queries)."""
    latest = Signature.objects.filter(
        patient_id=OuterRef("pk"), scope=Signature.Scope.CASEBOOK
    ).order_by("-signed_at", "-id")
    row = (
        patient_model()
        ._base_manager.filter(pk=patient.pk)
        .annotate(
            signature_version=Subquery(latest.values("version")[:1]),
            signature_at=Subquery(latest.values("signed_at")[:1]),
            signature_by=Subquery(latest.values("signed_by__username")[:1]),
        )
        .values(
            "casebook__version",
            "casebook__locked_at",
            "casebook__locked_by__username",
            "casebook__lock_reason",
            "site__study__locked_at",
            "site__study__locked_by__username",
            "site__study__lock_reason",
            "signature_version",
            "signature_at",
            "signature_by",
        )
        .first()
        or {}
    )

    def lock(prefix: str) -> LockState:
        at = row.get(f"{prefix}__locked_at")
        if at is None:
            return LockState(False)
        by = row.get(f"{prefix}__locked_by__username") or ""
        return LockState(True, at, by, row.get(f"{prefix}__lock_reason") or "")

    signature = None
    if row.get("signature_version") is not None:
        signature = {
            "signed_by": row["signature_by"],
            "signed_at": row["signature_at"],
            "version": row["signature_version"],
            "holds": row["signature_version"] == (row.get("casebook__version") or 0),
        }
    return {"lock": lock("casebook"), "signature": signature, "study_lock": lock("site__study")}


def patient_get(*, patient_id: int, user: AbstractBaseUser | AnonymousUser) -> models.Model:
    """A patient of the user's sites, with the site; Http404 for any other patient."""
    queryset = (
        patient_model()._base_manager.select_related("site").filter(site_id__in=site_ids_for(user))
    )
    try:
        return queryset.get(pk=patient_id)
    except patient_model().DoesNotExist as exc:
        raise Http404("No such patient at your sites.") from exc


def study_get(*, code: str) -> Study | None:
    """The study `code` (the configured study), with who locked it."""
    return Study.objects.select_related("locked_by").filter(code=code).first()


def lock_flags(*, patient_id: int | None) -> tuple[LockState, LockState]:
    """(casebook lock, study lock) for a CRF page's banner, in one query: the study lock of the
    patient's study, or of any study when there is no patient yet (a new candidate)."""
    if patient_id is not None:
        row = (
            patient_model()
            ._base_manager.filter(pk=patient_id)
            .values("casebook__locked_at", "casebook__lock_reason", "site__study__locked_at")
            .first()
        )
        if row is not None:
            casebook = LockState(
                row["casebook__locked_at"] is not None,
                row["casebook__locked_at"],
                "",
                row["casebook__lock_reason"] or "",
            )
            study = LockState(
                row["site__study__locked_at"] is not None, row["site__study__locked_at"]
            )
            return casebook, study
    locked_at = (
        Study.objects.filter(locked_at__isnull=False).values_list("locked_at", flat=True).first()
    )
    return LockState(False), LockState(locked_at is not None, locked_at)


# Where each form is edited: (URL name, keyword of the record's id or None, whether the URL
# takes the patient id). URL names only: trial does not import the apps above it, and a
# test checks that every entry still resolves.
EDIT_PAGES: dict[str, tuple[str, str | None, bool]] = {
    "patients.screening": ("patients:screening-edit", None, True),
    "patients.consent": ("patients:consent-edit", "consent_id", True),
    "patients.enrollment": ("patients:enrollment-edit", None, True),
    "patients.baseline": ("patients:baseline-edit", None, True),
    "patients.withdrawal": ("patients:withdrawal-edit", None, True),
    "treatments.regimenline": ("treatments:line-edit", "line_id", True),
    "treatments.chemocycle": ("treatments:cycle-edit", "cycle_id", True),
    "treatments.adverseevent": ("treatments:ae-edit", "event_id", True),
    "assessments.labpanel": ("assessments:lab-edit", "panel_id", True),
    "assessments.imagingstudy": ("assessments:imaging-edit", "study_id", True),
    "assessments.responseevaluation": ("assessments:evaluation-edit", "evaluation_id", True),
    "surgery.mdtdecision": ("surgery:mdt-edit", "decision_id", True),
    "surgery.operation": ("surgery:operation", None, True),
    "surgery.pathology": ("surgery:pathology", None, True),
    "surgery.complication": ("surgery:complication-edit", "complication_id", True),
    "surgery.discharge": ("surgery:discharge", None, True),
    "biobank.specimen": ("biobank:specimen-detail", "specimen_id", False),
    "followup.followupcontact": ("followup:contact-edit", "pk", True),
    "followup.recurrence": ("followup:recurrence-edit", "pk", True),
    "followup.death": ("followup:death-edit", "pk", True),
    "followup.losttofollowup": ("followup:lost-edit", "pk", True),
    "followup.treatmentend": ("followup:treatment-end-edit", "pk", True),
}


def form_url(label: str, object_id: int, patient_id: int) -> str:
    """The page where record `object_id` of form `label` ("app_label.model_name") is edited,
    or the patient's page for forms without one (child rows, derived rows). No query."""
    entry = EDIT_PAGES.get(label.lower())
    if entry is not None:
        name, pk_kwarg, with_patient = entry
        kwargs = {"patient_id": patient_id} if with_patient else {}
        if pk_kwarg:
            kwargs[pk_kwarg] = object_id
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            pass
    return reverse("patients:patient-detail", kwargs={"patient_id": patient_id})


def edit_url(record, patient_id: int) -> str:
    """The page where `record` is edited, or the patient page when there is none."""
    return form_url(record._meta.label_lower, record.pk, patient_id)
