"""Reads for the audit-trail viewer: every change of a patient's records, or of one record.

Generic over every model that keeps a chained history (`trial.audit.history_models`), found
through the app registry, so `trial/` reads the history of the apps above it without importing
them. A record belongs to a patient through its `patient` field, or through one foreign key to
a model that has one (a lab result through its panel, a pathology report through its
operation); its site through a `site` field or through its patient.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from functools import cache

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model
from django.http import Http404
from django.utils.translation import gettext as _

from trial.audit import history_models, record_key_attname
from trial.history import Entry, record_history
from trial.models import Site, Study
from trial.scoping import scope_to_user_sites, site_ids_for

# Foreign keys that never lead to the record's patient or site.
_NOT_A_PATH = ("auth.user", "contenttypes.contenttype")


def patient_model() -> type[Model]:
    return apps.get_model("patients", "Patient")


def identity_model() -> type[Model] | None:
    """The model holding PHI, shown only to users with patients.view_phi at the patient's site."""
    try:
        return apps.get_model("patients", "PatientIdentity")
    except LookupError:
        return None


def audited_models() -> list[type[Model]]:
    """Every model whose history is kept (and chained), by label."""
    return [history.instance_type for history in history_models()]


def _forward_relations(model: type[Model]):
    for model_field in model._meta.concrete_fields:
        if not (model_field.many_to_one or model_field.one_to_one):
            continue
        if model_field.related_model._meta.label_lower in _NOT_A_PATH:
            continue
        yield model_field


@cache
def patient_path(model: type[Model]) -> str | None:
    """The lookup from a row of `model` (or of its history) to its patient's id: "id" for the
    patient, "patient_id", or "<fk>__patient_id" one relation away; None for records outside
    any casebook (freezers, the study)."""
    patient = patient_model()
    if model is patient:
        return "id"
    for model_field in _forward_relations(model):
        if model_field.name == "patient" and model_field.related_model is patient:
            return "patient_id"
    for model_field in _forward_relations(model):
        target = model_field.related_model
        for inner in _forward_relations(target):
            if inner.name == "patient" and inner.related_model is patient:
                return f"{model_field.name}__patient_id"
    return None


@cache
def site_path(model: type[Model]) -> str | None:
    """The lookup from a row of `model` to its site's id (up to three relations away), or None
    for study-level records."""
    queue: deque[tuple[type[Model], str, int]] = deque([(model, "", 0)])
    while queue:
        current, prefix, depth = queue.popleft()
        for model_field in _forward_relations(current):
            if model_field.related_model is Site:
                return f"{prefix}{model_field.name}_id"
        if depth < 3:
            for model_field in _forward_relations(current):
                step = f"{prefix}{model_field.name}__"
                queue.append((model_field.related_model, step, depth + 1))
    return None


def can_view_phi(*, user: AbstractBaseUser, site_id: int | None) -> bool:
    """The identity is shown to staff of the patient's own site who hold patients.view_phi
    (the same rule as patients.selectors.can_view_phi, which trial/ may not import)."""
    return user.has_perm("patients.view_phi") and site_id in site_ids_for(user)


@dataclass
class AuditTrail:
    """What the viewer shows: the entries (filtered), and the forms and users to filter by."""

    entries: list[Entry]
    forms: list[tuple[str, str]]
    users: list[tuple[str, str]]
    total: int


def _trail(entries: list[Entry], *, form: str = "", user_id: str = "") -> AuditTrail:
    """Filter in Python after the old → new comparison, so a filtered entry still shows what
    the value was before (possibly someone else's change)."""
    forms = sorted({(e.form, e.record) for e in entries}, key=lambda pair: pair[1].lower())
    users = sorted(
        {(str(e.user_id or ""), e.user) for e in entries}, key=lambda pair: pair[1].lower()
    )
    chosen = [
        e
        for e in entries
        if (not form or e.form == form) and (not user_id or str(e.user_id or "") == user_id)
    ]
    return AuditTrail(entries=chosen, forms=forms, users=users, total=len(entries))


