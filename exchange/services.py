"""The retrospective-cohort import: a CSV / XLSX file of chart abstractions becomes ordinary,
audited patients of the retrospective cohort, all or nothing.

1. Parse every row (exchange.parsing) and check what needs the database in bulk (subject
   codes, sites, record numbers): a handful of queries for the whole file.
2. Write the rows that parsed through the clinical apps' services, each in a savepoint, in
   one transaction with the derived-data refresh deferred to the end. A service's
   ValidationError becomes issues on the row's columns and the next row goes on, so the
   report lists every problem of the file.
3. Any issue, or a dry run: the transaction is rolled back, nothing is written. The run and
   its report are logged (ImportRun) either way.

Every record's history carries the reason "retrospective import, <file>, row <n>". CRFs are
created only when the row gives every value they need; the abstracted values all go to the
patient's RetrospectiveAbstract (exchange.models), so nothing is invented and nothing lost.
"""

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange import parsing
from exchange.models import ImportRun, RetrospectiveAbstract
from exchange.parsing import FileUnreadable, Issue, ParsedRow
from exchange.template import (
    BASELINE_COLUMNS,
    COLUMNS_BY_NAME,
    LINE_COLUMNS,
    OPERATION_COLUMNS,
    RECURRENCE_COLUMNS,
)
from followup.models import Death, FollowUpContact, Recurrence
from followup.services import contact_save, death_save, recurrence_save
from patients import eligibility
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
)
from patients.services import (
    baseline_save,
    consent_save,
    enrollment_update,
    patient_enroll,
    screening_facts,
    screening_update,
)
from surgery.models import Operation
from surgery.services import operation_save
from treatments.models import RegimenLine
from treatments.services import line_start, line_update
from trial.audit import row_hash_of
from trial.derived import patient_records_changed, refreshes_deferred
from trial.models import Cohort, Site, Study
from trial.scoping import site_ids_for
from trial.services import StaleRecordError, clinical_save

IDENTITY_PLACEHOLDER_NAME = "Retrospective import"
MDT_MISSING_REASON = "Retrospective import: the MDT decision document was not abstracted."
NAMED_REGIMENS = ("AG", "FOLFIRINOX", "mFOLFIRINOX", "NALIRIFOX")
LIVER_FLAGS = {
    "wedge": "liver_wedge",
    "segmentectomy": "liver_segmentectomy",
    "hemihepatectomy": "liver_hemihepatectomy",
    "ablation": "liver_ablation",
}

# Column of the file -> field of RetrospectiveAbstract.
ABSTRACT_FIELDS: dict[str, str] = {
    "vital_status": "vital_status",
    "last_contact_date": "last_contact_on",
    "death_date": "death_on",
    "death_cause": "death_cause",
    "death_cause_detail": "death_cause_detail",
    "death_source": "death_source",
    "diagnosis_date": "diagnosed_on",
    "baseline_date": "baseline_on",
    "ecog": "ecog",
    "height_cm": "height_cm",
    "weight_kg": "weight_kg",
    "primary_site": "primary_site",
    "primary_size_mm": "primary_size_mm",
    "liver_mets_count": "liver_mets_count",
    "liver_mets_largest_mm": "liver_mets_largest_mm",
    "liver_mets_distribution": "liver_mets_distribution",
    "ajcc_t": "ajcc_t",
    "ajcc_n": "ajcc_n",
    "ca19_9_baseline": "ca19_9_u_ml",
    "cea_baseline": "cea_ng_ml",
    "regimen": "regimen",
    "regimen_other": "regimen_other",
    "first_cycle_date": "first_cycle_on",
    "cycles": "cycles_count",
    "best_response": "best_response",
    "surgery_date": "surgery_on",
    "pancreatic_procedure": "pancreatic_procedure",
    "liver_procedures": "liver_procedures",
    "liver_lesions_resected": "liver_lesions_resected",
    "liver_lesions_ablated": "liver_lesions_ablated",
    "approach": "approach",
    "operative_minutes": "operative_minutes",
    "blood_loss_ml": "blood_loss_ml",
    "r_status": "r_status",
    "recurrence_date": "recurrence_on",
    "recurrence_sites": "recurrence_sites",
    "recurrence_site_other": "recurrence_site_other",
    "recurrence_detected_by": "recurrence_detected_by",
}

