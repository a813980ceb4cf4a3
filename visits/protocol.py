"""The protocol calendar of NCT06873178 as pure rules (no ORM).

Given one patient's timeline facts (`Facts`: dates of the forms that exist) and today, it
returns the visits the protocol expects (`Expected`): code, target date, window, the forms the
visit needs and its status. `visits.services` turns the records into `Facts` and stores the
result; views, the worklist, reminders and analytics read what it stored. Nothing else holds
visit timing.

The rules (windows cite the protocol where it gives one; the others are the study team's
working windows, kept here in one place):

- Screening (SCR) and baseline (BL): the baseline within 14 days of the enrollment.
- Chemotherapy cycles before any operation (C01, C02 …, numbered by date across lines):
  the first within 28 days of the enrollment, then every cycle length of the regimen in
  effect (14 days for (m)FOLFIRINOX / NALIRIFOX, 28 for AG), −3/+7 days. One cycle ahead is
  expected while first-line treatment goes on.
- Response evaluations (E1, E2 …): the first after cycle 4, its window running to the end of
  cycle 6; then every 4 cycles, or every 2 when the first evaluation found progression.
- MDT (MDT1 …): after an evaluation that refers the patient, within 14 days.
- After the operation: postoperative labs on days 1, 3, 5, 7 (±1) and 30 (±3) (POD1 …
  POD30, windows from `surgery.postop`); adjuvant cycles on the original regimen (A01 …),
  the first 4–12 weeks after the operation, then every cycle length, for 24 weeks in all.
- Follow-up contacts (FU001 …) every 30 days (±7) from the end of treatment until death:
  the recorded end of treatment, else the end of the planned adjuvant course, else a decision
  for best supportive care. A contact counts for the nearest month, even out of its window.
- Death, withdrawal and loss to follow-up stop the calendar: a visit not done whose window
  was still open then is not applicable, and no later visit is expected (none is listed). A
  visit whose window had closed before stays overdue until a coordinator closes it as missed:
  it is missing data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from surgery import postop

DAY, WEEK = timedelta(days=1), timedelta(days=7)

FIRST_CYCLE_WITHIN = 28 * DAY  # days after the enrollment
CYCLE_EARLY, CYCLE_LATE = 3 * DAY, 7 * DAY
BASELINE_WITHIN = 14 * DAY
FIRST_EVALUATION_AFTER = 4  # cycles
FIRST_EVALUATION_LATEST = 6  # cycles: the window of the first evaluation is cycles 4–6
ASSESS_EVERY, ASSESS_EVERY_AFTER_PROGRESSION = 4, 2  # cycles
EVALUATION_EARLY, EVALUATION_LATE = 7 * DAY, 14 * DAY
MDT_TARGET, MDT_WITHIN = 7 * DAY, 14 * DAY  # after the referral
ADJUVANT_FIRST, ADJUVANT_EARLIEST, ADJUVANT_LATEST = 6 * WEEK, 4 * WEEK, 12 * WEEK
ADJUVANT_COURSE = 24 * WEEK
FOLLOWUP_EVERY, FOLLOWUP_TOLERANCE = 30 * DAY, 7 * DAY
DEFAULT_CYCLE_DAYS = 14


class Kind(StrEnum):
    SCREENING = "screening"
    BASELINE = "baseline"
    CYCLE = "cycle"
    EVALUATION = "evaluation"
    MDT = "mdt"
    POSTOP = "postop"
    ADJUVANT = "adjuvant"
    FOLLOWUP = "followup"


class Status(StrEnum):
    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"
    MISSED = "missed"
    NOT_APPLICABLE = "na"


# The forms each kind of visit needs ("app.model" labels; tests check that they resolve).
FORMS: dict[Kind, tuple[str, ...]] = {
    Kind.SCREENING: ("patients.screening",),
    Kind.BASELINE: ("patients.baseline",),
    Kind.CYCLE: ("treatments.chemocycle",),
    Kind.EVALUATION: (
        "assessments.imagingstudy",
        "assessments.labpanel",
        "assessments.responseevaluation",
    ),
    Kind.MDT: ("surgery.mdtdecision",),
    Kind.POSTOP: ("assessments.labpanel",),
    Kind.ADJUVANT: ("treatments.chemocycle",),
    Kind.FOLLOWUP: ("followup.followupcontact",),
}


# --- the facts ------------------------------------------------------------------------------
# Cycles, evaluations and decisions order by date, then by every other field, so records
# entered twice on one day give the same calendar whatever order the database returns them in.


@dataclass(frozen=True, order=True)
class Cycle:
    given_on: date
    cycle_days: int  # the cycle length of the regimen line it belongs to
    adjuvant: bool = False


@dataclass(frozen=True, order=True)
class Evaluation:
    evaluated_on: date
    cycles_completed: int
    progression: bool = False  # RECIST PD at this evaluation
    refer_mdt: bool = False
    supportive_care: bool = False


@dataclass(frozen=True, order=True)
class Mdt:
    decided_on: date
    surgery: bool = False
    supportive_care: bool = False


@dataclass(frozen=True)
class Facts:
    """What the records say about one patient; every date is a form that exists (voided
    forms are left out)."""

    today: date
    screened_on: date | None = None
    enrolled_on: date | None = None
    baseline_on: date | None = None
    cycles: tuple[Cycle, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    mdts: tuple[Mdt, ...] = ()
    operated_on: date | None = None
    postop_panels: tuple[tuple[int, date], ...] = ()  # (protocol day, sample date)
    followup_contacts: tuple[date, ...] = ()  # contacts that reached the patient or family
    treatment_ended_on: date | None = None
    died_on: date | None = None
    withdrawn_on: date | None = None
    lost_on: date | None = None
    closed: frozenset[str] = field(default_factory=frozenset)  # codes closed as missed


@dataclass(frozen=True)
class Expected:
    code: str  # stored: never renumber or reuse
    kind: Kind
    number: int | None
    target_on: date
    window_start: date
    window_end: date
    status: Status = Status.UPCOMING
    done_on: date | None = None

    @property
    def forms(self) -> tuple[str, ...]:
        return FORMS[self.kind]


# --- helpers --------------------------------------------------------------------------------


def _visit(
    code: str,
    kind: Kind,
    number: int | None,
    target: date,
    window: tuple[date, date],
    done_on: date | None = None,
) -> Expected:
    start, end = window
    return Expected(code, kind, number, target, start, end, done_on=done_on)


def _around(target: date, early: timedelta, late: timedelta) -> tuple[date, date]:
    return target - early, target + late


def cycle_code(number: int, *, adjuvant: bool = False) -> str:
    return f"{'A' if adjuvant else 'C'}{number:02d}"


def followup_code(month: int) -> str:
    return f"FU{month:03d}"


def stop_date(facts: Facts) -> date | None:
    """The first of death, withdrawal and loss to follow-up: no visit is expected after it."""
    dates = [d for d in (facts.died_on, facts.withdrawn_on, facts.lost_on) if d]
    return min(dates) if dates else None


def _ordered(cycles: tuple[Cycle, ...], *, adjuvant: bool) -> list[Cycle]:
    return sorted(c for c in cycles if c.adjuvant == adjuvant)


def _supportive_care_on(facts: Facts) -> date | None:
    dates = [e.evaluated_on for e in facts.evaluations if e.supportive_care]
    dates += [m.decided_on for m in facts.mdts if m.supportive_care]
    return min(dates) if dates else None


def _awaiting_surgery_since(facts: Facts) -> date | None:
    """The date of the MDT's decision for surgery when it is the latest decision: chemotherapy
    pauses until the operation (a later decision to go on with chemotherapy resumes it)."""
    latest = max(facts.mdts, key=lambda m: m.decided_on, default=None)
    return latest.decided_on if latest is not None and latest.surgery else None


def first_line_stopped_on(facts: Facts) -> date | None:
    """When cycles before an operation stop being expected: the operation, an MDT decision for
    surgery (while it is the latest), a decision for best supportive care, or the recorded end
    of treatment."""
    dates = [
        facts.operated_on,
        _awaiting_surgery_since(facts),
        _supportive_care_on(facts),
        facts.treatment_ended_on,
    ]
    dates = [d for d in dates if d]
    return min(dates) if dates else None


def adjuvant_planned(cycle_days: int) -> int:
    """How many adjuvant cycles make the 24-week course (12 of 14 days, 6 of 28)."""
    return max(1, ADJUVANT_COURSE.days // max(cycle_days, 1))


def treatment_end(facts: Facts) -> date | None:
    """The end of treatment that anchors the monthly follow-up: the recorded one, else the
    end of the planned adjuvant course, else a decision for best supportive care."""
    if facts.treatment_ended_on:
        return facts.treatment_ended_on
    if facts.operated_on:
        adjuvant = _ordered(facts.cycles, adjuvant=True)
        if adjuvant and len(adjuvant) >= adjuvant_planned(adjuvant[-1].cycle_days):
            return adjuvant[-1].given_on + adjuvant[-1].cycle_days * DAY
    return _supportive_care_on(facts)


# --- the rules ------------------------------------------------------------------------------


def _screening_and_baseline(facts: Facts) -> list[Expected]:
    visits = []
    if screened_on := facts.screened_on:
        visits.append(
            _visit(
                "SCR", Kind.SCREENING, None, screened_on, (screened_on, screened_on), screened_on
            )
        )
    if enrolled_on := facts.enrolled_on:
        window = (enrolled_on, enrolled_on + BASELINE_WITHIN)
        visits.append(_visit("BL", Kind.BASELINE, None, enrolled_on, window, facts.baseline_on))
    return visits


def _cycle_series(
    cycles: list[Cycle], *, kind: Kind, first: tuple[date, date, date], expect_next: bool
) -> list[Expected]:
    """The cycles given (done) and, when `expect_next`, the next one: cycle 1 on `first`
    (target, window start, window end), each later cycle one cycle length after the one
    before, −3/+7 days."""
    visits = []
    for number in range(1, len(cycles) + 1 + expect_next):
        done_on = cycles[number - 1].given_on if number <= len(cycles) else None
        if number == 1:
            target, window = first[0], first[1:]
        else:
            previous = cycles[number - 2]
            target = previous.given_on + previous.cycle_days * DAY
            window = _around(target, CYCLE_EARLY, CYCLE_LATE)
        code = cycle_code(number, adjuvant=kind == Kind.ADJUVANT)
        visits.append(_visit(code, kind, number, target, window, done_on))
    return visits


def _first_line_cycles(facts: Facts) -> list[Expected]:
    if not facts.enrolled_on:
        return []
    enrolled_on = facts.enrolled_on
    return _cycle_series(
        _ordered(facts.cycles, adjuvant=False),
        kind=Kind.CYCLE,
        first=(enrolled_on + WEEK, enrolled_on, enrolled_on + FIRST_CYCLE_WITHIN),
        expect_next=first_line_stopped_on(facts) is None,
    )


def _date_after_cycle(cycles: list[Cycle], number: int) -> date:
    """The day cycle `number` ends (its day 1 plus its length); projected from the last cycle
    given when it has not been given yet."""
    if number <= len(cycles):
        cycle = cycles[number - 1]
        return cycle.given_on + cycle.cycle_days * DAY
    last = cycles[-1]
    return last.given_on + (number - len(cycles) + 1) * last.cycle_days * DAY


def evaluation_due_after(evaluations: list[Evaluation]) -> int:
    """The cycle after which the next evaluation is due, given the evaluations so far."""
    if not evaluations:
        return FIRST_EVALUATION_AFTER
    first_progressed = evaluations[0].progression
    every = ASSESS_EVERY_AFTER_PROGRESSION if first_progressed else ASSESS_EVERY
    return evaluations[-1].cycles_completed + every


def _evaluation_visit(
    number: int, due_after: int, cycles: list[Cycle], done_on: date | None
) -> Expected:
    target = _date_after_cycle(cycles, due_after)
    if number == 1:  # the first evaluation: after cycle 4 up to the end of cycle 6
        end = _date_after_cycle(cycles, FIRST_EVALUATION_LATEST)
    else:
        end = target + EVALUATION_LATE
    window = (target - EVALUATION_EARLY, max(end, target))
    return _visit(f"E{number}", Kind.EVALUATION, number, target, window, done_on)


def _evaluations(facts: Facts) -> list[Expected]:
    cycles = _ordered(facts.cycles, adjuvant=False)
    evaluations = sorted(facts.evaluations)
    visits: list[Expected] = []
    for index, evaluation in enumerate(evaluations):
        number, on = index + 1, evaluation.evaluated_on
        if cycles:
            due_after = evaluation_due_after(evaluations[:index])
            visits.append(_evaluation_visit(number, due_after, cycles, on))
        else:  # an evaluation without cycles (retrospective data): done, dated as recorded
            visits.append(_visit(f"E{number}", Kind.EVALUATION, number, on, (on, on), on))
    if cycles and first_line_stopped_on(facts) is None:
        due_after = evaluation_due_after(evaluations)
        visits.append(_evaluation_visit(len(evaluations) + 1, due_after, cycles, None))
    return visits


def _mdts(facts: Facts) -> list[Expected]:
    """One MDT per referral, done by the first decision on or after it not taken already."""
    decisions = sorted(m.decided_on for m in facts.mdts)
    visits: list[Expected] = []
    referrals = sorted(e.evaluated_on for e in facts.evaluations if e.refer_mdt)
    for number, referred_on in enumerate(referrals, start=1):
        done_on = next((d for d in decisions if d >= referred_on), None)
        if done_on is not None:
            decisions.remove(done_on)
        window = (referred_on, referred_on + MDT_WITHIN)
        target = referred_on + MDT_TARGET
        visits.append(_visit(f"MDT{number}", Kind.MDT, number, target, window, done_on))
    return visits


def _postop(facts: Facts) -> list[Expected]:
    if not (operated_on := facts.operated_on):
        return []
    taken: dict[int, date] = {}
    for day, sampled_on in sorted(facts.postop_panels, key=lambda p: p[1]):
        taken.setdefault(day, sampled_on)  # the first panel of each protocol day
    visits = []
    for day in postop.PROTOCOL_DAYS:
        first, last = postop.window(day)
        window = (operated_on + first * DAY, operated_on + last * DAY)
        target = operated_on + day * DAY
        visits.append(_visit(f"POD{day}", Kind.POSTOP, day, target, window, taken.get(day)))
    return visits


def _adjuvant(facts: Facts) -> list[Expected]:
    if not facts.operated_on:
        return []
    operated_on = facts.operated_on
    cycles = _ordered(facts.cycles, adjuvant=True)
    first_line = _ordered(facts.cycles, adjuvant=False)
    cycle_days = (cycles or first_line or [Cycle(operated_on, DEFAULT_CYCLE_DAYS)])[-1].cycle_days
    supportive = _supportive_care_on(facts)
    stopped = facts.treatment_ended_on or (supportive is not None and supportive >= operated_on)
    return _cycle_series(
        cycles,
        kind=Kind.ADJUVANT,
        first=(
            operated_on + ADJUVANT_FIRST,
            operated_on + ADJUVANT_EARLIEST,
            operated_on + ADJUVANT_LATEST,
        ),
        expect_next=not stopped and len(cycles) < adjuvant_planned(cycle_days),
    )


def _followup_month(contacted_on: date, anchor: date) -> int:
    """The month a contact counts for: the nearest (the earlier on a tie); < 1 before FU001."""
    every = FOLLOWUP_EVERY.days
    return ((contacted_on - anchor).days + every // 2 - 1) // every


def _followups(facts: Facts, stop: date | None) -> list[Expected]:
    anchor = treatment_end(facts)
    if anchor is None:
        return []
    # The first contact of each month does it, in its window or not: a late contact is
    # out-of-window data, not a missed month.
    done: dict[int, date] = {}
    for contacted_on in sorted(facts.followup_contacts):
        done.setdefault(_followup_month(contacted_on, anchor), contacted_on)
    visits: list[Expected] = []
    month = 1
    while True:
        target = anchor + month * FOLLOWUP_EVERY
        window = _around(target, FOLLOWUP_TOLERANCE, FOLLOWUP_TOLERANCE)
        code = followup_code(month)
        visits.append(_visit(code, Kind.FOLLOWUP, month, target, window, done.get(month)))
        # Open-ended: up to the first visit past today or past the stop date (the latter is
        # left out by `expected_visits` when its window opens after the stop).
        if target > facts.today or (stop is not None and target > stop):
            return visits
        month += 1


def open_status(*, window_start: date, window_end: date, today: date) -> Status:
    """The status of a visit that is not done, missed or not applicable, on `today`: stored
    rows are read through it, so a calendar refreshed yesterday is still right today."""
    if today < window_start:
        return Status.UPCOMING
    if today <= window_end:
        return Status.DUE
    return Status.OVERDUE


def _with_status(visit: Expected, *, facts: Facts, stop: date | None) -> Expected:
    if visit.done_on is not None:
        status = Status.DONE
    elif visit.code in facts.closed:
        status = Status.MISSED
    elif stop is not None and visit.window_end >= stop:
        # Its window was still open at the death, withdrawal or loss: it can no longer happen.
        status = Status.NOT_APPLICABLE
    else:
        status = open_status(
            window_start=visit.window_start, window_end=visit.window_end, today=facts.today
        )
    return replace(visit, status=status)


def expected_visits(facts: Facts) -> list[Expected]:
    """Every visit the protocol expects of the patient, by target date, with its status."""
    stop = stop_date(facts)
    visits = [
        *_screening_and_baseline(facts),
        *_first_line_cycles(facts),
        *_evaluations(facts),
        *_mdts(facts),
        *_postop(facts),
        *_adjuvant(facts),
        *_followups(facts, stop),
    ]
    if stop is not None:
        # Nothing is expected once the calendar has stopped: a visit whose window opens after
        # the stop date is left out, unless it was done (a form dated before the stop).
        visits = [v for v in visits if v.done_on is not None or v.window_start <= stop]
    visits = [_with_status(v, facts=facts, stop=stop) for v in visits]
    return sorted(visits, key=lambda v: (v.target_on, v.code))
