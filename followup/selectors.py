"""Reads of the follow-up app for pages, the patient panel, the protocol calendar and analytics.

The last date a patient is known to be alive is read from one table of sources (`SOURCES`):
`last_known_alive` (one patient, with the record it comes from) and
`last_known_alive_by_patient` (many patients, dates only) both walk it, so they cannot
disagree. Biobank specimens are not a source: biobank does not stand below follow-up in the
app layering, and every specimen is collected at the operation, which is a source already.
"""

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from django.db import models
from django.db.models import F, Max, Q, Value
from django.utils.translation import gettext_lazy as _

from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients.models import Baseline, Consent, Enrollment, Patient, Screening, Withdrawal
from surgery.models import Complication, Discharge, MdtDecision, Operation
from treatments.models import AdverseEvent, ChemoCycle

# Contacts that reached nobody say nothing about the patient; neither does one that reported
# the death.
_ALIVE_CONTACT = Q(reached=True, vital_status=FollowUpContact.VitalStatus.ALIVE)
# A record that hangs off the operation counts while the operation itself stands.
_OPERATION_ACTIVE = Q(operation__voided_at__isnull=True)


@dataclass(frozen=True)
class Source:
    """One dated column that shows the patient alive on that date."""

    key: str
    model: type[models.Model]
    date_field: str
    label: str
    patient_field: str = "patient"
    condition: Q = field(default_factory=Q)

    def rows(self, **patient_filter) -> models.QuerySet:
        """Active rows with a date, filtered by `patient_filter` (keys relative to the patient
        link: {"": patient} or {"__in": ids})."""
        lookup = {f"{self.patient_field}{k}": v for k, v in patient_filter.items()}
        return self.model.objects.filter(
            self.condition,
            voided_at__isnull=True,
            **{f"{self.date_field}__isnull": False},
            **lookup,
        )


SOURCES: tuple[Source, ...] = (
    Source("screening", Screening, "screened_on", _("screening")),
    Source("consent", Consent, "consented_on", _("consent")),
    Source("enrollment", Enrollment, "enrolled_on", _("enrollment")),
    Source("baseline", Baseline, "assessed_on", _("baseline")),
    Source("cycle", ChemoCycle, "given_on", _("chemotherapy cycle")),
    Source("adverse_event", AdverseEvent, "onset_on", _("adverse event onset")),
    Source("lab_panel", LabPanel, "sampled_on", _("lab panel")),
    Source("imaging", ImagingStudy, "performed_on", _("imaging study")),
    Source("evaluation", ResponseEvaluation, "evaluated_on", _("response evaluation")),
    Source("mdt", MdtDecision, "decided_on", _("MDT decision")),
    Source("operation", Operation, "operated_on", _("operation")),
    Source(
        "complication",
        Complication,
        "onset_on",
        _("complication onset"),
        "operation__patient",
        _OPERATION_ACTIVE,
    ),
    Source(
        "discharge",
        Discharge,
        "discharged_on",
        _("discharge"),
        "operation__patient",
        _OPERATION_ACTIVE,
    ),
    Source(
        "readmission",
        Discharge,
        "readmitted_on",
        _("readmission"),
        "operation__patient",
        _OPERATION_ACTIVE,
    ),
    Source(
        "contact",
        FollowUpContact,
        "contacted_on",
        _("follow-up contact"),
        "patient",
        _ALIVE_CONTACT,
    ),
    Source("recurrence", Recurrence, "detected_on", _("recurrence / progression")),
    Source("treatment_end", TreatmentEnd, "ended_on", _("end of treatment")),
    Source("withdrawal", Withdrawal, "withdrawn_on", _("withdrawal")),
)
SOURCES_BY_KEY = {s.key: s for s in SOURCES}


@dataclass(frozen=True)
class KnownAlive:
    """The latest date the patient is known alive, and which record shows it."""

    on: date | None
    source: str  # the record's label, e.g. "chemotherapy cycle" ("" when nothing is recorded)
    key: str = ""  # the Source key
    record_id: int | None = None

    @cached_property
    def record(self) -> models.Model | None:
        """The record itself (one query, on first use)."""
        if self.record_id is None:
            return None
        return SOURCES_BY_KEY[self.key].model.objects.get(pk=self.record_id)

    def __str__(self) -> str:
        return f"{self.source} {self.on}" if self.on else "—"


def last_known_alive(*, patient: Patient) -> KnownAlive:
    """The latest date among every dated record of `patient` that shows them alive (voided
    rows excluded; the death itself is not a source), with the record's label. One query (a
    UNION over `SOURCES`); `KnownAlive.record` loads the record on demand. Ties go to the
    later source in `SOURCES`."""
    parts = [
        source.rows(**{"": patient})
        .order_by()
        .annotate(
            alive_on=F(source.date_field),
            alive_key=Value(source.key, output_field=models.CharField()),
            alive_rank=Value(rank, output_field=models.IntegerField()),
        )
        .values_list("alive_on", "alive_key", "alive_rank", "pk")
        for rank, source in enumerate(SOURCES)
    ]
    union = parts[0].union(*parts[1:], all=True).order_by("-alive_on", "-alive_rank")
    top = next(iter(union[:1]), None)
    if top is None:
        return KnownAlive(on=None, source="")
    on, key, _rank, pk = top
    if isinstance(on, str):  # SQLite returns a bare string from a UNION of dates
        on = date.fromisoformat(on)
    return KnownAlive(on=on, source=str(SOURCES_BY_KEY[key].label), key=key, record_id=pk)