# Model field -> column, to put a service's error on the column to fix.
IDENTITY_MAP = {"full_name": "name"}
SCREENING_MAP = {"screened_on": "enrollment_date"}
CONSENT_MAP = {"consented_on": "enrollment_date"}
ENROLLMENT_MAP = {"enrolled_on": "enrollment_date", "diagnosed_on": "diagnosis_date"}
LINE_MAP = {"started_on": "first_cycle_date"}
CONTACT_MAP = {"contacted_on": "last_contact_date"}
DEATH_MAP = {
    "died_on": "death_date",
    "cause": "death_cause",
    "cause_detail": "death_cause_detail",
    "source": "death_source",
}
_BASELINE_MAP = {
    "assessed_on": "baseline_date",
    "liver_met_count": "liver_mets_count",
    "liver_met_largest_mm": "liver_mets_largest_mm",
    "liver_met_distribution": "liver_mets_distribution",
    "ca19_9_u_ml": "ca19_9_baseline",
    "cea_ng_ml": "cea_baseline",
}
_OPERATION_MAP = {
    "operated_on": "surgery_date",
    "liver_wedge": "liver_procedures",
    "liver_segmentectomy": "liver_procedures",
    "liver_hemihepatectomy": "liver_procedures",
    "liver_ablation": "liver_procedures",
}
_RECURRENCE_MAP = {
    "detected_on": "recurrence_date",
    "kind": "recurrence_date",
    "site_other_detail": "recurrence_site_other",
    "detected_by": "recurrence_detected_by",
    **{f"site_{code}": "recurrence_sites" for code in Recurrence.SITE_FIELDS},
}


@dataclass
class ImportResult:
    run: ImportRun
    issues: list[Issue] = field(default_factory=list)
    rows: int = 0
    created: int = 0
    updated: int = 0

    @property
    def ok(self) -> bool:
        return not self.issues


class _RowFailed(Exception):
    def __init__(self, issues: list[Issue]):
        self.issues = issues


class _Rollback(Exception):
    pass


def audit_reason(file_name: str, row: int) -> str:
    """The reason every history row of an imported record carries."""
    return "retrospective import, %s, row %d" % (file_name, row)


def _issues(
    error: ValidationError, row: ParsedRow, fields: dict[str, str], default: str
) -> list[Issue]:
    """A service's ValidationError as issues on the row's columns (`fields`: model field ->
    column; other fields and non-field errors go to `default`)."""
    found = []
    items = error.message_dict.items() if hasattr(error, "error_dict") else [("", error.messages)]
    for name, messages in items:
        if name in COLUMNS_BY_NAME and name not in fields:
            column = name
        else:
            column = fields.get(name, default) if name != NON_FIELD_ERRORS else default
        for message in messages:
            found.append(Issue(row.number, column, row.raw.get(column, ""), str(message)))
    return found


def _step(call: Callable, row: ParsedRow, fields: dict[str, str], default: str):
    try:
        return call()
    except ValidationError as error:
        raise _RowFailed(_issues(error, row, fields, default)) from error
    except StaleRecordError as error:
        raise _RowFailed(
            [Issue(row.number, default, row.raw.get(default, ""), str(error))]
        ) from error


# --- checks across rows and against the database --------------------------------------------


def _code_pattern(site_code: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(site_code)}-(\d{{4,6}})$")


def _resolve_sites(
    rows: list[ParsedRow], *, site: Site | None, user: AbstractBaseUser | None
) -> tuple[dict[int, Site], list[Issue]]:
    """Row number -> site: `site` for every row, or the site named by the subject code's
    prefix. Refuses codes of another format and sites the user does not work at."""
    issues: list[Issue] = []
    sites = {s.code: s for s in Site.objects.filter(is_active=True)}
    allowed = site_ids_for(user) if user is not None else None
    resolved: dict[int, Site] = {}
    for row in rows:
        code = row.get("subject_code")
        if not code:
            continue
        prefix = code.rsplit("-", 1)[0] if "-" in code else ""
        target = site or sites.get(prefix)
        example = "%s-0123" % (site.code if site else "CJFH")
        if target is None:
            message = _("No active site has the code %(prefix)s: subject codes look like %(ex)s.")
            issues.append(
                Issue(
                    row.number,
                    "subject_code",
                    code,
                    message % {"prefix": prefix or "—", "ex": example},
                )
            )
            continue
        if not _code_pattern(target.code).match(code):
            message = _("%(code)s is not a subject code of site %(site)s (e.g. %(site)s-0123).")
            issues.append(
                Issue(
                    row.number, "subject_code", code, message % {"code": code, "site": target.code}
                )
            )
            continue
        if allowed is not None and target.pk not in allowed:
            message = _("You do not work at site %(site)s.")
            issues.append(Issue(row.number, "subject_code", code, message % {"site": target.code}))
            continue
        resolved[row.number] = target
    return resolved, issues


