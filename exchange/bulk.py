"""The bulk path of the retrospective import: new patients in a handful of statements.

The per-row path (exchange.services._write_row) creates each patient through the clinical
apps' services, about a hundred queries a row, mostly to look up what the row itself has
just written (the enrollment, the consent, the operation, the last known alive date). For a
patient that does not exist yet, that state is all in memory. So for every new row this
module:

1. builds the records the services would create, with the values they would derive (status,
   BSA, cycle length, line number, the patient's status after enrollment and death), and runs
   the same checks in the same order, in memory: the services' cross-record rules (with the
   same helpers and messages: `StudyPeriod.check`, the baseline window, eligibility, the
   recurrence kind, the death against the last record showing the patient alive) and each
   record's field validation and clean(), as `trial.services.clinical_save` does. A failed
   step becomes the row's issues, mapped to its columns exactly like the per-row path;
2. when the whole file is clean, inserts the records with `bulk_create`, model by model, and
   their history rows (one per save the per-row path makes, with the same states, versions,
   users and reasons), sealed by `trial.audit.seal_history`, and the patients' casebooks with
   the version the per-row path's writes would have moved them to.

What only the database can check (unique record numbers, constraints) is checked in bulk
before, and enforced by the database at insert: an IntegrityError there makes the caller run
the per-row path instead, whose report names the row. Updates of existing patients stay on
the per-row path.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange import services
from exchange.models import RetrospectiveAbstract
from exchange.parsing import Issue, ParsedRow
from exchange.template import BASELINE_COLUMNS, LINE_COLUMNS
from followup import selectors as followup_selectors
from followup.models import Death, FollowUpContact, Recurrence
from followup.services import _row_errors as followup_row_errors
from patients import eligibility
from patients.models import Baseline, Patient, PatientIdentity
from patients.services import (
    StudyPeriod,
    _check_after_enrollment_window,
    bsa_mosteller,
    screening_facts,
)
from surgery.models import Operation
from surgery.services import _row_errors as surgery_row_errors
from treatments.models import RegimenLine
from treatments.services import _row_errors as treatments_row_errors
from treatments.services import _set_cycle_length
from trial.audit import seal_history
from trial.models import AuditedModel, Casebook, ClinicalModel, FormStatus, Site
from trial.validation import fmt, not_before, not_in_future, raise_if

BATCH_SIZE = 1000

# The reasons patients.services gives the patient's own saves after enrollment and death.
ENROLLED_REASON = "Enrolled"
VITAL_STATUS_REASON = "Vital status from follow-up"


@dataclass
class _Save:
    """One save the per-row path makes: the record, the state it had then (attname -> value,
    over the final state), and the history row's type and reason."""

    instance: models.Model
    history_type: str
    reason: str | None
    user: object = None
    state: dict = field(default_factory=dict)


@dataclass
class PatientPlan:
    """The records of one new patient, in the order the per-row path saves them."""

    row: ParsedRow
    patient: Patient
    records: list[AuditedModel] = field(default_factory=list)
    saves: list[_Save] = field(default_factory=list)
    casebook: Casebook | None = None


def _clean(instance: models.Model) -> None:
    """What `trial.services._full_clean` checks of a record, in memory: field validation
    (relations to records of the same plan are set, so they are left out as it leaves out
    attached keys) and clean(). Uniqueness and constraints are checked in bulk by the caller
    and enforced by the database."""
    attached = [
        f.name
        for f in instance._meta.concrete_fields
        if f.is_relation and f.is_cached(instance) and getattr(instance, f.name) is not None
    ]
    errors: dict = {}
    for step, exclude in ((instance.clean_fields, attached), (instance.clean, None)):
        try:
            step(exclude=exclude) if exclude is not None else step()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def _matches(condition: Q, instance: models.Model) -> bool:
    """`condition` (an AND of plain field = value terms, as followup.selectors declares them)
    evaluated on an unsaved instance."""
    if condition.negated or (condition.children and condition.connector != Q.AND):
        raise ValueError("Unsupported condition for an in-memory record: %r" % condition)
    for child in condition.children:
        if isinstance(child, Q):
            if not _matches(child, instance):
                return False
            continue
        name, value = child
        if "__" in name:
            raise ValueError("Unsupported condition for an in-memory record: %r" % condition)
        if getattr(instance, name) != value:
            return False
    return True


