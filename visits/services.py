"""Writes of the visits app: the materialized protocol calendar and the visits closed as missed.

`facts_for` reads a batch of patients' records into `visits.protocol.Facts` (one query per
source table, whatever the number of patients); `calendar_refresh` turns them into expected
visits and writes only the difference to `ExpectedVisit`. The rows are forecasts derived
from the records, so a visit the protocol no longer expects is deleted, not voided. What a
person decides about a visit — closing it as missed — is an audited `VisitClosure`
(`visit_close` / `visit_reopen`).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation
from followup.models import FollowUpContact, LostToFollowUp, TreatmentEnd
from patients.models import Baseline, Enrollment, Patient, Screening, Withdrawal
from surgery import postop
from surgery.models import MdtDecision, Operation
from treatments.models import ChemoCycle
from trial.services import clinical_save, clinical_void
from trial.validation import fmt
from visits import protocol
from visits.models import ExpectedVisit, VisitClosure, VisitStatus
from visits.selectors import visit_label

CHUNK = 500  # patients per batch: SQLite allows 999 parameters per query
WRITE_BATCH = 1000  # rows per INSERT / UPDATE (the backend may lower it)
# The stored columns a refresh compares and rewrites.
COMPARED = (
    "site_id",
    "kind",
    "number",
    "target_on",
    "window_start",
    "window_end",
    "forms",
    "status",
    "done_on",
)
UPDATED = [name.removesuffix("_id") for name in COMPARED] + ["refreshed_at"]


def _chunks(ids: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# --- facts ----------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A patient's facts while they are being collected (Facts itself is frozen)."""

    today: date
    site_id: int
    died_on: date | None
    values: dict = field(default_factory=dict)
    cycles: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    mdts: list = field(default_factory=list)
    panels: list = field(default_factory=list)  # (postop_day or None, sampled_on)
    contacts: list = field(default_factory=list)
    closed: set = field(default_factory=set)

    def facts(self) -> protocol.Facts:
        operated_on = self.values.get("operated_on")
        postop_panels = []
        if operated_on is not None:
            for day, sampled_on in self.panels:
                snap = postop.snap((sampled_on - operated_on).days, day=day)
                postop_panels.append((snap.day, sampled_on))
        return protocol.Facts(
            today=self.today,
            died_on=self.died_on,
            cycles=tuple(self.cycles),
            evaluations=tuple(self.evaluations),
            mdts=tuple(self.mdts),
            postop_panels=tuple(postop_panels),
            followup_contacts=tuple(sorted(self.contacts)),
            closed=frozenset(self.closed),
            **self.values,
        )


def _earliest(draft: _Draft, name: str, value: date) -> None:
    current = draft.values.get(name)
    if current is None or value < current:
        draft.values[name] = value


def _collect(ids: list[int], today: date) -> dict[int, _Draft]:
    """The drafts of one chunk of patients: one query per source table."""
    drafts = {
        pk: _Draft(today=today, site_id=site_id, died_on=died_on)
        for pk, site_id, died_on in Patient.objects.filter(pk__in=ids).values_list(
            "pk", "site_id", "died_on"
        )
    }
    ids = list(drafts)
    if not ids:
        return drafts

    # One-per-patient forms: the date of each (the earliest, should two be active).
    single = (
        (Screening, "screened_on", "screened_on"),
        (Enrollment, "enrolled_on", "enrolled_on"),
        (Baseline, "assessed_on", "baseline_on"),
        (Operation, "operated_on", "operated_on"),
        (TreatmentEnd, "ended_on", "treatment_ended_on"),
        (Withdrawal, "withdrawn_on", "withdrawn_on"),
        (LostToFollowUp, "declared_on", "lost_on"),
    )
    for model, column, name in single:
        rows = model.objects.active().filter(patient_id__in=ids).values_list("patient_id", column)
        for patient_id, value in rows:
            _earliest(drafts[patient_id], name, value)

    cycles = (
        ChemoCycle.objects.active()
        .filter(patient_id__in=ids)
        .values_list("patient_id", "given_on", "adjuvant", "line__cycle_length_days")
    )
    for patient_id, given_on, adjuvant, cycle_days in cycles:
        drafts[patient_id].cycles.append(
            protocol.Cycle(given_on=given_on, cycle_days=cycle_days, adjuvant=adjuvant)
        )

    evaluations = (
        ResponseEvaluation.objects.active()
        .filter(patient_id__in=ids)
        .values_list(
            "patient_id", "evaluated_on", "cycles_completed", "recist_response", "decision"
        )
    )
    decision = ResponseEvaluation.Decision
    for patient_id, evaluated_on, cycles_completed, response, chosen in evaluations:
        drafts[patient_id].evaluations.append(
            protocol.Evaluation(
                evaluated_on=evaluated_on,
                cycles_completed=cycles_completed,
                progression=response == ImagingStudy.Response.PD,
                refer_mdt=chosen == decision.REFER_MDT,
                supportive_care=chosen == decision.BEST_SUPPORTIVE_CARE,
            )
        )

    mdts = (
        MdtDecision.objects.active()
        .filter(patient_id__in=ids)
        .values_list("patient_id", "decided_on", "decision")
    )
    for patient_id, decided_on, chosen in mdts:
        drafts[patient_id].mdts.append(
            protocol.Mdt(
                decided_on=decided_on,
                surgery=chosen == MdtDecision.Decision.RADICAL_SURGERY,
                supportive_care=chosen == MdtDecision.Decision.BEST_SUPPORTIVE_CARE,
            )
        )

    panels = (
        LabPanel.objects.active()
        .filter(patient_id__in=ids, context=LabPanel.Context.POSTOP)
        .values_list("patient_id", "postop_day", "sampled_on")
    )
    for patient_id, day, sampled_on in panels:
        drafts[patient_id].panels.append((day, sampled_on))

    contacts = (
        FollowUpContact.objects.active()
        .filter(patient_id__in=ids, reached=True)
        .values_list("patient_id", "contacted_on")
    )
    for patient_id, contacted_on in contacts:
        drafts[patient_id].contacts.append(contacted_on)

    closures = (
        VisitClosure.objects.active().filter(patient_id__in=ids).values_list("patient_id", "code")
    )
    for patient_id, code in closures:
        drafts[patient_id].closed.add(code)
    return drafts