def _check_codes(rows: list[ParsedRow], *, update: bool) -> tuple[dict[str, Patient], list[Issue]]:
    """Duplicates within the file, and codes already in the database (refused unless
    `update`; with `update`, only patients this import created may be updated)."""
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for row in rows:
        code = row.get("subject_code")
        if not code:
            continue
        if code in first:
            message = _("Subject code %(code)s is also on row %(other)s of this file.")
            issues.append(
                Issue(
                    row.number, "subject_code", code, message % {"code": code, "other": first[code]}
                )
            )
        else:
            first[code] = row.number
    existing = {
        p.subject_code: p
        for p in Patient.objects.filter(subject_code__in=list(first)).select_related(
            "retrospective_abstract"
        )
    }
    for row in rows:
        code = row.get("subject_code")
        patient = existing.get(code)
        if patient is None:
            continue
        if not update:
            message = _(
                "Subject code %(code)s already exists: it was imported before (use --update to "
                "update it)."
            )
            issues.append(Issue(row.number, "subject_code", code, message % {"code": code}))
        elif not hasattr(patient, "retrospective_abstract"):
            message = _(
                "%(code)s was not created by the retrospective import: edit it on its forms."
            )
            issues.append(Issue(row.number, "subject_code", code, message % {"code": code}))
    return existing, issues


def _check_record_numbers(rows: list[ParsedRow], sites: dict[int, Site]) -> list[Issue]:
    issues = []
    first: dict[tuple[int, str], int] = {}
    for row in rows:
        number = row.get("hospital_record_number")
        site = sites.get(row.number)
        if not number or site is None:
            continue
        key = (site.pk, number)
        if key in first:
            message = _("Record number %(number)s is also on row %(other)s of this file.")
            issues.append(
                Issue(
                    row.number,
                    "hospital_record_number",
                    number,
                    message % {"number": number, "other": first[key]},
                )
            )
        else:
            first[key] = row.number
    taken = PatientIdentity.objects.filter(
        site_id__in={site_id for site_id, _number in first},
        hospital_record_number__in={number for _site, number in first},
    ).select_related("patient")
    for identity in taken:
        row_number = first.get((identity.site_id, identity.hospital_record_number))
        row = next((r for r in rows if r.number == row_number), None)
        if row is None or row.get("subject_code") == identity.patient.subject_code:
            continue  # an update of the same patient
        message = _("Record number %(number)s is already registered at this site as %(code)s.")
        params = {"number": identity.hospital_record_number, "code": identity.patient.subject_code}
        issues.append(
            Issue(
                row_number,
                "hospital_record_number",
                identity.hospital_record_number,
                message % params,
            )
        )
    return issues


# --- one row ----------------------------------------------------------------------------------


@dataclass
class _Context:
    user: AbstractBaseUser | None
    file_name: str
    run: ImportRun
    waiver_reference: str
    today: date


def _birth_date(row: ParsedRow) -> tuple[date, bool]:
    """The date of birth, or (no date of birth in the file) the latest date giving the age at
    enrollment, flagged as estimated."""
    born = row.get("date_of_birth")
    if born:
        return born, False
    enrolled, age = row.get("enrollment_date"), row.get("age")
    try:
        return enrolled.replace(year=enrolled.year - age), True
    except ValueError:  # 29 February
        return enrolled.replace(year=enrolled.year - age, day=28), True


def _baseline_values(row: ParsedRow) -> dict:
    return {
        "assessed_on": row.get("baseline_date"),
        "ecog": int(row.get("ecog")),
        "height_cm": row.get("height_cm"),
        "weight_kg": row.get("weight_kg"),
        "primary_site": row.get("primary_site"),
        "primary_size_mm": row.get("primary_size_mm"),
        "liver_met_count": row.get("liver_mets_count"),
        "liver_met_largest_mm": row.get("liver_mets_largest_mm"),
        "liver_met_distribution": row.get("liver_mets_distribution"),
        "ajcc_t": row.get("ajcc_t"),
        "ajcc_n": row.get("ajcc_n"),
        "ca19_9_u_ml": row.get("ca19_9_baseline"),
        "cea_ng_ml": row.get("cea_baseline"),
    }


def _operation_complete(row: ParsedRow) -> bool:
    if not row.has_all(OPERATION_COLUMNS):
        return False
    procedures = set(row.get("liver_procedures") or ())
    if procedures & {"wedge", "segmentectomy", "hemihepatectomy"} and not row.get(
        "liver_lesions_resected"
    ):
        return False
    return not ("ablation" in procedures and not row.get("liver_lesions_ablated"))


