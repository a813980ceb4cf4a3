"""Writes every clinical record goes through: version check, reason for change, audit, voiding."""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from trial.lifecycle_selectors import record_patient_id
from trial.models import AuditedModel, Casebook, ClinicalModel, FormStatus, Study

# The statuses an edit of the data takes back to complete (the verification or signature no
# longer covers what is stored).
RESET_BY_EDIT = (FormStatus.VERIFIED, FormStatus.SIGNED)

# Records whose verification or signature an edit just undid, for the page to say so.
_resets: ContextVar[list | None] = ContextVar("lifecycle_resets", default=None)


@contextmanager
def collect_lifecycle_resets():
    """Yields a list that gets (record, former status) for every verified or signed record an
    edit inside the block returned to complete."""
    collected: list = []
    token = _resets.set(collected)
    try:
        yield collected
    finally:
        _resets.reset(token)


def patient_id_of(instance: AuditedModel) -> int | None:
    """The id of the patient whose casebook `instance` belongs to (the patient itself for a
    patient; through its operation for a CRF such as the pathology report), or None for records
    outside any casebook (freezers) and for child rows saved with their parent form (lab
    results, doses, lesions: the parent's save moves the casebook)."""
    if type(instance) is Casebook._meta.get_field("patient").related_model:
        return instance.pk
    if hasattr(instance, "patient_id"):
        return instance.patient_id
    if isinstance(instance, ClinicalModel):
        return record_patient_id(instance)
    return None


def _locked_message(patient_id: int | None) -> str:
    study = Study.objects.filter(locked_at__isnull=False).first()
    if study is not None:
        return _(
            "The study database is locked (%(when)s): no record can change until a data "
            "manager unlocks it."
        ) % {"when": timezone.localtime(study.locked_at).strftime("%Y-%m-%d")}
    return _(
        "This patient's casebook is locked: no record of it can change until a data manager "
        "unlocks it."
    )


def casebook_touch(instance: AuditedModel) -> None:
    """Refuse a write while the study or the record's casebook is locked, and otherwise move the
    casebook's version (a casebook signature then no longer holds). One UPDATE normally; the
    casebook row is created on the first write of the patient's records."""
    patient_id = patient_id_of(instance)
    if patient_id is None:
        # A new patient: only the study lock applies. Records outside any casebook (storage,
        # child rows saved with their parent form) are not locked here.
        is_patient = type(instance) is Casebook._meta.get_field("patient").related_model
        if is_patient and Study.objects.filter(locked_at__isnull=False).exists():
            raise ValidationError(_locked_message(None))
        return
    moved = Casebook.objects.filter(
        patient_id=patient_id,
        locked_at__isnull=True,
        patient__site__study__locked_at__isnull=True,
    ).update(version=F("version") + 1)
    if moved:
        return
    if (
        Study.objects.filter(locked_at__isnull=False).exists()
        or Casebook.objects.filter(patient_id=patient_id, locked_at__isnull=False).exists()
    ):
        raise ValidationError(_locked_message(patient_id))
    Casebook.objects.get_or_create(patient_id=patient_id, defaults={"version": 1})


def _refuse_locked_form(stored: AuditedModel) -> None:
    if isinstance(stored, ClinicalModel) and stored.status == FormStatus.LOCKED:
        raise ValidationError(
            _(
                "This form is locked: it cannot change until a data manager unlocks it with a "
                "reason."
            )
        )


@dataclass
class StaleRecordError(Exception):
    """Someone saved the record after this edit began; the edit is refused, not merged."""

    instance: AuditedModel
    expected_version: int
    current_version: int
    changed_by: str
    changed_at: datetime
    changed_fields: tuple[str, ...]

    def __str__(self) -> str:
        message = _(
            "This record was changed by %(user)s at %(when)s (version %(current)s) after you "
            "opened it (version %(expected)s). Your input is kept below: compare it with the "
            "saved record and save again to apply it."
        )
        when = timezone.localtime(self.changed_at).strftime("%Y-%m-%d %H:%M")
        return message % {
            "user": self.changed_by,
            "when": when,
            "current": self.current_version,
            "expected": self.expected_version,
        }


def _changed_fields(old: AuditedModel, new: AuditedModel) -> tuple[str, ...]:
    skip = {"updated_at", "updated_by", "version", "created_at", "created_by"}
    return tuple(
        field.name
        for field in new._meta.concrete_fields
        if field.name not in skip and getattr(old, field.attname) != getattr(new, field.attname)
    )