def last_known_alive_by_patient(*, patient_ids) -> dict[int, date]:
    """{patient id: last date known alive} for `patient_ids`, from the same `SOURCES` as
    `last_known_alive`; patients without any dated record are left out. One aggregate query
    per source, whatever the number of patients.

    `patient_ids` is a list of ids, or a queryset of patient pks (`.values("pk")`), which is
    used as a subquery: for a large cohort that is much cheaper than thousands of parameters
    (and has no SQLite parameter limit)."""
    ids = patient_ids if isinstance(patient_ids, models.QuerySet) else list(patient_ids)
    latest: dict[int, date] = {}
    if not isinstance(ids, models.QuerySet) and not ids:
        return latest
    for source in SOURCES:
        rows = (
            source.rows(**{"__in": ids})
            .order_by()
            .values(source.patient_field)
            .annotate(alive_on=Max(source.date_field))
            .values_list(source.patient_field, "alive_on")
        )
        for patient_id, on in rows:
            if patient_id not in latest or on > latest[patient_id]:
                latest[patient_id] = on
    return latest


# --- the follow-up of one patient -----------------------------------------------------------

RECENT_CONTACTS = 5
LOSS_ATTEMPTS = 3  # contacts that reached nobody, in a row, before a patient may be declared lost


def failed_attempts_since_success(
    contacts: list[FollowUpContact], *, until: date | None = None
) -> tuple[list[FollowUpContact], date | None]:
    """The attempts that reached nobody after the last contact that reached the patient (or
    family), up to `until`, and that last successful contact's date (None when none).
    `contacts`: the patient's active contacts, in any order."""
    considered = [c for c in contacts if until is None or c.contacted_on <= until]
    reached = [c.contacted_on for c in considered if c.reached]
    last_success = max(reached) if reached else None
    failed = sorted(
        (
            c
            for c in considered
            if not c.reached and (last_success is None or c.contacted_on > last_success)
        ),
        key=lambda c: (c.contacted_on, c.pk or 0),
    )
    return failed, last_success


@dataclass
class FollowUpSummary:
    contacts: list[FollowUpContact]  # active, latest first
    recurrences: list[Recurrence]  # active, by date
    treatment_end: TreatmentEnd | None
    death: Death | None
    loss: LostToFollowUp | None
    known_alive: KnownAlive

    @property
    def recent_contacts(self) -> list[FollowUpContact]:
        return self.contacts[:RECENT_CONTACTS]

    @property
    def last_contact(self) -> FollowUpContact | None:
        return self.contacts[0] if self.contacts else None

    @property
    def death_reported(self) -> FollowUpContact | None:
        """The earliest contact that reported the death, while no death is recorded: the page
        asks for the death form then."""
        if self.death is not None:
            return None
        dead = [c for c in self.contacts if c.vital_status == FollowUpContact.VitalStatus.DEAD]
        return min(dead, key=lambda c: c.contacted_on) if dead else None

    @property
    def failed_attempts(self) -> list[FollowUpContact]:
        return failed_attempts_since_success(self.contacts)[0]

    @property
    def may_declare_lost(self) -> bool:
        """Enough failed attempts in a row to declare the patient lost (and not yet done)."""
        return (
            self.loss is None and self.death is None and len(self.failed_attempts) >= LOSS_ATTEMPTS
        )

    @property
    def first_recurrence(self) -> Recurrence | None:
        return self.recurrences[0] if self.recurrences else None


def followup_summary(*, patient: Patient) -> FollowUpSummary:
    """Everything the follow-up panel and page show of `patient`: contacts, recurrences, the
    end of treatment, death, loss to follow-up and the last date known alive.

    Four queries for a patient neither dead nor lost, at most six; never one per contact. The
    death and the loss are read only when the patient's status or date of death (kept by
    `patients.services.patient_vital_status_set`) says there may be one.
    """
    contacts = list(
        FollowUpContact.objects.active().filter(patient=patient).order_by("-contacted_on", "-id")
    )
    recurrences = list(
        Recurrence.objects.active().filter(patient=patient).order_by("detected_on", "id")
    )
    treatment_end = TreatmentEnd.objects.active().filter(patient=patient).first()
    death = loss = None
    if patient.died_on is not None or patient.status == Patient.Status.DECEASED:
        death = Death.objects.active().filter(patient=patient).first()
    if patient.status in (
        Patient.Status.LOST,
        Patient.Status.DECEASED,
        Patient.Status.WITHDRAWN,
    ):
        loss = LostToFollowUp.objects.active().filter(patient=patient).first()
    return FollowUpSummary(
        contacts=contacts,
        recurrences=recurrences,
        treatment_end=treatment_end,
        death=death,
        loss=loss,
        known_alive=last_known_alive(patient=patient),
    )


def contact_list(*, patient: Patient) -> list[FollowUpContact]:
    """Every follow-up contact of `patient` (voided ones too, to show struck through), latest
    first. One query."""
    return list(FollowUpContact.objects.filter(patient=patient).order_by("-contacted_on", "-id"))


def followup_history(*, patient: Patient) -> dict:
    """The follow-up page of `patient`: every record of each kind, voided ones included (to
    show struck through), with the summary. A fixed number of queries."""
    return {
        "summary": followup_summary(patient=patient),
        "contacts": contact_list(patient=patient),
        "recurrences": list(
            Recurrence.objects.filter(patient=patient)
            .select_related("contact")
            .order_by("detected_on", "id")
        ),
        "deaths": list(Death.objects.filter(patient=patient).order_by("died_on", "id")),
        "losses": list(
            LostToFollowUp.objects.filter(patient=patient).order_by("declared_on", "id")
        ),
        "treatment_ends": list(
            TreatmentEnd.objects.filter(patient=patient).order_by("ended_on", "id")
        ),
    }