def _operation_values(row: ParsedRow) -> dict:
    procedures = set(row.get("liver_procedures") or ())
    return {
        "operated_on": row.get("surgery_date"),
        "pancreatic_procedure": row.get("pancreatic_procedure"),
        **{flag: code in procedures for code, flag in LIVER_FLAGS.items()},
        "liver_lesions_resected": row.get("liver_lesions_resected") or 0,
        "liver_lesions_ablated": row.get("liver_lesions_ablated") or 0,
        "approach": row.get("approach"),
        "operative_minutes": row.get("operative_minutes"),
        "blood_loss_ml": row.get("blood_loss_ml"),
        "mdt_decision": None,
        "mdt_document_missing": True,
        "mdt_missing_reason": MDT_MISSING_REASON,
    }


def _recurrence_values(row: ParsedRow, operation: Operation | None) -> dict | None:
    """The recurrence CRF of the row, or None when the row cannot give one: its columns are
    incomplete, or a resection dated before it is in the file but not as an operation CRF."""
    if not row.has_all(RECURRENCE_COLUMNS):
        return None
    detected = row.get("recurrence_date")
    surgery = row.get("surgery_date")
    after_resection = surgery is not None and surgery < detected
    if after_resection and operation is None:
        return None
    sites = set(row.get("recurrence_sites"))
    return {
        "detected_on": detected,
        "kind": Recurrence.Kind.RECURRENCE if after_resection else Recurrence.Kind.PROGRESSION,
        **{name: name.removeprefix("site_") in sites for name in Recurrence.SITE_FIELDS},
        "site_other_detail": row.get("recurrence_site_other", ""),
        "detected_by": row.get("recurrence_detected_by"),
    }


def _abstract_values(row: ParsedRow, *, born: date, estimated: bool, placeholder: bool) -> dict:
    values: dict = {}
    for column, name in ABSTRACT_FIELDS.items():
        value = row.get(column)
        model_field = RetrospectiveAbstract._meta.get_field(name)
        if isinstance(value, tuple):
            value = ";".join(value)
        if column == "ecog" and value is not None:
            value = int(value)
        if value is None and model_field.get_internal_type() in ("CharField", "TextField"):
            value = ""
        values[name] = value
    values["age_years"] = eligibility.age_on(born, row.get("enrollment_date"))
    values["date_of_birth_estimated"] = estimated
    values["identity_placeholder"] = placeholder
    values["unknown_columns"] = sorted(row.unknown)
    return values


def _identity_values(row: ParsedRow, born: date) -> dict:
    return {
        "full_name": row.get("name") or IDENTITY_PLACEHOLDER_NAME,
        "hospital_record_number": row.get("hospital_record_number") or row.get("subject_code"),
        "date_of_birth": born,
    }


def _screening_values(row: ParsedRow, ctx: "_Context", estimated: bool) -> dict:
    notes = "Imported from %s, row %d." % (ctx.file_name, row.number)
    if estimated:
        notes += " Date of birth estimated from the age at enrollment."
    if not row.get("pathological_confirmation"):
        notes += " Confirmation method not abstracted: histology assumed."
    return {
        "screened_on": row.get("enrollment_date"),
        "confirmation": row.get("pathological_confirmation") or Screening.Confirmation.HISTOLOGY,
        "notes": notes,
    }


def _new_patient(
    row: ParsedRow, site: Site, born: date, screening_values: dict
) -> tuple[Patient, Screening]:
    """The unsaved patient and screening of a new row; the patient's status is the one the
    screening checklist gives before consent (screening or screen failure)."""
    patient = Patient(site=site, sex=row.get("sex"), subject_code=row.get("subject_code"))
    screening = Screening(
        intended_cohort=Cohort.RETROSPECTIVE,
        is_pdac=True,
        synchronous_liver_metastases=True,
        prior_systemic_therapy=False,
        **screening_values,
    )
    screening.age_at_screening = eligibility.age_on(born, row.get("enrollment_date"))
    failed = eligibility.failures(
        screening_facts(screening=screening, cohort=Cohort.RETROSPECTIVE, consent=None),
        ignore=frozenset({eligibility.Criterion.CONSENT}),
    )
    patient.status = Patient.Status.SCREEN_FAILED if failed else Patient.Status.SCREENING
    return patient, screening