def _full_clean(instance: AuditedModel) -> None:
    """Django's full_clean, minus one query per foreign key that points at an object already
    attached to the instance: a saved, attached row exists (nothing is ever hard-deleted and
    the database enforces the key), so looking it up again only costs time. Everything else,
    unique checks and constraints included, is validated exactly as full_clean does."""
    attached = [
        f.name
        for f in instance._meta.concrete_fields
        if f.many_to_one
        and f.is_cached(instance)
        and getattr(instance, f.name) is not None
        and getattr(instance, f.name).pk is not None
    ]
    errors: dict = {}
    for step, exclude in ((instance.clean_fields, attached), (instance.clean, None)):
        try:
            step(exclude=exclude) if exclude is not None else step()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    failed = set(errors)
    for step in (instance.validate_unique, instance.validate_constraints):
        try:
            step(exclude=failed)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def clinical_save(
    instance: AuditedModel,
    *,
    user: AbstractBaseUser | None,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool | None = None,
    touch: bool = False,
) -> AuditedModel:
    """Validate and save one audited record.

    `expected_version` is the version the user's form was built from; a different stored
    version raises `StaleRecordError`. Editing a complete record needs `reason`, which is
    stored as the history row's change reason. `complete=True` moves a draft CRF to complete
    (it never moves back). An edit that changes nothing saves nothing, unless `touch=True`:
    a CRF whose child rows changed (e.g. a lab panel's results) gets a new version even when
    none of its own fields did, so a stale edit of the whole form is still detected. Raises
    ValidationError (field-level where a field is at fault) for any rule the model declares.
    """
    model = type(instance)
    reason = (reason or "").strip()
    if instance.pk is None:
        instance.created_by = user
        instance.version = 1
        casebook_touch(instance)
    else:
        stored = model._base_manager.select_for_update().get(pk=instance.pk)
        if stored.voided_at is not None:
            raise ValidationError(_("This record was voided and can no longer be edited."))
        _refuse_locked_form(stored)
        if expected_version is not None and stored.version != expected_version:
            raise StaleRecordError(
                instance=stored,
                expected_version=expected_version,
                current_version=stored.version,
                changed_by=str(stored.updated_by or stored.created_by or "—"),
                changed_at=stored.updated_at,
                changed_fields=_changed_fields(stored, instance),
            )
        if isinstance(instance, ClinicalModel):
            # The lifecycle status is the stored one; only a draft moves, to complete.
            instance.status = stored.status
            if complete and stored.status == FormStatus.DRAFT:
                instance.status = FormStatus.COMPLETE
        changed = _changed_fields(stored, instance)
        if not touch and not changed:
            return stored
        if stored.is_complete and not reason:
            raise ValidationError(
                {"change_reason": _("This form is complete: give a reason for the change.")}
            )
        casebook_touch(instance)
        if isinstance(instance, ClinicalModel) and stored.status in RESET_BY_EDIT:
            instance.status = FormStatus.COMPLETE
            collected = _resets.get()
            if collected is not None:
                collected.append((instance, stored.status))
        instance.version = stored.version + 1
    if instance.pk is None and isinstance(instance, ClinicalModel) and complete:
        instance.status = FormStatus.COMPLETE
    instance.updated_by = user
    _full_clean(instance)
    instance._change_reason = reason
    instance._history_user = user
    instance.save()
    return instance


@transaction.atomic
def clinical_void(
    instance: AuditedModel,
    *,
    user: AbstractBaseUser | None,
    reason: str,
    expected_version: int | None = None,
) -> AuditedModel:
    """Void a record instead of deleting it; the row and its history stay.

    Raises ValidationError when no reason is given or the record is already voided, and
    StaleRecordError when the record changed since `expected_version`.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"void_reason": _("Give a reason for voiding this record.")})
    model = type(instance)
    stored = model._base_manager.select_for_update().get(pk=instance.pk)
    if stored.voided_at is not None:
        raise ValidationError(_("This record is already voided."))
    _refuse_locked_form(stored)
    if expected_version is not None and stored.version != expected_version:
        raise StaleRecordError(
            instance=stored,
            expected_version=expected_version,
            current_version=stored.version,
            changed_by=str(stored.updated_by or stored.created_by or "—"),
            changed_at=stored.updated_at,
            changed_fields=(),
        )
    casebook_touch(stored)
    stored.voided_at = timezone.now()
    stored.voided_by = user
    stored.void_reason = reason
    stored.updated_by = user
    stored.version += 1
    stored._change_reason = reason
    stored._history_user = user
    stored.save()
    return stored
