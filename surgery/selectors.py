"""Reads of the surgery app for pages, panels and later apps (follow-up, biobank, analytics)."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Prefetch

from assessments.models import LabPanel, ResponseEvaluation
from patients.models import Patient
from surgery import cci, postop
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology


@dataclass
class PostopDay:
    """One protocol day of the postoperative labs and what was recorded for it."""

    day: int
    first: int
    last: int
    due_on: date | None
    panel: LabPanel | None = None

    @property
    def state(self) -> str:
        if self.panel is None:
            return "missing"
        return "out_of_window" if self.panel.out_of_window else "done"

    @property
    def pod(self) -> int | None:
        if self.panel is None or self.due_on is None:
            return None
        return (self.panel.sampled_on - self.due_on).days + self.day


@dataclass
class SurgerySummary:
    decisions: list[MdtDecision]
    operation: Operation | None
    pathology: Pathology | None
    complications: list[Complication]
    discharge: Discharge | None
    postop_days: list[PostopDay] = field(default_factory=list)

    @property
    def grades(self) -> list[str]:
        return [c.clavien_dindo for c in self.complications]

    @property
    def cci(self) -> float | None:
        return cci.cci(self.grades) if self.operation else None

    @property
    def max_clavien_dindo(self) -> str | None:
        return cci.max_grade(self.grades)

    @property
    def popf_grade(self) -> str | None:
        """The highest ISGPS grade of the pancreatic fistulas (BL < B < C), or None."""
        order = ("BL", "B", "C")
        grades = [c.isgps_grade for c in self.complications if c.kind == "popf"]
        ranked = [order.index(g) for g in grades if g in order]
        return order[max(ranked)] if ranked else None

    @property
    def postoperative_death(self) -> Complication | None:
        """A Clavien-Dindo V complication (death); 30/90-day mortality comes with follow-up."""
        return next((c for c in self.complications if c.is_death), None)

    @property
    def length_of_stay(self) -> int | None:
        return self.discharge.length_of_stay if self.discharge else None

    @property
    def postop_days_done(self) -> list[int]:
        return [d.day for d in self.postop_days if d.panel is not None]

    @property
    def is_empty(self) -> bool:
        return not self.decisions and self.operation is None

    @property
    def radical_decisions(self) -> list[MdtDecision]:
        return [d for d in self.decisions if d.is_surgery]


def postop_days(operation: Operation | None, panels: list[LabPanel]) -> list[PostopDay]:
    """The five protocol days with their due date and the panel recorded for each."""
    by_day = {p.postop_day: p for p in panels}
    rows = []
    for day in postop.PROTOCOL_DAYS:
        first, last = postop.window(day)
        due_on = operation.operated_on + timedelta(days=day) if operation else None
        rows.append(PostopDay(day, first, last, due_on, by_day.get(day)))
    return rows


def surgery_summary(*, patient: Patient) -> SurgerySummary:
    """Everything the surgery pages and the patient-page card show for `patient`: the active
    MDT decisions (with their evidence and its evaluations), the index operation with its
    pathology, complications, discharge, and the postoperative lab days. Five queries, however
    long the patient's history."""
    decisions = list(
        MdtDecision.objects.active()
        .filter(patient=patient)
        .select_related("investigator")
        .prefetch_related(
            Prefetch(
                "evidence",
                queryset=MdtEvidence.objects.active().select_related("evaluation"),
                to_attr="active_evidence",
            )
        )
        .order_by("decided_on", "id")
    )
    operation = (
        Operation.objects.active()
        .filter(patient=patient)
        .select_related("mdt_decision", "pathology", "discharge")
        .prefetch_related(
            Prefetch(
                "complications",
                queryset=Complication.objects.active().order_by("onset_on", "id"),
                to_attr="active_complications",
            )
        )
        .first()
    )
    pathology = discharge = None
    complications: list[Complication] = []
    panels: list[LabPanel] = []
    if operation is not None:
        pathology = getattr(operation, "pathology", None)
        if pathology is not None and pathology.is_voided:
            pathology = None
        discharge = getattr(operation, "discharge", None)
        if discharge is not None and discharge.is_voided:
            discharge = None
        complications = operation.active_complications
        for complication in complications:
            complication.operation = operation
        if discharge is not None:
            discharge.operation = operation
        panels = list(
            LabPanel.objects.active()
            .filter(patient=patient, context=LabPanel.Context.POSTOP)
            .order_by("sampled_on", "id")
        )
    return SurgerySummary(
        decisions=decisions,
        operation=operation,
        pathology=pathology,
        complications=complications,
        discharge=discharge,
        postop_days=postop_days(operation, panels),
    )


def mdt_evaluation_choices(*, patient: Patient):
    """The patient's active response evaluations, newest first (the MDT form's choices)."""
    return (
        ResponseEvaluation.objects.active().filter(patient=patient).order_by("-evaluated_on", "-id")
    )


def mdt_decision_list(*, patient: Patient) -> list[MdtDecision]:
    """Every MDT decision of `patient` (voided ones too, struck through), with evidence."""
    return list(
        MdtDecision.objects.filter(patient=patient)
        .select_related("investigator")
        .prefetch_related(
            Prefetch(
                "evidence",
                queryset=MdtEvidence.objects.active().select_related("evaluation"),
                to_attr="active_evidence",
            )
        )
        .order_by("decided_on", "id")
    )


def operation_get(*, patient: Patient) -> Operation | None:
    """The patient's active index operation, or None."""
    return Operation.objects.active().filter(patient=patient).first()


def complication_list(*, operation: Operation) -> list[Complication]:
    """The operation's complications (voided ones too), by onset."""
    return list(Complication.objects.filter(operation=operation).order_by("onset_on", "id"))
