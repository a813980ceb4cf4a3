"""Reads of imaging, RECIST responses, response evaluations and the treatment timeline.

Each selector runs a fixed number of queries whatever the length of the patient's history:
rows are fetched in one query per table and put together in Python.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments import recist
from assessments.models import ImagingStudy, LabPanel, LabResult, ResponseEvaluation, TargetLesion
from assessments.services.imaging import CA19_9_UNINFORMATIVE_BELOW, INTERVAL_CYCLES
from patients.models import Baseline, Enrollment, Patient
from treatments.models import ChemoCycle, RegimenLine

FIRST_WINDOW = (4, 6)  # protocol: the first evaluation after cycles 4–6
WINDOW_SLACK = 1  # later ones every 4 (or 2) cycles ± 1
CA19_9 = "ca19_9"


# --- imaging --------------------------------------------------------------------------------


@dataclass
class LesionRow:
    """One target lesion across the studies: its diameter on each (None: not measured)."""

    label: str
    organ: str
    cells: list[Decimal | None]


@dataclass
class ImagingHistory:
    studies: list[ImagingStudy]  # active, in date order, each with `active_lesions`
    voided: list[ImagingStudy]
    lesion_rows: list[LesionRow]
    best_response: str | None
    first_progression_on: date | None
    disagreements: int

    @property
    def baseline(self) -> ImagingStudy | None:
        return next((s for s in self.studies if s.is_baseline), None)

    @property
    def best_response_label(self) -> str:
        return _response_label(self.best_response)


def _response_label(code: str | None) -> str:
    return str(ImagingStudy.Response(code).label) if code in ImagingStudy.Response.values else ""


def _best_and_progression(responses: list[tuple[date, str]]) -> tuple[str | None, date | None]:
    best: str | None = None
    progression_on = None
    for on, response in responses:
        if response not in recist.Response.__members__:
            continue
        best = recist.better(best, recist.Response(response))
        if response == recist.Response.PD and progression_on is None:
            progression_on = on
    return (str(best) if best else None), progression_on


def imaging_history(*, patient: Patient) -> ImagingHistory:
    """The patient's imaging studies with their target lesions and computed responses, the
    best overall response, the first progression date and the number of studies where the
    radiologist's response disagrees with RECIST. Two queries."""
    studies = list(
        ImagingStudy.objects.filter(patient=patient)
        .order_by("performed_on", "id")
        .prefetch_related(
            Prefetch("lesions", queryset=TargetLesion.objects.active().order_by("label"))
        )
    )
    active = [s for s in studies if not s.is_voided]
    for study in studies:
        study.active_lesions = list(study.lesions.all())
    baseline = next((s for s in active if s.is_baseline), None)
    organs: dict[str, str] = {}
    for study in ([baseline] if baseline else []) + active:
        for lesion in study.active_lesions:
            organs.setdefault(lesion.label, lesion.get_organ_display())
    rows = []
    for label, organ in organs.items():
        cells = []
        for study in active:
            measured = next((x for x in study.active_lesions if x.label == label), None)
            cells.append(measured.diameter_mm if measured else None)
        rows.append(LesionRow(label=label, organ=organ, cells=cells))
    best, progression_on = _best_and_progression(
        [(s.performed_on, s.response) for s in active if not s.is_baseline]
    )
    return ImagingHistory(
        studies=active,
        voided=[s for s in studies if s.is_voided],
        lesion_rows=rows,
        best_response=best,
        first_progression_on=progression_on,
        disagreements=sum(1 for s in active if s.disagrees),
    )


def baseline_targets(*, patient: Patient) -> list[TargetLesion]:
    """The target lesions of the patient's active RECIST baseline (empty without one)."""
    return list(
        TargetLesion.objects.active()
        .filter(
            study__patient=patient,
            study__is_baseline=True,
            study__voided_at__isnull=True,
        )
        .order_by("label")
    )


def study_get(*, patient: Patient, study_id: int) -> ImagingStudy:
    """One imaging study of `patient` (ImagingStudy.DoesNotExist for any other)."""
    return ImagingStudy.objects.get(patient=patient, pk=study_id)


