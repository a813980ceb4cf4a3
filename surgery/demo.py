"""Demo surgery: MDT decisions after a referral, the index operation, pathology,
complications, discharge, postoperative labs on days 1/3/5/7/30 and adjuvant cycles.

For every course (treatments/demo.py) whose evaluation referred the patient to the MDT, an MDT
meets 7–21 days later; about 65% decide radical surgery. The operation follows 14–35 days
later (after the last cycle given), when that is not after today or a withdrawal. Proportions
follow the series of conversion surgery for synchronous liver metastases: R0 ~70%, R1 ~25%;
complications in ~45% (mostly Clavien-Dindo I–II), POPF the commonest; discharge 7–21 days
after the operation. Everything goes through the services and draws from `context.rng` only.
"""

from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError

from assessments.models import ResponseEvaluation
from patients.models import Patient
from patients.services import bsa_mosteller
from surgery import services
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from treatments import regimens
from treatments import services as treatment_services
from treatments.models import ChemoCycle, CycleDose
from trial.demo import DemoContext

DAY = timedelta(days=1)
RADICAL_SHARE = 0.65
COMPLICATION_SHARE = 0.45
ADJUVANT_SHARE = 0.60


def _pick(rng, weighted: dict):
    roll, total = rng.random() * sum(weighted.values()), 0.0
    for value, weight in weighted.items():
        total += weight
        if roll <= total:
            return value
    return value


