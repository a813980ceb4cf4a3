"""Every write of the surgery app: MDT decisions with their evidence, the index operation,
pathology, complications, discharge and the postoperative lab panels.

Each service is one transaction. Row rules live in the models' clean() (and surgery/isgps.py);
the rules that compare a record with other records (enrollment, withdrawal, the MDT decision,
the operation) live here. All errors of one submission are collected and raised together,
keyed by the field to fix, and nothing is saved then.
"""

from collections.abc import Iterable
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments.models import LabPanel, ResponseEvaluation
from assessments.services.labs import lab_panel_record
from patients.models import Enrollment, Patient
from patients.services import study_period
from surgery import postop
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology
from trial.derived import patient_records_changed
from trial.models import AuditedModel, Cohort
from trial.services import clinical_save, clinical_void
from trial.validation import fmt, not_in_future, raise_if

MDT_PERMISSION = "surgery.add_mdtdecision"


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _row_errors(errors: dict, instance: AuditedModel) -> None:
    """The model's own field validation and clean(), collected into `errors` (foreign keys and
    constraints are validated again by clinical_save before saving)."""
    skip = {f.name for f in instance._meta.concrete_fields if f.is_relation}
    try:
        instance.clean()
    except ValidationError as error:
        for name, items in error.message_dict.items():
            errors.setdefault(name, []).extend(items)
            skip.add(name)
    try:
        instance.clean_fields(exclude=skip)
    except ValidationError as error:
        for name, items in error.message_dict.items():
            errors.setdefault(name, []).extend(items)


def _check_window(
    errors: dict,
    field: str,
    value: date | None,
    *,
    label: str,
    patient: Patient,
    today: date,
) -> Enrollment:
    """`value` lies in the patient's study period (patients.services.StudyPeriod).

    Returns the enrollment; ValidationError when the patient is not enrolled."""
    period = study_period(patient=patient, what=_("surgery data"))
    period.check(errors, field, value, label=label, today=today)
    return period.enrollment


def _not_before_operation(
    errors: dict, field: str, value: date | None, operation: Operation, label: str
) -> None:
    if value and value < operation.operated_on:
        _add(
            errors,
            field,
            _("%(label)s (%(value)s) is before the operation (%(other)s).")
            % {"label": label, "value": fmt(value), "other": fmt(operation.operated_on)},
        )


# --- MDT decisions --------------------------------------------------------------------------