def _last_known_alive(records: list[models.Model]) -> tuple[date | None, str]:
    """followup.selectors.last_known_alive over the plan's records: the latest date among the
    same sources (ties to the later source), with its label."""
    best: tuple[date, int, str] | None = None
    for rank, source in enumerate(followup_selectors.SOURCES):
        if source.patient_field != "patient":
            continue
        for record in records:
            if type(record) is not source.model or record.voided_at is not None:
                continue
            on = getattr(record, source.date_field)
            if on is None or not _matches(source.condition, record):
                continue
            if best is None or (on, rank) > best[:2]:
                best = (on, rank, str(source.label))
    return (best[0], best[2]) if best else (None, "")


class _Planner:
    """Builds and checks the records of one row; each step raises services._RowFailed with
    the row's issues, like the per-row path's `_step`."""

    def __init__(self, row: ParsedRow, site: Site, ctx) -> None:
        self.row, self.site, self.ctx = row, site, ctx
        self.user, self.today = ctx.user, ctx.today
        self.reason = services.audit_reason(ctx.file_name, row.number)

    def _step(self, check, fields: dict[str, str], default: str) -> None:
        services._step(check, self.row, fields, default)

    def _created(self, plan: PatientPlan, instance: AuditedModel, *, complete: bool) -> None:
        """clinical_save of a new record: its bookkeeping fields and its history row."""
        instance.created_by = instance.updated_by = self.user
        instance.version = 1
        if isinstance(instance, ClinicalModel) and complete:
            instance.status = FormStatus.COMPLETE
        plan.records.append(instance)
        plan.saves.append(_Save(instance, "+", self.reason, self.user))

    def _patient_saved(self, plan: PatientPlan, reason: str, **values) -> None:
        """clinical_save of the patient by patients.services._patient_set_status."""
        patient = plan.patient
        for name, value in values.items():
            setattr(patient, name, value)
        patient.version += 1
        patient.updated_by = self.user
        _clean(patient)
        state = {f.attname: getattr(patient, f.attname) for f in patient._meta.concrete_fields}
        plan.saves.append(_Save(patient, "~", reason, self.user, state))

    def plan(self) -> PatientPlan:
        row, ctx, today = self.row, self.ctx, self.today
        born, estimated = services._birth_date(row)
        placeholder = not (row.get("name") and row.get("hospital_record_number"))

        # The patient (status from the checklist), identity and screening.
        patient, screening = services._new_patient(
            row, self.site, born, services._screening_values(row, ctx, estimated)
        )
        plan = PatientPlan(row=row, patient=patient)
        self._step(lambda: _clean(patient), {}, "subject_code")
        patient.created_by = patient.updated_by = self.user
        patient.version = 1
        first = {f.attname: getattr(patient, f.attname) for f in patient._meta.concrete_fields}
        plan.saves.append(_Save(patient, "+", self.reason, self.user, first))
        identity = PatientIdentity(
            patient=patient, site=self.site, **services._identity_values(row, born)
        )
        self._step(lambda: _clean(identity), services.IDENTITY_MAP, "name")
        # The identity's save creates the casebook (trial.services.casebook_touch).
        plan.casebook = Casebook(patient=patient, version=0)
        plan.saves.append(_Save(plan.casebook, "+", None))
        self._created(plan, identity, complete=False)
        screening.patient = patient
        screening.status = FormStatus.COMPLETE
        self._step(lambda: _clean(screening), services.SCREENING_MAP, "enrollment_date")
        self._created(plan, screening, complete=True)

        # Consent (patients.services.consent_save, before any enrollment).
        consent = services._new_consent(row, ctx, patient)

        def consent_check() -> None:
            errors: dict = {}
            not_in_future(errors, "consented_on", consent.consented_on, today=today)
            raise_if(errors)
            consent.status = FormStatus.COMPLETE
            _clean(consent)

        self._step(consent_check, services.CONSENT_MAP, "waiver_reference")
        self._created(plan, consent, complete=True)

        # Enrollment (patients.services.patient_enroll and _check_enrollment).
        enrollment = services._new_enrollment(row, patient)

        def enroll_check() -> None:
            errors: dict = {}
            not_in_future(errors, "enrolled_on", enrollment.enrolled_on, today=today)
            not_in_future(errors, "diagnosed_on", enrollment.diagnosed_on, today=today)
            not_before(
                errors,
                "enrolled_on",
                enrollment.enrolled_on,
                screening.screened_on,
                _("Enrollment (%(value)s) is before the screening (%(other)s)."),
            )
            if consent.grants_study_participation:
                not_before(
                    errors,
                    "enrolled_on",
                    enrollment.enrolled_on,
                    consent.consented_on,
                    _("Enrollment (%(value)s) is before the consent (%(other)s)."),
                )
            raise_if(errors)
            failed = eligibility.failures(
                screening_facts(screening=screening, cohort=enrollment.cohort, consent=consent)
            )
            if failed:
                raise ValidationError(
                    [
                        _("Not eligible: %(criterion)s — %(detail)s")
                        % {"criterion": r.label, "detail": r.detail}
                        for r in failed
                    ]
                )
            enrollment.status = FormStatus.COMPLETE
            _clean(enrollment)

        self._step(enroll_check, services.ENROLLMENT_MAP, "enrollment_date")
        self._created(plan, enrollment, complete=True)
        self._step(
            lambda: self._patient_saved(
                plan, ENROLLED_REASON, status=Patient.Status.ENROLLED, cohort=enrollment.cohort
            ),
            services.ENROLLMENT_MAP,
            "enrollment_date",
        )
        period = StudyPeriod(enrollment=enrollment, withdrawal=None, died_on=None)

        # Baseline (patients.services.baseline_save).
        if row.has_all(BASELINE_COLUMNS):
            baseline = Baseline(patient=patient)
            services._assign(baseline, services._baseline_values(row))

            def baseline_check() -> None:
                errors: dict = {}
                not_in_future(errors, "assessed_on", baseline.assessed_on, today=today)
                raise_if(errors)
                if baseline.assessed_on:
                    _check_after_enrollment_window(baseline.assessed_on, enrollment, "assessed_on")
                if baseline.height_cm and baseline.weight_kg:
                    baseline.bsa_m2 = bsa_mosteller(
                        height_cm=baseline.height_cm, weight_kg=baseline.weight_kg
                    )
                baseline.status = FormStatus.COMPLETE
                _clean(baseline)

            self._step(baseline_check, services._BASELINE_MAP, "baseline_date")
            self._created(plan, baseline, complete=True)

        # First-line regimen (treatments.services.line_start: the first line of the patient).
        if row.has_all(LINE_COLUMNS) and row.get("regimen") in services.NAMED_REGIMENS:
            line = RegimenLine(
                patient=patient, regimen=row.get("regimen"), started_on=row.get("first_cycle_date")
            )

            def line_check() -> None:
                line.line_number = 1
                _set_cycle_length(line)
                errors: dict = {}
                label = _("Start of line %(number)s") % {"number": line.line_number}
                period.check(errors, "started_on", line.started_on, label=label, today=today)
                if line.change_reason:
                    errors.setdefault("change_reason", []).append(
                        _(
                            "The first line replaces no earlier regimen: leave the reason for a "
                            "change empty."
                        )
                    )
                treatments_row_errors(errors, line)
                raise_if(errors)
                line.status = FormStatus.COMPLETE
                _clean(line)

            self._step(line_check, services.LINE_MAP, "regimen")
            self._created(plan, line, complete=True)

        # The index operation (surgery.services.operation_save, MDT document missing).
        operation = None
        if services._operation_complete(row):
            operation = Operation(patient=patient)
            services._assign(operation, services._operation_values(row))

            def operation_check() -> None:
                errors: dict = {}
                period.check(
                    errors,
                    "operated_on",
                    operation.operated_on,
                    label=_("Date of operation"),
                    today=today,
                )
                surgery_row_errors(errors, operation)
                raise_if(errors)
                operation.status = FormStatus.COMPLETE
                _clean(operation)

            self._step(operation_check, services._OPERATION_MAP, "surgery_date")
            self._created(plan, operation, complete=True)

        # Recurrence or progression (followup.services.recurrence_save).
        recurrence_values = services._recurrence_values(row, operation)
        if recurrence_values is not None:
            recurrence = Recurrence(patient=patient)
            services._assign(recurrence, recurrence_values)

            def recurrence_check() -> None:
                errors: dict = {}
                detected_on = recurrence.detected_on
                period.check(
                    errors, "detected_on", detected_on, label=_("Date detected"), today=today
                )
                followup_row_errors(errors, recurrence)
                resected = (
                    operation is not None and detected_on and operation.operated_on < detected_on
                )
                if detected_on and recurrence.kind == Recurrence.Kind.RECURRENCE and not resected:
                    if operation is None:
                        message = _("No resection precedes %(value)s: record it as progression.")
                        message %= {"value": fmt(detected_on)}
                    else:
                        message = _(
                            "No resection precedes %(value)s (operation on %(other)s): record "
                            "it as progression."
                        ) % {"value": fmt(detected_on), "other": fmt(operation.operated_on)}
                    errors.setdefault("kind", []).append(message)
                if recurrence.kind == Recurrence.Kind.PROGRESSION and resected:
                    errors.setdefault("kind", []).append(
                        _(
                            "The resection of %(other)s precedes %(value)s: disease after it "
                            "is a recurrence, record it as recurrence."
                        )
                        % {"value": fmt(detected_on), "other": fmt(operation.operated_on)}
                    )
                raise_if(errors)
                recurrence.status = FormStatus.COMPLETE
                _clean(recurrence)

            self._step(recurrence_check, services._RECURRENCE_MAP, "recurrence_date")
            self._created(plan, recurrence, complete=True)

        # The last contact (followup.services.contact_save; no death is recorded yet).
        contact = FollowUpContact(patient=patient)
        services._assign(contact, services._contact_values(row, ctx))

        def contact_check() -> None:
            errors: dict = {}
            period.check(
                errors, "contacted_on", contact.contacted_on, label=_("Follow-up date"), today=today
            )
            followup_row_errors(errors, contact)
            raise_if(errors)
            contact.status = FormStatus.COMPLETE
            _clean(contact)

        self._step(contact_check, services.CONTACT_MAP, "last_contact_date")
        self._created(plan, contact, complete=True)

        # The death (followup.services.death_save), then the patient deceased.
        if row.get("death_date") is not None:
            death = Death(patient=patient)
            services._assign(death, services._death_values(row))

            def death_check() -> None:
                errors: dict = {}
                died_on = death.died_on
                dataclasses.replace(period, died_on=None).check(
                    errors, "died_on", died_on, label=_("Date of death"), today=today
                )
                alive_on, alive_source = _last_known_alive(plan.records)
                if died_on and alive_on and died_on < alive_on:
                    errors.setdefault("died_on", []).append(
                        _(
                            "Date of death (%(value)s) is before the last recorded visit: "
                            "%(source)s on %(other)s."
                        )
                        % {"value": fmt(died_on), "source": alive_source, "other": fmt(alive_on)}
                    )
                reported = sorted(
                    (
                        r
                        for r in plan.records
                        if isinstance(r, FollowUpContact)
                        and r.vital_status == FollowUpContact.VitalStatus.DEAD
                    ),
                    key=lambda r: r.contacted_on,
                )
                if died_on and reported and died_on > reported[0].contacted_on:
                    errors.setdefault("died_on", []).append(
                        _(
                            "Date of death (%(value)s) is after the follow-up contact of "
                            "%(other)s that reported the death."
                        )
                        % {"value": fmt(died_on), "other": fmt(reported[0].contacted_on)}
                    )
                followup_row_errors(errors, death)
                raise_if(errors)
                death.status = FormStatus.COMPLETE
                _clean(death)

            self._step(death_check, services.DEATH_MAP, "death_date")
            self._created(plan, death, complete=True)
            self._step(
                lambda: self._patient_saved(
                    plan, VITAL_STATUS_REASON, status=Patient.Status.DECEASED, died_on=death.died_on
                ),
                services.DEATH_MAP,
                "death_date",
            )

        # The abstract: every abstracted value, typed.
        abstract = RetrospectiveAbstract(patient=patient)
        services._assign(
            abstract,
            services._abstract_record_values(
                row, ctx, born=born, estimated=estimated, placeholder=placeholder
            ),
        )
        self._step(
            lambda: _clean(abstract),
            {v: k for k, v in services.ABSTRACT_FIELDS.items()},
            "subject_code",
        )
        self._created(plan, abstract, complete=False)
        # Every save after the patient's own first one moved (or, the identity's, created)
        # the casebook.
        plan.casebook.version = len(plan.saves) - 2
        return plan


