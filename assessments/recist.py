"""RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-47), as pure functions.

The input is a patient's imaging assessments in date order; the first is the baseline the
target lesions were chosen on. Each assessment gives its target lesions by label (the label
follows a lesion across studies), the state of the non-target lesions and whether new
lesions appeared. The output is, per assessment: the sum of diameters, the change from the
baseline and from the nadir, the overall response (CR / PR / SD / PD / NE), the best overall
response so far and the date of the first progression.

Sizes are Decimals in millimetres (longest diameter; short axis for a lymph node). Thresholds
are compared exactly (`S·10 ≤ 7·B` rather than a rounded percentage), so a decrease of
exactly 30% is a partial response and an increase of exactly 20% and 5 mm is progression.
No ORM here: the services feed it from the database and store what it returns.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import NamedTuple

from django.utils.translation import gettext as _

MAX_TARGETS = 5
MAX_PER_ORGAN = 2
MIN_NON_NODAL_MM = Decimal(10)  # measurable lesion: ≥ 10 mm longest diameter (CT slice ≤ 5 mm)
MIN_NODAL_MM = Decimal(15)  # pathological, measurable node: ≥ 15 mm short axis
NODE_NORMAL_MM = Decimal(10)  # a node < 10 mm short axis is normal again (counts for CR)
PR_FRACTION = Decimal("0.7")  # ≥ 30% decrease from the baseline sum
PD_FRACTION = Decimal("1.2")  # ≥ 20% increase over the nadir …
PD_ABSOLUTE_MM = Decimal(5)  # … and ≥ 5 mm absolute increase
LYMPH_NODE = "lymph_node"  # all nodes together count as one organ


class NonTarget(StrEnum):
    ABSENT = "absent"
    PRESENT = "present"
    PROGRESSION = "progression"
    NOT_EVALUATED = "not_evaluated"


class Response(StrEnum):
    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


# Best overall response: CR > PR > SD > PD; NE never counts as a best response.
RANK = {Response.CR: 4, Response.PR: 3, Response.SD: 2, Response.PD: 1}


class Lesion(NamedTuple):
    """A target lesion as measured on one study: (organ, is_lymph_node, diameter_mm)."""

    organ: str
    is_lymph_node: bool
    diameter_mm: Decimal


@dataclass(frozen=True)
class Assessment:
    """One imaging study: target lesions by label, non-target state, new lesions."""

    on: date
    lesions: Mapping[str, Lesion | tuple]
    non_target: str = NonTarget.PRESENT
    new_lesions: bool = False

    def measured(self) -> dict[str, Lesion]:
        return {label: Lesion(*value) for label, value in self.lesions.items()}


@dataclass(frozen=True)
class Problem:
    """A baseline that breaks a RECIST limit; `label` names the lesion ("" for the set)."""

    label: str
    message: str


@dataclass(frozen=True)
class Result:
    """What RECIST says about one assessment."""

    on: date
    is_baseline: bool
    sum_mm: Decimal | None  # None when a target lesion was not measured
    nadir_mm: Decimal | None  # the smallest sum before this assessment (baseline included)
    change_from_baseline_pct: Decimal | None
    change_from_nadir_pct: Decimal | None
    response: Response | None  # None for the baseline itself
    best_response: Response | None  # best so far, this assessment included
    first_progression_on: date | None  # first PD so far, this assessment included
    missing: tuple[str, ...] = ()  # baseline labels not measured on this study
    unknown: tuple[str, ...] = ()  # labels measured here that the baseline does not have
    reasons: tuple[str, ...] = ()  # why the response is what it is, for people


@dataclass(frozen=True)
class Evaluation:
    results: list[Result] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def best_response(self) -> Response | None:
        return self.results[-1].best_response if self.results else None

    @property
    def first_progression_on(self) -> date | None:
        return self.results[-1].first_progression_on if self.results else None


def _mm(value: Decimal) -> str:
    return f"{value.normalize():f}"


def baseline_problems(lesions: Mapping[str, Lesion | tuple]) -> list[Problem]:
    """Every RECIST 1.1 limit the baseline's target lesions break, each naming the lesion.

    1 to 5 targets, at most 2 per organ (all lymph nodes count as one organ), non-nodal
    lesions ≥ 10 mm longest diameter, nodes ≥ 15 mm short axis.
    """
    measured = {label: Lesion(*value) for label, value in lesions.items()}
    problems: list[Problem] = []
    if not measured:
        problems.append(Problem("", _("A RECIST baseline needs at least one target lesion.")))
    if len(measured) > MAX_TARGETS:
        problems.append(
            Problem(
                "",
                _("RECIST 1.1 allows at most %(max)s target lesions; %(count)s were given.")
                % {"max": MAX_TARGETS, "count": len(measured)},
            )
        )
    per_organ = Counter(lesion.organ for lesion in measured.values())
    for organ, count in sorted(per_organ.items()):
        if count > MAX_PER_ORGAN:
            labels = sorted(label for label, lesion in measured.items() if lesion.organ == organ)
            problems.append(
                Problem(
                    labels[MAX_PER_ORGAN],
                    _(
                        "%(labels)s: RECIST 1.1 allows at most %(max)s target lesions per organ "
                        "(%(count)s in %(organ)s)."
                    )
                    % {
                        "labels": ", ".join(labels),
                        "max": MAX_PER_ORGAN,
                        "count": count,
                        "organ": organ.replace("_", " "),
                    },
                )
            )
    for label, lesion in sorted(measured.items()):
        if lesion.is_lymph_node and lesion.diameter_mm < MIN_NODAL_MM:
            problems.append(
                Problem(
                    label,
                    _(
                        "%(label)s: a lymph node is a target only with a short axis of at least "
                        "%(min)s mm (%(size)s mm given)."
                    )
                    % {"label": label, "min": _mm(MIN_NODAL_MM), "size": _mm(lesion.diameter_mm)},
                )
            )
        elif not lesion.is_lymph_node and lesion.diameter_mm < MIN_NON_NODAL_MM:
            problems.append(
                Problem(
                    label,
                    _(
                        "%(label)s: a target lesion must measure at least %(min)s mm "
                        "(%(size)s mm given)."
                    )
                    % {
                        "label": label,
                        "min": _mm(MIN_NON_NODAL_MM),
                        "size": _mm(lesion.diameter_mm),
                    },
                )
            )
    return problems


def percent_change(value: Decimal, reference: Decimal) -> Decimal | None:
    """(value − reference) / reference in percent, to one decimal; None when reference is 0."""
    if not reference:
        return None
    change = (value - reference) * 100 / reference
    return change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def is_sum_progression(current: Decimal, nadir: Decimal) -> bool:
    """≥ 20% over the nadir AND ≥ 5 mm absolute increase (RECIST 1.1 §4.3.1)."""
    increase = current - nadir
    return increase >= PD_ABSOLUTE_MM and current >= nadir * PD_FRACTION


def is_partial_response(current: Decimal, baseline: Decimal) -> bool:
    """≥ 30% decrease of the sum from the baseline sum."""
    return current <= baseline * PR_FRACTION


def targets_disappeared(lesions: Mapping[str, Lesion]) -> bool:
    """Target CR: every non-nodal target gone (0 mm), every nodal target < 10 mm short axis."""
    return all(
        lesion.diameter_mm < NODE_NORMAL_MM if lesion.is_lymph_node else lesion.diameter_mm == 0
        for lesion in lesions.values()
    )


def better(first: Response | None, second: Response | None) -> Response | None:
    """The better of two responses by CR > PR > SD > PD; NE and None never win."""
    ranked = [r for r in (first, second) if r in RANK]
    return max(ranked, key=RANK.__getitem__) if ranked else None


def _follow_up(
    assessment: Assessment, baseline: dict[str, Lesion], baseline_sum: Decimal, nadir: Decimal
) -> tuple[Response, Decimal | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    measured = assessment.measured()
    # The lesion's kind comes from the baseline, where it was chosen.
    lesions = {
        label: Lesion(baseline[label].organ, baseline[label].is_lymph_node, lesion.diameter_mm)
        for label, lesion in measured.items()
        if label in baseline
    }
    missing = tuple(sorted(set(baseline) - set(measured)))
    unknown = tuple(sorted(set(measured) - set(baseline)))
    partial_sum = sum((lesion.diameter_mm for lesion in lesions.values()), Decimal(0))
    reasons: list[str] = []
    if assessment.new_lesions:
        reasons.append(_("new lesion"))
    if assessment.non_target == NonTarget.PROGRESSION:
        reasons.append(_("unequivocal progression of non-target lesions"))
    if is_sum_progression(partial_sum, nadir):
        # A sum of only some targets can only under-estimate the full one: PD stands.
        reasons.append(
            _("sum %(sum)s mm is ≥ 20%% and ≥ 5 mm over the nadir (%(nadir)s mm)")
            % {"sum": _mm(partial_sum), "nadir": _mm(nadir)}
        )
    complete_sum = None if missing else partial_sum
    if reasons:
        return Response.PD, complete_sum, missing, unknown, tuple(reasons)
    if missing:
        reason = _("not measured: %(labels)s") % {"labels": ", ".join(missing)}
        return Response.NE, None, missing, unknown, (reason,)
    if targets_disappeared(lesions):
        if assessment.non_target == NonTarget.ABSENT:
            return Response.CR, partial_sum, missing, unknown, (_("all lesions gone"),)
        reason = _("target lesions gone, non-target lesions present or not evaluated")
        return Response.PR, partial_sum, missing, unknown, (reason,)
    if is_partial_response(partial_sum, baseline_sum):
        reason = _("sum ≥ 30%% below the baseline (%(baseline)s mm)") % {
            "baseline": _mm(baseline_sum)
        }
        return Response.PR, partial_sum, missing, unknown, (reason,)
    return Response.SD, partial_sum, missing, unknown, (_("neither PR nor PD"),)


def evaluate(assessments: Sequence[Assessment]) -> Evaluation:
    """RECIST 1.1 over `assessments` (date order; the first is the baseline).

    Returns one Result per assessment and the baseline's problems (RECIST limits broken).
    Responses are computed even when the baseline breaks a limit: refusing such a baseline
    is the caller's decision. The nadir is the smallest complete sum before an assessment,
    the baseline included; an assessment with a target not measured is NE unless PD is
    evident anyway (new lesion, non-target progression, or the measured targets alone
    already rise ≥ 20% and ≥ 5 mm over the nadir).
    """
    if not assessments:
        return Evaluation()
    first, *rest = assessments
    baseline = first.measured()
    problems = baseline_problems(baseline)
    baseline_sum = sum((lesion.diameter_mm for lesion in baseline.values()), Decimal(0))
    results = [
        Result(
            on=first.on,
            is_baseline=True,
            sum_mm=baseline_sum,
            nadir_mm=None,
            change_from_baseline_pct=None,
            change_from_nadir_pct=None,
            response=None,
            best_response=None,
            first_progression_on=None,
        )
    ]
    nadir = baseline_sum
    best: Response | None = None
    progression_on: date | None = None
    for assessment in rest:
        response, total, missing, unknown, reasons = _follow_up(
            assessment, baseline, baseline_sum, nadir
        )
        best = better(best, response)
        if response == Response.PD and progression_on is None:
            progression_on = assessment.on
        results.append(
            Result(
                on=assessment.on,
                is_baseline=False,
                sum_mm=total,
                nadir_mm=nadir,
                change_from_baseline_pct=None
                if total is None
                else percent_change(total, baseline_sum),
                change_from_nadir_pct=None if total is None else percent_change(total, nadir),
                response=response,
                best_response=best,
                first_progression_on=progression_on,
                missing=missing,
                unknown=unknown,
                reasons=reasons,
            )
        )
        if total is not None:
            nadir = min(nadir, total)
    return Evaluation(results=results, problems=problems)
