"""Writes of the form lifecycle: source-data verification, electronic signatures, and the
locks of a form, a casebook and the study.

Every service runs in one transaction, locks the row it changes (select_for_update) and leaves
an attributed history row with the reason. A status change never moves `record.version`: the
version belongs to the data, and signatures and verifications point at it (they hold while it
has not moved). Permission checks belong to the views; the services also refuse a user whose
role cannot do the action, because that check is cheap (the permission cache) and a second
line of defence for callers other than the pages.
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from trial.lifecycle_selectors import (
    data_fields,
    record_patient_id,
    record_signatures,
    verification_state,
)
from trial.models import (
    Casebook,
    ClinicalModel,
    FormStatus,
    Signature,
    SignatureMeaning,
    SourceVerification,
    Study,
)
from trial.services import StaleRecordError

VERIFY = "trial.verify_source"
SIGN = "trial.sign_record"
LOCK = "trial.lock_record"


def _require(user: AbstractBaseUser, permission: str, message: str) -> None:
    if user is None or not user.has_perm(permission):
        raise PermissionDenied(message)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason; it is kept in the audit trail.")})
    return reason


def _stored(record: ClinicalModel) -> ClinicalModel:
    """The stored row of `record`, locked for this transaction; voided records are refused."""
    if not isinstance(record, ClinicalModel) or record.pk is None:
        raise ValidationError(_("Only a saved form has a lifecycle."))
    stored = type(record)._base_manager.select_for_update().get(pk=record.pk)
    if stored.voided_at is not None:
        raise ValidationError(
            _("This record was voided: it can no longer be verified, signed or locked.")
        )
    return stored


def _check_version(stored: ClinicalModel, expected_version: int | None) -> None:
    if expected_version is not None and stored.version != expected_version:
        raise StaleRecordError(
            instance=stored,
            expected_version=expected_version,
            current_version=stored.version,
            changed_by=str(stored.updated_by or stored.created_by or "—"),
            changed_at=stored.updated_at,
            changed_fields=(),
        )


def _refuse_locked(stored: ClinicalModel, patient_id: int | None) -> None:
    """Refuse a change of a locked form, or of any form of a locked casebook or study."""
    if stored.status == FormStatus.LOCKED:
        raise ValidationError(
            _("This form is locked: a data manager must unlock it with a reason first.")
        )
    _refuse_locked_casebook(patient_id)


def _refuse_locked_casebook(patient_id: int | None) -> None:
    if patient_id is None:
        return
    if Study.objects.filter(sites__patients__pk=patient_id, locked_at__isnull=False).exists():
        raise ValidationError(
            _("The study database is locked: nothing can change until a data manager unlocks it.")
        )
    if Casebook.objects.filter(patient_id=patient_id, locked_at__isnull=False).exists():
        raise ValidationError(
            _(
                "This patient's casebook is locked: nothing can change until a data manager "
                "unlocks it."
            )
        )


def _set_status(stored: ClinicalModel, status: str, *, user: AbstractBaseUser, reason: str):
    """Change the lifecycle status only: the version and the data stay as they are, the history
    row says who and why."""
    stored.status = status
    stored._change_reason = reason
    stored._history_user = user
    stored.save(update_fields=["status"])


def _signature(**values) -> Signature:
    signature = Signature(**values)
    signature._history_user = values["signed_by"]
    signature._change_reason = str(dict(SignatureMeaning.choices)[values["meaning"]])
    signature.save()
    return signature


def _is_fully_verified(stored: ClinicalModel) -> bool:
    whole, by_field = verification_state(stored)
    if whole is not None and whole.current:
        return True
    names = [f.name for f in data_fields(type(stored))]
    return bool(names) and all(name in by_field and by_field[name].current for name in names)


@transaction.atomic
def form_verify(
    record: ClinicalModel,
    *,
    user: AbstractBaseUser,
    expected_version: int | None,
    fields: Iterable[str] | None = None,
) -> ClinicalModel:
    """Record a monitor's source-data verification of `record` at its current version: of the
    whole form when `fields` is None, else of those fields (by name). The form becomes verified
    when the whole form, or every data field, is verified at the current version.

    Raises ValidationError for a draft, a voided or locked record (or locked casebook / study)
    and for a name that is not a data field of the form ("fields"); StaleRecordError when the
    record changed since `expected_version`; PermissionDenied without trial.verify_source.
    Returns the stored record.
    """
    _require(user, VERIFY, _("Only a monitor can verify forms against the source."))
    stored = _stored(record)
    patient_id = record_patient_id(stored)
    _refuse_locked(stored, patient_id)
    if stored.status == FormStatus.DRAFT:
        raise ValidationError(
            _("This form is a draft: it can be verified once it is saved as complete.")
        )
    _check_version(stored, expected_version)
    whole, by_field = verification_state(stored)
    links = {
        "content_type": ContentType.objects.get_for_model(type(stored)),
        "object_id": stored.pk,
        "patient_id": patient_id,
        "version": stored.version,
        "verified_by": user,
    }
    if fields is None:
        wanted = [""]
        what = _("whole form")
    else:
        labels = {f.name: str(f.verbose_name) for f in data_fields(type(stored))}
        wanted = list(dict.fromkeys(fields))
        if not wanted:
            raise ValidationError({"fields": _("Tick at least one field to verify.")})
        unknown = [name for name in wanted if name not in labels]
        if unknown:
            raise ValidationError(
                {
                    "fields": _("Not a field of this form: %(names)s.")
                    % {"names": ", ".join(unknown)}
                }
            )
        what = ", ".join(labels[name] for name in wanted)
    reason = _("Source-data verification (%(what)s), version %(version)s") % {
        "what": what,
        "version": stored.version,
    }
    current = {name for name, row in by_field.items() if row.current}
    if whole is not None and whole.current:
        current.add("")
    for name in wanted:
        if name in current:
            continue  # already verified at this version: nothing new to record
        verification = SourceVerification(field=name, **links)
        verification._history_user = user
        verification._change_reason = reason
        verification.save()
    if stored.status == FormStatus.COMPLETE and _is_fully_verified(stored):
        _set_status(stored, FormStatus.VERIFIED, user=user, reason=reason)
    return stored


def _check_password(user: AbstractBaseUser, password: str) -> None:
    if not password or not user.check_password(password):
        raise ValidationError({"password": _("The password is not correct: nothing was signed.")})


@transaction.atomic
def form_sign(
    record: ClinicalModel,
    *,
    user: AbstractBaseUser,
    password: str,
    expected_version: int | None,
    meaning: str = SignatureMeaning.APPROVAL,
) -> Signature:
    """An investigator's electronic signature of `record` at its current version, after
    re-entering their password. The form becomes signed; the signature holds while the
    record's version does not move.

    Raises ValidationError on "password" for a wrong password, on "meaning" for a meaning that
    is not a form's, and for a draft, a voided or locked record (or locked casebook / study);
    StaleRecordError when the record changed since `expected_version`; PermissionDenied
    without trial.sign_record. Nothing is saved when anything is refused.
    """
    _require(user, SIGN, _("Only an investigator can sign forms."))
    if meaning != SignatureMeaning.APPROVAL:
        raise ValidationError({"meaning": _("Choose the meaning of your signature.")})
    _check_password(user, password)
    stored = _stored(record)
    patient_id = record_patient_id(stored)
    _refuse_locked(stored, patient_id)
    if stored.status == FormStatus.DRAFT:
        raise ValidationError(_("A draft cannot be signed: save the form as complete first."))
    _check_version(stored, expected_version)
    signature = _signature(
        scope=Signature.Scope.RECORD,
        content_type=ContentType.objects.get_for_model(type(stored)),
        object_id=stored.pk,
        patient_id=patient_id,
        version=stored.version,
        meaning=meaning,
        signed_by=user,
    )
    if stored.status != FormStatus.SIGNED:
        reason = _("Signed (version %(version)s): %(meaning)s") % {
            "version": stored.version,
            "meaning": signature.get_meaning_display(),
        }
        _set_status(stored, FormStatus.SIGNED, user=user, reason=reason)
    return signature


def _casebook_for_update(patient: models.Model) -> Casebook:
    Casebook.objects.get_or_create(patient_id=patient.pk)
    return Casebook.objects.select_for_update().get(pk=patient.pk)


@transaction.atomic
def casebook_sign(patient: models.Model, *, user: AbstractBaseUser, password: str) -> Signature:
    """An investigator's signature of the patient's whole casebook at its current version (the
    counter every write of the patient's records moves), after re-entering their password.
    The casebook row is created if the patient has none yet.

    Raises ValidationError on "password" for a wrong password and while the casebook or the
    study is locked; PermissionDenied without trial.sign_record.
    """
    _require(user, SIGN, _("Only an investigator can sign casebooks."))
    _check_password(user, password)
    casebook = _casebook_for_update(patient)
    _refuse_locked_casebook(patient.pk)
    return _signature(
        scope=Signature.Scope.CASEBOOK,
        content_type=ContentType.objects.get_for_model(type(patient)),
        object_id=patient.pk,
        patient_id=patient.pk,
        version=casebook.version,
        meaning=SignatureMeaning.CASEBOOK,
        signed_by=user,
    )


@transaction.atomic
def form_lock(record: ClinicalModel, *, user: AbstractBaseUser, reason: str) -> ClinicalModel:
    """Lock a complete, verified or signed form: it stays read-only until `form_unlock`.

    Raises ValidationError on "reason" without a reason, and for a draft, a voided or an
    already locked form; PermissionDenied without trial.lock_record.
    """
    _require(user, LOCK, _("Only a data manager can lock forms."))
    reason = _reason(reason)
    stored = _stored(record)
    if stored.status == FormStatus.LOCKED:
        raise ValidationError(_("This form is already locked."))
    if stored.status == FormStatus.DRAFT:
        raise ValidationError(_("A draft cannot be locked: it must be completed first."))
    _set_status(stored, FormStatus.LOCKED, user=user, reason=reason)
    return stored


def unlocked_status(stored: ClinicalModel) -> str:
    """The status a record returns to when unlocked: signed while one of its signatures holds,
    verified while a verification of the whole form (or of every field) holds, else complete."""
    if any(state.holds for state in record_signatures(stored)):
        return FormStatus.SIGNED
    if _is_fully_verified(stored):
        return FormStatus.VERIFIED
    return FormStatus.COMPLETE


@transaction.atomic
def form_unlock(record: ClinicalModel, *, user: AbstractBaseUser, reason: str) -> ClinicalModel:
    """Unlock a locked form; it returns to the status it would have (`unlocked_status`).

    Raises ValidationError on "reason" without a reason and for a form that is not locked;
    PermissionDenied without trial.lock_record.
    """
    _require(user, LOCK, _("Only a data manager can unlock forms."))
    reason = _reason(reason)
    stored = _stored(record)
    if stored.status != FormStatus.LOCKED:
        raise ValidationError(_("This form is not locked."))
    _set_status(stored, unlocked_status(stored), user=user, reason=reason)
    return stored


def _save_lock(row: Casebook | Study, *, user: AbstractBaseUser, reason: str, lock: bool):
    row.locked_at = timezone.now() if lock else None
    row.locked_by = user if lock else None
    row.lock_reason = reason if lock else ""
    row._change_reason = reason
    row._history_user = user
    row.save(update_fields=["locked_at", "locked_by", "lock_reason"])


@transaction.atomic
def casebook_lock(patient: models.Model, *, user: AbstractBaseUser, reason: str) -> Casebook:
    """Lock the patient's casebook: no record of the patient can change until it is unlocked.

    Raises ValidationError on "reason" without a reason and when it is already locked;
    PermissionDenied without trial.lock_record.
    """
    _require(user, LOCK, _("Only a data manager can lock casebooks."))
    reason = _reason(reason)
    casebook = _casebook_for_update(patient)
    if casebook.locked_at is not None:
        raise ValidationError(_("This casebook is already locked."))
    _save_lock(casebook, user=user, reason=reason, lock=True)
    return casebook


@transaction.atomic
def casebook_unlock(patient: models.Model, *, user: AbstractBaseUser, reason: str) -> Casebook:
    """Unlock the patient's casebook. Raises ValidationError on "reason" without a reason and
    when it is not locked; PermissionDenied without trial.lock_record."""
    _require(user, LOCK, _("Only a data manager can unlock casebooks."))
    reason = _reason(reason)
    casebook = _casebook_for_update(patient)
    if casebook.locked_at is None:
        raise ValidationError(_("This casebook is not locked."))
    _save_lock(casebook, user=user, reason=reason, lock=False)
    return casebook


@transaction.atomic
def study_lock(study: Study, *, user: AbstractBaseUser, reason: str) -> Study:
    """Lock the study database (before analysis): no clinical record of it can change.

    Raises ValidationError on "reason" without a reason and when it is already locked;
    PermissionDenied without trial.lock_record.
    """
    _require(user, LOCK, _("Only a data manager can lock the study."))
    reason = _reason(reason)
    stored = Study.objects.select_for_update().get(pk=study.pk)
    if stored.locked_at is not None:
        raise ValidationError(_("The study is already locked."))
    _save_lock(stored, user=user, reason=reason, lock=True)
    return stored


@transaction.atomic
def study_unlock(study: Study, *, user: AbstractBaseUser, reason: str) -> Study:
    """Unlock the study database. Raises ValidationError on "reason" without a reason and when
    it is not locked; PermissionDenied without trial.lock_record."""
    _require(user, LOCK, _("Only a data manager can unlock the study."))
    reason = _reason(reason)
    stored = Study.objects.select_for_update().get(pk=study.pk)
    if stored.locked_at is None:
        raise ValidationError(_("The study is not locked."))
    _save_lock(stored, user=user, reason=reason, lock=False)
    return stored
