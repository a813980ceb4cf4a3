"""Writes of imaging studies (RECIST 1.1 target lesions) and response evaluations.

Each service is one transaction that row-locks the patient, so two edits of the same
patient's imaging never recompute over each other. Every derived value (sums, changes,
responses; an evaluation's cycle count, sequence, CA19-9 change and interval) is recomputed
for the patient's whole series after each write, because an edit of an early study changes
every later response (the nadir and the baseline move with it).
"""

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments import recist
from assessments.models import ImagingStudy, LabPanel, LabResult, ResponseEvaluation, TargetLesion
from patients.models import Baseline, Enrollment, Patient, Screening, Withdrawal
from patients.services import death_check, study_period
from treatments.selectors import cycles_completed as cycles_completed_on
from trial.derived import patient_records_changed
from trial.services import clinical_save, clinical_void
from trial.validation import fmt, not_before, not_in_future, raise_if

# Staging imaging may predate the screening visit: up to 60 days is accepted as a baseline.
IMAGING_DAYS_BEFORE_SCREENING = 60
# An evaluation rests on imaging done for it: at most 30 days before the evaluation.
EVALUATION_IMAGING_MAX_DAYS = 30
# Protocol: first evaluation after 4 cycles (window 4–6), then every 4 cycles; progression at
# the first evaluation switches the patient to every 2 cycles.
INTERVAL_CYCLES, INTERVAL_AFTER_EARLY_PROGRESSION = 4, 2
# Lewis-antigen-negative people (about 5–10%) lack fucosyltransferase 3 and cannot make
# sialyl-Lewis-a, the epitope CA19-9 assays measure: their level stays near zero whatever the
# tumour does, so its change in percent means nothing. A baseline under 5 U/mL (or none at
# all) marks the marker as uninformative for that patient, so it is not over-read.
CA19_9_UNINFORMATIVE_BELOW = Decimal(5)
CA19_9 = "ca19_9"
RECOMPUTED = "RECIST recomputed"
EVALUATION_RECOMPUTED = "Evaluation recomputed"

_DERIVED_STUDY = ("sum_mm", "change_from_baseline_pct", "change_from_nadir_pct", "response")
_DERIVED_EVALUATION = (
    "cycles_completed",
    "sequence",
    "recist_response",
    "ca19_9_baseline",
    "ca19_9_value",
    "ca19_9_change_pct",
    "ca19_9_uninformative",
    "progression_at_first",
    "interval_cycles",
)


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _lock_patient(patient_id: int) -> Patient:
    return Patient.objects.select_for_update().get(pk=patient_id)


def _check_enrolled(patient: Patient, what: str) -> Enrollment:
    return study_period(patient=patient, what=what).enrollment


def _check_withdrawal(errors: dict, patient: Patient, field: str, value: date | None) -> None:
    withdrawal = Withdrawal.objects.active().filter(patient=patient).first()
    if withdrawal and value and value > withdrawal.withdrawn_on:
        errors.setdefault(field, []).append(
            _("%(value)s is after the patient's withdrawal (%(withdrawn)s).")
            % {"value": fmt(value), "withdrawn": fmt(withdrawal.withdrawn_on)}
        )
    death_check(errors, field, value, died_on=patient.died_on, label=_("Date"))


def _lesion_map(lesions: Iterable[TargetLesion]) -> dict[str, recist.Lesion]:
    return {
        lesion.label: recist.Lesion(lesion.organ, lesion.is_lymph_node, lesion.diameter_mm)
        for lesion in lesions
    }


def _active_lesions(study: ImagingStudy) -> list[TargetLesion]:
    return [lesion for lesion in study.lesions.all() if lesion.voided_at is None]


def _derived(instance, names: tuple[str, ...]) -> tuple:
    return tuple(getattr(instance, name) for name in names)


