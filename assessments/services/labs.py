"""Writes of lab panels and their results: unit conversion, plausibility, flags and CTCAE grades.

A panel and its results are saved in one transaction that row-locks the patient: a value that
is refused leaves nothing saved, and two saves of the same patient's panels never re-grade over
each other. Every CTCAE grade of the patient's panels is recomputed after each save, because a
change of the baseline panel moves the baseline the later panels are graded against.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments import analytes
from assessments.analytes import Analyte
from assessments.models import LabPanel, LabResult, ResponseEvaluation
from assessments.selectors.labs import (
    BaselineSource,
    PanelValues,
    baseline_sources,
    first_cycle_on,
    grade_value,
)
from patients.models import Enrollment, Patient, Screening, Withdrawal
from patients.services import death_check
from treatments.selectors import cycles_completed
from trial.derived import patient_records_changed
from trial.services import clinical_save, clinical_void
from trial.validation import fmt, not_in_future, raise_if

# Work-up bloods may precede the screening visit (diagnosis, staging): up to 60 days.
DAYS_BEFORE_SCREENING = 60
# Panels whose `after_cycle` is derived from the chemotherapy cycles.
CYCLE_CONTEXTS = (LabPanel.Context.ASSESSMENT, LabPanel.Context.ON_TREATMENT)
REGRADED = "Re-graded: the patient's baseline changed"
Values = dict[str, tuple[Decimal, str | None]]


@dataclass
class _Entry:
    """One value that passed the checks, with everything derived from it."""

    analyte: Analyte
    entered_value: Decimal
    entered_unit: str
    value: Decimal
    extreme: bool


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _check_dates(errors: dict, panel: LabPanel, patient: Patient, *, today: date) -> int:
    """Date rules against the other forms; returns the cycles completed on the sample date."""
    sampled_on = panel.sampled_on
    if sampled_on is None:
        return 0
    not_in_future(errors, "sampled_on", sampled_on, today=today)
    screening = Screening.objects.active().filter(patient=patient).first()
    if screening is not None:
        earliest = screening.screened_on - timedelta(days=DAYS_BEFORE_SCREENING)
        if sampled_on < earliest:
            _add(
                errors,
                "sampled_on",
                _(
                    "Sample date (%(sampled)s) is more than %(days)s days before the screening "
                    "(%(screened)s)."
                )
                % {
                    "sampled": fmt(sampled_on),
                    "days": DAYS_BEFORE_SCREENING,
                    "screened": fmt(screening.screened_on),
                },
            )
    withdrawal = Withdrawal.objects.active().filter(patient=patient).first()
    if withdrawal is not None and sampled_on > withdrawal.withdrawn_on:
        _add(
            errors,
            "sampled_on",
            _("Sample date (%(sampled)s) is after the withdrawal (%(withdrawn)s).")
            % {"sampled": fmt(sampled_on), "withdrawn": fmt(withdrawal.withdrawn_on)},
        )
    death_check(errors, "sampled_on", sampled_on, died_on=patient.died_on, label=_("Sample date"))
    cycles = cycles_completed(patient=patient, on=sampled_on)
    if panel.context == LabPanel.Context.ASSESSMENT and cycles == 0:
        _add(
            errors,
            "context",
            _(
                "A response-assessment panel follows chemotherapy, but no cycle is recorded on "
                "or before the sample date (%(sampled)s): record the cycles first, or choose "
                "another context."
            )
            % {"sampled": fmt(sampled_on)},
        )
    return cycles


def _check_values(
    errors: dict,
    values: Values,
    *,
    confirmed_extremes: frozenset[str],
    existing: dict[str, LabResult],
) -> dict[str, _Entry]:
    """Convert and check every value typed; errors go on the analyte's row (its code)."""
    entries: dict[str, _Entry] = {}
    for code, (value, unit) in values.items():
        if value is None:
            continue
        analyte = analytes.BY_CODE.get(code)
        if analyte is None:
            _add(errors, NON_FIELD_ERRORS, _("Unknown analyte “%(code)s”.") % {"code": code})
            continue
        if unit and unit not in analyte.unit_codes:
            _add(errors, code, analytes.unknown_unit_message(analyte, unit))
            continue
        if value.as_tuple().exponent < -4:
            _add(
                errors,
                code,
                _("%(analyte)s: give at most 4 decimals (%(value)s).")
                % {"analyte": analyte.label, "value": value},
            )
            continue
        si_value = analytes.to_si(analyte, value, unit)
        if analytes.is_impossible(analyte, si_value):
            _add(errors, code, analytes.impossible_message(analyte, value, unit, si_value))
            continue
        previous = existing.get(code)
        extreme = analytes.is_extreme(analyte, si_value)
        already_confirmed = (
            previous is not None and previous.extreme_confirmed and previous.value == si_value
        )
        if extreme and code not in confirmed_extremes and not already_confirmed:
            errors.setdefault(code, []).append(
                ValidationError(
                    analytes.extreme_message(analyte, value, unit, si_value), code="extreme"
                )
            )
            continue
        entries[code] = _Entry(analyte, value, unit or analyte.unit, si_value, extreme)
    return entries