def _new_consent(row: ParsedRow, ctx: "_Context", patient: Patient) -> Consent:
    return Consent(
        patient=patient,
        basis=Consent.Basis.WAIVER,
        consented_on=row.get("enrollment_date"),
        waiver_reference=row.get("waiver_reference") or ctx.waiver_reference,
        study_consent=True,
        biobank_consent=False,
    )


def _new_enrollment(row: ParsedRow, patient: Patient) -> Enrollment:
    return Enrollment(
        patient=patient,
        enrolled_on=row.get("enrollment_date"),
        cohort=Cohort.RETROSPECTIVE,
        diagnosed_on=row.get("diagnosis_date"),
    )


def _contact_values(row: ParsedRow, ctx: "_Context") -> dict:
    """The follow-up contact of the last contact date: it reports the death when it comes
    after the date of death (the family's call)."""
    died = row.get("death_date")
    reports_death = died is not None and row.get("last_contact_date") > died
    return {
        "contacted_on": row.get("last_contact_date"),
        "mode": FollowUpContact.Mode.RECORDS,
        "reached": True,
        "vital_status": FollowUpContact.VitalStatus.DEAD
        if reports_death
        else FollowUpContact.VitalStatus.ALIVE,
        "notes": "Last contact abstracted from the chart (%s, row %d)."
        % (ctx.file_name, row.number),
    }


def _death_values(row: ParsedRow) -> dict:
    cause = row.get("death_cause")
    return {
        "died_on": row.get("death_date"),
        "cause": cause or Death.Cause.UNKNOWN,
        "cause_detail": row.get("death_cause_detail", ""),
        "source": row.get("death_source") or Death.Source.HOSPITAL,
        "notes": "" if cause else "Cause of death not abstracted (retrospective import).",
    }


def _abstract_record_values(
    row: ParsedRow, ctx: "_Context", *, born: date, estimated: bool, placeholder: bool
) -> dict:
    return {
        "import_run": ctx.run,
        "source_file": ctx.file_name[:255],
        "source_row": row.number,
        **_abstract_values(row, born=born, estimated=estimated, placeholder=placeholder),
    }


def _set_change_reason(instance, reason: str) -> None:
    """simple-history's update_change_reason for the services that take no reason
    (patient_enroll, line_start), keeping the audit chain whole: the record's latest history row
    gets `reason`, and its hash is computed again, chained to the row before it."""
    rows = list(instance.history.order_by("-history_id")[:2])
    row = rows[0]
    row.history_change_reason = reason
    values = {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}
    row.row_hash = row_hash_of(type(row), values, rows[1].row_hash if len(rows) > 1 else "")
    row.save(update_fields=["history_change_reason", "row_hash"])


def _assign(instance, values: dict) -> None:
    for name, value in values.items():
        setattr(instance, name, value)


