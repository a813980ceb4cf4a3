"""The analysis dataset: one row per enrolled patient, derived from the CRFs.

This is the single source of the survival API, the exports and the dashboard. It reads every
app (analytics sits on top; nothing imports it) with one query per source table, whatever
the number of patients, and derives the outcomes by the statistician's contract of DESIGN.md:

- OS: from the origin (the enrollment by default; the diagnosis or the first cycle on request)
  to death from any cause (`os_event` = 1), censored at the last date known alive.
- RFS, resected patients only: from the operation to the first recurrence after it or death,
  whichever comes first (`rfs_event` = 1), censored at the last date known alive (and so
  recurrence-free: a recurrence would have ended it).

Days are whole days between dates; a patient whose end is before the origin (a diagnosis
origin with data errors cannot do this; a missing origin can) gets no duration and is left out
of the analyses with the reason in `exclusion`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from django.db.models import QuerySet

from assessments.models import ResponseEvaluation
from exchange.models import RetrospectiveAbstract
from followup.models import Death, Recurrence
from followup.selectors import last_known_alive_by_patient
from patients.models import Baseline, Enrollment, Patient, Screening, Withdrawal
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from treatments.models import ChemoCycle, RegimenLine

DAYS_PER_MONTH = 30.4375


COLUMNS: tuple[str, ...] = (
    "subject_code",
    "site",
    "cohort",
    "sex",
    "age",
    "enrolled_on",
    "diagnosed_on",
    "ecog",
    "primary_site",
    "liver_mets_count",
    "liver_mets_largest_mm",
    "liver_mets_distribution",
    "ca19_9_baseline",
    "cea_baseline",
    "regimen",
    "first_cycle_on",
    "cycles_before_surgery",
    "best_response",
    "ca19_9_change_pct_first",
    "progression_at_first",
    "mdt_decision",
    "resected",
    "surgery_on",
    "surgery_days",
    "procedures",
    "r_status",
    "ypt",
    "ypn",
    "clavien_dindo_max",
    "popf_grade",
    "length_of_stay_days",
    "mortality_90d",
    "adjuvant_cycles",
    "recurrence_on",
    "recurrence_kind",
    "recurrence_sites",
    "death_on",
    "death_cause",
    "withdrawn_on",
    "last_known_alive",
    "origin",
    "origin_on",
    "os_days",
    "os_months",
    "os_event",
    "rfs_days",
    "rfs_event",
    "exclusion",
)
"""The columns of every row, in order (the frame, the codebook and the exports use it)."""


class Origin(StrEnum):
    ENROLLMENT = "enrollment"
    DIAGNOSIS = "diagnosis"
    FIRST_CYCLE = "first_cycle"


RESPONSE_ORDER = {"CR": 0, "PR": 1, "SD": 2, "PD": 3, "NE": 4}
MARGIN_ORDER = {"R0": 0, "R1": 1, "R2": 2}
CLAVIEN_ORDER = ["I", "II", "IIIa", "IIIb", "IVa", "IVb", "V"]
POPF_ORDER = ["BL", "A", "B", "C"]


def _days(start: date | None, end: date | None) -> int | None:
    if start is None or end is None:
        return None
    return (end - start).days


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _worst(values: Iterable[str], order) -> str | None:
    ranked = [v for v in values if v and v in order]
    if not ranked:
        return None
    if isinstance(order, dict):
        return max(ranked, key=order.__getitem__)
    return max(ranked, key=order.index)


def _by_patient(rows: Iterable, key: str = "patient_id") -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


_LIVER_PROCEDURES = (
    "liver_wedge",
    "liver_segmentectomy",
    "liver_hemihepatectomy",
    "liver_ablation",
)


def _procedures(operation) -> str:
    """The operation's procedures, e.g. "pd+wedge" (`operation`: a row of the Operation
    columns the dataset reads)."""
    parts = [operation.pancreatic_procedure]
    for name in _LIVER_PROCEDURES:
        if getattr(operation, name):
            parts.append(name.removeprefix("liver_"))
    return "+".join(p for p in parts if p)


def build(
    *,
    patients: QuerySet[Patient],
    origin: Origin | str = Origin.ENROLLMENT,
) -> list[dict]:
    """The analysis rows of the enrolled patients among `patients` (a queryset the caller has
    already scoped to the user's sites), ordered by subject code. One query per source table."""
    origin = Origin(origin)
    # Every table is read as tuples of the columns the rows use (named tuples where a row reads
    # them by name): building model instances was two thirds of the time on a 10,000-patient
    # cohort (bench/analytics.py, cProfile: Model.__init__ and from_db), the queries a tenth.
    enrollments = {
        e.patient_id: e
        for e in Enrollment.objects.active()
        .filter(patient__in=patients)
        .values_list(
            "patient_id",
            "enrolled_on",
            "cohort",
            "diagnosed_on",
            "patient__subject_code",
            "patient__sex",
            "patient__site__code",
            named=True,
        )
    }
    # The tables are filtered by the caller's queryset as a subquery, not by the list of ids:
    # ten thousand parameters per query cost more than the query (bench/analytics.py). Rows of
    # patients who are not enrolled are read and left out below.
    scope = patients.order_by().values("pk")

    def active(model, **filters):
        return model.objects.active().filter(patient__in=scope, **filters)

    def by_key(queryset, *fields: str, key: str = "patient_id") -> dict[int, tuple]:
        return {row[0]: row for row in queryset.values_list(key, *fields, named=True)}

    screenings = by_key(active(Screening), "age_at_screening")
    baselines = by_key(
        active(Baseline),
        "ecog",
        "primary_site",
        "liver_met_count",
        "liver_met_largest_mm",
        "liver_met_distribution",
        "ca19_9_u_ml",
        "cea_ng_ml",
    )
    withdrawals = by_key(active(Withdrawal), "withdrawn_on")
    lines = _by_patient(
        active(RegimenLine).order_by("line_number").values_list("patient_id", "regimen", named=True)
    )
    cycles = _by_patient(
        active(ChemoCycle)
        .order_by("given_on", "id")
        .values_list("patient_id", "given_on", "adjuvant", named=True)
    )
    evaluations = _by_patient(
        active(ResponseEvaluation)
        .order_by("evaluated_on", "id")
        .values_list("patient_id", "recist_response", "ca19_9_change_pct", named=True)
    )
    mdts = _by_patient(
        active(MdtDecision)
        .order_by("decided_on", "id")
        .values_list("patient_id", "decision", named=True)
    )
    operations = by_key(
        active(Operation),
        "pk",
        "operated_on",
        "pancreatic_procedure",
        *_LIVER_PROCEDURES,
    )
    # The records of the operations read above (active, of the scoped patients), by operation.
    of_operations = {"operation__in": active(Operation).values("pk")}
    pathology = by_key(
        Pathology.objects.active().filter(**of_operations),
        "margin_pancreas",
        "margin_liver",
        "ypt",
        "ypn",
        key="operation_id",
    )
    complications = _by_patient(
        Complication.objects.active()
        .filter(**of_operations)
        .values_list("operation_id", "kind", "clavien_dindo", "isgps_grade", named=True),
        key="operation_id",
    )
    discharges = by_key(
        Discharge.objects.active().filter(**of_operations), "discharged_on", key="operation_id"
    )
    recurrences = _by_patient(
        active(Recurrence)
        .order_by("detected_on", "id")
        .values_list("patient_id", "detected_on", "kind", *Recurrence.SITE_FIELDS, named=True)
    )
    deaths = by_key(active(Death), "died_on", "cause")
    alive = last_known_alive_by_patient(patient_ids=scope)
    # Few patients have one (retrospective charts), and the fallbacks read many of its fields.
    abstracts = {a.patient_id: a for a in active(RetrospectiveAbstract)}

    rows = []
    for patient_id, enrollment in sorted(
        enrollments.items(), key=lambda item: item[1].patient__subject_code
    ):
        row = _row(
            enrollment=enrollment,
            origin=origin,
            screening=screenings.get(patient_id),
            baseline=baselines.get(patient_id),
            withdrawal=withdrawals.get(patient_id),
            lines=lines.get(patient_id, []),
            cycles=cycles.get(patient_id, []),
            evaluations=evaluations.get(patient_id, []),
            mdts=mdts.get(patient_id, []),
            operation=operations.get(patient_id),
            pathology=pathology,
            complications=complications,
            discharges=discharges,
            recurrences=recurrences.get(patient_id, []),
            death=deaths.get(patient_id),
            last_alive=alive.get(patient_id),
        )
        abstract = abstracts.get(patient_id)
        rows.append(_with_abstract(row, abstract) if abstract else row)
    return rows


# The retrospective abstract (exchange.RetrospectiveAbstract) holds what a chart review found
# but no CRF can hold without invented data (a cycle count without cycle dates, a best
# response without imaging, a partly abstracted operation). A CRF value always wins; the
# abstract only fills what the CRFs leave empty.
_ABSTRACT_FALLBACK = {
    "ecog": "ecog",
    "primary_site": "primary_site",
    "liver_mets_count": "liver_mets_count",
    "liver_mets_largest_mm": "liver_mets_largest_mm",
    "liver_mets_distribution": "liver_mets_distribution",
    "ca19_9_baseline": "ca19_9_u_ml",
    "cea_baseline": "cea_ng_ml",
    "regimen": "regimen",
    "first_cycle_on": "first_cycle_on",
    "best_response": "best_response",
    "r_status": "r_status",
}


def _with_abstract(row: dict, abstract) -> dict:
    """`row` with the empty values filled from the patient's retrospective abstract; an
    operation or recurrence known only from the abstract also sets resection and RFS."""
    row = dict(row)
    for column, field in _ABSTRACT_FALLBACK.items():
        value = getattr(abstract, field, None)
        if row.get(column) in (None, "") and value not in (None, ""):
            row[column] = _number(value) if isinstance(value, Decimal) else value
    if not row["cycles_before_surgery"] and abstract.cycles_count:  # no cycle recorded
        row["cycles_before_surgery"] = abstract.cycles_count
    if not row["resected"] and abstract.surgery_on:
        row["resected"] = True
        row["surgery_on"] = abstract.surgery_on
        row["surgery_days"] = _days(row["origin_on"], abstract.surgery_on)
        procedures = [abstract.pancreatic_procedure, abstract.liver_procedures.replace(";", "+")]
        row["procedures"] = "+".join(p for p in procedures if p) or None
        died_on = row["death_on"]
        row["mortality_90d"] = died_on is not None and _days(abstract.surgery_on, died_on) <= 90
    operated_on = row["surgery_on"]
    if row["recurrence_on"] is None and abstract.recurrence_on:
        row["recurrence_on"] = abstract.recurrence_on
        row["recurrence_kind"] = (
            Recurrence.Kind.RECURRENCE
            if operated_on and abstract.recurrence_on > operated_on
            else Recurrence.Kind.PROGRESSION
        )
        row["recurrence_sites"] = abstract.recurrence_sites or None
    if operated_on and row["rfs_event"] != 1:
        recurrence_on = row["recurrence_on"]
        recurred = row["recurrence_kind"] == Recurrence.Kind.RECURRENCE
        row["rfs_days"], row["rfs_event"] = _rfs(
            operated_on,
            recurrence_on=recurrence_on if recurred and recurrence_on > operated_on else None,
            died_on=row["death_on"],
            last_alive=row["last_known_alive"],
        )
    return row


def _rfs(
    operated_on: date | None,
    *,
    recurrence_on: date | None,
    died_on: date | None,
    last_alive: date | None,
) -> tuple[int | None, int | None]:
    """(rfs_days, rfs_event) of a resected patient: to the recurrence after the operation or
    death, whichever first (event 1), else censored at the last date known alive (event 0);
    (None, None) without an operation or a date to end on."""
    if not operated_on:
        return None, None
    if recurrence_on is not None:
        return _days(operated_on, recurrence_on), 1
    if died_on:
        return _days(operated_on, died_on), 1
    if last_alive:
        return max(_days(operated_on, last_alive), 0), 0
    return None, None


def _recurrence_sites(recurrence) -> str:
    """The ticked sites of a recurrence row, e.g. "liver;peritoneum" (Recurrence.sites)."""
    return ";".join(
        name.removeprefix("site_") for name in Recurrence.SITE_FIELDS if getattr(recurrence, name)
    )


def _row(
    *,
    enrollment,
    origin: Origin,
    screening,
    baseline,
    withdrawal,
    lines,
    cycles,
    evaluations,
    mdts,
    operation,
    pathology,
    complications,
    discharges,
    recurrences,
    death,
    last_alive: date | None,
) -> dict:
    first_line = lines[0] if lines else None
    first_line_cycles = [c for c in cycles if not c.adjuvant]
    adjuvant_cycles = [c for c in cycles if c.adjuvant]
    operated_on = operation.operated_on if operation else None
    first_eval = evaluations[0] if evaluations else None
    path = pathology.get(operation.pk) if operation else None
    comps = complications.get(operation.pk, []) if operation else []
    discharge = discharges.get(operation.pk) if operation else None
    last_mdt = mdts[-1] if mdts else None

    origin_on = {
        Origin.ENROLLMENT: enrollment.enrolled_on,
        Origin.DIAGNOSIS: enrollment.diagnosed_on,
        Origin.FIRST_CYCLE: cycles[0].given_on if cycles else None,
    }[origin]

    died_on = death.died_on if death else None
    last_known_alive = died_on or last_alive
    # OS
    os_end = died_on or last_alive
    os_days = _days(origin_on, os_end)
    # Why a patient has no OS time (a stable code, for the codebook and the statistician).
    exclusion = ""
    if origin_on is None:
        exclusion = "no_origin_date"
    elif os_days is None:
        exclusion = "no_date_known_alive"
    elif os_days < 0:
        exclusion = "follow_up_before_origin"
        os_days = None
    # RFS (resected only): the first recurrence after the operation, or death.
    recurrence = next(
        (
            r
            for r in recurrences
            if r.kind == Recurrence.Kind.RECURRENCE and operated_on and r.detected_on > operated_on
        ),
        None,
    )
    rfs_days, rfs_event = _rfs(
        operated_on,
        recurrence_on=recurrence.detected_on if recurrence else None,
        died_on=died_on,
        last_alive=last_alive,
    )
    first_event = recurrence or (recurrences[0] if recurrences else None)

    margins = [path.margin_pancreas, path.margin_liver] if path else []
    return {
        "subject_code": enrollment.patient__subject_code,
        "site": enrollment.patient__site__code,
        "cohort": enrollment.cohort,
        "sex": enrollment.patient__sex,
        "age": screening.age_at_screening if screening else None,
        "enrolled_on": enrollment.enrolled_on,
        "diagnosed_on": enrollment.diagnosed_on,
        "ecog": baseline.ecog if baseline else None,
        "primary_site": baseline.primary_site if baseline else None,
        "liver_mets_count": baseline.liver_met_count if baseline else None,
        "liver_mets_largest_mm": _number(baseline.liver_met_largest_mm) if baseline else None,
        "liver_mets_distribution": baseline.liver_met_distribution if baseline else None,
        "ca19_9_baseline": _number(baseline.ca19_9_u_ml) if baseline else None,
        "cea_baseline": _number(baseline.cea_ng_ml) if baseline else None,
        "regimen": first_line.regimen if first_line else None,
        "first_cycle_on": cycles[0].given_on if cycles else None,
        "cycles_before_surgery": len(
            [c for c in first_line_cycles if not operated_on or c.given_on < operated_on]
        ),
        "best_response": _best_response(evaluations),
        "ca19_9_change_pct_first": _number(first_eval.ca19_9_change_pct) if first_eval else None,
        "progression_at_first": (first_eval.recist_response == "PD") if first_eval else None,
        "mdt_decision": last_mdt.decision if last_mdt else None,
        "resected": operation is not None,
        "surgery_on": operated_on,
        "surgery_days": _days(origin_on, operated_on) if operated_on else None,
        "procedures": _procedures(operation) if operation else None,
        "r_status": _worst(margins, MARGIN_ORDER),
        "ypt": path.ypt if path else None,
        "ypn": path.ypn if path else None,
        "clavien_dindo_max": _worst((c.clavien_dindo for c in comps), CLAVIEN_ORDER)
        if operation
        else None,
        "popf_grade": _worst(
            (c.isgps_grade for c in comps if c.kind == Complication.Kind.POPF), POPF_ORDER
        )
        if operation
        else None,
        "length_of_stay_days": _days(operated_on, discharge.discharged_on) if discharge else None,
        "mortality_90d": (died_on is not None and _days(operated_on, died_on) <= 90)
        if operated_on
        else None,
        "adjuvant_cycles": len(adjuvant_cycles) if operated_on else None,
        "recurrence_on": first_event.detected_on if first_event else None,
        "recurrence_kind": first_event.kind if first_event else None,
        "recurrence_sites": _recurrence_sites(first_event) if first_event else None,
        "death_on": died_on,
        "death_cause": death.cause if death else None,
        "withdrawn_on": withdrawal.withdrawn_on if withdrawal else None,
        "last_known_alive": last_known_alive,
        "origin": origin.value,
        "origin_on": origin_on,
        "os_days": os_days,
        "os_months": round(os_days / DAYS_PER_MONTH, 2) if os_days is not None else None,
        "os_event": (1 if died_on else 0) if os_days is not None else None,
        "rfs_days": rfs_days,
        "rfs_event": rfs_event,
        "exclusion": exclusion,
    }


def _best_response(evaluations) -> str | None:
    responses = [e.recist_response for e in evaluations if e.recist_response]
    return min(responses, key=lambda r: RESPONSE_ORDER.get(r, 9)) if responses else None
