"""Demo chemotherapy: regimen lines, cycles with doses, dose changes and adverse events.

It also plans each patient's course of response evaluations (`Course`), which
`assessments/demo.py` turns into matching imaging, labs and evaluations: the plan lives here
because a progression at an evaluation changes the regimen line that follows it.
"""

from dataclasses import dataclass, field
from datetime import date

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


def seed(context: DemoContext) -> None:
    """Fills context.shared["courses"]: {patient_id: Course}."""
    context.shared.setdefault("courses", {})
