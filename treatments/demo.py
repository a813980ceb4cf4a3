"""Demo chemotherapy: regimen lines, cycles with doses, dose changes and adverse events.

It also plans each patient's course of response evaluations (`Course`), which
`assessments/demo.py` turns into matching imaging, labs and evaluations: the plan lives here
because a progression at an evaluation changes the regimen line that follows it.

Everything is written through the services (every rule and the audit trail apply) and drawn
from `context.rng` only, so the same seed and `today` give the same data. Proportions follow
the trials and cohorts the regimens come from (MPACT, PRODIGE 4, NAPOLI-3): mostly grade 1–2
toxicities, about a fifth grade 3, neutropenia and fatigue throughout, neuropathy with
oxaliplatin and nab-paclitaxel, diarrhoea with irinotecan; first-evaluation responses about
CR 3%, PR 30%, SD 42%, PD 25%.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from patients.models import Patient
from patients.services import bsa_mosteller
from treatments import ctcae_terms, regimens, services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, Regimen, RegimenLine
from trial.demo import DemoContext


@dataclass
class PlannedEvaluation:
    on: date  # evaluation date; imaging and labs are dated on it or up to 3 days before
    after_cycle: int  # cycles completed before it, counted across lines
    response: str  # "CR" | "PR" | "SD" | "PD" (RECIST 1.1), what the imaging must show
    decision: str  # assessments ResponseEvaluation.Decision value


@dataclass
class Course:
    patient_id: int
    first_cycle_on: date
    cycle_dates: list[date] = field(default_factory=list)
    evaluations: list[PlannedEvaluation] = field(default_factory=list)


REGIMEN_MIX = {
    Regimen.AG: 0.40,
    Regimen.MFOLFIRINOX: 0.30,
    Regimen.FOLFIRINOX: 0.10,
    Regimen.NALIRIFOX: 0.15,
    Regimen.OTHER: 0.05,
}
# After progression: the other backbone (gemcitabine ↔ fluoropyrimidine), as in practice.
SECOND_LINE = {
    Regimen.AG: {Regimen.MFOLFIRINOX: 0.75, Regimen.NALIRIFOX: 0.25},
    Regimen.MFOLFIRINOX: {Regimen.AG: 1.0},
    Regimen.FOLFIRINOX: {Regimen.AG: 1.0},
    Regimen.NALIRIFOX: {Regimen.AG: 1.0},
    Regimen.OTHER: {Regimen.MFOLFIRINOX: 1.0},
}
# "Other" regimens: name, cycle length, drugs (drug, mg/m² per administration, administrations).
OTHER_REGIMENS = [
    ("Gemcitabine + S-1", 21, [("gemcitabine", "1000", 2), ("s1", "80", 14)]),
    ("Gemcitabine monotherapy", 28, [("gemcitabine", "1000", 3)]),
]
GCSF = {Regimen.FOLFIRINOX: 0.35, Regimen.MFOLFIRINOX: 0.2, Regimen.NALIRIFOX: 0.1}
FIRST_RESPONSE = {"CR": 0.03, "PR": 0.30, "SD": 0.42, "PD": 0.25}
LATER_RESPONSE = {
    "CR": {"CR": 0.8, "PD": 0.2},
    "PR": {"PR": 0.65, "CR": 0.05, "SD": 0.1, "PD": 0.2},
    "SD": {"SD": 0.55, "PR": 0.2, "PD": 0.25},
    "PD": {"SD": 0.5, "PR": 0.2, "PD": 0.3},  # on the next line, against its new baseline
}
_FU = {"fluorouracil_bolus", "fluorouracil_infusion", "leucovorin"}
# Adverse events by backbone: (CTCAE term, weight).
AE_TERMS = {
    "gem": {
        "Neutrophil count decreased": 0.25,
        "Fatigue": 0.15,
        "Peripheral sensory neuropathy": 0.14,
        "Alopecia": 0.08,
        "Anemia": 0.1,
        "Platelet count decreased": 0.08,
        "Rash maculo-papular": 0.04,
        "Diarrhea": 0.05,
        "Nausea": 0.06,
        "Edema limbs": 0.03,
        "Fever": 0.02,
    },
    "fu": {
        "Neutrophil count decreased": 0.22,
        "Diarrhea": 0.18,
        "Nausea": 0.12,
        "Fatigue": 0.12,
        "Peripheral sensory neuropathy": 0.12,
        "Vomiting": 0.06,
        "Mucositis oral": 0.05,
        "Anemia": 0.05,
        "Platelet count decreased": 0.04,
        "Febrile neutropenia": 0.03,
        "Anorexia": 0.03,
    },
}
RELATED = {"Biliary tract infection": "unlikely", "Thromboembolic event": "possible"}
SERIOUS_TERMS = {"Febrile neutropenia", "Biliary tract infection", "Thromboembolic event"}
REDUCTION_REASONS = {
    "Neutrophil count decreased": "Grade 3 neutropenia in the previous cycle",
    "Diarrhea": "Grade 3 diarrhoea in the previous cycle",
    "Peripheral sensory neuropathy": "Peripheral neuropathy",
    "Fatigue": "Fatigue",
    "Platelet count decreased": "Thrombocytopenia",
}
MAX_CYCLES = 24  # a safety stop; the plan ends most courses before
MAX_LINES = 3


def _pick(rng, weighted: dict):
    roll, total = rng.random() * sum(weighted.values()), 0.0
    for value, weight in weighted.items():
        total += weight
        if roll <= total:
            return value
    return value


def _backbone(regimen: str, drugs: list[str]) -> str:
    if regimen == Regimen.AG or (regimen == Regimen.OTHER and "s1" not in drugs):
        return "gem"
    return "fu"


@dataclass
class _Plan:
    """The standard dose grid of a line: (drug, mg/m², administrations)."""

    regimen: str
    name: str
    cycle_length: int
    drugs: list[tuple[str, Decimal, int]]


def _line_plan(rng, regimen: str) -> _Plan:
    spec = regimens.regimen_spec(regimen)
    if spec:
        drugs = [(d.drug, d.mg_m2, d.administrations) for d in spec.doses]
        return _Plan(regimen, "", spec.cycle_length_days, drugs)
    name, length, drugs = rng.choice(OTHER_REGIMENS)
    return _Plan(regimen, name, length, [(d, Decimal(mg), n) for d, mg, n in drugs])


class _PatientCourse:
    """One patient's treatment, cycle by cycle, written through the services."""

    def __init__(self, context: DemoContext, patient: Patient):
        self.context, self.rng, self.patient = context, context.rng, patient
        self.user = context.user_for(patient.site)
        self.today = context.today
        withdrawal = getattr(patient, "withdrawal", None)
        self.withdrawn_on = withdrawal.withdrawn_on if withdrawal else None
        # Cycles stop at the last medication before a withdrawal, else at today.
        self.last_cycle_by = (
            (withdrawal.last_medication_on or withdrawal.withdrawn_on) if withdrawal else self.today
        )
        # Events and evaluations must not be dated after a withdrawal.
        self.event_by = min(self.today, self.withdrawn_on) if withdrawal else self.today
        self.baseline = patient.baseline
        self.weight = Decimal(self.baseline.weight_kg)
        self.course: Course | None = None
        self.pending_reduction = ""
        self.pending_delay = ""
        self.had_alopecia = False

    # -- lines and cycles -------------------------------------------------------------------

    def start_line(self, plan: _Plan, started_on: date, number: int) -> RegimenLine:
        line = RegimenLine(
            patient=self.patient,
            regimen=plan.regimen,
            regimen_other=plan.name,
            cycle_length_days=plan.cycle_length if plan.regimen == Regimen.OTHER else None,
            started_on=started_on,
            change_reason=RegimenLine.ChangeReason.PROGRESSION if number > 1 else "",
        )
        return services.line_start(line=line, user=self.user, today=self.today)

    def give_cycle(
        self, line: RegimenLine, plan: _Plan, given_on: date, number: int, delay: str
    ) -> ChemoCycle:
        rng = self.rng
        weight = None
        if rng.random() < 0.5:
            self.weight = max(
                Decimal("38"), self.weight + Decimal(str(round(rng.gauss(-0.3, 0.8), 1)))
            )
            weight = self.weight
        bsa = bsa_mosteller(height_cm=self.baseline.height_cm, weight_kg=self.weight)
        reason = self.pending_reduction
        if not reason and number >= 3 and rng.random() < 0.15:
            reason = rng.choice(list(REDUCTION_REASONS.values()))
        targets = self._reduced_drugs(plan) if reason else set()
        skip_last_day = bool(targets) and plan.regimen == Regimen.AG and rng.random() < 0.4
        doses = []
        for drug, mg_m2, administrations in plan.drugs:
            factor = Decimal("0.8") if drug in targets and not skip_last_day else Decimal(1)
            given_days = administrations
            if drug in targets and skip_last_day:
                given_days = administrations - 1
            doses.append(
                CycleDose(
                    drug=drug,
                    planned_mg_m2=mg_m2,
                    given_mg=regimens.dose_for_bsa(mg_m2 * factor, bsa),
                    planned_days=administrations,
                    given_days=given_days,
                )
            )
        cycle = ChemoCycle(
            line=line,
            patient=self.patient,
            given_on=given_on,
            weight_kg=weight,
            delay_days=7 if delay else 0,
            delay_reason=delay,
            dose_reduction_reason=reason if targets else "",
            gcsf=rng.random() < GCSF.get(plan.regimen, 0.0),
        )
        self.pending_reduction = ""
        return services.cycle_record(cycle=cycle, doses=doses, user=self.user, today=self.today)

    def _reduced_drugs(self, plan: _Plan) -> set[str]:
        drugs = [d for d, _mg, _n in plan.drugs if d not in _FU]
        if not drugs:
            drugs = [d for d, _mg, _n in plan.drugs]
        count = 1 if len(drugs) == 1 or self.rng.random() < 0.6 else 2
        return set(self.rng.sample(drugs, count))

    # -- adverse events ---------------------------------------------------------------------

    def events_after(self, line: RegimenLine, plan: _Plan, cycle: ChemoCycle) -> None:
        rng = self.rng
        terms = dict(AE_TERMS[_backbone(plan.regimen, [d for d, _m, _n in plan.drugs])])
        if self.baseline.biliary_stent:
            terms["Biliary tract infection"] = 0.1
        terms["Thromboembolic event"] = 0.03
        count = 0 if rng.random() < 0.62 else (1 if rng.random() < 0.75 else 2)
        for _index in range(count):
            term = _pick(rng, terms)
            if term == "Alopecia" and self.had_alopecia:
                continue
            self.had_alopecia |= term == "Alopecia"
            low, high = ctcae_terms.term_get(term).grades
            grade = min(high, max(low, _pick(rng, {1: 0.45, 2: 0.33, 3: 0.2, 4: 0.02})))
            grade = min(grade, 4)  # no deaths in the demo yet (no death records)
            onset = cycle.given_on + timedelta(days=rng.randint(2, 12))
            if onset > self.event_by:
                continue
            lasting = rng.randint(5, 28) if grade >= 3 else rng.randint(3, 21)
            resolved = onset + timedelta(days=lasting)
            persistent = term == "Peripheral sensory neuropathy" and rng.random() < 0.5
            if persistent or resolved > self.event_by:
                resolved, outcome = None, rng.choice(["recovering", "not_recovered"])
            else:
                outcome = "sequelae" if term == "Peripheral sensory neuropathy" else "recovered"
            action = rng.choice(["dose_reduced", "delayed"]) if grade >= 3 else "none"
            if action == "dose_reduced":
                self.pending_reduction = REDUCTION_REASONS.get(
                    term, "Grade %s %s" % (grade, term.lower())
                )
            elif action == "delayed":
                self.pending_delay = "Grade %s %s" % (grade, term.lower())
            services.adverse_event_save(
                event=AdverseEvent(
                    patient=self.patient,
                    line=line,
                    term=term,
                    grade=grade,
                    onset_on=onset,
                    resolved_on=resolved,
                    serious=grade == 4 or (grade >= 3 and term in SERIOUS_TERMS),
                    attribution=RELATED.get(term, rng.choice(["possible", "probable", "definite"])),
                    action_taken=action,
                    outcome=outcome,
                ),
                user=self.user,
                today=self.today,
            )

    # -- the course -------------------------------------------------------------------------

    def decide(self, response: str, sequence: int, lines: int, referred: bool) -> str:
        rng = self.rng
        if response == "PD":
            if sequence == 1:
                return "adjust"
            return "bsc" if lines >= MAX_LINES or rng.random() < 0.5 else "adjust"
        if sequence <= 2 and not referred:
            chance = {"CR": 0.9, "PR": 0.75, "SD": 0.2}[response]
            if rng.random() < chance:
                return "refer_mdt"
        return "continue"

    def run(self) -> Course | None:
        rng, patient = self.rng, self.patient
        enrolled_on = patient.enrollment.enrolled_on
        started_on = enrolled_on + timedelta(days=rng.randint(3, 14))
        if started_on > self.last_cycle_by:
            return None
        plan = _line_plan(rng, _pick(rng, REGIMEN_MIX))
        line_number = 1
        line = self.start_line(plan, started_on, line_number)
        first_eval_after = _pick(rng, {4: 0.7, 5: 0.2, 6: 0.1})
        next_eval_after, interval = first_eval_after, 4
        course = Course(patient_id=patient.pk, first_cycle_on=started_on)
        given_on, delay, on_line, previous = started_on, "", 0, None
        while given_on <= self.last_cycle_by and len(course.cycle_dates) < MAX_CYCLES:
            on_line += 1
            cycle = self.give_cycle(line, plan, given_on, on_line, delay)
            course.cycle_dates.append(given_on)
            self.events_after(line, plan, cycle)
            next_on = given_on + timedelta(days=plan.cycle_length)
            delay = self.pending_delay or ("Patient's request" if rng.random() < 0.06 else "")
            self.pending_delay = ""
            if delay:
                next_on += timedelta(days=7)
            if len(course.cycle_dates) == next_eval_after:
                evaluated_on = given_on + timedelta(days=rng.randint(1, 7))
                if evaluated_on > self.event_by or (
                    self.withdrawn_on and evaluated_on >= self.withdrawn_on
                ):
                    break
                sequence = len(course.evaluations) + 1
                weights = FIRST_RESPONSE if previous is None else LATER_RESPONSE[previous]
                if sequence >= 3 and previous != "CR":
                    # Resistance grows with time on treatment.
                    weights = {**weights, "PD": weights.get("PD", 0) + 0.12 * (sequence - 2)}
                response = _pick(rng, weights)
                if response in ("PR", "SD") and any(e.response == "CR" for e in course.evaluations):
                    # After a CR the nadir is ~0: RECIST allows only CR or PD from then on.
                    response = "PD"
                referred = any(e.decision == "refer_mdt" for e in course.evaluations)
                decision = self.decide(response, sequence, line_number, referred)
                course.evaluations.append(
                    PlannedEvaluation(evaluated_on, len(course.cycle_dates), response, decision)
                )
                previous = response
                if response == "PD" and sequence == 1:
                    interval = 2  # protocol: every 2 cycles after progression at the first
                next_eval_after = len(course.cycle_dates) + interval
                if decision == "bsc" or (decision == "refer_mdt" and rng.random() < 0.5):
                    break  # best supportive care, or off chemotherapy towards the operation
                if decision == "adjust":
                    line_number += 1
                    plan = _line_plan(rng, _pick(rng, SECOND_LINE[plan.regimen]))
                    next_on = evaluated_on + timedelta(days=rng.randint(1, 7))
                    if next_on > self.last_cycle_by:
                        break
                    line = self.start_line(plan, next_on, line_number)
                    delay, on_line = "", 0
            given_on = next_on
        return course


def seed(context: DemoContext) -> None:
    """Chemotherapy for every patient enrolled by patients/demo.py; fills
    context.shared["courses"]: {patient_id: Course} for assessments/demo.py."""
    courses = context.shared.setdefault("courses", {})
    ids = context.shared.get("enrolled_patient_ids", [])
    patients = (
        Patient.objects.filter(pk__in=ids)
        .select_related("site", "enrollment", "baseline", "withdrawal")
        .order_by("pk")
    )
    by_id = {patient.pk: patient for patient in patients}
    for patient_id in ids:
        patient = by_id.get(patient_id)
        if patient is None or getattr(patient, "baseline", None) is None:
            continue
        withdrawal = getattr(patient, "withdrawal", None)
        if withdrawal is not None and withdrawal.no_medication_given:
            continue
        course = _PatientCourse(context, patient).run()
        if course is not None:
            courses[patient_id] = course
