"""Demo follow-up: the end of treatment, monthly contacts, recurrence / progression, deaths and
a loss to follow-up or two, for the enrolled patients of the demo cohort.

Runs after surgery and biobank. For every enrolled patient who was not withdrawn and whose
treatment has stopped (no cycle for two cycle lengths and two weeks), the end of treatment is
recorded on the last treatment given (the last cycle, or the operation): after the adjuvant
cycles for resected patients, best supportive care or progression after the last evaluation,
otherwise a completed plan, toxicity or the patient's choice. Patients still on chemotherapy
have no follow-up yet (they are censored at their last visit).

Outcomes are drawn from exponential times with the medians of the conversion-surgery series
for synchronous liver metastases: resected patients recur at a median ~10 months after the
operation (liver, peritoneum and the pancreatic bed mostly) and die ~9 months after that;
unresected patients progress 1.5–4 months after treatment ends and die 2–5 months later, so
the cohort's median OS from enrollment is ~12–18 months, longer after resection. Deaths are
mostly from progression, some reported first by the family on the phone. Contacts are monthly
from the end of treatment until today or the death (phone mostly, ~10% attempts that reach
nobody and are retried within days); one or two patients stop answering: three failed
attempts, then the loss to follow-up.

Everything goes through the services (every rule and the audit trail apply) and draws from
`context.rng` only; a patient whose records a rule refuses is rolled back and skipped.
"""

import math
from collections import defaultdict
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction

from followup import services
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from followup.selectors import LOSS_ATTEMPTS, last_known_alive_by_patient
from patients.models import Patient
from surgery.models import Complication, MdtDecision, Operation
from treatments.models import ChemoCycle
from trial.demo import DemoContext

DAY = timedelta(days=1)
MONTH = 30 * DAY
LOST_PATIENTS = 2
LOST_SHARE = 0.2
FAILED_SHARE = 0.10
# Medians in days (exponential times).
RECURRENCE_AFTER_RESECTION = 210
DEATH_AFTER_RECURRENCE = 120
PROGRESSION_AFTER_END = {"bsc": 45, "progression": 60}
PROGRESSION_AFTER_END_DEFAULT = 120
DEATH_AFTER_PROGRESSION = {"bsc": 60}
DEATH_AFTER_PROGRESSION_DEFAULT = 150

RECURRENCE_SITES = {"site_liver": 0.55, "site_peritoneum": 0.25, "site_local": 0.3}
RECURRENCE_SITES |= {"site_lung": 0.1, "site_distant_nodes": 0.08}
PROGRESSION_SITES = {"site_liver": 0.75, "site_peritoneum": 0.3, "site_local": 0.2}
PROGRESSION_SITES |= {"site_lung": 0.1, "site_distant_nodes": 0.05}
THERAPIES = (
    "Gemcitabine + S-1",
    "mFOLFIRINOX (second line)",
    "Liposomal irinotecan + 5-FU/LV",
    "Stereotactic body radiotherapy",
    "Microwave ablation of a liver recurrence",
)


def _pick(rng, weighted: dict):
    roll, total = rng.random() * sum(weighted.values()), 0.0
    for value, weight in weighted.items():
        total += weight
        if roll <= total:
            return value
    return value


def _exp_days(rng, median: int, *, least: int) -> int:
    return max(least, round(rng.expovariate(math.log(2) / median)))


class _Cohort:
    """What the lower apps' demo data says about each patient, read in a few queries."""

    def __init__(self, ids: list[int]) -> None:
        self.last_cycle: dict[int, ChemoCycle] = {}
        for cycle in (
            ChemoCycle.objects.active()
            .filter(patient_id__in=ids)
            .select_related("line")
            .order_by("patient_id", "-given_on")
        ):
            self.last_cycle.setdefault(cycle.patient_id, cycle)
        self.operation = {
            o.patient_id: o for o in Operation.objects.active().filter(patient_id__in=ids)
        }
        self.postoperative_death = set(
            Complication.objects.active()
            .filter(operation__patient_id__in=ids, clavien_dindo="V")
            .values_list("operation__patient_id", flat=True)
        )
        self.bsc = set(
            MdtDecision.objects.active()
            .filter(patient_id__in=ids, decision=MdtDecision.Decision.BEST_SUPPORTIVE_CARE)
            .values_list("patient_id", flat=True)
        )
        self.alive = last_known_alive_by_patient(patient_ids=ids)


