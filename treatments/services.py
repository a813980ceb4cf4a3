"""Every write of the treatments app: regimen lines, cycles with their doses, adverse events.

Each service is one transaction. Row rules live in the models' clean(); the rules that compare
a record with other records (enrollment, withdrawal, earlier cycles, other lines) live here.
All errors of one submission are collected and raised together, keyed by the field to fix, and
nothing is saved then. Line numbers, cycle numbers, BSA and dose reductions are derived here.
"""

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import Patient
from patients.services import study_period
from treatments import regimens, selectors
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, Drug, RegimenLine
from trial.derived import patient_records_changed
from trial.models import AuditedModel
from trial.services import StaleRecordError, clinical_save, clinical_void
from trial.validation import fmt, raise_if

# Bookkeeping columns that do not make an edit.
_BOOKKEEPING = {"updated_at", "updated_by", "version", "created_at", "created_by"}


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _number(value: Decimal) -> str:
    """A dose as people read it: 3,200 / 218.8 (thousands grouped, no trailing .0)."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _merge(errors: dict, error: ValidationError, *, prefix: str = "") -> None:
    """Add the messages of `error` to `errors`, field by field (keys prefixed by `prefix`)."""
    if hasattr(error, "error_dict"):
        for name, items in error.error_dict.items():
            key = NON_FIELD_ERRORS if name == NON_FIELD_ERRORS and not prefix else prefix + name
            for item in items:
                errors.setdefault(key, []).extend(item.messages)
    else:
        errors.setdefault(NON_FIELD_ERRORS, []).extend(error.messages)


def _row_errors(errors: dict, instance: AuditedModel, *, prefix: str = "", exclude=()) -> None:
    """Run the model's field validation and clean() and collect their errors.

    Foreign keys (set by the services, not typed) and the database constraints are left to
    `clinical_save`, which validates the whole row again before saving: checking them here too
    would only repeat their queries.
    """
    skip = set(exclude) | {f.name for f in instance._meta.concrete_fields if f.is_relation}
    try:
        instance.clean()
    except ValidationError as error:
        _merge(errors, error, prefix=prefix)
        # The row rule's message says more than a generic "cannot be null" on the same field.
        skip |= set(getattr(error, "error_dict", {}))
    try:
        instance.clean_fields(exclude=skip)
    except ValidationError as error:
        _merge(errors, error, prefix=prefix)


def _changed(stored: AuditedModel, instance: AuditedModel) -> tuple[str, ...]:
    return tuple(
        f.name
        for f in instance._meta.concrete_fields
        if f.name not in _BOOKKEEPING and getattr(stored, f.attname) != getattr(instance, f.attname)
    )


def _check_version(stored: AuditedModel, instance: AuditedModel, expected: int | None) -> None:
    """Refuse a stale edit before anything else is looked at (StaleRecordError)."""
    if stored.voided_at is not None:
        raise ValidationError(_("This record was voided and can no longer be edited."))
    if expected is not None and stored.version != expected:
        raise StaleRecordError(
            instance=stored,
            expected_version=expected,
            current_version=stored.version,
            changed_by=str(stored.updated_by or stored.created_by or "—"),
            changed_at=stored.updated_at,
            changed_fields=_changed(stored, instance),
        )


# --- regimen lines --------------------------------------------------------------------------


def _active_lines(patient: Patient) -> list[RegimenLine]:
    return list(RegimenLine.objects.active().filter(patient=patient).order_by("line_number"))


def _last_cycle(line: RegimenLine) -> ChemoCycle | None:
    return ChemoCycle.objects.active().filter(line=line).order_by("-given_on", "-id").first()


def _check_line(line: RegimenLine, *, others: list[RegimenLine], today: date) -> dict:
    """The cross-record rules of a line numbered `line.line_number` among `others` (the
    patient's other active lines); returns the errors, keyed by field."""
    patient = line.patient
    period = study_period(patient=patient, what=_("chemotherapy"))
    errors: dict = {}
    period.check(
        errors,
        "started_on",
        line.started_on,
        label=_("Start of line %(number)s") % {"number": line.line_number},
        today=today,
    )
    if line.line_number == 1 and line.change_reason:
        _add(
            errors,
            "change_reason",
            _("The first line replaces no earlier regimen: leave the reason for a change empty."),
        )
    if line.line_number > 1 and not line.change_reason:
        _add(
            errors,
            "change_reason",
            _("Give the reason for changing the regimen (line %(number)s).")
            % {"number": line.line_number},
        )
    previous = next((o for o in others if o.line_number == line.line_number - 1), None)
    if previous and line.started_on:
        last = _last_cycle(previous)
        if last and line.started_on < last.given_on:
            _add(
                errors,
                "started_on",
                _(
                    "Line %(number)s cannot start (%(value)s) before the last cycle of line "
                    "%(previous)s (C%(cycle)s, %(other)s)."
                )
                % {
                    "number": line.line_number,
                    "previous": previous.line_number,
                    "cycle": last.cycle_number,
                    "value": fmt(line.started_on),
                    "other": fmt(last.given_on),
                },
            )
        elif line.started_on < previous.started_on:
            _add(
                errors,
                "started_on",
                _("Line %(number)s cannot start (%(value)s) before line %(previous)s (%(other)s).")
                % {
                    "number": line.line_number,
                    "previous": previous.line_number,
                    "value": fmt(line.started_on),
                    "other": fmt(previous.started_on),
                },
            )
    following = next((o for o in others if o.line_number == line.line_number + 1), None)
    if following and line.started_on and line.started_on > following.started_on:
        _add(
            errors,
            "started_on",
            _("Line %(number)s cannot start (%(value)s) after line %(next)s (%(other)s).")
            % {
                "number": line.line_number,
                "next": following.line_number,
                "value": fmt(line.started_on),
                "other": fmt(following.started_on),
            },
        )
    return errors


def _set_cycle_length(line: RegimenLine) -> None:
    spec = regimens.regimen_spec(line.regimen)
    if spec:
        line.cycle_length_days = spec.cycle_length_days


@transaction.atomic
def line_start(
    *,
    line: RegimenLine,
    user: AbstractBaseUser,
    complete: bool = True,
    today: date | None = None,
) -> RegimenLine:
    """Start a new regimen line for an enrolled patient.

    `line` is unsaved, with its patient, regimen, start date and, for a later line, the reason
    for the change. The line number is the number of active lines + 1; the cycle length comes
    from the regimen (typed for "other"). Refused (ValidationError keyed by field, nothing
    saved): a patient not enrolled; a start in the future, before the enrollment or after a
    withdrawal; a reason for line 1 or none for a later line; a start before the previous
    line's last cycle; any row rule of the model.
    """
    today = _today(today)
    patient = Patient.objects.select_for_update().get(pk=line.patient_id)
    line.patient = patient
    others = _active_lines(patient)
    line.line_number = len(others) + 1
    _set_cycle_length(line)
    errors = _check_line(line, others=others, today=today)
    _row_errors(errors, line)
    raise_if(errors)
    return clinical_save(line, user=user, complete=complete)


@transaction.atomic
def line_update(
    *,
    line: RegimenLine,
    user: AbstractBaseUser,
    expected_version: int | None,
    reason: str = "",
    complete: bool | None = None,
    today: date | None = None,
) -> RegimenLine:
    """Save edits of a regimen line, with the checks of `line_start` and:
    the regimen cannot change once cycles are recorded (their doses follow it), and the start
    cannot move after the line's first cycle.

    Raises StaleRecordError when the line changed since `expected_version`, and
    ValidationError keyed `reason` when a complete line is changed without a reason.
    """
    today = _today(today)
    stored = RegimenLine._base_manager.select_for_update().get(pk=line.pk)
    _check_version(stored, line, expected_version)
    line.line_number = stored.line_number
    _set_cycle_length(line)
    others = [o for o in _active_lines(line.patient) if o.pk != line.pk]
    errors = _check_line(line, others=others, today=today)
    cycles = list(ChemoCycle.objects.active().filter(line=line).order_by("given_on", "id"))
    if cycles and line.regimen != stored.regimen:
        _add(
            errors,
            "regimen",
            _(
                "%(count)s cycles of %(regimen)s are recorded on this line: the regimen cannot "
                "change. Start a new line instead."
            )
            % {"count": len(cycles), "regimen": stored.name},
        )
    if cycles and line.started_on and line.started_on > cycles[0].given_on:
        _add(
            errors,
            "started_on",
            _("The line cannot start (%(value)s) after its first cycle (C1, %(other)s).")
            % {"value": fmt(line.started_on), "other": fmt(cycles[0].given_on)},
        )
    if cycles and line.cycle_length_days != stored.cycle_length_days:
        _add(
            errors,
            "cycle_length_days",
            _("Cycles are recorded on this line: the cycle length cannot change."),
        )
    _row_errors(errors, line)
    if stored.is_complete and not (reason or "").strip() and _changed(stored, line):
        _add(errors, "reason", _("This form is complete: give a reason for the change."))
    raise_if(errors)
    saved = clinical_save(
        line, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    patient_records_changed(patient=saved.patient, user=user, source="treatments.line")
    return saved


@transaction.atomic
def line_void(
    *,
    line: RegimenLine,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> RegimenLine:
    """Void a regimen line entered in error. Only the latest line, and only once its cycles
    are voided and no active adverse event is linked to it (ValidationError otherwise)."""
    patient = Patient.objects.select_for_update().get(pk=line.patient_id)
    lines = _active_lines(patient)
    if lines and lines[-1].pk != line.pk:
        raise ValidationError(
            {"void_reason": _("Only the latest line can be voided: void the later lines first.")}
        )
    cycles = ChemoCycle.objects.active().filter(line=line).count()
    if cycles:
        raise ValidationError(
            {
                "void_reason": _("%(count)s cycles are recorded on this line: void them first.")
                % {"count": cycles}
            }
        )
    if AdverseEvent.objects.active().filter(line=line).exists():
        raise ValidationError(
            {
                "void_reason": _(
                    "Adverse events are linked to this line: move them to another line or "
                    "void them first."
                )
            }
        )
    voided = clinical_void(line, user=user, reason=reason, expected_version=expected_version)
    patient_records_changed(patient=patient, user=user, source="treatments.line")
    return voided


# --- cycles ---------------------------------------------------------------------------------


def _dose_key(index: int, field: str) -> str:
    return f"doses-{index}-{field}"


def _check_doses(
    errors: dict, doses: list[CycleDose], *, line: RegimenLine, bsa: Decimal | None
) -> list[str]:
    """Row rules, the regimen's drugs, the 150% ceiling; returns the reduced drugs' labels."""
    spec = regimens.regimen_spec(line.regimen)
    if not doses:
        _add(errors, NON_FIELD_ERRORS, _("Record the dose of at least one drug."))
    seen: set[tuple[str, str]] = set()
    reduced: list[str] = []
    for index, dose in enumerate(doses):
        _row_errors(errors, dose, prefix=f"doses-{index}-", exclude=["cycle"])
        key = (dose.drug, dose.drug_other.strip().lower())
        if key in seen:
            _add(
                errors,
                _dose_key(index, "drug"),
                _("%(drug)s is listed twice.") % {"drug": dose.drug_name},
            )
        seen.add(key)
        standard = spec.dose_for(dose.drug) if spec else None
        if spec and standard is None and dose.drug:
            _add(
                errors,
                _dose_key(index, "drug"),
                _("%(drug)s is not part of %(regimen)s.")
                % {"drug": dose.drug_name, "regimen": line.name},
            )
        reference = standard.mg_m2 if standard else dose.planned_mg_m2
        if (
            standard
            and dose.planned_mg_m2
            and dose.planned_mg_m2 > regimens.MAX_DOSE_RATIO * reference
        ):
            _add(
                errors,
                _dose_key(index, "planned_mg_m2"),
                _(
                    "Planned %(planned)s mg/m² is %(percent)s%% of the standard dose "
                    "(%(standard)s mg/m²); at most 150%%."
                )
                % {
                    "planned": _number(dose.planned_mg_m2),
                    "percent": regimens.percent(dose.planned_mg_m2 / reference),
                    "standard": _number(reference),
                },
            )
        if bsa and reference and dose.given_mg is not None:
            ratio = regimens.dose_ratio(dose.given_mg, reference, bsa)
            if ratio is not None and ratio > regimens.MAX_DOSE_RATIO:
                _add(
                    errors,
                    _dose_key(index, "given_mg"),
                    _(
                        "Given %(given)s mg is %(percent)s%% of the standard dose "
                        "(%(standard)s mg for %(bsa)s m²); at most 150%%."
                    )
                    % {
                        "given": _number(dose.given_mg),
                        "percent": regimens.percent(ratio),
                        "standard": _number(regimens.dose_for_bsa(reference, bsa)),
                        "bsa": bsa,
                    },
                )
        complete_row = None not in (dose.given_mg, dose.planned_mg_m2, dose.given_days)
        if (
            bsa
            and complete_row
            and dose.planned_mg_m2
            and dose.planned_days
            and regimens.is_reduced(
                given_mg=dose.given_mg,
                planned_mg_m2=dose.planned_mg_m2,
                bsa_m2=bsa,
                given_days=dose.given_days,
                planned_days=dose.planned_days,
                standard_mg_m2=standard.mg_m2 if standard else None,
            )
        ):
            reduced.append(dose.drug_name)
    if spec:
        present = {dose.drug for dose in doses}
        missing = [str(Drug(d).label) for d in spec.drugs if d not in present]
        if missing:
            _add(
                errors,
                NON_FIELD_ERRORS,
                _("%(regimen)s also needs: %(drugs)s (give 0 mg for an omitted drug).")
                % {"regimen": line.name, "drugs": ", ".join(missing)},
            )
    return reduced


def _renumber(line: RegimenLine, *, user: AbstractBaseUser, why: str) -> None:
    """Number the active cycles of `line` 1, 2, 3 … by date; audited, only where it changes."""
    cycles = list(ChemoCycle.objects.active().filter(line=line).order_by("given_on", "id"))
    wanted = {cycle.pk: number for number, cycle in enumerate(cycles, start=1)}
    # Falling numbers from the lowest, rising ones from the highest: no clash on the way.
    down = sorted(
        (c for c in cycles if wanted[c.pk] < c.cycle_number), key=lambda c: c.cycle_number
    )
    up = sorted((c for c in cycles if wanted[c.pk] > c.cycle_number), key=lambda c: -c.cycle_number)
    for cycle in [*down, *up]:
        cycle.cycle_number = wanted[cycle.pk]
        clinical_save(cycle, user=user, reason=why)


@transaction.atomic
def cycle_record(
    *,
    cycle: ChemoCycle,
    doses: list[CycleDose],
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> ChemoCycle:
    """Record a new cycle of a regimen line, or save the edit of one, with its doses.

    `cycle` carries its line, day-1 date, optional weight, delay and G-CSF (adjuvant is derived
    by the surgery app from the operation date);
    `doses` is the cycle's whole dose grid (one CycleDose per drug; for an edit, an existing
    row's `version` is the version the user's form was built from, and rows left out are
    voided). Derived: the cycle number (position within its line), the BSA (Mosteller, from
    the baseline height and the latest weight: this cycle's, else an earlier cycle's, else
    the baseline's) and `dose_reduced` (a drug below 95% of planned × BSA, fewer
    administrations than planned, or a plan below 95% of the standard dose).

    Refused (ValidationError, nothing saved): a date in the future, before the enrollment,
    before the line's start, on or before the previous cycle of the patient (on or after the
    next one, for an edit), on or after the next line's start, after a withdrawal; a patient
    without a baseline; a given dose above 150% of the standard dose for the BSA; a reduced
    cycle without a reason for the reduction (or a reason without a reduction); a complete
    cycle changed without `reason`. The errors of the i-th dose are keyed `doses-<i>-<field>`.
    Raises StaleRecordError when the cycle or a dose changed since its version.
    """
    today = _today(today)
    line = RegimenLine.objects.select_for_update().get(pk=cycle.line_id)
    if line.is_voided:
        raise ValidationError(_("This regimen line was voided: record the cycle on another line."))
    patient = line.patient
    cycle.patient = patient
    stored = None
    if cycle.pk:
        stored = ChemoCycle._base_manager.select_for_update().get(pk=cycle.pk)
        _check_version(stored, cycle, expected_version)
    period = study_period(patient=patient, what=_("chemotherapy"))
    errors: dict = {}
    period.check(errors, "given_on", cycle.given_on, label=_("Cycle date"), today=today)
    if cycle.given_on and line.started_on and cycle.given_on < line.started_on:
        _add(
            errors,
            "given_on",
            _("Cycle date (%(value)s) is before the start of line %(number)s (%(other)s).")
            % {
                "value": fmt(cycle.given_on),
                "number": line.line_number,
                "other": fmt(line.started_on),
            },
        )
    following = (
        RegimenLine.objects.active()
        .filter(patient=patient, line_number__gt=line.line_number)
        .order_by("line_number")
        .first()
    )
    if following and cycle.given_on and cycle.given_on >= following.started_on:
        _add(
            errors,
            "given_on",
            _(
                "Cycle date (%(value)s) is on or after the start of line %(number)s "
                "(%(other)s): record the cycle on that line."
            )
            % {
                "value": fmt(cycle.given_on),
                "number": following.line_number,
                "other": fmt(following.started_on),
            },
        )
    others = list(
        ChemoCycle.objects.active()
        .filter(patient=patient)
        .exclude(pk=cycle.pk)
        .select_related("line")
        .order_by("given_on", "id")
    )
    if stored is None:
        before, after = (others[-1] if others else None), None
    else:
        position = (stored.given_on, stored.pk)
        before = next((c for c in reversed(others) if (c.given_on, c.pk) < position), None)
        after = next((c for c in others if (c.given_on, c.pk) > position), None)
    if before and cycle.given_on and cycle.given_on <= before.given_on:
        _add(
            errors,
            "given_on",
            _(
                "Cycle date (%(value)s) is on or before the previous cycle "
                "(line %(line)s C%(number)s, %(other)s)."
            )
            % {
                "value": fmt(cycle.given_on),
                "line": before.line.line_number,
                "number": before.cycle_number,
                "other": fmt(before.given_on),
            },
        )
    if after and cycle.given_on and cycle.given_on >= after.given_on:
        _add(
            errors,
            "given_on",
            _(
                "Cycle date (%(value)s) is on or after the next cycle "
                "(line %(line)s C%(number)s, %(other)s): cycles keep their order."
            )
            % {
                "value": fmt(cycle.given_on),
                "line": after.line.line_number,
                "number": after.cycle_number,
                "other": fmt(after.given_on),
            },
        )

    size = selectors.body_size_on(
        patient=patient,
        on=cycle.given_on,
        weight_kg=cycle.weight_kg,
        earlier=[c for c in others if cycle.given_on and c.given_on < cycle.given_on],
    )
    if size is None:
        _add(
            errors,
            NON_FIELD_ERRORS,
            _("Record the baseline (height and weight) first: the BSA is computed from them."),
        )
    cycle.bsa_m2 = size.bsa_m2 if size else None
    reduced = _check_doses(errors, doses, line=line, bsa=cycle.bsa_m2)
    cycle.dose_reduced = bool(reduced)
    if reduced and not cycle.dose_reduction_reason.strip():
        _add(
            errors,
            "dose_reduction_reason",
            _("The doses of %(drugs)s are reduced: give the reason for the reduction.")
            % {"drugs": ", ".join(reduced)},
        )
    if size and not reduced and cycle.dose_reduction_reason.strip() and not errors:
        _add(
            errors,
            "dose_reduction_reason",
            _("No dose is reduced in this cycle: leave the reason for a reduction empty."),
        )

    if stored is None:
        cycle.cycle_number = (
            sum(1 for c in others if c.line_id == line.pk and c.given_on < cycle.given_on) + 1
            if cycle.given_on
            else 1
        )
    else:
        cycle.cycle_number = stored.cycle_number
    _row_errors(errors, cycle)

    existing = (
        {d.pk: d for d in CycleDose._base_manager.filter(cycle_id=cycle.pk)} if stored else {}
    )
    kept = {dose.pk for dose in doses if dose.pk}
    for index, dose in enumerate(doses):
        if dose.pk and (dose.pk not in existing or existing[dose.pk].is_voided):
            _add(
                errors, _dose_key(index, "drug"), _("This dose row is no longer part of the cycle.")
            )
    if stored and stored.is_complete and not (reason or "").strip():
        dropped = [d for pk, d in existing.items() if pk not in kept and not d.is_voided]
        dose_edits = [
            d for d in doses if not d.pk or (d.pk in existing and _changed(existing[d.pk], d))
        ]
        if _changed(stored, cycle) or dropped or dose_edits:
            _add(errors, "change_reason", _("This form is complete: give a reason for the change."))
    raise_if(errors)

    saved = clinical_save(
        cycle, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    for pk, dose in existing.items():
        if pk not in kept and not dose.is_voided:
            clinical_void(
                dose, user=user, reason=reason or _("Removed from the cycle's dose grid.")
            )
    for dose in doses:
        dose.cycle = saved
        clinical_save(
            dose,
            user=user,
            expected_version=dose.version if dose.pk else None,
            reason=reason,
        )
    # A new cycle comes after every other one and an edit cannot pass its neighbours (both
    # refused above), so the numbers of the other cycles never change here.
    patient_records_changed(patient=saved.patient, user=user, source="treatments.cycle")
    return saved


@transaction.atomic
def cycle_void(
    *,
    cycle: ChemoCycle,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> ChemoCycle:
    """Void a cycle entered in error, with its doses; the later cycles of its line move up one
    number (each renumbering audited with the reason). ValidationError without a reason;
    StaleRecordError when the cycle changed since `expected_version`."""
    RegimenLine.objects.select_for_update().get(pk=cycle.line_id)
    voided = clinical_void(cycle, user=user, reason=reason, expected_version=expected_version)
    for dose in CycleDose.objects.active().filter(cycle=voided):
        clinical_void(dose, user=user, reason=reason)
    _renumber(
        voided.line,
        user=user,
        why=_("Renumbered after voiding cycle %(number)s: %(reason)s")
        % {"number": voided.cycle_number, "reason": reason},
    )
    patient_records_changed(patient=voided.patient, user=user, source="treatments.cycle")
    return voided


# --- adverse events -------------------------------------------------------------------------


def _line_in_effect(lines: Iterable[RegimenLine], on: date) -> RegimenLine | None:
    started = [line for line in lines if line.started_on <= on]
    return max(started, key=lambda line: line.started_on) if started else None


@transaction.atomic
def adverse_event_save(
    *,
    event: AdverseEvent,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> AdverseEvent:
    """Record or edit an adverse event (CTCAE v5.0) of an enrolled patient.

    Without a regimen line the line in effect at the onset is taken (none before the first
    line). Refused (ValidationError keyed by field, nothing saved): onset or resolution in the
    future, before the enrollment (earlier complaints belong to the baseline) or after a
    withdrawal; a line of another patient, a voided line, or an onset before the line started;
    the row rules of the model (catalogue term, grades the term allows, grade 5 ⇔ fatal,
    resolution after onset). A grade 5 event is flagged until the follow-up app records the
    death (`selectors.grade5_events_awaiting_death`). StaleRecordError on a stale edit.
    """
    today = _today(today)
    patient = event.patient
    if event.pk:
        stored = AdverseEvent._base_manager.select_for_update().get(pk=event.pk)
        _check_version(stored, event, expected_version)
    period = study_period(patient=patient, what=_("chemotherapy"))
    errors: dict = {}
    for field, label in (("onset_on", _("Onset")), ("resolved_on", _("Resolution"))):
        period.check(errors, field, getattr(event, field), label=label, today=today)
    lines = list(RegimenLine.objects.filter(patient=patient))
    if event.line_id is None and event.onset_on:
        event.line = _line_in_effect([x for x in lines if not x.is_voided], event.onset_on)
    elif event.line_id is not None:
        line = next((x for x in lines if x.pk == event.line_id), None)
        if line is None or line.is_voided:
            _add(errors, "line", _("Choose one of the patient's active regimen lines."))
        elif event.onset_on and event.onset_on < line.started_on:
            _add(
                errors,
                "line",
                _("The onset (%(value)s) is before line %(number)s started (%(other)s).")
                % {
                    "value": fmt(event.onset_on),
                    "number": line.line_number,
                    "other": fmt(line.started_on),
                },
            )
    _row_errors(errors, event)
    raise_if(errors)
    saved = clinical_save(
        event, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    # The data checks (trial/checks.py: a grade ≥3 event without action) follow the event.
    patient_records_changed(patient=saved.patient, user=user, source="treatments.adverse_event")
    return saved


@transaction.atomic
def adverse_event_void(
    *,
    event: AdverseEvent,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> AdverseEvent:
    """Void an adverse event entered in error (ValidationError without a reason)."""
    voided = clinical_void(event, user=user, reason=reason, expected_version=expected_version)
    patient_records_changed(patient=voided.patient, user=user, source="treatments.adverse_event")
    return voided