def facts_for(*, patient_ids: Iterable[int], today: date) -> dict[int, protocol.Facts]:
    """The protocol facts of each patient in `patient_ids`, keyed by patient id.

    Reads only active (not voided) records, one query per source table per 500 patients,
    never a query per patient: screening, enrollment, baseline, chemotherapy cycles (with
    their line's cycle length), response evaluations (RECIST PD = progression; decisions to
    refer to the MDT or for best supportive care), MDT decisions, the index operation,
    postoperative lab panels (snapped to their protocol day), follow-up contacts that reached
    the patient or family, the end of treatment, the date of death (Patient.died_on), the
    withdrawal, the loss to follow-up and the visits closed as missed. Ids of patients that do
    not exist are left out.
    """
    facts: dict[int, protocol.Facts] = {}
    for chunk in _chunks(patient_ids):
        facts.update({pk: draft.facts() for pk, draft in _collect(chunk, today).items()})
    return facts


# --- the calendar ---------------------------------------------------------------------------


@dataclass
class RefreshStats:
    patients: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: "RefreshStats") -> None:
        self.patients += other.patients
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


def _values(site_id: int, visit: protocol.Expected) -> tuple:
    """The COMPARED columns of a visit, as stored."""
    return (
        site_id,
        str(visit.kind),
        visit.number,
        visit.target_on,
        visit.window_start,
        visit.window_end,
        ",".join(visit.forms),
        str(visit.status),
        visit.done_on,
    )


@transaction.atomic
def _refresh_chunk(ids: list[int], today: date) -> RefreshStats:
    # Rows are compared as tuples and model instances made only for what is written: most
    # visits of a calendar do not change from one refresh to the next.
    drafts = _collect(ids, today)
    wanted: dict[tuple[int, str], tuple] = {}
    for patient_id, draft in drafts.items():
        facts = draft.facts()
        if facts.enrolled_on is None:
            continue  # the calendar starts with the enrollment; none without one
        for visit in protocol.expected_visits(facts):
            wanted[(patient_id, visit.code)] = _values(draft.site_id, visit)
    now = timezone.now()
    to_update, to_delete = [], []
    stored = ExpectedVisit.objects.filter(patient_id__in=ids).values_list(
        "pk", "patient_id", "code", *COMPARED
    )
    for pk, patient_id, code, *values in stored:
        new = wanted.pop((patient_id, code), None)
        if new is None:
            to_delete.append(pk)
        elif tuple(values) != new:
            to_update.append(
                ExpectedVisit(pk=pk, refreshed_at=now, **dict(zip(COMPARED, new, strict=True)))
            )
    to_create = [
        ExpectedVisit(
            patient_id=patient_id,
            code=code,
            refreshed_at=now,
            **dict(zip(COMPARED, values, strict=True)),
        )
        for (patient_id, code), values in wanted.items()
    ]
    if to_delete:
        ExpectedVisit.objects.filter(pk__in=to_delete).delete()
    if to_update:
        ExpectedVisit.objects.bulk_update(to_update, UPDATED, batch_size=WRITE_BATCH)
    if to_create:
        # A refresh of the same patient committed meanwhile wins; the next refresh corrects.
        ExpectedVisit.objects.bulk_create(to_create, batch_size=WRITE_BATCH, ignore_conflicts=True)
    return RefreshStats(
        patients=len(ids), created=len(to_create), updated=len(to_update), deleted=len(to_delete)
    )