def _pct(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _assign_recist(series: list[tuple[ImagingStudy, list[TargetLesion]]]) -> None:
    """Set the derived RECIST fields of every study of `series` (date order) in place."""
    baseline_index = next((i for i, (s, _l) in enumerate(series) if s.is_baseline), None)
    # Nothing to compare with (no baseline yet; the services keep follow-ups after it).
    for study, _lesions in series[:baseline_index]:
        study.sum_mm = study.change_from_baseline_pct = study.change_from_nadir_pct = None
        study.response = ""
    if baseline_index is None:
        return
    assessments = [
        recist.Assessment(
            on=study.performed_on,
            lesions=_lesion_map(lesions),
            non_target=study.non_target,
            new_lesions=study.new_lesions,
        )
        for study, lesions in series[baseline_index:]
    ]
    for (study, _lesions), result in zip(
        series[baseline_index:], recist.evaluate(assessments).results, strict=True
    ):
        study.sum_mm = result.sum_mm
        study.change_from_baseline_pct = _pct(result.change_from_baseline_pct)
        study.change_from_nadir_pct = _pct(result.change_from_nadir_pct)
        study.response = result.response or ""


def _patient_studies(patient: Patient, *, exclude: int | None = None) -> list[ImagingStudy]:
    lesions = Prefetch("lesions", queryset=TargetLesion.objects.active().order_by("label"))
    queryset = ImagingStudy.objects.active().filter(patient=patient).prefetch_related(lesions)
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude)
    return list(queryset.order_by("performed_on", "id"))


def _check_study(
    errors: dict,
    study: ImagingStudy,
    lesions: list[TargetLesion],
    others: list[ImagingStudy],
    patient: Patient,
    today: date,
) -> None:
    not_in_future(errors, "performed_on", study.performed_on, today=today)
    screening = Screening.objects.active().filter(patient=patient).first()
    if screening and study.performed_on:
        not_before(
            errors,
            "performed_on",
            study.performed_on,
            screening.screened_on - timedelta(days=IMAGING_DAYS_BEFORE_SCREENING),
            _(
                "The imaging date (%(value)s) is more than 60 days before the screening "
                "(earliest accepted: %(other)s)."
            ),
        )
    _check_withdrawal(errors, patient, "performed_on", study.performed_on)
    same_day = next((s for s in others if s.performed_on == study.performed_on), None)
    if same_day:
        errors.setdefault("performed_on", []).append(
            _(
                "Another imaging study (%(modality)s) is recorded on %(date)s: record all target "
                "lesions of one assessment on one study."
            )
            % {"modality": same_day.modality, "date": fmt(same_day.performed_on)}
        )
    labels = [lesion.label for lesion in lesions]
    for label in sorted({label for label in labels if labels.count(label) > 1}):
        errors.setdefault("lesions", []).append(
            _("%(label)s is given twice: each target lesion has one row.") % {"label": label}
        )
    for lesion in lesions:
        try:
            lesion.full_clean(exclude=["study"], validate_unique=False)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                meta = TargetLesion._meta
                name = "" if field == "__all__" else meta.get_field(field).verbose_name
                for message in messages:
                    errors.setdefault("lesions", []).append(
                        _("%(label)s: %(field)s %(message)s")
                        % {"label": lesion.label or "?", "field": name, "message": message}
                    )
    baseline = next((s for s in others if s.is_baseline), None)
    follow_ups = [s for s in others if not s.is_baseline]
    if study.is_baseline:
        _check_baseline(errors, study, lesions, baseline, follow_ups)
    else:
        _check_follow_up(errors, study, lesions, baseline)
    linked = ResponseEvaluation.objects.active().filter(imaging_id=study.pk) if study.pk else []
    for evaluation in linked:
        if study.is_baseline:
            errors.setdefault("is_baseline", []).append(
                _(
                    "Evaluation %(evaluation)s rests on this study, so it cannot be the RECIST "
                    "baseline."
                )
                % {"evaluation": fmt(evaluation.evaluated_on)}
            )
        _check_imaging_date(errors, "performed_on", study, evaluation)


def _check_baseline(
    errors: dict,
    study: ImagingStudy,
    lesions: list[TargetLesion],
    baseline: ImagingStudy | None,
    follow_ups: list[ImagingStudy],
) -> None:
    if baseline is not None:
        errors.setdefault("is_baseline", []).append(
            _(
                "The RECIST baseline is already recorded (%(modality)s of %(date)s): a patient "
                "has one baseline; record this study as a follow-up, or void that one first."
            )
            % {"modality": baseline.modality, "date": fmt(baseline.performed_on)}
        )
    earlier = [s for s in follow_ups if study.performed_on and s.performed_on <= study.performed_on]
    if earlier:
        errors.setdefault("performed_on", []).append(
            _(
                "The RECIST baseline (%(value)s) must come before every follow-up study; the "
                "follow-up of %(other)s is not after it."
            )
            % {"value": fmt(study.performed_on), "other": fmt(earlier[0].performed_on)}
        )
    for problem in recist.baseline_problems(_lesion_map(lesions)):
        errors.setdefault("lesions", []).append(problem.message)
    kept = {lesion.label for lesion in lesions}
    for follow_up in follow_ups:
        dropped = sorted({lesion.label for lesion in _active_lesions(follow_up)} - kept)
        if dropped:
            errors.setdefault("lesions", []).append(
                _(
                    "%(labels)s measured on the follow-up study of %(date)s: a baseline target "
                    "cannot be removed while later studies measure it."
                )
                % {"labels": ", ".join(dropped), "date": fmt(follow_up.performed_on)}
            )


