"""Demo labs, imaging and response evaluations for the courses treatments/demo.py planned.

`seed(context)` first lets `assessments.demo_labs.seed_labs` record the lab panels, then, for
every patient with a `Course` in context.shared["courses"]:

- a baseline CT up to 14 days before the first cycle with 2–4 RECIST targets: liver
  metastases sized from the baseline form's largest one downwards (at most 2), the pancreatic
  primary, sometimes a lymph node; non-target lesions present;
- for each planned evaluation, a follow-up study on the evaluation day or up to 3 days
  before, whose measurements give exactly the planned response under `assessments.recist`
  (PR −35 to −60%, SD −20 to +10%, PD +25 to +60% over the nadir or a new lesion, CR: every
  non-nodal target gone, nodes < 10 mm, non-target lesions gone), read the same way by the
  radiologist about 9 times in 10;
- the evaluation, linking that study and the assessment lab panel taken 0–3 days before,
  with the planned decision.

Everything goes through the services and draws from `context.rng` only: the same seed and
`today` give the same data. A planned sequence RECIST cannot produce with one baseline (stable
disease after a complete response has emptied the nadir) is recorded as the nearest response
RECIST allows and listed in context.shared["imaging_mismatches"].
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from random import Random

from assessments import recist
from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation, TargetLesion
from assessments.services.imaging import evaluation_save, imaging_study_save
from patients.models import Patient
from trial.demo import DemoContext

D = Decimal
TENTH = D("0.1")
MARGIN = D("0.6")  # keep sums this far from a RECIST threshold (rounding to 0.1 mm per lesion)
RADIOLOGIST_AGREES = 0.9
NEIGHBOUR = {"CR": ["PR"], "PR": ["SD", "CR"], "SD": ["PR", "PD"], "PD": ["SD"]}
MAX_TRIES = 25


@dataclass
class PlannedStudy:
    """The measurements of one follow-up study and the response RECIST gives them."""

    lesions: dict[str, D]
    non_target: str
    new_lesions: bool
    response: str
    planned: str

    @property
    def matches(self) -> bool:
        return self.response == self.planned


@dataclass
class Plan:
    baseline: dict[str, recist.Lesion]
    follow_ups: list[PlannedStudy] = field(default_factory=list)


def _mm(value: float | D) -> D:
    return D(str(value)).quantize(TENTH, rounding=ROUND_HALF_UP)


def baseline_targets(
    rng: Random, *, liver_largest_mm: D, liver_count: int, primary_mm: D
) -> dict[str, recist.Lesion]:
    """2–4 measurable targets within the RECIST limits: up to 2 liver metastases (the largest
    from the baseline form, the second smaller), the primary, sometimes a node."""
    lesions: list[tuple[str, bool, D]] = []
    largest = min(D(liver_largest_mm), D(250))
    if largest >= recist.MIN_NON_NODAL_MM:
        lesions.append(("liver", False, _mm(largest)))
        second = _mm(float(largest) * rng.uniform(0.45, 0.85))
        if liver_count >= 2 and second >= recist.MIN_NON_NODAL_MM:
            lesions.append(("liver", False, second))
    if D(primary_mm) >= recist.MIN_NON_NODAL_MM:
        lesions.append(("pancreas", False, _mm(min(D(primary_mm), D(250)))))
    if len(lesions) < 2 or (len(lesions) < 4 and rng.random() < 0.3):
        lesions.append(("lymph_node", True, _mm(rng.uniform(15.5, 28))))
    if len(lesions) < 2:
        lesions.append(("lymph_node", True, _mm(rng.uniform(15.5, 22))))
    return {
        f"T{index}": recist.Lesion(organ, node, size)
        for index, (organ, node, size) in enumerate(lesions, start=1)
    }


def _pd_limit(nadir: D) -> D:
    """The smallest sum that is progression over `nadir` (≥ 20% and ≥ 5 mm)."""
    return max(nadir * recist.PD_FRACTION, nadir + recist.PD_ABSOLUTE_MM)


def _spread(rng: Random, baseline: dict[str, recist.Lesion], total: D) -> dict[str, D]:
    """Diameters summing to about `total`, each lesion moving roughly with the others."""
    weights = {
        label: float(lesion.diameter_mm) * rng.uniform(0.85, 1.15)
        for label, lesion in baseline.items()
    }
    scale = float(total) / sum(weights.values())
    return {label: _mm(min(399.0, max(0.0, weight * scale))) for label, weight in weights.items()}


def _sum_range(
    planned: str, base: D, nadir: D, later_sd: bool
) -> tuple[D, D, tuple[float, float]] | None:
    """(lowest, highest) sum giving `planned` (not CR) and the preferred fraction of the
    baseline (or of the nadir for PD); None when RECIST cannot give it."""
    limit = _pd_limit(nadir)
    if planned == "PR":
        high = min(base * recist.PR_FRACTION, limit - MARGIN) - MARGIN / 2
        # A deep response empties the nadir: keep it shallow when stable disease follows.
        preferred = (0.62, 0.68) if later_sd else (0.40, 0.65)
        return (D("0.5"), high, preferred) if high > D("0.5") else None
    if planned == "SD":
        low, high = base * recist.PR_FRACTION + MARGIN, limit - MARGIN
        return (low, high, (0.80, 1.10)) if low < high else None
    if planned == "PD":
        return (limit + MARGIN, D(1990), (1.25, 1.60))
    return None


def _follow_up(
    rng: Random,
    baseline: dict[str, recist.Lesion],
    planned: str,
    nadir: D,
    later_sd: bool,
) -> tuple[dict[str, D], str, bool]:
    base = sum((lesion.diameter_mm for lesion in baseline.values()), D(0))
    if planned == "CR":
        nodes = [label for label, lesion in baseline.items() if lesion.is_lymph_node]
        # Normal nodes (< 10 mm) that together stay clear of progression over the nadir.
        room = min(D("9.5") * len(nodes), _pd_limit(nadir) - MARGIN)
        each = max(D(0), room / len(nodes)) if nodes else D(0)
        lesions = {label: D(0) for label in baseline}
        for label in nodes:
            lesions[label] = _mm(float(each) * rng.uniform(0.4, 1.0))
        return lesions, recist.NonTarget.ABSENT, False
    if planned == "PD" and rng.random() < 0.3:
        # A new lesion while the targets stay put (never below the nadir, which later
        # stable disease is measured against).
        total = nadir * D(str(rng.uniform(1.0, 1.1)))
        return _spread(rng, baseline, total), recist.NonTarget.PRESENT, True
    bounds = _sum_range(planned, base, nadir, later_sd)
    if bounds is None:
        # Not possible with one baseline (SD after a CR nadir): as close as RECIST allows.
        total = max(_pd_limit(nadir) - MARGIN, D("0.5"))
        return _spread(rng, baseline, total), recist.NonTarget.PRESENT, False
    low, high, (p_low, p_high) = bounds
    reference = nadir if planned == "PD" else base
    wanted = reference * D(str(rng.uniform(p_low, p_high)))
    total = min(max(wanted, low), high)
    return _spread(rng, baseline, total), recist.NonTarget.PRESENT, False


def plan_follow_ups(
    rng: Random, baseline: dict[str, recist.Lesion], responses: list[str], *, start: date
) -> Plan:
    """Measurements for each planned response in turn, checked against `recist.evaluate`
    over the whole series so far (the nadir moves with every study)."""
    plan = Plan(baseline=baseline)
    series = [recist.Assessment(start, baseline)]
    for index, planned in enumerate(responses):
        later_sd = "SD" in responses[index + 1 :]
        on = start + timedelta(days=56 * (index + 1))
        nadir = min(r.sum_mm for r in recist.evaluate(series).results if r.sum_mm is not None)
        best = None
        for _attempt in range(MAX_TRIES):
            lesions, non_target, new = _follow_up(rng, baseline, planned, nadir, later_sd)
            assessment = recist.Assessment(
                on,
                {
                    label: (baseline[label].organ, baseline[label].is_lymph_node, mm)
                    for label, mm in lesions.items()
                },
                non_target,
                new,
            )
            response = recist.evaluate([*series, assessment]).results[-1].response
            best = (assessment, PlannedStudy(lesions, non_target, new, str(response), planned))
            if response == planned:
                break
        assessment, study = best
        series.append(assessment)
        plan.follow_ups.append(study)
    return plan


def _radiologist(rng: Random, response: str) -> str:
    if rng.random() < RADIOLOGIST_AGREES:
        return response
    return rng.choice(NEIGHBOUR.get(response, [response]))


def _seed_patient(context: DemoContext, patient: Patient, course, panels: dict) -> None:
    rng, today = context.rng, context.today
    user = context.user_for(patient.site)
    baseline_form = patient.baseline
    targets = baseline_targets(
        rng,
        liver_largest_mm=baseline_form.liver_met_largest_mm,
        liver_count=baseline_form.liver_met_count,
        primary_mm=baseline_form.primary_size_mm,
    )
    screened_on = patient.screening.screened_on
    baseline_on = max(
        course.first_cycle_on - timedelta(days=rng.randint(1, 14)),
        screened_on - timedelta(days=50),
    )
    if baseline_on > today:
        return
    imaging_study_save(
        study=ImagingStudy(
            patient=patient,
            performed_on=baseline_on,
            modality=ImagingStudy.Modality.CT,
            is_baseline=True,
            non_target=ImagingStudy.NonTarget.PRESENT,
        ),
        lesions=[
            TargetLesion(label=label, organ=lesion.organ, diameter_mm=lesion.diameter_mm)
            for label, lesion in targets.items()
        ],
        user=user,
        today=today,
    )
    evaluations = [e for e in course.evaluations if e.on <= today]
    plan = plan_follow_ups(rng, targets, [e.response for e in evaluations], start=baseline_on)
    previous = baseline_on
    for planned, study in zip(evaluations, plan.follow_ups, strict=True):
        performed_on = max(planned.on - timedelta(days=rng.randint(0, 3)), previous + timedelta(1))
        previous = performed_on
        saved = imaging_study_save(
            study=ImagingStudy(
                patient=patient,
                performed_on=performed_on,
                modality=ImagingStudy.Modality.MRI
                if rng.random() < 0.15
                else ImagingStudy.Modality.CT,
                is_baseline=False,
                non_target=study.non_target,
                new_lesions=study.new_lesions,
                radiologist_response=_radiologist(rng, study.response),
            ),
            lesions=[
                TargetLesion(label=label, organ=targets[label].organ, diameter_mm=mm)
                for label, mm in study.lesions.items()
            ],
            user=user,
            today=today,
        )
        if not study.matches or saved.response != planned.response:
            context.shared.setdefault("imaging_mismatches", []).append(
                (patient.pk, planned.on, planned.response, str(saved.response))
            )
        panel = next(
            (
                p
                for p in panels.get(patient.pk, [])
                if planned.on - timedelta(days=3) <= p.sampled_on <= planned.on
            ),
            None,
        )
        evaluation_save(
            evaluation=ResponseEvaluation(
                patient=patient,
                evaluated_on=planned.on,
                imaging=saved,
                lab_panel=panel,
                decision=planned.decision,
            ),
            user=user,
            today=today,
        )


def seed(context: DemoContext) -> None:
    """Lab panels (assessments.demo_labs), then imaging and evaluations for every course in
    context.shared["courses"]."""
    try:
        from assessments.demo_labs import seed_labs
    except ImportError as exc:  # the lab part of the demo is written separately
        raise RuntimeError(
            "assessments/demo_labs.py with seed_labs(context) is missing: the response "
            "evaluations link the assessment lab panels it records."
        ) from exc
    seed_labs(context)
    courses = context.shared.get("courses") or {}
    if not courses:
        return
    patients = Patient.objects.filter(pk__in=courses).select_related(
        "site", "screening", "enrollment", "baseline"
    )
    panels: dict[int, list[LabPanel]] = {}
    for panel in LabPanel.objects.active().filter(
        patient_id__in=courses, context=LabPanel.Context.ASSESSMENT
    ):
        panels.setdefault(panel.patient_id, []).append(panel)
    for patient in sorted(patients, key=lambda p: p.pk):
        if getattr(patient, "baseline", None) is None:
            continue
        _seed_patient(context, patient, courses[patient.pk], panels)
