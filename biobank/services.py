"""Every write of the biobank: collecting a specimen, storing and moving it, aliquots, thawing,
shipping, destruction, and the destruction flags that follow a withdrawn biobank consent.

Each service is one transaction: the specimen's derived state and position and its custody
event are saved together or not at all. The database refuses two specimens in one box position
(`one_specimen_per_box_position`); a clash found only there (two people storing into the same
free position at once) gets the same field-level message as one found beforehand.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from biobank.models import Box, CustodyEvent, Specimen, position_label
from patients.models import Enrollment, Patient, Withdrawal
from patients.services import consent_current, death_check
from surgery.models import Operation
from trial.services import clinical_save
from trial.validation import fmt, raise_if

WEIGHT_USUAL_MIN_MG = Decimal("10")
WEIGHT_USUAL_MAX_MG = Decimal("2000")
# A specimen is taken during the operation; the discarded specimen may be processed the next day.
COLLECTION_DAYS_AFTER_OPERATION = 1

# Reasons stored in the history when the services update a specimen's derived fields (kept
# untranslated in the audit trail, like the other apps' derived-value reasons).
_STATE_REASON = gettext_noop("Custody event: %s")
FLAGGED_REASON = gettext_noop("Biobank consent withdrawn")
UNFLAGGED_REASON = gettext_noop("Biobank consent given again")


def _fmt_dt(value: datetime) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _event(
    specimen: Specimen,
    *,
    kind: str,
    user: AbstractBaseUser | None,
    at: datetime,
    notes: str = "",
    destination: str = "",
) -> CustodyEvent:
    event = CustodyEvent(
        specimen=specimen,
        kind=kind,
        at=at,
        by=user,
        box=specimen.box if kind in (CustodyEvent.Kind.STORED, CustodyEvent.Kind.MOVED) else None,
        row=specimen.row if kind in (CustodyEvent.Kind.STORED, CustodyEvent.Kind.MOVED) else None,
        column=(
            specimen.column if kind in (CustodyEvent.Kind.STORED, CustodyEvent.Kind.MOVED) else None
        ),
        destination=destination,
        notes=notes,
    )
    return clinical_save(event, user=user)


def _save_state(specimen: Specimen, *, user: AbstractBaseUser | None, kind: str) -> Specimen:
    return clinical_save(specimen, user=user, reason=_STATE_REASON % kind)


def _require_biobank_consent(patient: Patient) -> None:
    consent = consent_current(patient=patient)
    if consent is None or not consent.biobank_consent:
        raise ValidationError(
            _(
                "Patient %(code)s has not consented to the biobank (current consent: %(consent)s): "
                "no specimen can be recorded."
            )
            % {"code": patient.subject_code, "consent": consent or _("none")}
        )


def _check_event_time(
    errors: dict, field: str, at: datetime, specimen: Specimen, *, today: date
) -> None:
    if timezone.localdate(at) > today:
        errors.setdefault(field, []).append(
            _("%(value)s is in the future (today is %(today)s).")
            % {"value": _fmt_dt(at), "today": fmt(today)}
        )
    if at < specimen.collected_at:
        errors.setdefault(field, []).append(
            _("%(value)s is before the collection of %(code)s (%(collected)s).")
            % {
                "value": _fmt_dt(at),
                "code": specimen.code,
                "collected": _fmt_dt(specimen.collected_at),
            }
        )


def _refuse_state(specimen: Specimen, allowed: tuple[str, ...], action: str) -> None:
    if specimen.state not in allowed:
        raise ValidationError(
            _("Specimen %(code)s is %(state)s: it cannot be %(action)s.")
            % {
                "code": specimen.code,
                "state": specimen.get_state_display().lower(),
                "action": action,
            }
        )


def _refuse_flagged(specimen: Specimen, action: str) -> None:
    if specimen.flagged_for_destruction:
        raise ValidationError(
            _(
                "Specimen %(code)s is flagged for destruction (biobank consent withdrawn on "
                "%(on)s): it cannot be %(action)s, only destroyed."
            )
            % {"code": specimen.code, "on": fmt(specimen.flagged_on), "action": action}
        )


def _locked(specimen: Specimen) -> Specimen:
    """The specimen re-read under a row lock, so that two actions on it run one after the other."""
    return (
        Specimen.objects.select_for_update(of=("self",))
        .select_related("patient", "operation", "box__rack__freezer")
        .get(pk=specimen.pk)
    )


def specimen_code_next(*, patient: Patient, kind: str) -> str:
    """The next code of a `kind` specimen of `patient`: subject code, kind letter and a two-digit
    sequence (CJFH-0001-T01, -T02, …). Voided specimens keep their codes, so none is reused.
    Call it with the patient row locked (specimen_collect does)."""
    prefix = f"{patient.subject_code}-{Specimen.KIND_LETTERS[kind]}"
    codes = Specimen.objects.filter(
        patient=patient, parent__isnull=True, code__startswith=prefix
    ).values_list("code", flat=True)
    numbers = [int(code[len(prefix) :]) for code in codes if code[len(prefix) :].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:02d}"


def weight_warning(weight_mg: Decimal | None) -> str:
    """The confirmation asked for a weight outside the usual 10–2000 mg, or ""."""
    if weight_mg is None or weight_mg <= 0:
        return ""
    if weight_mg < WEIGHT_USUAL_MIN_MG or weight_mg > WEIGHT_USUAL_MAX_MG:
        return _(
            "A weight of %(weight)s mg is outside the usual %(low)s–%(high)s mg: check it, then "
            "tick “weight confirmed” to save it."
        ) % {"weight": weight_mg, "low": WEIGHT_USUAL_MIN_MG, "high": WEIGHT_USUAL_MAX_MG}
    return ""


@transaction.atomic
def specimen_collect(
    *,
    specimen: Specimen,
    user: AbstractBaseUser,
    confirm_weight: bool = False,
    today: date | None = None,
) -> Specimen:
    """Record a specimen taken at the patient's index operation; gives it its code and writes
    its "collected" custody event.

    `specimen` is unsaved, with patient, operation, kind, origin, weight, collection time,
    ischaemia times and preservation. Refused (ValidationError, field-level where a field is at
    fault, nothing saved) when the patient is not enrolled or has no biobank consent, the
    operation is not the patient's, the collection is in the future, before the operation date
    or more than a day after it, or after a withdrawal, the weight is 0 or less, or outside
    10–2000 mg without `confirm_weight`. Returns the saved specimen.
    """
    today = _today(today)
    if specimen.pk is not None:
        raise ValidationError(_("This specimen is already recorded."))
    patient = Patient.objects.select_for_update().get(pk=specimen.patient_id)
    if not Enrollment.objects.active().filter(patient=patient).exists():
        raise ValidationError(
            _("Patient %(code)s is not enrolled: no specimen can be recorded.")
            % {"code": patient.subject_code}
        )
    _require_biobank_consent(patient)
    errors: dict = {}
    operation = Operation.objects.active().filter(pk=specimen.operation_id).first()
    if operation is None or operation.patient_id != patient.pk:
        errors.setdefault("operation", []).append(
            _("Choose the index operation of patient %(code)s.") % {"code": patient.subject_code}
        )
    if specimen.collected_at is not None:
        collected_on = timezone.localdate(specimen.collected_at)
        if collected_on > today:
            errors.setdefault("collected_at", []).append(
                _("%(value)s is in the future (today is %(today)s).")
                % {"value": _fmt_dt(specimen.collected_at), "today": fmt(today)}
            )
        if operation is not None and collected_on < operation.operated_on:
            errors.setdefault("collected_at", []).append(
                _("Collection (%(value)s) is before the operation (%(operation)s).")
                % {"value": fmt(collected_on), "operation": fmt(operation.operated_on)}
            )
        latest = (
            operation.operated_on + timedelta(days=COLLECTION_DAYS_AFTER_OPERATION)
            if operation
            else None
        )
        if latest is not None and collected_on > latest:
            errors.setdefault("collected_at", []).append(
                _(
                    "Collection (%(value)s) is more than %(days)s day after the operation "
                    "(%(operation)s)."
                )
                % {
                    "value": fmt(collected_on),
                    "days": COLLECTION_DAYS_AFTER_OPERATION,
                    "operation": fmt(operation.operated_on),
                }
            )
        withdrawal = Withdrawal.objects.active().filter(patient=patient).first()
        if withdrawal is not None and collected_on > withdrawal.withdrawn_on:
            errors.setdefault("collected_at", []).append(
                _("Collection (%(value)s) is after the withdrawal (%(withdrawn)s).")
                % {"value": fmt(collected_on), "withdrawn": fmt(withdrawal.withdrawn_on)}
            )
        death_check(
            errors, "collected_at", collected_on, died_on=patient.died_on, label=_("Collection")
        )
    weight = specimen.weight_mg
    if weight is not None and weight <= 0:
        errors.setdefault("weight_mg", []).append(
            _("The weight must be more than 0 mg (entered: %(weight)s mg).") % {"weight": weight}
        )
    elif weight_warning(weight) and not confirm_weight:
        errors.setdefault("weight_mg", []).append(weight_warning(weight))
    raise_if(errors)
    specimen.patient = patient
    specimen.code = specimen_code_next(patient=patient, kind=specimen.kind)
    specimen.state = Specimen.State.COLLECTED
    specimen.box, specimen.row, specimen.column = None, None, None
    saved = clinical_save(specimen, user=user, complete=True)
    _event(saved, kind=CustodyEvent.Kind.COLLECTED, user=user, at=saved.collected_at)
    return saved


def _position_taken(box: Box, row: int, column: int, occupant: Specimen) -> ValidationError:
    return ValidationError(
        {
            "position": _(
                "Position %(position)s of box %(box)s is already taken by specimen %(code)s."
            )
            % {"position": position_label(row, column), "box": box.name, "code": occupant.code}
        }
    )


def _occupant(box: Box, row: int, column: int, exclude: Specimen) -> Specimen | None:
    return (
        Specimen.objects.active()
        .filter(box=box, row=row, column=column)
        .exclude(pk=exclude.pk)
        .first()
    )


def _place(
    specimen: Specimen,
    *,
    box: Box,
    row: int,
    column: int,
    user: AbstractBaseUser,
    kind: str,
    at: datetime | None,
    notes: str,
    today: date | None,
) -> Specimen:
    today = _today(today)
    at = at or timezone.now()
    box = Box.objects.select_related("rack__freezer").get(pk=box.pk)
    errors: dict = {}
    _check_event_time(errors, "at", at, specimen, today=today)
    if box.rack.freezer.site_id != specimen.patient.site_id:
        errors.setdefault("box", []).append(
            _("Box %(box)s belongs to another site than patient %(code)s.")
            % {"box": box.name, "code": specimen.patient.subject_code}
        )
    elif not (1 <= row <= box.rows and 1 <= column <= box.columns):
        errors.setdefault("position", []).append(
            _("Position %(position)s is outside box %(box)s (%(rows)s rows × %(columns)s columns).")
            % {
                "position": position_label(row, column) or f"{row}/{column}",
                "box": box.name,
                "rows": box.rows,
                "columns": box.columns,
            }
        )
    elif specimen.box_id == box.pk and (specimen.row, specimen.column) == (row, column):
        errors.setdefault("position", []).append(
            _("Specimen %(code)s is already in position %(position)s of box %(box)s.")
            % {"code": specimen.code, "position": position_label(row, column), "box": box.name}
        )
    else:
        occupant = _occupant(box, row, column, specimen)
        if occupant is not None:
            raise _position_taken(box, row, column, occupant)
    raise_if(errors)
    specimen.box, specimen.row, specimen.column = box, row, column
    specimen.state = Specimen.State.STORED
    try:
        with transaction.atomic():
            saved = _save_state(specimen, user=user, kind=kind)
    except (IntegrityError, ValidationError) as error:
        # Someone filled the position after the check above: the unique constraint (or its
        # validation) refused this save; the savepoint rolled it back.
        occupant = _occupant(box, row, column, specimen)
        if occupant is None:
            raise
        raise _position_taken(box, row, column, occupant) from error
    _event(saved, kind=kind, user=user, at=at, notes=notes)
    return saved


@transaction.atomic
def specimen_store(
    *,
    specimen: Specimen,
    box: Box,
    row: int,
    column: int,
    user: AbstractBaseUser,
    at: datetime | None = None,
    notes: str = "",
    today: date | None = None,
) -> Specimen:
    """Put a collected (or thawed) specimen into position (`row`, `column`) of `box`; writes a
    "stored" event.

    Refused (field-level ValidationError, nothing saved) when the box is of another site, the
    position is outside the box's grid or taken (the message names the specimen there; a
    concurrent store into the same position is caught by the database and gets the same
    message), `at` is in the future or before the collection, or the specimen is not
    collected/thawed or is flagged for destruction. Returns the updated specimen.
    """
    specimen = _locked(specimen)
    _refuse_state(specimen, (Specimen.State.COLLECTED, Specimen.State.THAWED), _("stored"))
    _refuse_flagged(specimen, _("stored"))
    return _place(
        specimen,
        box=box,
        row=row,
        column=column,
        user=user,
        kind=CustodyEvent.Kind.STORED,
        at=at,
        notes=notes,
        today=today,
    )


@transaction.atomic
def specimen_move(
    *,
    specimen: Specimen,
    box: Box,
    row: int,
    column: int,
    user: AbstractBaseUser,
    at: datetime | None = None,
    notes: str = "",
    today: date | None = None,
) -> Specimen:
    """Move a stored specimen to another position (same or another box of its site); writes a
    "moved" event. Refused as `specimen_store` is, and for a specimen that is not stored."""
    specimen = _locked(specimen)
    _refuse_state(specimen, (Specimen.State.STORED,), _("moved"))
    return _place(
        specimen,
        box=box,
        row=row,
        column=column,
        user=user,
        kind=CustodyEvent.Kind.MOVED,
        at=at,
        notes=notes,
        today=today,
    )


@transaction.atomic
def specimen_aliquot(
    *,
    parent: Specimen,
    count: int,
    weight_mg_each: Decimal,
    user: AbstractBaseUser,
    preservation: str = "",
    at: datetime | None = None,
    today: date | None = None,
) -> list[Specimen]:
    """Split `parent` into `count` child specimens (codes `<parent>-1`, `-2`, … continuing after
    earlier aliquots) of `weight_mg_each` mg; each child gets a "collected" event, the parent an
    "aliquoted" event.

    Children inherit the patient, operation, kind, origin and collection time, and the
    parent's preservation unless `preservation` is given. Refused (ValidationError, nothing
    saved) for a count outside 1–20, a weight of 0 or less, aliquots heavier in total (with
    earlier aliquots) than the parent, a parent that is shipped or destroyed or flagged for
    destruction, or a patient without biobank consent. Returns the children.
    """
    today = _today(today)
    at = at or timezone.now()
    parent = _locked(parent)
    _refuse_state(
        parent,
        (Specimen.State.COLLECTED, Specimen.State.STORED, Specimen.State.THAWED),
        _("aliquoted"),
    )
    _refuse_flagged(parent, _("aliquoted"))
    _require_biobank_consent(parent.patient)
    errors: dict = {}
    _check_event_time(errors, "at", at, parent, today=today)
    if not 1 <= count <= 20:
        errors.setdefault("count", []).append(
            _("Make 1 to 20 aliquots (entered: %(count)s).") % {"count": count}
        )
    if weight_mg_each is None or weight_mg_each <= 0:
        errors.setdefault("weight_mg_each", []).append(
            _("The weight must be more than 0 mg (entered: %(weight)s mg).")
            % {"weight": weight_mg_each}
        )
    raise_if(errors)
    earlier = list(parent.aliquots.active().values_list("weight_mg", flat=True))
    total = weight_mg_each * count + sum(earlier, Decimal("0"))
    if total > parent.weight_mg:
        message = _(
            "%(count)s aliquots of %(each)s mg (%(total)s mg with earlier aliquots) weigh more "
            "than specimen %(code)s (%(weight)s mg)."
        )
        raise ValidationError(
            {
                "weight_mg_each": message
                % {
                    "count": count,
                    "each": weight_mg_each,
                    "total": total,
                    "code": parent.code,
                    "weight": parent.weight_mg,
                }
            }
        )
    numbers = [
        int(code.rsplit("-", 1)[1])
        for code in Specimen.objects.filter(parent=parent).values_list("code", flat=True)
    ]
    first = max(numbers, default=0) + 1
    children = []
    for number in range(first, first + count):
        child = Specimen(
            patient=parent.patient,
            operation=parent.operation,
            parent=parent,
            code=f"{parent.code}-{number}",
            kind=parent.kind,
            origin=parent.origin,
            weight_mg=weight_mg_each,
            collected_at=parent.collected_at,
            warm_ischaemia_min=parent.warm_ischaemia_min,
            cold_ischaemia_min=parent.cold_ischaemia_min,
            preservation=preservation or parent.preservation,
            state=Specimen.State.COLLECTED,
        )
        child = clinical_save(child, user=user, complete=True)
        note = _("Aliquot of %(code)s") % {"code": parent.code}
        _event(child, kind=CustodyEvent.Kind.COLLECTED, user=user, at=at, notes=note)
        children.append(child)
    codes = ", ".join(c.code for c in children)
    _event(parent, kind=CustodyEvent.Kind.ALIQUOTED, user=user, at=at, notes=codes)
    return children


def _release(
    specimen: Specimen,
    *,
    state: str,
    kind: str,
    user: AbstractBaseUser,
    at: datetime | None,
    today: date | None,
    notes: str = "",
    destination: str = "",
) -> Specimen:
    """Take the specimen out of its position (freeing it) into `state`, with a `kind` event."""
    today = _today(today)
    at = at or timezone.now()
    errors: dict = {}
    _check_event_time(errors, "at", at, specimen, today=today)
    raise_if(errors)
    specimen.box, specimen.row, specimen.column = None, None, None
    specimen.state = state
    saved = _save_state(specimen, user=user, kind=kind)
    _event(saved, kind=kind, user=user, at=at, notes=notes, destination=destination)
    return saved


@transaction.atomic
def specimen_thaw(
    *,
    specimen: Specimen,
    user: AbstractBaseUser,
    at: datetime | None = None,
    notes: str = "",
    today: date | None = None,
) -> Specimen:
    """Take a stored specimen out of the freezer for use; frees its position, writes a "thawed"
    event. Refused for a specimen that is not stored or is flagged for destruction."""
    specimen = _locked(specimen)
    _refuse_state(specimen, (Specimen.State.STORED,), _("thawed"))
    _refuse_flagged(specimen, _("thawed"))
    return _release(
        specimen,
        state=Specimen.State.THAWED,
        kind=CustodyEvent.Kind.THAWED,
        user=user,
        at=at,
        today=today,
        notes=notes,
    )


@transaction.atomic
def specimen_ship(
    *,
    specimen: Specimen,
    destination: str,
    user: AbstractBaseUser,
    at: datetime | None = None,
    notes: str = "",
    today: date | None = None,
) -> Specimen:
    """Ship a specimen to `destination` (a laboratory); frees its position, writes a "shipped"
    event. Refused without a destination, for a specimen already shipped or destroyed, and for
    one flagged for destruction."""
    specimen = _locked(specimen)
    if not (destination or "").strip():
        raise ValidationError({"destination": _("Give the laboratory the specimen is shipped to.")})
    _refuse_state(
        specimen,
        (Specimen.State.COLLECTED, Specimen.State.STORED, Specimen.State.THAWED),
        _("shipped"),
    )
    _refuse_flagged(specimen, _("shipped"))
    return _release(
        specimen,
        state=Specimen.State.SHIPPED,
        kind=CustodyEvent.Kind.SHIPPED,
        user=user,
        at=at,
        today=today,
        notes=notes,
        destination=destination.strip(),
    )


@transaction.atomic
def specimen_destroy(
    *,
    specimen: Specimen,
    reason: str,
    user: AbstractBaseUser,
    at: datetime | None = None,
    today: date | None = None,
) -> Specimen:
    """Destroy a specimen (e.g. after a withdrawn biobank consent); frees its position and
    writes a "destroyed" event with `reason`, which takes it off the destruction worklist.
    Refused without a reason and for a specimen already shipped or destroyed."""
    specimen = _locked(specimen)
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the destruction.")})
    _refuse_state(
        specimen,
        (Specimen.State.COLLECTED, Specimen.State.STORED, Specimen.State.THAWED),
        _("destroyed"),
    )
    return _release(
        specimen,
        state=Specimen.State.DESTROYED,
        kind=CustodyEvent.Kind.DESTROYED,
        user=user,
        at=at,
        today=today,
        notes=reason.strip(),
    )


_FLAGGABLE = (Specimen.State.COLLECTED, Specimen.State.STORED, Specimen.State.THAWED)


@transaction.atomic
def biobank_consent_withdrawn(
    *, patient: Patient, user: AbstractBaseUser | None, on: date
) -> list[Specimen]:
    """Flag every specimen of `patient` still held by the biobank (collected, stored or thawed,
    aliquots included) for destruction, as of `on` (the date of the consent that withdrew
    biobank use); each gets a "flagged" event. Idempotent: flagged specimens are left as they
    are. Returns the newly flagged specimens."""
    flagged = []
    specimens = (
        Specimen.objects.active()
        .select_for_update()
        .filter(patient=patient, state__in=_FLAGGABLE, flagged_for_destruction=False)
    )
    # The flag is raised when the withdrawal is recorded (the consent's date is in the notes).
    at = timezone.now()
    for specimen in specimens:
        specimen.flagged_for_destruction = True
        specimen.flagged_on = on
        saved = clinical_save(specimen, user=user, reason=FLAGGED_REASON)
        _event(
            saved,
            kind=CustodyEvent.Kind.FLAGGED,
            user=user,
            at=max(at, saved.collected_at),
            notes=_("Biobank consent withdrawn on %(on)s.") % {"on": fmt(on)},
        )
        flagged.append(saved)
    return flagged


@transaction.atomic
def biobank_consent_restored(*, patient: Patient, user: AbstractBaseUser | None) -> list[Specimen]:
    """Lift the destruction flags of `patient`'s specimens not yet destroyed (the withdrawing
    consent was corrected or a new biobank consent given). Returns the specimens unflagged."""
    restored = []
    specimens = (
        Specimen.objects.active()
        .select_for_update()
        .filter(patient=patient, state__in=_FLAGGABLE, flagged_for_destruction=True)
    )
    for specimen in specimens:
        specimen.flagged_for_destruction = False
        specimen.flagged_on = None
        saved = clinical_save(specimen, user=user, reason=UNFLAGGED_REASON)
        _event(saved, kind=CustodyEvent.Kind.UNFLAGGED, user=user, at=timezone.now())
        restored.append(saved)
    return restored
