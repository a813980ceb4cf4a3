"""Reads of the treatments app for views, other apps (assessments) and analytics."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Prefetch

from patients.models import Baseline, Patient
from patients.services import bsa_mosteller
from treatments import regimens
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, Drug, RegimenLine


def cycles_completed(*, patient: Patient, on: date) -> int:
    """How many (non-voided) chemotherapy cycles the patient received on or before `on`,
    counted across all regimen lines. One query."""
    return ChemoCycle.objects.active().filter(patient=patient, given_on__lte=on).count()


# --- BSA ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodySize:
    height_cm: Decimal
    weight_kg: Decimal
    bsa_m2: Decimal
    weight_source: str  # "cycle" (typed for this cycle), "earlier cycle" or "baseline"


def body_size_on(
    *,
    patient: Patient,
    on: date | None,
    weight_kg: Decimal | None = None,
    exclude_cycle_id: int | None = None,
    earlier: list[ChemoCycle] | None = None,
) -> BodySize | None:
    """The BSA (Mosteller) a cycle on `on` is dosed by: the baseline height with this cycle's
    weight (`weight_kg`), else the latest weight of an earlier cycle, else the baseline weight.

    `earlier` may give the patient's active cycles before `on` when the caller has them (saves
    a query). None when the patient has no baseline. Two queries at most.
    """
    baseline = Baseline.objects.active().filter(patient=patient).first()
    if baseline is None or not baseline.height_cm:
        return None
    source = "cycle"
    if weight_kg is None:
        if earlier is not None:
            weighed = [c for c in earlier if c.weight_kg is not None]
            latest = max(weighed, key=lambda c: (c.given_on, c.pk)).weight_kg if weighed else None
        else:
            cycles = ChemoCycle.objects.active().filter(patient=patient, weight_kg__isnull=False)
            if on is not None:
                cycles = cycles.filter(given_on__lt=on)
            if exclude_cycle_id is not None:
                cycles = cycles.exclude(pk=exclude_cycle_id)
            latest = cycles.order_by("-given_on", "-id").values_list("weight_kg", flat=True).first()
        weight_kg, source = (
            (latest, "earlier cycle") if latest else (baseline.weight_kg, "baseline")
        )
    bsa = bsa_mosteller(height_cm=baseline.height_cm, weight_kg=weight_kg)
    return BodySize(baseline.height_cm, Decimal(weight_kg), bsa, source)


# --- the treatment summary ------------------------------------------------------------------


@dataclass
class DoseRow:
    dose: CycleDose
    reference_mg: Decimal | None  # planned mg/m² × the cycle's BSA
    percent: int | None  # given ÷ reference

    @property
    def short(self) -> bool:
        return self.dose.given_days < self.dose.planned_days


@dataclass
class CycleRow:
    cycle: ChemoCycle
    doses: list[DoseRow]


@dataclass
class DrugIntensity:
    drug: str
    label: str
    reference_mg_m2: Decimal
    administrations: int
    rdi: Decimal | None

    @property
    def percent(self) -> int | None:
        return regimens.percent(self.rdi)


@dataclass
class LineSummary:
    line: RegimenLine
    rows: list[CycleRow]  # every cycle in date order, voided ones included (struck through)
    cycles: list[ChemoCycle]  # the active cycles
    intensities: list[DrugIntensity] = field(default_factory=list)

    @property
    def cycle_count(self) -> int:
        return len(self.cycles)

    @property
    def first_cycle_on(self) -> date | None:
        return self.cycles[0].given_on if self.cycles else None

    @property
    def last_cycle(self) -> ChemoCycle | None:
        return self.cycles[-1] if self.cycles else None

    @property
    def next_cycle_due_on(self) -> date:
        """The last cycle's date plus one cycle length; the line start before any cycle."""
        last = self.last_cycle
        if last is None:
            return self.line.started_on
        return last.given_on + timedelta(days=self.line.cycle_length_days)

    @property
    def reductions(self) -> int:
        return sum(1 for c in self.cycles if c.dose_reduced)

    @property
    def delays(self) -> int:
        return sum(1 for c in self.cycles if c.delay_days)

    @property
    def gcsf(self) -> int:
        return sum(1 for c in self.cycles if c.gcsf)


@dataclass
class TreatmentSummary:
    lines: list[LineSummary]  # active lines by number
    voided_lines: list[RegimenLine]

    @property
    def current(self) -> LineSummary | None:
        return self.lines[-1] if self.lines else None

    @property
    def cycle_count(self) -> int:
        return sum(line.cycle_count for line in self.lines)

    @property
    def last_cycle(self) -> ChemoCycle | None:
        cycles = [line.last_cycle for line in self.lines if line.last_cycle]
        return max(cycles, key=lambda c: (c.given_on, c.pk)) if cycles else None

    @property
    def reductions(self) -> int:
        return sum(line.reductions for line in self.lines)

    @property
    def delays(self) -> int:
        return sum(line.delays for line in self.lines)

    @property
    def gcsf(self) -> int:
        return sum(line.gcsf for line in self.lines)


def _dose_row(dose: CycleDose, bsa: Decimal | None) -> DoseRow:
    if not bsa:
        return DoseRow(dose, None, None)
    reference = regimens.dose_for_bsa(dose.planned_mg_m2, bsa)
    ratio = regimens.dose_ratio(dose.given_mg, dose.planned_mg_m2, bsa)
    return DoseRow(dose, reference, regimens.percent(ratio))


