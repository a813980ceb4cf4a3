"""Reads of the lab panels: the panel list, the patient × date grid, the CA19-9 series and the
baseline values the CTCAE baseline-relative criteria use.

Every read here runs a fixed number of queries however many panels the patient has.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from assessments import analytes, ctcae
from assessments.analytes import Analyte
from assessments.models import LabPanel, LabResult
from patients.models import Patient
from treatments.models import ChemoCycle

# --- baselines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelValues:
    """What the baseline rules need of one panel: `key` identifies it (None: not saved yet)."""

    key: int | None
    sampled_on: date
    context: str
    values: dict[str, Decimal]

    @property
    def order(self) -> tuple[date, int]:
        # An unsaved panel counts as the newest of its day.
        return (self.sampled_on, self.key if self.key is not None else 2**62)


@dataclass(frozen=True)
class BaselineSource:
    key: int | None
    sampled_on: date
    value: Decimal

    def applies_to(self, key: int | None, sampled_on: date) -> bool:
        """A value is graded against this baseline if it is not the baseline itself and was
        taken on or after it."""
        return key != self.key and self.sampled_on <= sampled_on


def baseline_sources(
    panels: Iterable[PanelValues], *, first_cycle_on: date | None
) -> dict[str, BaselineSource]:
    """The baseline of each analyte: its value in the latest baseline-context panel that has
    it, else in the latest panel dated on or before the first chemotherapy cycle (blood is drawn
    before the infusion of day 1); none when neither exists. Pure."""
    panels = sorted(panels, key=lambda p: p.order)
    sources: dict[str, BaselineSource] = {}
    fallback: dict[str, BaselineSource] = {}
    for panel in panels:
        for code, value in panel.values.items():
            source = BaselineSource(panel.key, panel.sampled_on, value)
            if panel.context == LabPanel.Context.BASELINE:
                sources[code] = source
            elif first_cycle_on is not None and panel.sampled_on <= first_cycle_on:
                fallback[code] = source
    return {**fallback, **sources}


def first_cycle_on(*, patient: Patient) -> date | None:
    """Day 1 of the patient's first (non-voided) chemotherapy cycle, or None. One query."""
    return (
        ChemoCycle.objects.active()
        .filter(patient=patient)
        .order_by("given_on")
        .values_list("given_on", flat=True)
        .first()
    )


def grade_value(
    code: str, value: Decimal, *, sex: str, baseline: Decimal | None
) -> tuple[str, int | None]:
    """CTCAE term and grade of `value` for a patient of `sex` with that `baseline`."""
    reference = analytes.get(code).reference_for(sex)
    return ctcae.grade(
        code,
        value,
        lln=reference.low,
        uln=reference.high,
        baseline=baseline if code in ctcae.USES_BASELINE else None,
    )


def baseline_value(*, patient: Patient, analyte: str) -> Decimal | None:
    """The patient's baseline value of `analyte` (see `baseline_sources`), or None. Two queries."""
    rows = (
        LabResult.objects.active()
        .filter(panel__patient=patient, panel__voided_at__isnull=True, analyte=analyte)
        .values_list("panel_id", "panel__sampled_on", "panel__context", "value")
    )
    panels = [PanelValues(key, on, context, {analyte: value}) for key, on, context, value in rows]
    source = baseline_sources(panels, first_cycle_on=first_cycle_on(patient=patient)).get(analyte)
    return source.value if source else None


# --- panels ------------------------------------------------------------------------------


def lab_panels(*, patient: Patient) -> QuerySet[LabPanel]:
    """The patient's panels (not voided), oldest first, with their results prefetched: only
    the results that are not voided, as `panel.results.all()`. Two queries."""
    return (
        LabPanel.objects.active()
        .filter(patient=patient)
        .order_by("sampled_on", "id")
        .prefetch_related(Prefetch("results", queryset=LabResult.objects.active().order_by("id")))
    )


def lab_panel_latest(*, patient: Patient) -> LabPanel | None:
    """The patient's latest panel (by sample date) with its results prefetched, or None."""
    return (
        LabPanel.objects.active()
        .filter(patient=patient)
        .order_by("-sampled_on", "-id")
        .prefetch_related(Prefetch("results", queryset=LabResult.objects.active().order_by("id")))
        .first()
    )


def ca19_9_series(*, patient: Patient) -> list[tuple[date, Decimal]]:
    """(sample date, CA19-9 in U/mL) from every panel of the patient that has one, oldest
    first. One query."""
    rows = (
        LabResult.objects.active()
        .filter(panel__patient=patient, panel__voided_at__isnull=True, analyte="ca19_9")
        .order_by("panel__sampled_on", "panel_id")
        .values_list("panel__sampled_on", "value")
    )
    return [(sampled_on, value) for sampled_on, value in rows]


# --- the grid ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    result: LabResult
    value: str  # in the SI unit, as reported
    entered: str  # "1.2 mg/dL" when typed in another unit, else ""

    @property
    def flag(self) -> str:
        return self.result.flag

    @property
    def grade(self) -> int | None:
        return self.result.ctcae_grade

    @property
    def term(self) -> str:
        return self.result.ctcae_term


@dataclass(frozen=True)
class Row:
    analyte: Analyte
    unit: str
    reference: str
    cells: list[Cell | None]


@dataclass(frozen=True)
class RowGroup:
    code: str
    label: str
    rows: list[Row]


@dataclass(frozen=True)
class LabGrid:
    panels: list[LabPanel]
    groups: list[RowGroup] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.panels


def cell_for(result: LabResult) -> Cell:
    analyte = analytes.get(result.analyte)
    entered = ""
    if result.entered_unit != analyte.unit:
        entered = analytes.typed(result.entered_value, result.entered_unit)
    return Cell(result=result, value=analytes.number(result.value), entered=entered)


def lab_grid(*, patient: Patient) -> LabGrid:
    """The patient's labs as a matrix: one column per panel (oldest first), one row per
    analyte that has at least one value, grouped as in the catalogue. Two queries."""
    panels = list(lab_panels(patient=patient))
    by_panel = [{r.analyte: r for r in panel.results.all()} for panel in panels]
    present = set().union(*(results.keys() for results in by_panel)) if panels else set()
    groups = []
    for group, members in analytes.by_group():
        rows = [
            Row(
                analyte=analyte,
                unit=analytes.unit_label(analyte.unit),
                reference=analyte.reference_for(patient.sex).display(),
                cells=[
                    cell_for(results[analyte.code]) if analyte.code in results else None
                    for results in by_panel
                ],
            )
            for analyte in members
            if analyte.code in present
        ]
        if rows:
            groups.append(RowGroup(group.code, str(group.label), rows))
    return LabGrid(panels=panels, groups=groups)


def abnormal_cells(panel: LabPanel) -> list[tuple[Analyte, Cell]]:
    """The results of `panel` that are flagged or graded, in catalogue order (uses the
    prefetched results)."""
    results = {r.analyte: r for r in panel.results.all()}
    return [
        (analyte, cell_for(results[analyte.code]))
        for analyte in analytes.ANALYTES
        if analyte.code in results
        and (results[analyte.code].flag or results[analyte.code].ctcae_grade)
    ]
