"""Reads of the protocol calendar for the worklist, the patient page and the reminders.

Stored visits carry the status they had when the calendar was last refreshed; a visit that is
not done, missed or not applicable is read through `protocol.open_status` with the stored
window, so the worklist is right on any day without a refresh. Every read here runs a fixed
number of queries, whatever the number of patients or visits.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from treatments.models import RegimenLine
from trial.scoping import site_ids_for
from visits import protocol
from visits.models import ExpectedVisit, VisitClosure, VisitKind, VisitStatus

OPEN = (VisitStatus.UPCOMING, VisitStatus.DUE, VisitStatus.OVERDUE)
# Sort keys of the worklist (a leading "-" reverses); each ends with stable tie-breakers.
ORDERS = {
    "target": ("target_on", "window_end", "patient__subject_code", "code"),
    "window_end": ("window_end", "target_on", "patient__subject_code", "code"),
    "patient": ("patient__subject_code", "target_on", "code"),
    "kind": ("kind", "window_end", "patient__subject_code", "code"),
}
DEFAULT_ORDER = "window_end"
UPCOMING_SHOWN = 3
BADGES = {
    VisitStatus.DONE: "ok",
    VisitStatus.DUE: "warn",
    VisitStatus.OVERDUE: "bad",
    VisitStatus.MISSED: "bad",
}  # the next upcoming visits listed on the patient page


def visit_label(kind: str, number: int | None) -> str:
    """The visit as people name it: "Cycle 3", "Adjuvant cycle 2", "Evaluation 1", "MDT
    decision", "Post-op day 5 labs", "Follow-up month 4", "Baseline", "Screening"."""
    params = {"number": number}
    if kind == VisitKind.SCREENING:
        return _("Screening")
    if kind == VisitKind.BASELINE:
        return _("Baseline")
    if kind == VisitKind.CYCLE:
        return _("Cycle %(number)s") % params
    if kind == VisitKind.ADJUVANT:
        return _("Adjuvant cycle %(number)s") % params
    if kind == VisitKind.EVALUATION:
        return _("Evaluation %(number)s") % params
    if kind == VisitKind.MDT:
        return _("MDT decision") if (number or 1) == 1 else _("MDT decision %(number)s") % params
    if kind == VisitKind.POSTOP:
        return _("Post-op day %(number)s labs") % params
    if kind == VisitKind.FOLLOWUP:
        return _("Follow-up month %(number)s") % params
    return str(kind)


def live_status(visit: ExpectedVisit, *, today: date) -> str:
    """The visit's status on `today`: stored when done, missed or not applicable, else from
    its window (upcoming, due or overdue)."""
    if visit.status not in OPEN:
        return visit.status
    return str(
        protocol.open_status(
            window_start=visit.window_start, window_end=visit.window_end, today=today
        )
    )


def visit_form_url(visit: ExpectedVisit, *, line_id: int | None) -> str:
    """The page that fills `visit`: the cycle form of the patient's current regimen line (a
    new line when none), the evaluation, MDT, postoperative-day-N lab, follow-up contact,
    baseline or screening form. `line_id`: the patient's latest active regimen line."""
    patient_id = visit.patient_id
    kind = visit.kind
    if kind in (VisitKind.CYCLE, VisitKind.ADJUVANT):
        if line_id is None:
            return reverse("treatments:line-new", args=[patient_id])
        return reverse("treatments:cycle-new", args=[patient_id, line_id])
    if kind == VisitKind.EVALUATION:
        return reverse("assessments:evaluation-new", args=[patient_id])
    if kind == VisitKind.MDT:
        return reverse("surgery:mdt-new", args=[patient_id])
    if kind == VisitKind.POSTOP:
        return reverse("surgery:postop-lab-new", args=[patient_id, visit.number])
    if kind == VisitKind.BASELINE:
        return reverse("patients:baseline-edit", args=[patient_id])
    if kind == VisitKind.SCREENING:
        return reverse("patients:screening-edit", args=[patient_id])
    if kind == VisitKind.FOLLOWUP:
        try:
            return reverse("followup:contact-new", args=[patient_id])
        except NoReverseMatch:  # the follow-up pages are not installed yet
            pass
    return reverse("patients:patient-detail", args=[patient_id])


def with_current_line(visits: QuerySet) -> QuerySet:
    """`visits` annotated with `current_line_id`, the patient's latest active regimen line
    (where a cycle is entered), in the same query."""
    lines = (
        RegimenLine.objects.active()
        .filter(patient_id=OuterRef("patient_id"))
        .order_by("-line_number", "-id")
        .values("id")[:1]
    )
    return visits.annotate(current_line_id=Subquery(lines))


@dataclass(frozen=True)
class VisitRow:
    visit: ExpectedVisit
    label: str
    status: str  # on the day asked
    days_overdue: int
    form_url: str | None  # None when there is nothing to fill (done, missed, not applicable)

    @property
    def code(self) -> str:
        return self.visit.code

    @property
    def status_label(self) -> str:
        return str(VisitStatus(self.status).label)

    @property
    def is_open(self) -> bool:
        return self.status in (VisitStatus.DUE, VisitStatus.OVERDUE)

    @property
    def badge(self) -> str:
        """The badge class of the status (edc.css): green done, amber due, red overdue."""
        return BADGES.get(self.status, "")