def _intensities(line: RegimenLine, cycles: list[ChemoCycle]) -> list[DrugIntensity]:
    """RDI per drug over the active cycles of `line` (in Python: no query)."""
    spec = regimens.regimen_spec(line.regimen)
    drugs: dict[tuple[str, str], DrugIntensity] = {}
    if spec:
        for standard in spec.doses:
            drugs[(standard.drug, "")] = DrugIntensity(
                standard.drug,
                str(Drug(standard.drug).label),
                standard.mg_m2,
                standard.administrations,
                None,
            )
    for cycle in cycles:
        for dose in cycle.active_doses:
            key = (dose.drug, dose.drug_other)
            if key not in drugs:
                # A drug outside the standard regimen: its first planned dose is the reference.
                drugs[key] = DrugIntensity(
                    dose.drug, dose.drug_name, dose.planned_mg_m2, dose.planned_days, None
                )
    for key, intensity in drugs.items():
        given = []
        for cycle in cycles:
            dose = next(
                (d for d in cycle.active_doses if (d.drug, d.drug_other) == key),
                None,
            )
            given.append(
                regimens.GivenDose(
                    given_on=cycle.given_on,
                    bsa_m2=cycle.bsa_m2 or Decimal(0),
                    given_mg=dose.given_mg if dose else Decimal(0),
                    given_days=dose.given_days if dose else 0,
                )
            )
        intensity.rdi = regimens.relative_dose_intensity(
            given,
            mg_m2=intensity.reference_mg_m2,
            administrations=intensity.administrations,
            cycle_length_days=line.cycle_length_days,
        )
    return list(drugs.values())


def treatment_summary(*, patient: Patient) -> TreatmentSummary:
    """The patient's regimen lines with their cycles and doses, cycle counts, dose reductions,
    delays, G-CSF use and the relative dose intensity per drug per line.

    Three queries whatever the number of lines, cycles and doses (lines, cycles, doses).
    """
    lines = list(
        RegimenLine.objects.filter(patient=patient)
        .order_by("started_on", "id")
        .prefetch_related(
            Prefetch(
                "cycles",
                queryset=ChemoCycle.objects.order_by("given_on", "id").prefetch_related(
                    Prefetch("doses", queryset=CycleDose.objects.order_by("id"))
                ),
            )
        )
    )
    summaries, voided = [], []
    for line in lines:
        if line.is_voided:
            voided.append(line)
            continue
        rows, active = [], []
        for cycle in line.cycles.all():
            cycle.active_doses = [d for d in cycle.doses.all() if not d.is_voided]
            shown = cycle.active_doses if not cycle.is_voided else list(cycle.doses.all())
            rows.append(CycleRow(cycle, [_dose_row(d, cycle.bsa_m2) for d in shown]))
            if not cycle.is_voided:
                active.append(cycle)
        summary = LineSummary(line=line, rows=rows, cycles=active)
        summary.intensities = _intensities(line, active)
        summaries.append(summary)
    summaries.sort(key=lambda s: s.line.line_number)
    return TreatmentSummary(lines=summaries, voided_lines=voided)


# --- adverse events -------------------------------------------------------------------------


def _death_recorded(patient: Patient) -> bool:
    """Whether the patient's death is recorded: `Patient.died_on` is kept by the follow-up
    app's death service (patients.services.patient_vital_status_set), so no query is needed."""
    return patient.died_on is not None


def _flag_awaiting_death(events: list[AdverseEvent], patient: Patient) -> list[AdverseEvent]:
    grade5 = [e for e in events if e.grade == 5 and not e.is_voided]
    awaiting = bool(grade5) and not _death_recorded(patient)
    for event in events:
        event.awaiting_death = awaiting and event in grade5
    return [e for e in grade5 if e.awaiting_death]


def adverse_events(*, patient: Patient) -> list[AdverseEvent]:
    """Every adverse event of the patient (voided ones too, to show struck through), by onset,
    with its regimen line; each carries `awaiting_death` (grade 5 and no death record yet).

    One query (the death is read from `Patient.died_on`).
    """
    events = list(
        AdverseEvent.objects.filter(patient=patient)
        .select_related("line")
        .order_by("onset_on", "id")
    )
    _flag_awaiting_death(events, patient)
    return events


def grade5_events_awaiting_death(*, patient: Patient) -> list[AdverseEvent]:
    """Active grade 5 events while the patient has no death record (follow-up app); every
    grade 5 event is flagged until the follow-up app records the death. One query."""
    events = list(AdverseEvent.objects.active().filter(patient=patient, grade=5))
    return _flag_awaiting_death(events, patient)


# --- the patient-page panel -----------------------------------------------------------------


@dataclass
class ChemotherapyOverview:
    summary: TreatmentSummary
    open_severe_events: list[AdverseEvent]  # grade ≥ 3, not resolved, not voided
    awaiting_death: list[AdverseEvent]
    event_count: int


def chemotherapy_overview(*, patient: Patient) -> ChemotherapyOverview:
    """What the patient-page card shows: the treatment summary and the adverse events that need
    attention. Four queries (five with a grade 5 event) whatever the patient's history."""
    summary = treatment_summary(patient=patient)
    events = [e for e in adverse_events(patient=patient) if not e.is_voided]
    return ChemotherapyOverview(
        summary=summary,
        open_severe_events=[e for e in events if e.grade >= 3 and e.is_open],
        awaiting_death=[e for e in events if e.awaiting_death],
        event_count=len(events),
    )


def line_get(*, patient: Patient, line_id: int) -> RegimenLine:
    """A regimen line of `patient` (raises RegimenLine.DoesNotExist for another's)."""
    return RegimenLine.objects.get(patient=patient, pk=line_id)