class _Case:
    def __init__(self, context: DemoContext, patient: Patient, evaluation: ResponseEvaluation):
        self.context, self.rng, self.patient = context, context.rng, patient
        self.evaluation = evaluation
        self.investigator = context.users["investigator"]
        self.user = context.user_for(patient.site)
        self.today = context.today
        withdrawal = getattr(patient, "withdrawal", None)
        self.last_day = min(self.today, withdrawal.withdrawn_on) if withdrawal else self.today
        self.withdrawn = withdrawal is not None

    def run(self) -> None:
        rng = self.rng
        decided_on = self.evaluation.evaluated_on + rng.randint(7, 21) * DAY
        if decided_on > self.last_day:
            return
        radical = rng.random() < RADICAL_SHARE
        baseline = getattr(self.patient, "baseline", None)
        site = baseline.primary_site if baseline else "head"
        head = site in ("head", "uncinate", "neck")
        procedure = "tp" if rng.random() < 0.05 else ("pd" if head else "dps")
        if head and procedure == "pd" and rng.random() < 0.3:
            procedure = "pppd"
        liver_count = baseline.liver_met_count if baseline and baseline.liver_met_count else 1
        decision = services.mdt_decision_save(
            decision=MdtDecision(
                patient=self.patient,
                decided_on=decided_on,
                attended_surgeon=True,
                attended_oncologist=True,
                attended_radiologist=True,
                attended_pathologist=rng.random() < 0.7,
                decision=(
                    MdtDecision.Decision.RADICAL_SURGERY
                    if radical
                    else MdtDecision.Decision.CONTINUE_SYSTEMIC
                ),
                rationale=(
                    "Response of the primary and the liver metastases; resectable."
                    if radical
                    else "Not yet resectable: continue systemic therapy and re-evaluate."
                ),
                planned_pancreatic=procedure if radical else "",
                planned_liver_wedge=radical and liver_count <= 2,
                planned_liver_segmentectomy=radical and liver_count > 2,
            ),
            evaluations=[self.evaluation],
            user=self.investigator,
            today=self.today,
        )
        if radical:
            self.operate(decision, procedure, liver_count)

    def operate(self, decision: MdtDecision, procedure: str, liver_count: int) -> None:
        rng = self.rng
        last_cycle = (
            ChemoCycle.objects.active()
            .filter(patient=self.patient)
            .order_by("-given_on")
            .values_list("given_on", flat=True)
            .first()
        )
        operated_on = decision.decided_on + rng.randint(14, 35) * DAY
        if last_cycle and operated_on < last_cycle + 14 * DAY:
            operated_on = last_cycle + rng.randint(14, 28) * DAY
        if operated_on > self.last_day or self.withdrawn:
            return
        resected = min(liver_count, rng.randint(1, 3))
        ablated = rng.randint(1, 2) if rng.random() < 0.25 else 0
        approach = _pick(rng, {"open": 0.7, "laparoscopic": 0.2, "robotic": 0.1})
        operation = services.operation_save(
            operation=Operation(
                patient=self.patient,
                mdt_decision=decision,
                operated_on=operated_on,
                pancreatic_procedure=procedure,
                liver_wedge=resected <= 2,
                liver_segmentectomy=resected > 2,
                liver_lesions_resected=resected,
                liver_ablation=bool(ablated),
                liver_lesions_ablated=ablated,
                vascular_resection=_pick(rng, {"none": 0.8, "vein": 0.17, "artery": 0.03}),
                approach=approach,
                converted=approach != "open" and rng.random() < 0.1,
                operative_minutes=rng.randint(240, 540),
                blood_loss_ml=rng.randint(150, 1200),
                transfusion_units=0 if rng.random() < 0.75 else rng.randint(1, 4),
                findings="No peritoneal metastases.",
            ),
            user=self.user,
            today=self.today,
        )
        self.pathology(operation)
        popf, died = self.complications(operation)
        self.labs(operation, popf)
        if died:
            return
        self.discharge(operation)
        if rng.random() < ADJUVANT_SHARE:
            self.adjuvant(operation)

    def pathology(self, operation: Operation) -> None:
        rng = self.rng
        reported_on = operation.operated_on + rng.randint(5, 12) * DAY
        if reported_on > self.last_day:
            return
        examined = rng.randint(12, 30)
        positive = 0 if rng.random() < 0.45 else min(examined, rng.choice([1, 2, 3, 4, 6, 9]))
        ypt = _pick(rng, {"ypT0": 0.04, "ypT1c": 0.15, "ypT2": 0.5, "ypT3": 0.28, "ypT4": 0.03})
        margin = _pick(rng, {"R0": 0.7, "R1": 0.25, "R2": 0.05})
        services.pathology_save(
            pathology=Pathology(
                operation=operation,
                reported_on=reported_on,
                ypt=ypt,
                ypn=Pathology.expected_ypn(positive),
                margin_pancreas=margin,
                margin_liver=_pick(rng, {"R0": 0.8, "R1": 0.2}),
                nodes_examined=examined,
                nodes_positive=positive,
                regression_grade=0 if ypt == "ypT0" else rng.randint(1, 3),
                differentiation="na" if ypt == "ypT0" else rng.choice(["well", "moderate", "poor"]),
                perineural_invasion=ypt != "ypT0" and rng.random() < 0.6,
                lymphovascular_invasion=ypt != "ypT0" and rng.random() < 0.35,
            ),
            user=self.user,
            today=self.today,
        )

    def complications(self, operation: Operation) -> tuple[str, bool]:
        """Record 0–2 complications; returns the POPF grade ("" if none) and whether the
        patient died (Clavien-Dindo V)."""
        rng = self.rng
        popf, died = "", False
        if rng.random() >= COMPLICATION_SHARE:
            return popf, died
        kinds = {"popf": 0.35, "dge": 0.2, "pph": 0.08, "ssi": 0.15, "abscess": 0.08}
        kinds |= {"pneumonia": 0.06, "bile_leak": 0.04, "liver_failure": 0.04}
        for _index in range(1 if rng.random() < 0.75 else 2):
            kind = _pick(rng, kinds)
            onset_on = operation.operated_on + rng.randint(1, 9) * DAY
            if onset_on > self.last_day or (kind == "popf" and popf):
                continue
            grade, amylase = "", None
            cd = _pick(rng, {"I": 0.4, "II": 0.35, "IIIa": 0.13, "IIIb": 0.07, "IVa": 0.03})
            if rng.random() < 0.015:
                cd = "V"
            if kind == "popf":
                grade = _pick(rng, {"BL": 0.45, "B": 0.45, "C": 0.1})
                amylase = rng.randint(800, 9000)
                if grade == "B" and cd == "I":
                    cd = "II"
                if grade == "C" and cd in ("I", "II", "IIIa"):
                    cd = "IIIb"
                popf = grade
            elif kind in ("dge", "pph"):
                grade = _pick(rng, {"A": 0.5, "B": 0.4, "C": 0.1})
            services.complication_save(
                complication=Complication(
                    operation=operation,
                    onset_on=onset_on,
                    kind=kind,
                    clavien_dindo=cd,
                    isgps_grade=grade,
                    drain_amylase_u_l=amylase,
                ),
                user=self.user,
                today=self.today,
            )
            died = died or cd == "V"
        return popf, died

    def labs(self, operation: Operation, popf: str) -> None:
        rng = self.rng
        for day in (1, 3, 5, 7, 30):
            sampled_on = operation.operated_on + (day + rng.choice([0, 0, 0, 1, -1])) * DAY
            if day == 1:
                sampled_on = operation.operated_on + DAY
            if sampled_on > self.last_day:
                return
            recovering = day >= 7
            values = {
                "wbc": Decimal(
                    str(round(rng.uniform(11, 17) if day <= 3 else rng.uniform(5, 10), 1))
                ),
                "hemoglobin": Decimal(
                    rng.randint(88, 112) if not recovering else rng.randint(100, 128)
                ),
                "platelets": Decimal(rng.randint(140, 320)),
                "alt": Decimal(rng.randint(40, 180) if day <= 3 else rng.randint(15, 60)),
                "tbil": Decimal(str(round(rng.uniform(12, 35), 1))),
                "albumin": Decimal(str(round(rng.uniform(28, 36), 1))),
                "creatinine": Decimal(rng.randint(50, 95)),
                "amylase": Decimal(
                    rng.randint(150, 600) if popf and day <= 5 else rng.randint(40, 130)
                ),
            }
            if day <= 7:
                drain = rng.randint(1500, 9000) if popf and day >= 3 else rng.randint(40, 350)
                values["drain_amylase"] = Decimal(drain)
            services.postop_panel_record(
                operation=operation,
                sampled_on=sampled_on,
                day=day,
                values={code: (value, None) for code, value in values.items()},
                user=self.user,
                confirmed_extremes=frozenset(values),
                today=self.today,
            )

    def discharge(self, operation: Operation) -> None:
        rng = self.rng
        discharged_on = operation.operated_on + rng.randint(7, 21) * DAY
        if discharged_on > self.last_day:
            return
        readmitted_on, reason = None, ""
        if rng.random() < 0.12:
            readmitted_on = discharged_on + rng.randint(3, 40) * DAY
            reason = rng.choice(["Intra-abdominal collection", "Fever", "Poor oral intake"])
            if readmitted_on > self.last_day:
                readmitted_on, reason = None, ""
        services.discharge_save(
            discharge=Discharge(
                operation=operation,
                discharged_on=discharged_on,
                readmitted_on=readmitted_on,
                readmission_reason=reason,
            ),
            user=self.user,
            today=self.today,
        )

    def adjuvant(self, operation: Operation) -> None:
        """4–8 cycles on the line of the last cycle, from 4–8 weeks after the operation."""
        rng = self.rng
        last = (
            ChemoCycle.objects.active()
            .filter(patient=self.patient)
            .select_related("line")
            .order_by("-given_on")
            .first()
        )
        baseline = getattr(self.patient, "baseline", None)
        if last is None or baseline is None:
            return
        line = last.line
        doses = list(CycleDose.objects.active().filter(cycle=last).order_by("id"))
        weight = Decimal(last.weight_kg or baseline.weight_kg)
        bsa = bsa_mosteller(height_cm=baseline.height_cm, weight_kg=weight)
        length = line.cycle_length_days or 14
        given_on = operation.operated_on + rng.randint(28, 56) * DAY
        for _index in range(rng.randint(4, 8)):
            if given_on > self.last_day:
                return
            cycle = ChemoCycle(
                line=line,
                patient=self.patient,
                given_on=given_on,
                weight_kg=weight,
                adjuvant=True,
                dose_reduction_reason=last.dose_reduction_reason if last.dose_reduced else "",
            )
            try:
                treatment_services.cycle_record(
                    cycle=cycle,
                    doses=[
                        CycleDose(
                            drug=dose.drug,
                            drug_other=dose.drug_other,
                            planned_mg_m2=dose.planned_mg_m2,
                            given_mg=regimens.dose_for_bsa(dose.planned_mg_m2, bsa),
                            planned_days=dose.planned_days,
                            given_days=dose.planned_days,
                        )
                        for dose in doses
                    ],
                    user=self.user,
                    today=self.today,
                )
            except ValidationError:
                return  # e.g. a reduced plan the rules read differently: stop the adjuvant cycles
            given_on += length * DAY


def seed(context: DemoContext) -> None:
    """MDT decisions and surgery for the courses referred to the MDT (context.shared["courses"]
    from treatments/demo.py; the evaluations are those assessments/demo.py recorded)."""
    courses = context.shared.get("courses") or {}
    referred: dict[int, date] = {}
    for patient_id, course in courses.items():
        planned = next((e for e in course.evaluations if e.decision == "refer_mdt"), None)
        if planned is not None:
            referred[patient_id] = planned.on
    if not referred:
        return
    evaluations = {
        (e.patient_id, e.evaluated_on): e
        for e in ResponseEvaluation.objects.active().filter(
            patient_id__in=referred, decision=ResponseEvaluation.Decision.REFER_MDT
        )
    }
    patients = Patient.objects.filter(pk__in=referred).select_related(
        "site", "enrollment", "baseline", "withdrawal"
    )
    for patient in sorted(patients, key=lambda p: p.pk):
        evaluation = evaluations.get((patient.pk, referred[patient.pk]))
        if evaluation is None:
            continue
        _Case(context, patient, evaluation).run()