def plan_rows(
    rows: list[ParsedRow], *, sites: dict[int, Site], ctx
) -> tuple[list[PatientPlan], list[Issue]]:
    """The plans of the new patients of `rows`, and the issues of the rows that failed (one
    failed step per row, as the per-row path reports)."""
    plans: list[PatientPlan] = []
    issues: list[Issue] = []
    for row in rows:
        try:
            plans.append(_Planner(row, sites[row.number], ctx).plan())
        except services._RowFailed as failure:
            issues.extend(failure.issues)
    issues.extend(_check_identities(plans))
    return plans, issues


def _check_identities(plans: list[PatientPlan]) -> list[Issue]:
    """Record numbers taken at the site, for the identities whose number is the subject code
    (no record number in the file; the given ones were checked with the file): one query."""
    identities = [
        (plan, identity)
        for plan in plans
        for identity in plan.records
        if isinstance(identity, PatientIdentity) and not plan.row.get("hospital_record_number")
    ]
    if not identities:
        return []
    taken = set(
        PatientIdentity.objects.filter(
            site_id__in={identity.site_id for _plan, identity in identities},
            hospital_record_number__in={i.hospital_record_number for _p, i in identities},
        ).values_list("site_id", "hospital_record_number")
    )
    issues: list[Issue] = []
    for plan, identity in identities:
        if (identity.site_id, identity.hospital_record_number) in taken:
            try:
                services._step(
                    lambda identity=identity: _check_unique(identity),
                    plan.row,
                    services.IDENTITY_MAP,
                    "name",
                )
            except services._RowFailed as failure:
                issues.extend(failure.issues)
    return issues