def _write_row(row: ParsedRow, *, site: Site, patient: Patient | None, ctx: _Context) -> bool:
    """Create (or, `patient` given, update) one patient from `row`. True when created.

    Raises _RowFailed with the row's issues; the caller rolls back the row's savepoint."""
    user, today = ctx.user, ctx.today
    reason = audit_reason(ctx.file_name, row.number)
    enrolled = row.get("enrollment_date")
    born, estimated = _birth_date(row)
    placeholder = not (row.get("name") and row.get("hospital_record_number"))
    abstract = getattr(patient, "retrospective_abstract", None) if patient else None
    if patient is not None:
        enrollment = Enrollment.objects.active().filter(patient=patient).first()
        if enrollment is None or enrollment.enrolled_on != enrolled:
            message = _(
                "The enrollment date of %(code)s cannot change by re-import (stored: %(on)s): "
                "correct it on the enrollment form."
            )
            on = enrollment.enrolled_on if enrollment else None
            raise _RowFailed(
                [
                    Issue(
                        row.number,
                        "enrollment_date",
                        row.raw.get("enrollment_date", ""),
                        message % {"code": patient.subject_code, "on": on},
                    )
                ]
            )

    # Identity (PHI only here) and screening.
    identity_values = _identity_values(row, born)
    screening_values = _screening_values(row, ctx, estimated)
    identity_map = IDENTITY_MAP
    if patient is None:
        patient, screening = _new_patient(row, site, born, screening_values)
        _step(lambda: clinical_save(patient, user=user, reason=reason), row, {}, "subject_code")
        identity = PatientIdentity(patient=patient, site=site, **identity_values)
        _step(lambda: clinical_save(identity, user=user, reason=reason), row, identity_map, "name")
        screening.patient = patient
        _step(
            lambda: clinical_save(screening, user=user, reason=reason, complete=True),
            row,
            SCREENING_MAP,
            "enrollment_date",
        )
        consent = _new_consent(row, ctx, patient)
        _step(
            lambda: consent_save(consent=consent, user=user, reason=reason, today=today),
            row,
            CONSENT_MAP,
            "waiver_reference",
        )
        enrollment = _new_enrollment(row, patient)
        _step(
            lambda: patient_enroll(enrollment=enrollment, user=user, today=today),
            row,
            ENROLLMENT_MAP,
            "enrollment_date",
        )
        _set_change_reason(enrollment, reason)
        created = True
    else:
        created = False
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        if patient.sex != row.get("sex"):
            patient.sex = row.get("sex")
            _step(lambda: clinical_save(patient, user=user, reason=reason), row, {}, "sex")
        identity = patient.identity
        screening = patient.screening
        _assign(identity, identity_values)
        _assign(screening, screening_values)
        _step(
            lambda: screening_update(
                screening=screening,
                identity=identity,
                user=user,
                expected_version=screening.version,
                identity_version=identity.version,
                reason=reason,
                today=today,
            ),
            row,
            {**identity_map, "screened_on": "enrollment_date"},
            "enrollment_date",
        )
        if enrollment.diagnosed_on != row.get("diagnosis_date"):
            enrollment.diagnosed_on = row.get("diagnosis_date")
            _step(
                lambda: enrollment_update(
                    enrollment=enrollment,
                    user=user,
                    expected_version=enrollment.version,
                    reason=reason,
                    today=today,
                ),
                row,
                {"diagnosed_on": "diagnosis_date"},
                "diagnosis_date",
            )

    # Baseline, first-line regimen, operation: only from complete columns.
    if row.has_all(BASELINE_COLUMNS):
        baseline = Baseline.objects.active().filter(patient=patient).first()
        edit = baseline is not None
        baseline = baseline or Baseline(patient=patient)
        _assign(baseline, _baseline_values(row))
        _step(
            lambda: baseline_save(
                baseline=baseline,
                user=user,
                expected_version=baseline.version if edit else None,
                reason=reason,
                today=today,
            ),
            row,
            _BASELINE_MAP,
            "baseline_date",
        )
    if row.has_all(LINE_COLUMNS) and row.get("regimen") in NAMED_REGIMENS:
        line = RegimenLine.objects.active().filter(patient=patient, line_number=1).first()
        line_map = LINE_MAP
        if line is None:
            line = RegimenLine(
                patient=patient,
                regimen=row.get("regimen"),
                started_on=row.get("first_cycle_date"),
            )
            _step(lambda: line_start(line=line, user=user, today=today), row, line_map, "regimen")
            _set_change_reason(line, reason)
        else:
            line.regimen, line.started_on = row.get("regimen"), row.get("first_cycle_date")
            _step(
                lambda: line_update(
                    line=line,
                    user=user,
                    expected_version=line.version,
                    reason=reason,
                    today=today,
                ),
                row,
                line_map,
                "regimen",
            )
    operation = Operation.objects.active().filter(patient=patient).first()
    if _operation_complete(row):
        edit = operation is not None
        operation = operation or Operation(patient=patient)
        _assign(operation, _operation_values(row))
        _step(
            lambda: operation_save(
                operation=operation,
                user=user,
                expected_version=operation.version if edit else None,
                reason=reason,
                today=today,
            ),
            row,
            _OPERATION_MAP,
            "surgery_date",
        )

    # Follow-up: the recurrence, the last contact, the death.
    recurrence_values = _recurrence_values(row, operation)
    if recurrence_values is not None:
        recurrence = None
        if abstract is not None and abstract.recurrence_on:
            recurrence = (
                Recurrence.objects.active()
                .filter(patient=patient, detected_on=abstract.recurrence_on)
                .first()
            )
        edit = recurrence is not None
        recurrence = recurrence or Recurrence(patient=patient)
        _assign(recurrence, recurrence_values)
        _step(
            lambda: recurrence_save(
                recurrence=recurrence,
                user=user,
                expected_version=recurrence.version if edit else None,
                reason=reason,
                today=today,
            ),
            row,
            _RECURRENCE_MAP,
            "recurrence_date",
        )
    died = row.get("death_date")
    contact = None
    if abstract is not None:
        contact = (
            FollowUpContact.objects.active()
            .filter(
                patient=patient,
                contacted_on=abstract.last_contact_on,
                mode=FollowUpContact.Mode.RECORDS,
            )
            .first()
        )
    edit = contact is not None
    contact = contact or FollowUpContact(patient=patient)
    _assign(contact, _contact_values(row, ctx))
    death = Death.objects.active().filter(patient=patient).first()
    if died is None and death is not None:
        message = _(
            "A death is recorded for %(code)s (%(on)s): void it on the death form before "
            "importing the patient as alive."
        )
        raise _RowFailed(
            [
                Issue(
                    row.number,
                    "vital_status",
                    row.raw.get("vital_status", ""),
                    message % {"code": patient.subject_code, "on": death.died_on},
                )
            ]
        )
    if death is not None:
        # An update: the recorded death bounds the contact, so it moves first.
        _save_death(row, patient, death, ctx, reason)
    _step(
        lambda: contact_save(
            contact=contact,
            user=user,
            expected_version=contact.version if edit else None,
            reason=reason,
            today=today,
        ),
        row,
        CONTACT_MAP,
        "last_contact_date",
    )
    if died is not None and death is None:
        _save_death(row, patient, None, ctx, reason)

    # The abstract: every abstracted value, typed.
    edit = abstract is not None
    abstract = abstract or RetrospectiveAbstract(patient=patient)
    _assign(
        abstract,
        _abstract_record_values(row, ctx, born=born, estimated=estimated, placeholder=placeholder),
    )
    _step(
        lambda: clinical_save(
            abstract,
            user=user,
            expected_version=abstract.version if edit else None,
            reason=reason,
        ),
        row,
        {v: k for k, v in ABSTRACT_FIELDS.items()},
        "subject_code",
    )
    return created