class _FollowUp:
    def __init__(self, context: DemoContext, patient: Patient, cohort: _Cohort, course) -> None:
        self.context, self.rng, self.patient = context, context.rng, patient
        self.today = context.today
        self.user = context.user_for(patient.site)
        self.cohort, self.course = cohort, course
        self.operation = cohort.operation.get(patient.pk)
        self.stats: dict[str, int] = defaultdict(int)

    # -- the end of treatment ---------------------------------------------------------------

    def _reason(self) -> tuple[str, str]:
        pk = self.patient.pk
        if pk in self.cohort.postoperative_death:
            return TreatmentEnd.Reason.OTHER, "Postoperative death"
        if self.operation is not None:
            return TreatmentEnd.Reason.COMPLETED, ""
        last = self.course.evaluations[-1] if self.course and self.course.evaluations else None
        if pk in self.cohort.bsc or (last is not None and last.decision == "bsc"):
            return TreatmentEnd.Reason.SUPPORTIVE_CARE, ""
        if last is not None and last.response == "PD":
            return TreatmentEnd.Reason.PROGRESSION, ""
        reason = _pick(
            self.rng,
            {
                TreatmentEnd.Reason.COMPLETED: 0.45,
                TreatmentEnd.Reason.TOXICITY: 0.25,
                TreatmentEnd.Reason.PATIENT_CHOICE: 0.2,
                TreatmentEnd.Reason.OTHER: 0.1,
            },
        )
        detail = "Treated at another hospital" if reason == TreatmentEnd.Reason.OTHER else ""
        return reason, detail

    def end_of_treatment(self) -> date | None:
        """Record the end of treatment when treatment has stopped; its date, or None."""
        cycle = self.cohort.last_cycle.get(self.patient.pk)
        operated_on = self.operation.operated_on if self.operation else None
        if cycle is None and operated_on is None:
            return None
        last = max(d for d in (cycle and cycle.given_on, operated_on) if d)
        length = (cycle.line.cycle_length_days if cycle else None) or 21
        stopped = self.patient.pk in self.cohort.postoperative_death
        if not stopped and last + (2 * length + 14) * DAY > self.today:
            return None  # still on treatment
        reason, detail = self._reason()
        services.treatment_end_save(
            treatment_end=TreatmentEnd(
                patient=self.patient, ended_on=last, reason=reason, reason_detail=detail
            ),
            user=self.user,
            today=self.today,
        )
        self.stats["treatment_end"] += 1
        return last

    # -- outcomes ---------------------------------------------------------------------------

    def outcome(self, ended_on: date, reason: str) -> tuple[date, date, str]:
        """(date of recurrence / progression, date of death, kind), possibly after today."""
        rng = self.rng
        if self.operation is not None:
            recurs_on = (
                self.operation.operated_on
                + _exp_days(rng, RECURRENCE_AFTER_RESECTION, least=60) * DAY
            )
            if recurs_on <= ended_on + 14 * DAY:
                recurs_on = ended_on + rng.randint(20, 60) * DAY
            dies_on = recurs_on + _exp_days(rng, DEATH_AFTER_RECURRENCE, least=30) * DAY
            return recurs_on, dies_on, Recurrence.Kind.RECURRENCE
        median = PROGRESSION_AFTER_END.get(reason, PROGRESSION_AFTER_END_DEFAULT)
        progresses_on = ended_on + _exp_days(rng, median, least=21) * DAY
        median = DEATH_AFTER_PROGRESSION.get(reason, DEATH_AFTER_PROGRESSION_DEFAULT)
        dies_on = progresses_on + _exp_days(rng, median, least=14) * DAY
        return progresses_on, dies_on, Recurrence.Kind.PROGRESSION

    def recurrence(self, on: date, kind: str, contact: FollowUpContact | None) -> None:
        rng = self.rng
        weights = RECURRENCE_SITES if kind == Recurrence.Kind.RECURRENCE else PROGRESSION_SITES
        sites = {name: rng.random() < share for name, share in weights.items()}
        if not any(sites.values()):
            sites[_pick(rng, weights)] = True
        services.recurrence_save(
            recurrence=Recurrence(
                patient=self.patient,
                contact=contact,
                detected_on=on,
                kind=kind,
                detected_by=_pick(rng, {"imaging": 0.8, "tumour_marker": 0.15, "clinical": 0.05}),
                **sites,
            ),
            user=self.user,
            today=self.today,
        )
        self.stats[str(kind)] += 1

    def contact(self, on: date, *, reached: bool = True, **fields) -> FollowUpContact:
        rng = self.rng
        if reached:
            values = {
                "mode": _pick(rng, {"phone": 0.55, "clinic": 0.35, "message": 0.1}),
                "vital_status": FollowUpContact.VitalStatus.ALIVE,
                "recurrence": False,
                **fields,
            }
        else:
            values = {
                "mode": _pick(rng, {"phone": 0.8, "message": 0.2}),
                "vital_status": FollowUpContact.VitalStatus.UNKNOWN,
                **fields,
            }
        contact = services.contact_save(
            contact=FollowUpContact(
                patient=self.patient, contacted_on=on, reached=reached, **values
            ),
            user=self.user,
            today=self.today,
        )
        self.stats["contact" if reached else "failed"] += 1
        return contact

    def declare_lost(self, on: date, stop: date) -> bool:
        """Three attempts that reach nobody from `on`, then the loss; False when there is no
        room for them before `stop`."""
        rng = self.rng
        days = [on + (index * rng.randint(7, 12)) * DAY for index in range(LOSS_ATTEMPTS)]
        declared_on = days[-1] + rng.randint(3, 10) * DAY
        if declared_on > stop:
            return False
        for day in days:
            self.contact(day, reached=False)
        services.lost_save(
            loss=LostToFollowUp(
                patient=self.patient,
                declared_on=declared_on,
                notes="Phone switched off; no answer to messages.",
            ),
            user=self.user,
            today=self.today,
        )
        self.stats["lost"] += 1
        return True

    def run(self, *, may_be_lost: bool) -> None:
        rng, today = self.rng, self.today
        ended_on = self.end_of_treatment()
        if ended_on is None:
            return
        if self.patient.pk in self.cohort.postoperative_death:
            died_on = max(ended_on, self.cohort.alive.get(self.patient.pk, ended_on))
            self.death(died_on, cause=Death.Cause.SURGICAL, source=Death.Source.HOSPITAL)
            return
        reason = TreatmentEnd.objects.active().get(patient=self.patient).reason
        recurs_on, dies_on, kind = self.outcome(ended_on, reason)
        floor = max(ended_on, self.cohort.alive.get(self.patient.pk, ended_on)) + DAY
        dies_on = max(dies_on, floor)
        stop = min(today, dies_on - DAY)
        lost_month = rng.randint(3, 8) if may_be_lost and rng.random() < LOST_SHARE else None
        on, month, recorded = ended_on + MONTH, 1, False
        ecog = rng.choice([0, 0, 1, 1, 2])
        therapy = ""
        while on <= stop:
            if month == lost_month and self.declare_lost(on, today):
                return
            if rng.random() < FAILED_SHARE:
                self.contact(on, reached=False)
                on += rng.randint(3, 10) * DAY
                if on > stop:
                    break
            found = not recorded and recurs_on <= on
            if found:
                ecog = min(3, ecog + 1)
                if rng.random() < 0.6:
                    therapy = rng.choice(THERAPIES)
            contact = self.contact(
                on,
                ecog=ecog,
                recurrence=found,
                subsequent_therapy=bool(therapy),
                subsequent_therapy_detail=therapy,
            )
            if found:
                self.recurrence(recurs_on, kind, contact)
                recorded = True
            on += (30 + rng.randint(-5, 5)) * DAY
            month += 1
        if not recorded and recurs_on < dies_on and recurs_on <= today:
            self.recurrence(recurs_on, kind, None)
        if dies_on <= today:
            cause = _pick(rng, {"progression": 0.85, "other": 0.05, "unknown": 0.1})
            if dies_on < recurs_on:
                cause = _pick(rng, {"treatment": 0.2, "other": 0.4, "unknown": 0.4})
            source = _pick(rng, {"hospital": 0.5, "family": 0.35, "certificate": 0.15})
            if source == "family":
                # The family tells on the next call, which reports the death.
                reported_on = dies_on + rng.randint(1, 14) * DAY
                if reported_on <= today:
                    self.contact(reported_on, vital_status="dead", recurrence=None)
            self.death(dies_on, cause=cause, source=source)

    def death(self, on: date, *, cause: str, source: str) -> None:
        detail = "Pulmonary embolism" if cause == Death.Cause.OTHER else ""
        services.death_save(
            death=Death(
                patient=self.patient, died_on=on, cause=cause, cause_detail=detail, source=source
            ),
            user=self.user,
            today=self.today,
        )
        self.stats["death"] += 1


def seed(context: DemoContext) -> None:
    """Follow-up for the patients enrolled by patients/demo.py (context.shared
    ["enrolled_patient_ids"]), with their courses from treatments/demo.py. Adds
    context.shared["followup"]: counts of what was recorded."""
    ids = list(context.shared.get("enrolled_patient_ids") or [])
    if not ids:
        return
    courses = context.shared.get("courses") or {}
    cohort = _Cohort(ids)
    patients = Patient.objects.filter(pk__in=ids).select_related("site", "enrollment", "withdrawal")
    totals: dict[str, int] = defaultdict(int)
    for patient in sorted(patients, key=lambda p: p.pk):
        if getattr(patient, "withdrawal", None) is not None:
            continue  # no form may be dated after a withdrawal
        case = _FollowUp(context, patient, cohort, courses.get(patient.pk))
        try:
            with transaction.atomic():
                case.run(may_be_lost=totals["lost"] < LOST_PATIENTS)
        except ValidationError:
            totals["skipped"] += 1  # a rule refused this patient's follow-up: leave it out
            continue
        for key, count in case.stats.items():
            totals[key] += count
    context.shared["followup"] = dict(totals)