def _check_unique(instance: models.Model) -> None:
    """The uniqueness part of trial.services._full_clean (the model's unique checks, then its
    constraints), for the few records the bulk check found in conflict: the same messages."""
    errors: dict = {}
    for step in (instance.validate_unique, instance.validate_constraints):
        try:
            step()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def insert(plans: list[PatientPlan]) -> None:
    """Insert the planned records, their casebooks and their sealed history rows."""
    Patient.objects.bulk_create([plan.patient for plan in plans], batch_size=BATCH_SIZE)
    for plan in plans:
        plan.casebook.patient_id = plan.patient.pk
    Casebook.objects.bulk_create([plan.casebook for plan in plans], batch_size=BATCH_SIZE)
    by_model: dict[type, list[models.Model]] = {}
    for plan in plans:
        for record in plan.records:
            by_model.setdefault(type(record), []).append(record)
    for model, records in by_model.items():
        model.objects.bulk_create(records, batch_size=BATCH_SIZE)
    _insert_history(plans)


def _insert_history(plans: list[PatientPlan]) -> None:
    """One history row per save of the per-row path, in its order: `history_date`s one
    microsecond apart keep the order of the saves, of a record and of the whole import."""
    start = timezone.now()
    tick = 0
    rows_by_model: dict[type, list[models.Model]] = {}
    # `Model.history` builds a new manager on every access (simple-history's descriptor, about
    # 0.6 ms): look each history model and its fields up once, not once per row.
    history_of: dict[type, tuple[type, list]] = {}
    for plan in plans:
        for save in plan.saves:
            instance = save.instance
            model = type(instance)
            if model not in history_of:
                history_model = model.history.model
                history_of[model] = (history_model, list(history_model.tracked_fields))
            history, tracked = history_of[model]
            values = {f.attname: getattr(instance, f.attname) for f in tracked}
            for name, value in save.state.items():
                if name in values and name not in ("id", "created_at", "updated_at"):
                    values[name] = value
            if isinstance(instance, Casebook):
                user = history.get_default_history_user(instance)
            else:
                user = save.user
            rows_by_model.setdefault(history, []).append(
                history(
                    history_date=start + timedelta(microseconds=tick),
                    history_type=save.history_type,
                    history_user=user,
                    history_change_reason=save.reason,
                    **values,
                )
            )
            tick += 1
    for history, rows in rows_by_model.items():
        seal_history(rows)
        history.objects.bulk_create(rows, batch_size=BATCH_SIZE)