def without_phi_values(entries: list[Entry]) -> list[Entry]:
    """The entries with the identity's values withheld: an export never carries PHI (who changed
    the identity, when and why stays; the names and numbers do not leave the page)."""
    phi = identity_model()
    if phi is None:
        return entries
    label = phi._meta.label_lower
    withheld = _("[PHI withheld]")
    return [
        replace(
            entry,
            changes=[
                replace(change, old=withheld if change.old else "", new=withheld)
                for change in entry.changes
            ],
        )
        if entry.form == label
        else entry
        for entry in entries
    ]


def audit_patient_get(*, patient_id: int, user: AbstractBaseUser) -> Model:
    """A patient of the user's sites (voided ones too: their trail stays readable); Http404
    for any other."""
    queryset = scope_to_user_sites(patient_model()._base_manager.select_related("site"), user)
    try:
        return queryset.get(pk=patient_id)
    except patient_model().DoesNotExist as exc:
        raise Http404(_("No such patient at your sites.")) from exc


def patient_audit(
    *, patient: Model, user: AbstractBaseUser, form: str = "", user_id: str = ""
) -> AuditTrail:
    """Every change of every record of `patient` (the patient row, its forms, their child rows,
    signatures, verifications, queries and locks), newest first. Identity rows only for users
    who may see PHI. One query per model with a path to the patient, plus one per referenced
    model, however long the history."""
    phi = identity_model()
    show_phi = can_view_phi(user=user, site_id=patient.site_id)
    histories = []
    for model in audited_models():
        path = patient_path(model)
        if path is None or (model is phi and not show_phi):
            continue
        histories.append(model.history.filter(**{path: patient.pk}))
    return _trail(record_history(histories), form=form, user_id=user_id)


@dataclass
class AuditedRecord:
    model: type[Model]
    pk: int
    patient: Model | None

    @property
    def label(self) -> str:
        return f"{self.model._meta.verbose_name} #{self.pk}"

    @property
    def form(self) -> str:
        return self.model._meta.label_lower


def audit_record_get(*, label: str, pk: int, user: AbstractBaseUser) -> AuditedRecord:
    """The record `label` ("app_label.model_name") `pk` if its history is kept and it belongs
    to one of the user's sites (study-level records: any site); Http404 otherwise, and for
    identity rows the user may not see. A record no longer stored is found by its history."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise Http404(_("No such form.")) from exc
    if model not in audited_models():
        raise Http404(_("No such form."))
    sites = site_path(model)
    patients = patient_path(model)
    key = record_key_attname(model.history.model)
    columns = [sites or key, patients or key]
    found = model._base_manager.filter(pk=pk).values_list(*columns).first()
    if found is None:
        found = (
            model.history.filter(**{key: pk}).order_by("-history_id").values_list(*columns).first()
        )
    if found is None:
        raise Http404(_("No such record."))
    site_id = found[0] if sites else None
    if sites and site_id not in site_ids_for(user):
        raise Http404(_("No such record at your sites."))
    if model is identity_model() and not can_view_phi(user=user, site_id=site_id):
        raise Http404(_("No such record."))
    patient = None
    if patients:
        patient = patient_model()._base_manager.select_related("site").filter(pk=found[1]).first()
    return AuditedRecord(model=model, pk=pk, patient=patient)


def record_audit(*, record: AuditedRecord, form: str = "", user_id: str = "") -> AuditTrail:
    """Every change of one record, newest first (one query, plus one per referenced model)."""
    key = record_key_attname(record.model.history.model)
    entries = record_history([record.model.history.filter(**{key: record.pk})])
    return _trail(entries, form=form, user_id=user_id)


def study_title() -> str:
    """The study's registry number and title, for the export header."""
    study = Study.objects.filter(code=settings.STUDY_CODE).first()
    if study is None:
        return settings.STUDY_CODE
    return f"{study.code} · {study.title}"