def _save_death(
    row: ParsedRow, patient: Patient, death: Death | None, ctx: _Context, reason: str
) -> None:
    edit = death is not None
    death = death or Death(patient=patient)
    _assign(death, _death_values(row))
    _step(
        lambda: death_save(
            death=death,
            user=ctx.user,
            expected_version=death.version if edit else None,
            reason=reason,
            today=ctx.today,
        ),
        row,
        DEATH_MAP,
        "death_date",
    )


def _raise_subject_numbers(imported: dict[int, list[str]]) -> None:
    """Subject numbers only grow: after importing CJFH-0150, the site's next code is at least
    CJFH-0151 (patients.services.subject_code_next)."""
    for site_id, codes in imported.items():
        highest = max(int(code.rsplit("-", 1)[1]) for code in codes)
        locked = Site.objects.select_for_update().get(pk=site_id)
        if highest > locked.last_subject_number:
            locked.last_subject_number = highest
            locked.save(update_fields=["last_subject_number"])


# --- the whole file ---------------------------------------------------------------------------


def import_file(
    *,
    content: bytes,
    file_name: str,
    user: AbstractBaseUser | None,
    site: Site | None = None,
    dry_run: bool = False,
    update: bool = False,
    waiver_reference: str = "",
    today: date | None = None,
    bulk: bool = True,
) -> ImportResult:
    """Import a retrospective-cohort file (CSV or XLSX, the template of
    docs/import-template.md), all or nothing.

    `site`: every row's site (subject codes must carry its code); None takes the site from each
    subject code's prefix. With `user`, only sites the user works at are accepted. Existing
    subject codes are refused unless `update` (then the import's patients are updated, with
    history). `dry_run` runs every write and rolls it back. Returns the result with the logged
    ImportRun; `result.issues` lists every problem (row, column, value, message) and is empty
    exactly when the file was (or, dry run, would be) imported. Refused while the study is
    locked. New patients go through the bulk path (exchange.bulk) unless `bulk` is False;
    updates of existing ones always go through the clinical apps' services, row by row.
    """
    started = time.monotonic()
    today = today or timezone.localdate()
    file_name = file_name.replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    run = ImportRun.objects.create(
        user=user,
        file_name=file_name[:255],
        sha256=hashlib.sha256(content).hexdigest(),
        site=site,
        dry_run=dry_run,
        update=update,
        status=ImportRun.Status.REJECTED,
    )
    result = ImportResult(run=run)
    try:
        header, table = parsing.read_table(content, file_name)
    except FileUnreadable as error:
        result.issues.append(Issue(None, "", file_name, str(error)))
        return _finish(result, started)
    result.rows = len(table)
    result.issues.extend(parsing.check_header(header))
    if len(table) > parsing.MAX_ROWS:
        message = _("%(rows)s rows: import at most %(max)s rows per file.")
        result.issues.append(
            Issue(None, "", "", message % {"rows": len(table), "max": parsing.MAX_ROWS})
        )
    if not table:
        result.issues.append(Issue(None, "", "", _("The file has no patient rows.")))
    if result.issues:
        return _finish(result, started)

    rows: list[ParsedRow] = []
    bad: set[int] = set()
    for number, cells in table:
        row, issues = parsing.parse_row(number, header, cells)
        issues += parsing.check_row(row, today=today)
        if not (row.get("waiver_reference") or waiver_reference):
            issues.append(
                Issue(
                    number,
                    "waiver_reference",
                    "",
                    _(
                        "Give the ethics committee's reference for the consent waiver "
                        "(column waiver_reference, or for the whole file --waiver-reference)."
                    ),
                )
            )
        rows.append(row)
        if issues:
            bad.add(number)
            result.issues.extend(issues)
    sites, issues = _resolve_sites(rows, site=site, user=user)
    existing, more = _check_codes(rows, update=update)
    for issue in [*issues, *more, *_check_record_numbers(rows, sites)]:
        bad.add(issue.row)
        result.issues.append(issue)

    ctx = _Context(
        user=user, file_name=file_name, run=run, waiver_reference=waiver_reference, today=today
    )
    writable = [r for r in rows if r.number not in bad]
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().filter(locked_at__isnull=False).first()
            if locked is not None:
                message = _(
                    "The study database is locked (%(when)s): nothing can be imported until a "
                    "data manager unlocks it."
                )
                when = timezone.localtime(locked.locked_at).strftime("%Y-%m-%d")
                result.issues.append(Issue(None, "", "", message % {"when": when}))
                raise _Rollback
            with refreshes_deferred():
                imported: dict[int, list[str]] = {}
                per_row = writable
                if bulk:
                    from exchange import bulk as bulk_path  # it builds on this module

                    new = [r for r in writable if r.get("subject_code") not in existing]
                    per_row = [r for r in writable if r.get("subject_code") in existing]
                    if not _import_new(bulk_path, new, sites, ctx, result, imported):
                        per_row = writable  # the database refused a row: the per-row report
                for row in per_row:
                    _import_row(row, sites[row.number], existing, ctx, result, imported)
                _raise_subject_numbers(imported)
                if result.issues:
                    raise _Rollback
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    result.issues.sort(key=lambda i: (i.row or 0, i.column))
    return _finish(result, started)