def calendar_refresh(
    *, patient_ids: Iterable[int] | None = None, today: date | None = None
) -> RefreshStats:
    """Recompute the expected visits of `patient_ids` (every enrolled patient when None, plus
    any patient that still has stored visits) on `today` (default: the local date) and write
    the difference: new visits are inserted, changed ones updated, and visits the protocol no
    longer expects (a voided record, a patient no longer enrolled) deleted.

    Works in batches of 500 patients: a fixed number of reads per batch and one INSERT,
    UPDATE or DELETE per 1,000 changed rows (fewer on SQLite's parameter limit), never a
    query per patient. Idempotent; returns the counts of patients, created, updated and
    deleted rows.
    """
    today = today or timezone.localdate()
    if patient_ids is None:
        ids = set(Enrollment.objects.active().values_list("patient_id", flat=True))
        ids.update(ExpectedVisit.objects.values_list("patient_id", flat=True).distinct())
    else:
        ids = set(patient_ids)
    stats = RefreshStats()
    for chunk in _chunks(ids):
        stats.add(_refresh_chunk(chunk, today))
    return stats


# --- closing a visit as missed --------------------------------------------------------------


def _visit_name(row: ExpectedVisit) -> str:
    return "%s (%s)" % (visit_label(row.kind, row.number), row.code)


@transaction.atomic
def visit_close(
    *,
    patient: Patient,
    code: str,
    reason: str,
    user: AbstractBaseUser,
    today: date | None = None,
) -> VisitClosure:
    """Close the patient's visit `code` as missed, with the reason (a coordinator's decision
    that the data will not come; audited, and undone by `visit_reopen`).

    The patient's calendar is refreshed first, so the visit is judged on the current records.
    Refused (ValidationError): no reason (keyed "reason"); a visit the protocol does not
    expect of the patient; a visit done, already missed or no longer applicable; a visit whose
    window has not opened yet. Returns the closure; the calendar shows the visit as missed.
    """
    today = today or timezone.localdate()
    list(Patient.objects.select_for_update().filter(pk=patient.pk))  # one close at a time
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason the visit was missed.")})
    calendar_refresh(patient_ids=[patient.pk], today=today)
    row = ExpectedVisit.objects.filter(patient_id=patient.pk, code=code).first()
    if row is None:
        raise ValidationError(
            _("The protocol expects no visit %(code)s of %(patient)s.")
            % {"code": code, "patient": patient.subject_code}
        )
    name = _visit_name(row)
    if row.status == VisitStatus.DONE:
        raise ValidationError(
            _("%(visit)s was done on %(on)s: it cannot be closed as missed.")
            % {"visit": name, "on": fmt(row.done_on)}
        )
    if row.status == VisitStatus.MISSED:
        raise ValidationError(_("%(visit)s is already closed as missed.") % {"visit": name})
    if row.status == VisitStatus.NOT_APPLICABLE:
        raise ValidationError(
            _("%(visit)s no longer applies to this patient: there is nothing to close.")
            % {"visit": name}
        )
    if today < row.window_start:
        raise ValidationError(
            _("%(visit)s is not due yet: its window opens on %(on)s.")
            % {"visit": name, "on": fmt(row.window_start)}
        )
    closure = clinical_save(
        VisitClosure(patient=patient, code=code, reason=reason), user=user, reason=reason
    )
    calendar_refresh(patient_ids=[patient.pk], today=today)
    return closure


@transaction.atomic
def visit_reopen(
    *,
    closure: VisitClosure,
    user: AbstractBaseUser,
    reason: str,
    expected_version: int | None = None,
    today: date | None = None,
) -> VisitClosure:
    """Reopen a visit closed as missed: the closure is voided with `reason` (ValidationError
    without one, or when it is already voided; StaleRecordError when it changed since
    `expected_version`) and the visit is due or overdue again on the patient's calendar."""
    voided = clinical_void(closure, user=user, reason=reason, expected_version=expected_version)
    calendar_refresh(patient_ids=[closure.patient_id], today=today)
    return voided
