"""The inputs of the swimmer and waterfall plots, built from the analysis dataset plus one query
per source the dataset summarises (cycles, evaluations, imaging): a fixed number of queries,
never one per patient.

Both take the analysis rows of the user's patients (`analytics.selectors.analysis_rows`) and
read only patients among them, so a figure shows exactly the patients the dashboard counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max, Min, Q

from analytics.plots import SwimmerRow, WaterfallValue
from assessments.models import ImagingStudy, ResponseEvaluation
from patients.models import Patient
from treatments.models import ChemoCycle
from trial.scoping import scope_to_user_sites

RESPONSES = ("CR", "PR", "SD", "PD", "NE")


def _scope(user: AbstractBaseUser | AnonymousUser):
    """The ids of the user's patients, as a subquery."""
    return scope_to_user_sites(Patient.objects.active(), user).values("pk")


def _days(start: date | None, end: date | None) -> float | None:
    if start is None or end is None:
        return None
    return float((end - start).days)


@dataclass(frozen=True)
class SwimmerData:
    rows: list[SwimmerRow]
    left_out: int  # patients without a date known alive after enrollment


def swimmer_rows(*, user: AbstractBaseUser | AnonymousUser, rows: Iterable[Mapping]) -> SwimmerData:
    """One `SwimmerRow` per analysis row, days from enrollment: follow-up to death or the last
    date known alive, first-line chemotherapy (first to last cycle of line 1 before surgery),
    adjuvant chemotherapy, the operation, each response evaluation with its RECIST response,
    and the first recurrence or progression. Two queries."""
    rows = list(rows)
    codes = {row["subject_code"] for row in rows}
    first_line = Q(adjuvant=False, line__line_number=1)
    spans = {
        item["patient__subject_code"]: item
        for item in ChemoCycle.objects.active()
        .filter(patient__in=_scope(user))
        .values("patient__subject_code")
        .annotate(
            first_start=Min("given_on", filter=first_line),
            first_end=Max("given_on", filter=first_line),
            adjuvant_start=Min("given_on", filter=Q(adjuvant=True)),
            adjuvant_end=Max("given_on", filter=Q(adjuvant=True)),
        )
        .order_by()
    }
    evaluations: dict[str, list[tuple[date, str]]] = defaultdict(list)
    for code, on, response in (
        ResponseEvaluation.objects.active()
        .filter(patient__in=_scope(user))
        .order_by("evaluated_on", "id")
        .values_list("patient__subject_code", "evaluated_on", "recist_response")
    ):
        if code in codes:
            evaluations[code].append((on, response if response in RESPONSES else "NE"))

    result, left_out = [], 0
    for row in rows:
        start = row.get("enrolled_on")
        follow_up = _days(start, row.get("last_known_alive"))
        if follow_up is None or follow_up < 0:
            left_out += 1
            continue
        code = row["subject_code"]
        span = spans.get(code, {})
        chemo = adjuvant = None
        if span.get("first_start"):
            chemo = (_days(start, span["first_start"]), _days(start, span["first_end"]))
        if span.get("adjuvant_start"):
            adjuvant = (_days(start, span["adjuvant_start"]), _days(start, span["adjuvant_end"]))
        result.append(
            SwimmerRow(
                subject_code=code,
                follow_up_days=follow_up,
                died=bool(row.get("death_on")),
                chemo=chemo,
                surgery_day=_days(start, row.get("surgery_on")),
                adjuvant=adjuvant,
                evaluations=tuple(
                    (_days(start, on), response) for on, response in evaluations.get(code, [])
                ),
                recurrence_day=_days(start, row.get("recurrence_on")),
            )
        )
    return SwimmerData(result, left_out)


@dataclass(frozen=True)
class WaterfallData:
    values: list[WaterfallValue]
    with_value: int
    uninformative: int = 0  # CA19-9: baseline too low to follow (e.g. Lewis-antigen negative)


def recist_waterfall(
    *, user: AbstractBaseUser | AnonymousUser, rows: Iterable[Mapping]
) -> WaterfallData:
    """Per patient, the best (lowest) change from baseline in the sum of target-lesion
    diameters (`ImagingStudy.change_from_baseline_pct`) over the follow-up studies before any
    operation (a resection removes lesions: that is not a response), coloured by the patient's
    best RECIST response in the dataset. One query."""
    rows = list(rows)
    surgery = {row["subject_code"]: row.get("surgery_on") for row in rows}
    best: dict[str, float] = {}
    for code, on, change in (
        ImagingStudy.objects.active()
        .filter(
            patient__in=_scope(user),
            is_baseline=False,
            change_from_baseline_pct__isnull=False,
        )
        .values_list("patient__subject_code", "performed_on", "change_from_baseline_pct")
    ):
        if code not in surgery or (surgery[code] is not None and on >= surgery[code]):
            continue
        value = float(change)
        if code not in best or value < best[code]:
            best[code] = value
    values = [
        WaterfallValue(
            row["subject_code"],
            best.get(row["subject_code"]),
            row.get("best_response") if row.get("best_response") in RESPONSES else None,
        )
        for row in rows
    ]
    return WaterfallData(values, len(best))


def ca19_9_waterfall(
    *, user: AbstractBaseUser | AnonymousUser, rows: Iterable[Mapping]
) -> WaterfallData:
    """Per patient, the best (lowest) CA19-9 change from baseline over the response
    evaluations (`ResponseEvaluation.ca19_9_change_pct`), leaving out evaluations whose
    baseline was too low to follow (uninformative). One query."""
    rows = list(rows)
    codes = {row["subject_code"] for row in rows}
    best: dict[str, float] = {}
    uninformative: set[str] = set()
    for code, change, flagged in (
        ResponseEvaluation.objects.active()
        .filter(patient__in=_scope(user))
        .values_list("patient__subject_code", "ca19_9_change_pct", "ca19_9_uninformative")
    ):
        if code not in codes:
            continue
        if flagged:
            uninformative.add(code)
            continue
        if change is None:
            continue
        value = float(change)
        if code not in best or value < best[code]:
            best[code] = value
    values = [WaterfallValue(row["subject_code"], best.get(row["subject_code"])) for row in rows]
    return WaterfallData(values, len(best), len(uninformative - set(best)))