def visit_rows(visits: list[ExpectedVisit], *, today: date) -> list[VisitRow]:
    """Rows with their label, status on `today`, days overdue and the page that fills them
    (no query: the visits come annotated by `with_current_line`)."""
    rows = []
    for visit in visits:
        status = live_status(visit, today=today)
        is_open = status in OPEN
        rows.append(
            VisitRow(
                visit=visit,
                label=visit_label(visit.kind, visit.number),
                status=status,
                days_overdue=(today - visit.window_end).days
                if status == VisitStatus.OVERDUE
                else 0,
                form_url=visit_form_url(visit, line_id=getattr(visit, "current_line_id", None))
                if is_open
                else None,
            )
        )
    return rows


# --- the worklist ---------------------------------------------------------------------------


@dataclass
class Worklist:
    today: date
    visits: QuerySet  # the due and overdue visits asked for, ordered; not yet evaluated
    due: int
    overdue: int
    order: str

    @property
    def total(self) -> int:
        return self.due + self.overdue

    def rows(self, visits: list[ExpectedVisit] | None = None) -> list[VisitRow]:
        """Rows of `visits` (a page of `self.visits`; all of them when None)."""
        return visit_rows(list(self.visits if visits is None else visits), today=self.today)


def worklist(
    *,
    user: AbstractBaseUser,
    today: date,
    kind: str | None = None,
    status: str | None = None,
    site: int | None = None,
    order: str = DEFAULT_ORDER,
) -> Worklist:
    """The due and overdue visits on `today` at the user's sites (trial.scoping), with the
    counts of each.

    `kind`: one VisitKind; `status`: "due", "overdue" or None for both; `site`: a site id
    (ignored unless it is one of the user's sites: then nothing is shown); `order`: a key of
    ORDERS, "-" in front to reverse (unknown keys fall back to DEFAULT_ORDER). The counts
    follow the kind and site filters, not the status one. Two queries (the counts and the
    visits, each row with its patient, site and current regimen line), whatever the number
    of visits.
    """
    sites = site_ids_for(user)
    if site is not None:
        sites = sites & {site}
    visits = ExpectedVisit.objects.filter(
        site_id__in=sites, status__in=OPEN, window_start__lte=today
    )
    if kind:
        visits = visits.filter(kind=kind)
    counts = visits.aggregate(
        due=Count("pk", filter=Q(window_end__gte=today)),
        overdue=Count("pk", filter=Q(window_end__lt=today)),
    )
    if status == VisitStatus.DUE:
        visits = visits.filter(window_end__gte=today)
    elif status == VisitStatus.OVERDUE:
        visits = visits.filter(window_end__lt=today)
    key = order.lstrip("-")
    if key not in ORDERS:
        order, key = DEFAULT_ORDER, DEFAULT_ORDER
    columns = ORDERS[key]
    if order.startswith("-"):
        columns = tuple(f"-{c}" for c in columns)
    visits = with_current_line(visits.select_related("patient", "site")).order_by(*columns)
    return Worklist(
        today=today, visits=visits, due=counts["due"], overdue=counts["overdue"], order=order
    )


# --- the patient's calendar -----------------------------------------------------------------


@dataclass
class PatientCalendar:
    today: date
    rows: list[VisitRow]  # every expected visit, by target date

    @property
    def is_empty(self) -> bool:
        return not self.rows

    @property
    def open(self) -> list[VisitRow]:
        """Due and overdue visits, the most overdue first."""
        return sorted(
            (r for r in self.rows if r.is_open), key=lambda r: (r.visit.window_end, r.code)
        )

    @property
    def upcoming(self) -> list[VisitRow]:
        """The next few visits whose window has not opened yet."""
        return [r for r in self.rows if r.status == VisitStatus.UPCOMING][:UPCOMING_SHOWN]

    @property
    def missed(self) -> list[VisitRow]:
        """Visits closed as missed (each visit carries `closure_id` and `closure_reason`)."""
        return [r for r in self.rows if r.status == VisitStatus.MISSED]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


def patient_calendar(*, patient, today: date) -> PatientCalendar:
    """The patient's expected visits with their status on `today`, each open one with the
    page that fills it, each missed one with its closure (`closure_id`, `closure_reason`).
    One query, however long the calendar."""
    closures = VisitClosure.objects.active().filter(
        patient_id=OuterRef("patient_id"), code=OuterRef("code")
    )
    visits = list(
        with_current_line(ExpectedVisit.objects.filter(patient=patient))
        .annotate(
            closure_id=Subquery(closures.values("id")[:1]),
            closure_reason=Subquery(closures.values("reason")[:1]),
        )
        .order_by("target_on", "code")
    )
    return PatientCalendar(today=today, rows=visit_rows(visits, today=today))