def _check_follow_up(
    errors: dict,
    study: ImagingStudy,
    lesions: list[TargetLesion],
    baseline: ImagingStudy | None,
) -> None:
    if baseline is None:
        errors.setdefault("is_baseline", []).append(
            _(
                "Record the RECIST baseline study first: a follow-up study is compared with "
                "the baseline's target lesions."
            )
        )
        return
    if study.performed_on <= baseline.performed_on:
        errors.setdefault("performed_on", []).append(
            _("A follow-up study (%(date)s) must be after the RECIST baseline (%(baseline)s).")
            % {"date": fmt(study.performed_on), "baseline": fmt(baseline.performed_on)}
        )
    targets = {lesion.label: lesion for lesion in _active_lesions(baseline)}
    for lesion in lesions:
        chosen = targets.get(lesion.label)
        if chosen is None:
            errors.setdefault("lesions", []).append(
                _(
                    "%(label)s is not a target lesion of the baseline (%(date)s); its targets "
                    "are %(labels)s. New lesions are recorded with “new lesions”, not as targets."
                )
                % {
                    "label": lesion.label,
                    "date": fmt(baseline.performed_on),
                    "labels": ", ".join(sorted(targets)) or "—",
                }
            )
        elif chosen.organ != lesion.organ:
            errors.setdefault("lesions", []).append(
                _("%(label)s is a %(organ)s target at the baseline, not %(given)s.")
                % {
                    "label": lesion.label,
                    "organ": chosen.get_organ_display().lower(),
                    "given": TargetLesion.Organ(lesion.organ).label.lower()
                    if lesion.organ in TargetLesion.Organ.values
                    else lesion.organ,
                }
            )


def _check_imaging_date(
    errors: dict, field: str, imaging: ImagingStudy, evaluation: ResponseEvaluation
) -> None:
    if not (imaging.performed_on and evaluation.evaluated_on):
        return
    params = {"imaging": fmt(imaging.performed_on), "evaluation": fmt(evaluation.evaluated_on)}
    if imaging.performed_on > evaluation.evaluated_on:
        errors.setdefault(field, []).append(
            _("The imaging (%(imaging)s) is after the evaluation (%(evaluation)s).") % params
        )
    elif (evaluation.evaluated_on - imaging.performed_on).days > EVALUATION_IMAGING_MAX_DAYS:
        errors.setdefault(field, []).append(
            _(
                "The imaging (%(imaging)s) is more than 30 days before the evaluation "
                "(%(evaluation)s): an evaluation rests on imaging done for it."
            )
            % params
        )


def _save_lesions(
    study: ImagingStudy, lesions: list[TargetLesion], *, user: AbstractBaseUser, reason: str
) -> None:
    rows = TargetLesion.objects.active().filter(study=study)
    existing = {lesion.label: lesion for lesion in rows}
    wanted = {lesion.label for lesion in lesions}
    for label, row in existing.items():
        if label not in wanted:
            why = reason or _("Target lesion removed from the study")
            clinical_void(row, user=user, reason="%s (%s)" % (why, label))
    for lesion in lesions:
        row = existing.get(lesion.label)
        if row is None:
            lesion.study = study
            clinical_save(lesion, user=user, reason=reason)
        elif (row.organ, row.diameter_mm) != (lesion.organ, lesion.diameter_mm):
            row.organ, row.diameter_mm = lesion.organ, lesion.diameter_mm
            clinical_save(row, user=user, reason=reason)


def _propagate_organs(
    baseline_lesions: list[TargetLesion],
    follow_ups: list[ImagingStudy],
    *,
    user: AbstractBaseUser,
) -> None:
    """A baseline's organ corrected: the same lesion on later studies follows it."""
    organs = {lesion.label: lesion.organ for lesion in baseline_lesions}
    for follow_up in follow_ups:
        for lesion in _active_lesions(follow_up):
            organ = organs.get(lesion.label)
            if organ and organ != lesion.organ:
                lesion.organ = organ
                clinical_save(lesion, user=user, reason="Organ corrected on the RECIST baseline")


