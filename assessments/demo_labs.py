"""Demo lab panels: a baseline panel at enrollment, an assessment panel before each planned
response evaluation, and a few on-treatment panels with chemotherapy toxicity.

`seed_labs(context)` is called by assessments/demo.py before the imaging and evaluations.
Everything goes through `lab_panel_record` (conversion, checks, flags, grades, audit) and is
drawn from `context.rng` only, so the same seed and `today` give the same panels.

What the values follow: liver metastases raise the liver tests of about 40% of patients at
baseline (so the CTCAE baseline-relative criteria matter); CA19-9 at baseline equals the baseline
form's value and later moves with the planned RECIST response (CR/PR −50 to −95%, SD −40 to
+20%, PD +30 to +300%), except in Lewis-antigen-negative patients (baseline < 5 U/mL), whose
level stays below 5; on treatment, neutropenia of grade 1–3, anaemia of grade 1–2 and some
thrombocytopenia. About one value in ten is typed in an alternative unit.
"""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from assessments import analytes
from assessments.models import LabPanel
from assessments.services.labs import lab_panel_record
from patients.models import Patient
from trial.demo import DemoContext

LIVER_ABNORMAL_SHARE = 0.4
ALTERNATIVE_UNIT_SHARE = 0.1
LEWIS_NEGATIVE_BELOW = Decimal(5)
BASELINE_SET = [a.code for a in analytes.ANALYTES if a.code != "drain_amylase"]
ASSESSMENT_SET = [
    a.code
    for a in analytes.ANALYTES
    if a.group in ("blood", "coagulation", "liver", "kidney", "tumour_markers")
]
ON_TREATMENT_SET = [a.code for a in analytes.ANALYTES if a.group in ("blood", "liver", "kidney")]
CA19_9_CHANGE = {"CR": (-0.95, -0.5), "PR": (-0.95, -0.5), "SD": (-0.4, 0.2), "PD": (0.3, 3.0)}


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class _PatientLabs:
    """One patient's underlying levels, from which each panel's values are drawn."""

    def __init__(self, context: DemoContext, patient: Patient):
        self.rng = context.rng
        self.patient = patient
        self.user = context.user_for(patient.site)
        self.today = context.today
        withdrawal = getattr(patient, "withdrawal", None)
        self.last_day = min(context.today, withdrawal.withdrawn_on if withdrawal else context.today)
        baseline = patient.baseline
        self.female = patient.sex == "F"
        self.liver_abnormal = self.rng.random() < LIVER_ABNORMAL_SHARE
        self.cholestatic = self.liver_abnormal and (
            baseline.biliary_stent or self.rng.random() < 0.5
        )
        self.diabetic = baseline.comorbid_diabetes
        self.ca19_9 = baseline.ca19_9_u_ml
        self.cea = baseline.cea_ng_ml
        self.ca125 = baseline.ca125_u_ml
        self.levels = self._baseline_levels()

    def _uln(self, code: str) -> float:
        return float(analytes.get(code).reference_for(self.patient.sex).high)

    def _baseline_levels(self) -> dict[str, float]:
        rng, female = self.rng, self.female
        wbc = _clamp(rng.gauss(6.4, 1.6), 3.2, 12.0)
        lymphocytes = _clamp(rng.gauss(1.6, 0.4), 0.7, 3.0)
        levels = {
            "wbc": wbc,
            "anc": _clamp(wbc * rng.uniform(0.55, 0.7), 1.6, 9.0),
            "lymphocytes": lymphocytes,
            "hemoglobin": _clamp(rng.gauss(121 if female else 133, 11), 92, 165),
            "platelets": _clamp(rng.gauss(235, 60), 110, 480),
            "pt": _clamp(rng.gauss(12.3, 0.8), 10.5, 15.5),
            "inr": _clamp(rng.gauss(1.02, 0.08), 0.85, 1.3),
            "aptt": _clamp(rng.gauss(31, 3), 24, 40),
            "fibrinogen": _clamp(rng.gauss(3.6, 0.7), 2.0, 6.0),
            "d_dimer": _clamp(rng.lognormvariate(-0.2, 0.7), 0.1, 12.0),
            "albumin": _clamp(rng.gauss(38.5, 3.5), 28, 48),
            "creatinine": _clamp(rng.gauss(58 if female else 74, 11), 38, 120),
            "urea": _clamp(rng.gauss(5.0, 1.2), 2.5, 9.5),
            "egfr": _clamp(rng.gauss(93, 13), 50, 125),
            "amylase": rng.uniform(38, 115),
            "lipase": rng.uniform(15, 55),
            "glucose": _clamp(
                rng.gauss(8.6, 2.0) if self.diabetic else rng.gauss(5.3, 0.6), 3.9, 16
            ),
        }
        if self.liver_abnormal:
            levels["alt"] = self._uln("alt") * rng.uniform(1.1, 3.2)
            levels["ast"] = self._uln("ast") * rng.uniform(1.1, 3.0)
            levels["alp"] = self._uln("alp") * rng.uniform(1.1, 3.0)
            levels["ggt"] = self._uln("ggt") * rng.uniform(1.3, 6.0)
        else:
            levels["alt"] = rng.uniform(10, 36)
            levels["ast"] = rng.uniform(15, 33)
            levels["alp"] = rng.uniform(55, 115)
            levels["ggt"] = rng.uniform(12, 42)
        levels["tbil"] = (
            self._uln("tbil") * rng.uniform(1.1, 2.6) if self.cholestatic else rng.uniform(6, 18)
        )
        levels["dbil"] = levels["tbil"] * rng.uniform(0.25, 0.6 if self.cholestatic else 0.35)
        return levels

    # --- values of one panel --------------------------------------------------------------

    def _markers(self, response: str | None) -> dict[str, Decimal]:
        values = {}
        for code, baseline in (("ca19_9", self.ca19_9), ("cea", self.cea), ("ca125", self.ca125)):
            if baseline is None:
                continue
            if response is None:
                values[code] = baseline
            elif code == "ca19_9" and baseline < LEWIS_NEGATIVE_BELOW:
                values[code] = Decimal(str(round(self.rng.uniform(0.5, 4.9), 1)))
            else:
                low, high = CA19_9_CHANGE[response]
                if code != "ca19_9":  # the other markers follow more loosely
                    low, high = low / 2, high / 2
                factor = 1 + self.rng.uniform(low, high)
                values[code] = Decimal(str(float(baseline) * factor))
        return values

    def _jittered(self) -> dict[str, float]:
        """The patient's levels with the day-to-day variation of a repeated measurement."""
        return {code: level * self.rng.uniform(0.93, 1.07) for code, level in self.levels.items()}

    def _assessment_levels(self, response: str) -> dict[str, float]:
        rng = self.rng
        levels = self._jittered()
        # Chemotherapy lowers the counts a little; the liver tests follow the liver metastases.
        for code in ("wbc", "anc", "platelets"):
            levels[code] *= rng.uniform(0.7, 1.0)
        levels["hemoglobin"] *= rng.uniform(0.85, 0.98)
        liver_trend = {"CR": 0.6, "PR": 0.75, "SD": 1.0, "PD": 1.5}[response]
        for code in ("alt", "ast", "alp", "ggt", "tbil", "dbil"):
            if self.liver_abnormal or response == "PD":
                levels[code] *= liver_trend * rng.uniform(0.85, 1.2)
            else:
                levels[code] *= rng.uniform(0.85, 1.2)
        levels["albumin"] *= rng.uniform(0.9, 1.03)
        return levels

    def _toxicity_levels(self) -> dict[str, float]:
        rng = self.rng
        levels = self._jittered()
        anc_band = {1: (1.5, 1.79), 2: (1.0, 1.49), 3: (0.5, 0.99)}[
            _pick(rng, {1: 0.4, 2: 0.35, 3: 0.25})
        ]
        levels["anc"] = rng.uniform(*anc_band)
        levels["lymphocytes"] = _clamp(rng.gauss(1.1, 0.3), 0.4, 2.0)
        levels["wbc"] = levels["anc"] + levels["lymphocytes"] + rng.uniform(0.2, 0.6)
        lln = float(analytes.get("hemoglobin").reference_for(self.patient.sex).low)
        hb_band = (100, lln - 1) if rng.random() < 0.6 else (80, 99)
        levels["hemoglobin"] = rng.uniform(*hb_band)
        plt_band = _pick(rng, {(130, 250): 0.4, (75, 124): 0.45, (50, 74): 0.15})
        levels["platelets"] = rng.uniform(*plt_band)
        for code in ("alt", "ast"):
            levels[code] *= rng.uniform(0.9, 1.4)
        return levels

    def _typed(self, code: str, level: float | Decimal) -> tuple[Decimal, str | None]:
        analyte = analytes.get(code)
        quantum = Decimal(1).scaleb(-analyte.decimals)
        si_value = Decimal(str(level)).quantize(quantum, rounding=ROUND_HALF_UP)
        if analyte.alternatives and self.rng.random() < ALTERNATIVE_UNIT_SHARE:
            unit = self.rng.choice(analyte.alternatives)
            typed = analytes.from_si(analyte, si_value, unit.code, decimals=unit.decimals)
            return typed, unit.code
        return si_value, None

    def record(
        self,
        on: date,
        context: str,
        codes: list[str],
        levels: dict[str, float],
        markers: dict[str, Decimal],
    ) -> LabPanel | None:
        if on > self.last_day:
            return None
        values = {}
        for code in codes:
            level = markers.get(code) if code in markers else levels.get(code)
            if level is not None:
                values[code] = self._typed(code, level)
        confirmed = frozenset(
            code
            for code, (value, unit) in values.items()
            if analytes.is_extreme(
                analytes.get(code), analytes.to_si(analytes.get(code), value, unit)
            )
        )
        return lab_panel_record(
            panel=LabPanel(patient=self.patient, sampled_on=on, context=context),
            values=values,
            user=self.user,
            confirmed_extremes=confirmed,
            today=self.today,
        )

    def run(self, course) -> None:
        enrolled_on = self.patient.enrollment.enrolled_on
        self.record(
            enrolled_on, LabPanel.Context.BASELINE, BASELINE_SET, self.levels, self._markers(None)
        )
        if course is None:
            return
        dates = list(course.cycle_dates)
        evaluated_before = {e.after_cycle for e in course.evaluations}
        # A few on-treatment panels the day before a cycle (not the first, not an evaluation's).
        candidates = [
            index
            for index in range(1, len(dates))
            if index not in evaluated_before and dates[index] - dates[index - 1] > timedelta(1)
        ]
        chosen = sorted(self.rng.sample(candidates, min(len(candidates), self.rng.randint(1, 3))))
        panels: list[tuple[date, str, list[str], dict, dict]] = [
            (
                dates[index] - timedelta(days=1),
                LabPanel.Context.ON_TREATMENT,
                ON_TREATMENT_SET,
                self._toxicity_levels(),
                {},
            )
            for index in chosen
        ]
        for evaluation in course.evaluations:
            last_cycle_on = dates[evaluation.after_cycle - 1]
            sampled_on = max(
                evaluation.on - timedelta(days=self.rng.randint(0, 3)),
                last_cycle_on + timedelta(days=1),
            )
            panels.append(
                (
                    sampled_on,
                    LabPanel.Context.ASSESSMENT,
                    ASSESSMENT_SET,
                    self._assessment_levels(evaluation.response),
                    self._markers(evaluation.response),
                )
            )
        for on, context, codes, levels, markers in sorted(panels, key=lambda p: p[0]):
            self.record(on, context, codes, levels, markers)


def _pick(rng, weighted: dict):
    roll, total = rng.random() * sum(weighted.values()), 0.0
    for value, weight in weighted.items():
        total += weight
        if roll <= total:
            return value
    return value


def seed_labs(context: DemoContext) -> None:
    """Lab panels for every enrolled demo patient with a baseline form: a baseline panel at
    enrollment; with context.shared["courses"] (treatments/demo.py), an assessment panel 0–3
    days before each planned evaluation and one to three on-treatment panels."""
    ids = context.shared.get("enrolled_patient_ids", [])
    courses = context.shared.get("courses") or {}
    patients = Patient.objects.filter(pk__in=ids).select_related(
        "site", "enrollment", "baseline", "withdrawal"
    )
    by_id = {patient.pk: patient for patient in patients}
    for patient_id in ids:
        patient = by_id.get(patient_id)
        if patient is None or getattr(patient, "baseline", None) is None:
            continue
        _PatientLabs(context, patient).run(courses.get(patient_id))