def _panel_values(panel: LabPanel) -> PanelValues:
    return PanelValues(
        panel.pk,
        panel.sampled_on,
        panel.context,
        {r.analyte: r.value for r in panel.results.all() if not r.is_voided},
    )


def _baseline(
    sources: dict[str, BaselineSource], code: str, key: int | None, sampled_on: date
) -> Decimal | None:
    source = sources.get(code)
    return source.value if source and source.applies_to(key, sampled_on) else None


def _result_changed(result: LabResult, **fields) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(result, name) != value:
            setattr(result, name, value)
            changed = True
    return changed


@transaction.atomic
def lab_panel_record(
    *,
    panel: LabPanel,
    values: Values,
    user: AbstractBaseUser,
    confirmed_extremes: frozenset[str] = frozenset(),
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> LabPanel:
    """Record a new lab panel, or save an edit of one, with its results.

    `panel` carries the patient, sample date, context (and postoperative day, notes);
    `values` maps an analyte code to (value as typed, unit as typed or None for the SI unit).
    Each value is converted to the SI unit and stored with what was typed; its H/L flag comes
    from the reference range for the patient's sex and its CTCAE v5.0 grade from
    `assessments.ctcae`, against the patient's baseline where the criteria use one.
    `after_cycle` of an assessment or on-treatment panel is the number of cycles completed on
    the sample date. On an edit, an analyte left out of `values` (or given as None) has its
    result voided with `reason`, never deleted. Every grade of the patient's other panels is
    recomputed (their baseline may have changed).

    Raises ValidationError keyed by the field to fix (an analyte's code for its value): the
    patient is not enrolled; the sample date is in the future, more than 60 days before the
    screening or after the withdrawal; an assessment panel with no cycle before it; an unknown
    analyte or unit; an impossible value; an extreme value whose code is not in
    `confirmed_extremes` (error code "extreme"); no value at all; a complete panel edited
    without `reason`. StaleRecordError when the panel changed since `expected_version`.
    Nothing is saved when anything is refused.
    """
    today = today or timezone.localdate()
    patient = Patient.objects.select_for_update().get(pk=panel.patient_id)
    if not Enrollment.objects.active().filter(patient=patient).exists():
        raise ValidationError(_("Enroll the patient before recording lab results."))
    errors: dict = {}
    try:
        panel.full_clean()
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    cycles = _check_dates(errors, panel, patient, today=today)
    existing = (
        {r.analyte: r for r in LabResult.objects.active().filter(panel_id=panel.pk)}
        if panel.pk
        else {}
    )
    entries = _check_values(
        errors, values, confirmed_extremes=confirmed_extremes, existing=existing
    )
    if not entries and not errors:
        _add(errors, NON_FIELD_ERRORS, _("Enter at least one value."))
    raise_if(errors)

    panel.after_cycle = cycles if panel.context in CYCLE_CONTEXTS else None
    others = list(
        LabPanel.objects.active()
        .filter(patient=patient)
        .exclude(pk=panel.pk)
        .prefetch_related("results")
    )
    this = PanelValues(
        panel.pk,
        panel.sampled_on,
        panel.context,
        {code: entry.value for code, entry in entries.items()},
    )
    sources = baseline_sources(
        [this, *(_panel_values(p) for p in others)],
        first_cycle_on=first_cycle_on(patient=patient),
    )

    # What changes among the results: new rows, edited rows, rows to void.
    to_save: list[LabResult] = []
    for code, entry in entries.items():
        term, grade = grade_value(
            code,
            entry.value,
            sex=patient.sex,
            baseline=_baseline(sources, code, panel.pk, panel.sampled_on),
        )
        result = existing.get(code) or LabResult(analyte=code)
        fields = {
            "entered_value": entry.entered_value,
            "entered_unit": entry.entered_unit,
            "value": entry.value,
            "flag": analytes.flag(entry.analyte, entry.value, patient.sex),
            "ctcae_term": term,
            "ctcae_grade": grade,
            "extreme_confirmed": entry.extreme,
        }
        if _result_changed(result, **fields) or result.pk is None:
            to_save.append(result)
    to_void = [r for code, r in existing.items() if code not in entries and not r.is_voided]

    saved = clinical_save(
        panel,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
        touch=bool(to_save or to_void),
    )
    for result in to_save:
        result.panel = saved
        clinical_save(result, user=user, reason=reason)
    void_reason = reason or _("Left empty when the panel was edited.")
    for result in to_void:
        clinical_void(result, user=user, reason=void_reason)
    _regrade(others, sources=sources, sex=patient.sex, user=user)
    patient_records_changed(patient=patient, user=user, source="assessments.labpanel")
    return saved


def _regrade(panels: list[LabPanel], *, sources: dict[str, BaselineSource], sex: str, user) -> int:
    """Save the results of `panels` whose flag or CTCAE grade changed; returns how many."""
    changed = 0
    for panel in panels:
        for result in panel.results.all():
            if result.is_voided or result.analyte not in analytes.BY_CODE:
                continue
            term, grade = grade_value(
                result.analyte,
                result.value,
                sex=sex,
                baseline=_baseline(sources, result.analyte, panel.pk, panel.sampled_on),
            )
            flag = analytes.flag(analytes.get(result.analyte), result.value, sex)
            if _result_changed(result, ctcae_term=term, ctcae_grade=grade, flag=flag):
                clinical_save(result, user=user, reason=REGRADED)
                changed += 1
    return changed


@transaction.atomic
def lab_panels_regrade(*, patient: Patient, user: AbstractBaseUser | None) -> int:
    """Recompute the flags and CTCAE grades of every panel of `patient` (e.g. after the
    chemotherapy cycles changed, which can move the baseline). Returns how many results
    changed. Raises nothing for valid data."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    panels = list(LabPanel.objects.active().filter(patient=patient).prefetch_related("results"))
    sources = baseline_sources(
        [_panel_values(p) for p in panels], first_cycle_on=first_cycle_on(patient=patient)
    )
    return _regrade(panels, sources=sources, sex=patient.sex, user=user)


@transaction.atomic
def lab_panel_void(
    *,
    panel: LabPanel,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> LabPanel:
    """Void a lab panel entered in error, with its results; the row and its history stay.

    Refused (ValidationError on "void_reason", nothing changed) without a reason, or while an
    active response evaluation rests on the panel (its CA19-9 value); StaleRecordError when
    the panel changed since `expected_version`; ValidationError while the panel, its
    casebook or the study is locked (from `clinical_void`).
    """
    patient = Patient.objects.select_for_update().get(pk=panel.patient_id)  # as lab_panel_record
    evaluation = (
        ResponseEvaluation.objects.active().filter(lab_panel_id=panel.pk).order_by("id").first()
    )
    if evaluation is not None:
        raise_if(
            {
                "void_reason": [
                    _(
                        "The response evaluation of %(date)s rests on this panel: void or "
                        "relink that evaluation first."
                    )
                    % {"date": fmt(evaluation.evaluated_on)}
                ]
            }
        )
    voided = clinical_void(panel, user=user, reason=reason, expected_version=expected_version)
    for result in LabResult.objects.active().filter(panel_id=voided.pk):
        clinical_void(result, user=user, reason=reason)
    lab_panels_regrade(patient=patient, user=user)
    patient_records_changed(patient=patient, user=user, source="assessments.labpanel")
    return voided