def _recompute_studies(
    studies: list[ImagingStudy], *, user: AbstractBaseUser, skip: int | None = None
) -> None:
    """Recompute and save (only when changed) the RECIST values of `studies`."""
    before = {study.pk: _derived(study, _DERIVED_STUDY) for study in studies}
    _assign_recist([(study, _active_lesions(study)) for study in studies])
    for study in studies:
        if study.pk != skip and _derived(study, _DERIVED_STUDY) != before[study.pk]:
            clinical_save(study, user=user, reason=RECOMPUTED)


@transaction.atomic
def imaging_study_save(
    *,
    study: ImagingStudy,
    lesions: list[TargetLesion],
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> ImagingStudy:
    """Record or edit an imaging study with its target lesions (unsaved `lesions`, by label).

    On the RECIST baseline (`study.is_baseline`) the targets must respect RECIST 1.1: 1–5
    targets, ≤ 2 per organ, ≥ 10 mm (nodes ≥ 15 mm short axis). A follow-up measures the
    baseline's labels only; a baseline target left out is "not measured" and makes the study
    NE unless progression is evident. The date may not be in the future, more than 60 days
    before the screening, or after a withdrawal; a patient has one active baseline, before
    every follow-up. Lesion rows left out of an edit are voided, not deleted.

    Then the sums, changes and responses of every study of the patient are recomputed in date
    order and the changed ones saved ("RECIST recomputed"), and so are the evaluations that
    rest on them. Returns the saved study. Raises ValidationError keyed by the field to fix
    (`lesions` for the lesion grid, each message naming the lesion) with nothing saved, and
    StaleRecordError when the study changed since `expected_version`.
    """
    today = _today(today)
    patient = _lock_patient(study.patient_id)
    _check_enrolled(patient, _("imaging"))
    if study.performed_on is None:
        raise ValidationError({"performed_on": _("Give the imaging date.")})
    others = _patient_studies(patient, exclude=study.pk)
    errors: dict = {}
    _check_study(errors, study, lesions, others, patient, today)
    raise_if(errors)

    series = sorted(
        [*((s, _active_lesions(s)) for s in others), (study, lesions)],
        key=lambda item: (item[0].performed_on, item[0].pk or 0),
    )
    before = {s.pk: _derived(s, _DERIVED_STUDY) for s in others}
    _assign_recist(series)
    stored = TargetLesion.objects.active().filter(study_id=study.pk) if study.pk else []
    lesions_changed = {(x.label, x.organ, x.diameter_mm) for x in stored} != {
        (x.label, x.organ, Decimal(x.diameter_mm)) for x in lesions
    }
    # A new lesion measurement is an edit of the study: a new version, and a reason once the
    # study is complete, even when none of the study's own fields changed.
    saved = clinical_save(
        study,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
        touch=bool(study.pk) and lesions_changed,
    )
    _save_lesions(saved, lesions, user=user, reason=reason)
    if saved.is_baseline:
        _propagate_organs(lesions, [s for s in others if not s.is_baseline], user=user)
    for other in others:
        if _derived(other, _DERIVED_STUDY) != before[other.pk]:
            clinical_save(other, user=user, reason=RECOMPUTED)
    evaluations_refresh(patient=patient, user=user)
    # The evaluations' RECIST responses may have changed (progression feeds the calendar).
    patient_records_changed(patient=patient, user=user, source="assessments.imaging")
    return saved


@transaction.atomic
def imaging_study_void(
    *,
    study: ImagingStudy,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> ImagingStudy:
    """Void an imaging study entered in error (with its lesions) and recompute the patient's
    other studies and evaluations.

    Refused (ValidationError on `void_reason`) while an evaluation rests on the study, or for
    the baseline while follow-up studies are compared with it. StaleRecordError when the
    study changed since `expected_version`.
    """
    patient = _lock_patient(study.patient_id)
    others = _patient_studies(patient, exclude=study.pk)
    evaluation = ResponseEvaluation.objects.active().filter(imaging=study).first()
    if evaluation:
        raise ValidationError(
            {
                "void_reason": _(
                    "The evaluation of %(date)s rests on this study: void or relink that "
                    "evaluation first."
                )
                % {"date": fmt(evaluation.evaluated_on)}
            }
        )
    if study.is_baseline and any(not s.is_baseline for s in others):
        raise ValidationError(
            {
                "void_reason": _(
                    "Follow-up studies are compared with this baseline: correct the baseline "
                    "instead, or void the follow-up studies first."
                )
            }
        )
    voided = clinical_void(study, user=user, reason=reason, expected_version=expected_version)
    for lesion in TargetLesion.objects.active().filter(study=study):
        clinical_void(lesion, user=user, reason=reason)
    _recompute_studies(others, user=user)
    evaluations_refresh(patient=patient, user=user)
    patient_records_changed(patient=patient, user=user, source="assessments.imaging")
    return voided


# --- response evaluations ----------------------------------------------------------------


def _ca19_9_baseline(patient: Patient) -> Decimal | None:
    """The latest baseline-context lab panel's CA19-9, else the baseline form's value."""
    result = (
        LabResult.objects.active()
        .filter(
            analyte=CA19_9,
            panel__patient=patient,
            panel__voided_at__isnull=True,
            panel__context=LabPanel.Context.BASELINE,
        )
        .order_by("-panel__sampled_on", "-panel_id")
        .values_list("value", flat=True)
        .first()
    )
    if result is not None:
        return result
    return (
        Baseline.objects.active()
        .filter(patient=patient)
        .values_list("ca19_9_u_ml", flat=True)
        .first()
    )


def _derive_evaluations(patient: Patient, evaluations: list[ResponseEvaluation]) -> None:
    """Set every derived field of the patient's evaluations (date order) in place."""
    baseline_ca19_9 = _ca19_9_baseline(patient)
    uninformative = baseline_ca19_9 is None or baseline_ca19_9 < CA19_9_UNINFORMATIVE_BELOW
    panel_ids = {e.lab_panel_id for e in evaluations if e.lab_panel_id}
    values = dict(
        LabResult.objects.active()
        .filter(panel_id__in=panel_ids, analyte=CA19_9)
        .values_list("panel_id", "value")
    )
    first_pd = bool(evaluations) and evaluations[0].imaging.response == recist.Response.PD
    for sequence, evaluation in enumerate(evaluations, start=1):
        evaluation.sequence = sequence
        evaluation.cycles_completed = cycles_completed_on(
            patient=patient, on=evaluation.evaluated_on
        )
        evaluation.recist_response = evaluation.imaging.response
        value = values.get(evaluation.lab_panel_id)
        evaluation.ca19_9_baseline = _pct(baseline_ca19_9)
        evaluation.ca19_9_value = _pct(value)
        change = (
            recist.percent_change(value, baseline_ca19_9)
            if value is not None and not uninformative
            else None
        )
        # A percentage of a near-zero baseline is noise, and may not even fit the column.
        evaluation.ca19_9_change_pct = change if change is None or abs(change) < 10**6 else None
        evaluation.ca19_9_uninformative = uninformative
        evaluation.progression_at_first = first_pd
        evaluation.interval_cycles = (
            INTERVAL_AFTER_EARLY_PROGRESSION if first_pd else INTERVAL_CYCLES
        )


def _patient_evaluations(patient: Patient, *, exclude: int | None = None) -> list:
    queryset = ResponseEvaluation.objects.active().filter(patient=patient).select_related("imaging")
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude)
    return list(queryset.order_by("evaluated_on", "id"))


@transaction.atomic
def evaluations_refresh(*, patient: Patient, user: AbstractBaseUser) -> None:
    """Recompute the derived values of every active evaluation of `patient` (cycles
    completed, sequence, RECIST response, CA19-9, interval) and save those that changed
    ("Evaluation recomputed"). For writes elsewhere that feed them (a cycle, a lab result)."""
    evaluations = _patient_evaluations(patient)
    before = {e.pk: _derived(e, _DERIVED_EVALUATION) for e in evaluations}
    _derive_evaluations(patient, evaluations)
    for evaluation in evaluations:
        if _derived(evaluation, _DERIVED_EVALUATION) != before[evaluation.pk]:
            clinical_save(evaluation, user=user, reason=EVALUATION_RECOMPUTED)


def _check_evaluation(
    errors: dict, evaluation: ResponseEvaluation, patient: Patient, today: date
) -> None:
    enrollment = _check_enrolled(patient, _("a response evaluation"))
    not_in_future(errors, "evaluated_on", evaluation.evaluated_on, today=today)
    not_before(
        errors,
        "evaluated_on",
        evaluation.evaluated_on,
        enrollment.enrolled_on,
        _("The evaluation (%(value)s) is before the enrollment (%(other)s)."),
    )
    _check_withdrawal(errors, patient, "evaluated_on", evaluation.evaluated_on)
    if evaluation.imaging_id is None:
        errors.setdefault("imaging", []).append(
            _(
                "Link the imaging study this evaluation rests on: an evaluation without its "
                "imaging cannot be saved."
            )
        )
    else:
        imaging = ImagingStudy.objects.get(pk=evaluation.imaging_id)
        evaluation.imaging = imaging
        if imaging.patient_id != patient.pk:
            errors.setdefault("imaging", []).append(
                _("This imaging study belongs to another patient.")
            )
        elif imaging.is_voided:
            errors.setdefault("imaging", []).append(_("This imaging study was voided."))
        elif imaging.is_baseline:
            errors.setdefault("imaging", []).append(
                _(
                    "The study of %(date)s is the RECIST baseline, which has no response: link "
                    "the follow-up study of this evaluation."
                )
                % {"date": fmt(imaging.performed_on)}
            )
        else:
            _check_imaging_date(errors, "imaging", imaging, evaluation)
            other = (
                ResponseEvaluation.objects.active()
                .filter(imaging=imaging)
                .exclude(pk=evaluation.pk)
                .first()
            )
            if other:
                errors.setdefault("imaging", []).append(
                    _("This imaging study is already linked to the evaluation of %(date)s.")
                    % {"date": fmt(other.evaluated_on)}
                )
    if evaluation.lab_panel_id is not None:
        panel = LabPanel.objects.get(pk=evaluation.lab_panel_id)
        if panel.patient_id != patient.pk:
            errors.setdefault("lab_panel", []).append(
                _("This lab panel belongs to another patient.")
            )
        elif panel.is_voided:
            errors.setdefault("lab_panel", []).append(_("This lab panel was voided."))
        elif evaluation.evaluated_on and panel.sampled_on > evaluation.evaluated_on:
            errors.setdefault("lab_panel", []).append(
                _("The lab panel (%(panel)s) is after the evaluation (%(evaluation)s).")
                % {"panel": fmt(panel.sampled_on), "evaluation": fmt(evaluation.evaluated_on)}
            )


@transaction.atomic
def evaluation_save(
    *,
    evaluation: ResponseEvaluation,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> ResponseEvaluation:
    """Record or edit a response evaluation: its imaging, lab panel and clinical decision.

    Refuses (ValidationError keyed by the field) an evaluation without imaging, imaging of
    another patient, the RECIST baseline, imaging after the evaluation or more than 30 days
    before it, imaging another evaluation already uses, a lab panel of another patient or
    after the evaluation, a date in the future, before the enrollment or after a withdrawal.

    Derives the cycles completed on the evaluation date, its number among the patient's
    evaluations, the RECIST response of its imaging, CA19-9 (baseline, value, change, and the
    uninformative flag when the baseline is under 5 U/mL or missing), progression at the
    first evaluation and the interval to the next one (2 cycles after early progression,
    else 4) — for every evaluation of the patient, saving those that changed. Returns the
    saved evaluation; StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    patient = _lock_patient(evaluation.patient_id)
    errors: dict = {}
    _check_evaluation(errors, evaluation, patient, today)
    raise_if(errors)
    others = _patient_evaluations(patient, exclude=evaluation.pk)
    before = {e.pk: _derived(e, _DERIVED_EVALUATION) for e in others}
    series = sorted([*others, evaluation], key=lambda e: (e.evaluated_on, e.pk or float("inf")))
    _derive_evaluations(patient, series)
    saved = clinical_save(
        evaluation, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    for other in others:
        if _derived(other, _DERIVED_EVALUATION) != before[other.pk]:
            clinical_save(other, user=user, reason=EVALUATION_RECOMPUTED)
    patient_records_changed(patient=patient, user=user, source="assessments.evaluation")
    return saved


@transaction.atomic
def evaluation_void(
    *,
    evaluation: ResponseEvaluation,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
) -> ResponseEvaluation:
    """Void an evaluation entered in error; the patient's other evaluations are renumbered
    and their interval recomputed. StaleRecordError when it changed since
    `expected_version`; ValidationError without a reason."""
    patient = _lock_patient(evaluation.patient_id)
    voided = clinical_void(evaluation, user=user, reason=reason, expected_version=expected_version)
    evaluations_refresh(patient=patient, user=user)
    patient_records_changed(patient=patient, user=user, source="assessments.evaluation")
    return voided