def _import_row(
    row: ParsedRow,
    site: Site,
    existing: dict[str, Patient],
    ctx: _Context,
    result: ImportResult,
    imported: dict[int, list[str]],
) -> None:
    """The per-row path: one row through the clinical apps' services, in a savepoint."""
    try:
        with transaction.atomic():
            created = _write_row(
                row, site=site, patient=existing.get(row.get("subject_code")), ctx=ctx
            )
    except _RowFailed as failure:
        result.issues.extend(failure.issues)
        return
    if created:
        result.created += 1
        imported.setdefault(site.pk, []).append(row.get("subject_code"))
    else:
        result.updated += 1


def _import_new(
    bulk_path,
    rows: list[ParsedRow],
    sites: dict[int, Site],
    ctx: _Context,
    result: ImportResult,
    imported: dict[int, list[str]],
) -> bool:
    """The bulk path for the rows of new patients (exchange.bulk): checked in memory, then
    inserted in bulk when the file has no issue at all (otherwise it is rolled back anyway).
    False when the database refused the insert (a unique record number or a constraint the
    checks in memory cannot see): the savepoint is rolled back and the caller runs the rows
    through the per-row path, whose report names the row."""
    plans, issues = bulk_path.plan_rows(rows, sites=sites, ctx=ctx)
    result.issues.extend(issues)
    if result.issues or not plans:
        return True
    try:
        with transaction.atomic():
            bulk_path.insert(plans)
    except IntegrityError:
        return False
    for plan in plans:
        result.created += 1
        imported.setdefault(plan.patient.site_id, []).append(plan.patient.subject_code)
        # The calendar (visits' batch refresher) of every new patient, once, at the end of
        # refreshes_deferred. The other sources of the per-row path (consent, operation)
        # only feed refreshers of records a new patient cannot have yet (specimens, cycles).
        patient_records_changed(patient=plan.patient, user=ctx.user, source="patients.enrollment")
    return True


def _finish(result: ImportResult, started: float) -> ImportResult:
    run = result.run
    if result.issues:
        run.status = ImportRun.Status.REJECTED
        result.created = result.updated = 0
    elif run.dry_run:
        run.status = ImportRun.Status.VALID
    else:
        run.status = ImportRun.Status.IMPORTED
    run.rows = result.rows
    run.created_patients, run.updated_patients = result.created, result.updated
    run.report = [issue.as_dict() for issue in result.issues]
    run.seconds = round(time.monotonic() - started, 3)
    run.save()
    return result