# --- evaluations ----------------------------------------------------------------------------


def window_warning(
    *, sequence: int, cycles: int, previous_cycles: int | None, interval: int
) -> str:
    """A warning when an evaluation falls outside the protocol window, else "".

    The first evaluation is due after cycles 4–6; each later one `interval` cycles (4, or 2
    after progression at the first) after the previous, ± 1 cycle. Out-of-window evaluations
    are shown, never refused.
    """
    if sequence == 1 or previous_cycles is None:
        low, high = FIRST_WINDOW
    else:
        target = previous_cycles + interval
        low, high = target - WINDOW_SLACK, target + WINDOW_SLACK
    if low <= cycles <= high:
        return ""
    return _(
        "Outside the protocol window: this evaluation was due after %(low)s–%(high)s cycles; "
        "%(cycles)s were completed."
    ) % {"low": low, "high": high, "cycles": cycles}


@dataclass
class EvaluationRow:
    evaluation: ResponseEvaluation
    warning: str = ""


def evaluations(*, patient: Patient) -> list[EvaluationRow]:
    """The patient's response evaluations by date (voided ones too, to show struck through),
    with their imaging and lab panel, and a protocol-window warning each. One query."""
    rows = [
        EvaluationRow(evaluation)
        for evaluation in ResponseEvaluation.objects.filter(patient=patient)
        .select_related("imaging", "lab_panel")
        .order_by("evaluated_on", "id")
    ]
    previous: int | None = None
    for row in rows:
        evaluation = row.evaluation
        if evaluation.is_voided:
            continue
        row.warning = window_warning(
            sequence=evaluation.sequence,
            cycles=evaluation.cycles_completed,
            previous_cycles=previous,
            interval=evaluation.interval_cycles,
        )
        previous = evaluation.cycles_completed
    return rows


def evaluation_get(*, patient: Patient, evaluation_id: int) -> ResponseEvaluation:
    """One evaluation of `patient` (ResponseEvaluation.DoesNotExist for any other)."""
    return ResponseEvaluation.objects.select_related("imaging", "lab_panel").get(
        patient=patient, pk=evaluation_id
    )


def evaluation_choices(*, patient: Patient) -> dict:
    """The follow-up studies and lab panels an evaluation of `patient` may link (querysets)."""
    imaging = ImagingStudy.objects.active().filter(patient=patient, is_baseline=False)
    panels = LabPanel.objects.active().filter(patient=patient)
    return {
        "imaging": imaging.order_by("-performed_on", "-id"),
        "lab_panel": panels.order_by("-sampled_on", "-id"),
    }


# --- the treatment timeline -----------------------------------------------------------------


@dataclass
class CycleTick:
    on: date
    number: int  # counted across lines, as the protocol counts cycles


@dataclass
class LineBar:
    number: int
    regimen: str  # the code (AG, FOLFIRINOX, …, other)
    name: str  # the name shown (the typed name of an "other" regimen)
    start: date
    end: date  # last cycle + one cycle length; today while no cycle is given
    cycles: list[CycleTick] = field(default_factory=list)


@dataclass
class EvaluationMark:
    on: date
    sequence: int
    response: str
    decision: str
    decision_label: str
    cycles_completed: int


@dataclass
class ImagingMark:
    on: date
    is_baseline: bool
    response: str
    modality: str


@dataclass
class Ca199Point:
    on: date
    value: Decimal
    context: str


@dataclass
class Timeline:
    origin: date  # day 0 of the axis: the enrollment (or the first event without one)
    today: date
    lines: list[LineBar]
    evaluations: list[EvaluationMark]
    imaging: list[ImagingMark]
    ca19_9: list[Ca199Point]
    ca19_9_baseline: Decimal | None
    best_response: str | None
    first_progression_on: date | None
    interval_cycles: int
    cycle_count: int

    @property
    def start(self) -> date:
        dates = [self.origin, *self._dates()]
        return min(dates)

    @property
    def end(self) -> date:
        return max([self.today, *self._dates()])

    def _dates(self) -> list[date]:
        dates: list[date] = []
        for line in self.lines:
            dates += [line.start, line.end]
        dates += [e.on for e in self.evaluations] + [i.on for i in self.imaging]
        dates += [p.on for p in self.ca19_9]
        return dates

    @property
    def is_empty(self) -> bool:
        return not (self.lines or self.evaluations or self.imaging or self.ca19_9)

    @property
    def best_response_label(self) -> str:
        return _response_label(self.best_response)

    @property
    def ca19_9_uninformative(self) -> bool:
        return self.ca19_9_baseline is None or self.ca19_9_baseline < CA19_9_UNINFORMATIVE_BELOW