@transaction.atomic
def mdt_decision_save(
    *,
    decision: MdtDecision,
    evaluations: Iterable[ResponseEvaluation],
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> MdtDecision:
    """Record an MDT decision (or save an edit) with the evaluations it rests on.

    `decision` carries the patient, date, attendees, decision, rationale and planned
    procedures; `evaluations` the patient's response evaluations the MDT discussed (stored as
    MdtEvidence rows; on an edit, evidence no longer chosen is voided). The investigator is
    `user`. Raises PermissionDenied when `user` may not record MDT decisions; ValidationError
    (field-level, nothing saved) for a date in the future, before the enrollment or after a
    withdrawal; an evaluation of another patient, voided, or dated after the MDT; no
    evaluation for a prospective patient; a planned procedure missing or not applicable;
    StaleRecordError when the decision changed since `expected_version`.
    """
    if not user.has_perm(MDT_PERMISSION):
        raise PermissionDenied(_("Only an investigator records MDT decisions."))
    today = _today(today)
    patient = Patient.objects.select_for_update().get(pk=decision.patient_id)
    decision.investigator = user
    errors: dict = {}
    enrollment = _check_window(
        errors,
        "decided_on",
        decision.decided_on,
        label=_("MDT date"),
        patient=patient,
        today=today,
    )
    _row_errors(errors, decision)
    chosen = list(evaluations)
    for evaluation in chosen:
        if evaluation.patient_id != patient.pk or evaluation.is_voided:
            _add(errors, "evaluations", _("Choose among this patient's active evaluations."))
        elif decision.decided_on and evaluation.evaluated_on > decision.decided_on:
            _add(
                errors,
                "evaluations",
                _("The evaluation of %(value)s is after the MDT (%(other)s).")
                % {"value": fmt(evaluation.evaluated_on), "other": fmt(decision.decided_on)},
            )
    if not chosen and enrollment.cohort != Cohort.RETROSPECTIVE:
        _add(
            errors,
            "evaluations",
            _("Choose the response evaluation(s) the MDT decision is based on."),
        )
    raise_if(errors)
    saved = clinical_save(
        decision,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )
    current = {e.evaluation_id: e for e in MdtEvidence.objects.active().filter(decision=saved)}
    wanted = {e.pk for e in chosen}
    for evaluation in chosen:
        if evaluation.pk not in current:
            clinical_save(MdtEvidence(decision=saved, evaluation=evaluation), user=user)
    for evaluation_id, evidence in current.items():
        if evaluation_id not in wanted:
            clinical_void(evidence, user=user, reason=reason or _("No longer chosen as evidence."))
    patient_records_changed(patient=patient, user=user, source="surgery.mdt")
    return saved


@transaction.atomic
def mdt_decision_void(
    *, decision: MdtDecision, user: AbstractBaseUser, reason: str, expected_version=None
) -> MdtDecision:
    """Void an MDT decision and its evidence. Refused (ValidationError) while an active
    operation rests on it; PermissionDenied for a user who may not record MDT decisions."""
    if not user.has_perm(MDT_PERMISSION):
        raise PermissionDenied(_("Only an investigator records MDT decisions."))
    operation = Operation.objects.active().filter(mdt_decision=decision).first()
    if operation is not None:
        raise ValidationError(
            {
                "void_reason": _(
                    "The operation of %(on)s rests on this decision: void or edit the "
                    "operation first."
                )
                % {"on": fmt(operation.operated_on)}
            }
        )
    voided = clinical_void(decision, user=user, reason=reason, expected_version=expected_version)
    for evidence in MdtEvidence.objects.active().filter(decision=decision):
        clinical_void(evidence, user=user, reason=reason)
    patient_records_changed(patient=decision.patient, user=user, source="surgery.mdt")
    return voided


# --- the index operation --------------------------------------------------------------------


@transaction.atomic
def operation_save(
    *,
    operation: Operation,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Operation:
    """Record the patient's index operation, or save an edit of it.

    Refused (ValidationError keyed by field, nothing saved): a second index operation; no MDT
    decision for radical surgery of this patient on or before the operation, unless the
    document is missing with a reason (retrospective cohort only); a date in the future,
    before the enrollment, before the MDT or after a withdrawal; conversion of an open
    operation; liver lesion counts that do not match the liver procedures ticked.
    StaleRecordError when the operation changed since `expected_version`. After saving, the
    higher derivations (adjuvant cycles) are refreshed.
    """
    today = _today(today)
    patient = Patient.objects.select_for_update().get(pk=operation.patient_id)
    errors: dict = {}
    enrollment = _check_window(
        errors,
        "operated_on",
        operation.operated_on,
        label=_("Date of operation"),
        patient=patient,
        today=today,
    )
    existing = Operation.objects.active().filter(patient=patient).exclude(pk=operation.pk).first()
    if existing is not None:
        _add(
            errors,
            "operated_on",
            _(
                "This patient already has an index operation (%(procedure)s, %(on)s): edit it "
                "or void it first."
            )
            % {
                "procedure": existing.get_pancreatic_procedure_display(),
                "on": fmt(existing.operated_on),
            },
        )
    _row_errors(errors, operation)
    mdt = operation.mdt_decision if operation.mdt_decision_id else None
    if mdt is not None:
        if mdt.patient_id != patient.pk or mdt.is_voided:
            _add(errors, "mdt_decision", _("Choose an active MDT decision of this patient."))
        elif not mdt.is_surgery:
            _add(
                errors,
                "mdt_decision",
                _("The MDT of %(on)s decided “%(decision)s”, not radical surgery.")
                % {"on": fmt(mdt.decided_on), "decision": mdt.get_decision_display()},
            )
        elif operation.operated_on and operation.operated_on < mdt.decided_on:
            _add(
                errors,
                "operated_on",
                _("Date of operation (%(value)s) is before the MDT decision (%(other)s).")
                % {"value": fmt(operation.operated_on), "other": fmt(mdt.decided_on)},
            )
    elif operation.mdt_document_missing:
        if enrollment.cohort != Cohort.RETROSPECTIVE:
            _add(
                errors,
                "mdt_document_missing",
                _(
                    "Only a retrospective case may go without the MDT decision document; "
                    "record the MDT decision for radical surgery first."
                ),
            )
    else:
        _add(
            errors,
            "mdt_decision",
            _(
                "An operation requires a prior MDT decision for radical surgery: record it "
                "first and choose it here."
            ),
        )
    raise_if(errors)
    saved = clinical_save(
        operation, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    patient_records_changed(patient=patient, user=user, source="surgery.operation")
    return saved


# --- pathology ------------------------------------------------------------------------------


@transaction.atomic
def pathology_save(
    *,
    pathology: Pathology,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Pathology:
    """Record the pathology report of the operation, or save an edit of it.

    Refused (ValidationError keyed by field, nothing saved): a report date in the future or
    before the operation; more positive nodes than examined; a ypN that does not match the
    positive nodes (AJCC 8th); no liver margin when liver tissue was resected (or one when
    none was). StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    operation = Operation.objects.select_for_update().get(pk=pathology.operation_id)
    pathology.operation = operation
    errors: dict = {}
    not_in_future(errors, "reported_on", pathology.reported_on, today=today)
    _not_before_operation(errors, "reported_on", pathology.reported_on, operation, _("Report date"))
    _row_errors(errors, pathology)
    raise_if(errors)
    saved = clinical_save(
        pathology, user=user, expected_version=expected_version, reason=reason, complete=complete
    )
    # The data checks (trial/checks.py: an operation without pathology) follow the report.
    patient_records_changed(patient=operation.patient, user=user, source="surgery.pathology")
    return saved


# --- complications --------------------------------------------------------------------------


@transaction.atomic
def complication_save(
    *,
    complication: Complication,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Complication:
    """Record a postoperative complication, or save an edit of one.

    Refused (ValidationError keyed by field, nothing saved): an onset in the future, before
    the operation or after a withdrawal; the ISGPS / Clavien-Dindo rules of surgery/isgps.py
    (grade required for a fistula, DGE or PPH and refused otherwise; no grade A fistula; a
    fistula needs drain amylase above 405 U/L; a grade B/C fistula is not Clavien-Dindo I).
    StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    operation = Operation.objects.select_for_update().get(pk=complication.operation_id)
    complication.operation = operation
    errors: dict = {}
    _check_window(
        errors,
        "onset_on",
        complication.onset_on,
        label=_("Onset date"),
        patient=operation.patient,
        today=today,
    )
    _not_before_operation(errors, "onset_on", complication.onset_on, operation, _("Onset date"))
    _row_errors(errors, complication)
    raise_if(errors)
    return clinical_save(
        complication,
        user=user,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
    )


@transaction.atomic
def complication_void(
    *, complication: Complication, user: AbstractBaseUser, reason: str, expected_version=None
) -> Complication:
    """Void a complication entered in error (ValidationError without a reason)."""
    return clinical_void(complication, user=user, reason=reason, expected_version=expected_version)


# --- discharge ------------------------------------------------------------------------------


@transaction.atomic
def discharge_save(
    *,
    discharge: Discharge,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> Discharge:
    """Record the discharge after the operation (and a readmission), or save an edit.

    Refused (ValidationError keyed by field, nothing saved): a discharge in the future,
    before the operation or after a withdrawal; a readmission in the future or not after the
    discharge, or without its reason. Length of stay and readmission within 30/90 days are
    derived (Discharge properties). StaleRecordError when it changed since `expected_version`.
    """
    today = _today(today)
    operation = Operation.objects.select_for_update().get(pk=discharge.operation_id)
    discharge.operation = operation
    errors: dict = {}
    _check_window(
        errors,
        "discharged_on",
        discharge.discharged_on,
        label=_("Discharge date"),
        patient=operation.patient,
        today=today,
    )
    _not_before_operation(
        errors, "discharged_on", discharge.discharged_on, operation, _("Discharge date")
    )
    not_in_future(errors, "readmitted_on", discharge.readmitted_on, today=today)
    _row_errors(errors, discharge)
    raise_if(errors)
    return clinical_save(
        discharge, user=user, expected_version=expected_version, reason=reason, complete=complete
    )


# --- postoperative labs ---------------------------------------------------------------------


def postop_day_check(
    *, operation: Operation, sampled_on: date, day: int | None = None
) -> tuple[postop.Snap | None, dict]:
    """The protocol day a sample of `sampled_on` counts for, and the date errors (keyed
    "sampled_on"): before the operation. The window is not an error here (see the caller)."""
    errors: dict = {}
    if sampled_on < operation.operated_on:
        _add(
            errors,
            "sampled_on",
            _("Sample date %(sampled)s is before the operation on %(operated)s.")
            % {"sampled": fmt(sampled_on), "operated": fmt(operation.operated_on)},
        )
        return None, errors
    return postop.snap((sampled_on - operation.operated_on).days, day=day), errors


@transaction.atomic
def postop_panel_record(
    *,
    operation: Operation,
    sampled_on: date,
    values: dict,
    user: AbstractBaseUser,
    confirmed_extremes: frozenset[str] = frozenset(),
    confirm_out_of_window: bool = False,
    day: int | None = None,
    panel: LabPanel | None = None,
    notes: str = "",
    expected_version: int | None = None,
    reason: str = "",
    complete: bool = True,
    today: date | None = None,
) -> LabPanel:
    """Record a postoperative lab panel (or save an edit of `panel`) for `operation`.

    The postoperative day is (sampled_on − operated_on).days, snapped to the protocol day
    1/3/5/7/30 whose window holds it (± 1 day for days 1–7, ± 3 days for day 30), or to
    `day` when the user chose the protocol day. `values` as for
    assessments.services.labs.lab_panel_record, which records the panel (context "postop").

    Refused (ValidationError keyed by field, nothing saved): a sample before the operation;
    a sample outside the window of its day unless `confirm_out_of_window` (then saved with
    `out_of_window` set); a second panel for a protocol day; every refusal of
    lab_panel_record. StaleRecordError when the panel changed since `expected_version`.
    """
    snap, errors = postop_day_check(operation=operation, sampled_on=sampled_on, day=day)
    if snap is not None:
        first, last = postop.window(snap.day)
        if not snap.in_window and not confirm_out_of_window:
            _add(
                errors,
                "sampled_on",
                _(
                    "Sample date %(sampled)s is postoperative day %(pod)s, outside the window "
                    "of day %(day)s (days %(first)s–%(last)s): tick the confirmation to record "
                    "it out of window."
                )
                % {
                    "sampled": fmt(sampled_on),
                    "pod": snap.pod,
                    "day": snap.day,
                    "first": first,
                    "last": last,
                },
            )
        clash = (
            LabPanel.objects.active()
            .filter(
                patient_id=operation.patient_id,
                context=LabPanel.Context.POSTOP,
                postop_day=snap.day,
            )
            .exclude(pk=panel.pk if panel else None)
            .first()
        )
        if clash is not None:
            _add(
                errors,
                "sampled_on",
                _("Day %(day)s already has a panel (sampled %(other)s): edit that one.")
                % {"day": snap.day, "other": fmt(clash.sampled_on)},
            )
    raise_if(errors)
    if panel is None:
        panel = LabPanel(patient_id=operation.patient_id, context=LabPanel.Context.POSTOP)
    panel.context = LabPanel.Context.POSTOP
    panel.sampled_on = sampled_on
    panel.postop_day = snap.day
    panel.out_of_window = not snap.in_window
    if notes is not None:
        panel.notes = notes
    return lab_panel_record(
        panel=panel,
        values=values,
        user=user,
        confirmed_extremes=confirmed_extremes,
        expected_version=expected_version,
        reason=reason,
        complete=complete,
        today=today,
    )