def timeline(*, patient: Patient, today: date | None = None) -> Timeline:
    """Everything the treatment timeline and the CA19-9 chart show, for `patient`.

    Regimen lines (start; end = last cycle + one cycle length, or today before any cycle)
    with their cycles numbered across lines, evaluations (date, response, decision), imaging
    responses, the CA19-9 series with its baseline, the best overall response, the first
    progression and the current evaluation interval. Five queries (six when the patient's
    enrollment was not loaded with it) whatever the number of cycles or evaluations.
    """
    today = today or timezone.localdate()
    try:
        enrollment = patient.enrollment
    except Enrollment.DoesNotExist:
        enrollment = None
    lines = list(
        RegimenLine.objects.active()
        .filter(patient=patient)
        .order_by("started_on", "line_number", "id")
        .prefetch_related(
            Prefetch("cycles", queryset=ChemoCycle.objects.active().order_by("given_on", "id"))
        )
    )
    bars: list[LineBar] = []
    number = 0
    for line in lines:
        ticks = []
        for cycle in line.cycles.all():
            number += 1
            ticks.append(CycleTick(on=cycle.given_on, number=number))
        end = (
            ticks[-1].on + timedelta(days=line.cycle_length_days)
            if ticks
            else max(today, line.started_on)
        )
        bars.append(
            LineBar(
                number=line.line_number,
                regimen=line.regimen,
                name=line.name,
                start=min([line.started_on, *(t.on for t in ticks)]),
                end=end,
                cycles=ticks,
            )
        )
    evaluation_rows = list(
        ResponseEvaluation.objects.active().filter(patient=patient).order_by("evaluated_on", "id")
    )
    marks = [
        EvaluationMark(
            on=e.evaluated_on,
            sequence=e.sequence,
            response=e.recist_response,
            decision=e.decision,
            decision_label=e.get_decision_display(),
            cycles_completed=e.cycles_completed,
        )
        for e in evaluation_rows
    ]
    studies = [
        ImagingMark(on=on, is_baseline=is_baseline, response=response, modality=modality)
        for on, is_baseline, response, modality in ImagingStudy.objects.active()
        .filter(patient=patient)
        .order_by("performed_on", "id")
        .values_list("performed_on", "is_baseline", "response", "modality")
    ]
    results = list(
        LabResult.objects.active()
        .filter(analyte=CA19_9, panel__patient=patient, panel__voided_at__isnull=True)
        .order_by("panel__sampled_on", "panel_id")
        .values_list("panel__sampled_on", "value", "panel__context")
    )
    points = [Ca199Point(on=on, value=value, context=context) for on, value, context in results]
    baseline_points = [p for p in points if p.context == LabPanel.Context.BASELINE]
    if baseline_points:
        ca19_9_baseline = baseline_points[-1].value
    else:
        try:
            ca19_9_baseline = patient.baseline.ca19_9_u_ml
        except Baseline.DoesNotExist:
            ca19_9_baseline = None
    best, progression_on = _best_and_progression(
        [(s.on, s.response) for s in studies if not s.is_baseline]
    )
    return Timeline(
        origin=enrollment.enrolled_on if enrollment else (bars[0].start if bars else today),
        today=today,
        lines=bars,
        evaluations=marks,
        imaging=studies,
        ca19_9=points,
        ca19_9_baseline=ca19_9_baseline,
        best_response=best,
        first_progression_on=progression_on,
        interval_cycles=(
            evaluation_rows[-1].interval_cycles if evaluation_rows else INTERVAL_CYCLES
        ),
        cycle_count=number,
    )
