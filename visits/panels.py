"""The "Protocol calendar" card of the patient page (registered on import, right after the
treatment timeline): a strip of the patient's expected visits on a date axis and the table
of the open and next visits, each open one linking to the form that fills it.

The strip is server-side SVG like the other charts (no JavaScript, no CDN): each status has
its own shape as well as its colour, each mark a <title>, the chart a <title> and <desc>, and
every text is escaped.
"""

from datetime import date, timedelta

from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from trial.panels import Panel, register_patient_panel
from trial.validation import fmt
from visits import selectors
from visits.models import VisitKind, VisitStatus

WIDTH = 760
LEFT = 112  # room for the lane labels
RIGHT = 16
PLOT = WIDTH - LEFT - RIGHT
TOP = 8
LANE = 18
MARK = 5.5

# Lanes of the strip, top to bottom: which kinds go in each.
LANES = (
    ("enrolment", (VisitKind.SCREENING, VisitKind.BASELINE)),
    ("chemotherapy", (VisitKind.CYCLE, VisitKind.ADJUVANT)),
    ("evaluation", (VisitKind.EVALUATION, VisitKind.MDT)),
    ("surgery", (VisitKind.POSTOP,)),
    ("followup", (VisitKind.FOLLOWUP,)),
)
STATUS_COLOURS = {
    VisitStatus.DONE: "#1e7b45",
    VisitStatus.DUE: "#b06d00",
    VisitStatus.OVERDUE: "#b3261e",
    VisitStatus.UPCOMING: "#1d6fa5",
    VisitStatus.MISSED: "#5c2a86",
    VisitStatus.NOT_APPLICABLE: "#6b7480",
}
LEGEND_ORDER = (
    VisitStatus.DONE,
    VisitStatus.DUE,
    VisitStatus.OVERDUE,
    VisitStatus.UPCOMING,
    VisitStatus.MISSED,
    VisitStatus.NOT_APPLICABLE,
)


def _lane_labels() -> dict[str, str]:
    return {
        "enrolment": _("Enrollment"),
        "chemotherapy": _("Chemotherapy"),
        "evaluation": _("Evaluation, MDT"),
        "surgery": _("Post-op labs"),
        "followup": _("Follow-up"),
    }


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text_width(text: str, size: float) -> float:
    """Approximate rendered width: CJK characters are about one em wide, Latin ~0.56 em, so
    the legend is laid out by its translated labels and no language overlaps."""
    return sum(size if ord(char) > 0x2E80 else size * 0.56 for char in text)


def _points(points) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def mark(status: str, cx: float, cy: float, tooltip: str = "", size: float = MARK) -> str:
    """The shape of a status: done filled circle, due filled square, overdue filled upward
    triangle, upcoming hollow circle, missed a cross, not applicable a hollow diamond."""
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[VisitStatus.NOT_APPLICABLE])
    tip = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    s = size
    if status == VisitStatus.DONE:
        return (
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(s)}" fill="{colour}">{tip}</circle>'
        )
    if status == VisitStatus.DUE:
        return (
            f'<rect x="{_num(cx - s)}" y="{_num(cy - s)}" width="{_num(2 * s)}" '
            f'height="{_num(2 * s)}" fill="{colour}">{tip}</rect>'
        )
    if status == VisitStatus.OVERDUE:
        points = [(cx - s * 1.15, cy + s), (cx + s * 1.15, cy + s), (cx, cy - s * 1.2)]
        return f'<polygon points="{_points(points)}" fill="{colour}">{tip}</polygon>'
    if status == VisitStatus.UPCOMING:
        return (
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(s - 1)}" fill="#fff" '
            f'stroke="{colour}" stroke-width="2">{tip}</circle>'
        )
    if status == VisitStatus.MISSED:
        d = (
            f"M{_num(cx - s)},{_num(cy - s)} L{_num(cx + s)},{_num(cy + s)} "
            f"M{_num(cx - s)},{_num(cy + s)} L{_num(cx + s)},{_num(cy - s)}"
        )
        return f'<path d="{d}" stroke="{colour}" stroke-width="2.5" fill="none">{tip}</path>'
    points = [(cx, cy - s), (cx + s, cy), (cx, cy + s), (cx - s, cy)]
    return (
        f'<polygon points="{_points(points)}" fill="#fff" stroke="{colour}" '
        f'stroke-width="1.5">{tip}</polygon>'
    )


def _tooltip(row: selectors.VisitRow) -> str:
    visit = row.visit
    if row.status == VisitStatus.DONE:
        when = _("done on %(on)s") % {"on": fmt(visit.done_on)}
    elif row.status == VisitStatus.OVERDUE:
        when = _("overdue by %(days)s days (window closed %(end)s)") % {
            "days": row.days_overdue,
            "end": fmt(visit.window_end),
        }
    else:
        when = _("%(status)s, window %(start)s – %(end)s") % {
            "status": row.status_label,
            "start": fmt(visit.window_start),
            "end": fmt(visit.window_end),
        }
    return "%s (%s): %s" % (row.label, visit.code, when)


def _month_ticks(start: date, end: date) -> list[date]:
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = max(1, -(-months // 8))  # at most about 8 labels
    ticks, year, month = [], start.year, start.month
    index = 0
    while True:
        day = date(year, month, 1)
        if day > end:
            return ticks
        if day >= start and index % step == 0:
            ticks.append(day)
        index += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def calendar_svg(calendar: selectors.PatientCalendar) -> SafeString | None:
    """The strip of the patient's expected visits: one lane per phase, one mark per visit at
    its target date (done visits at the date done), the window of each open visit as a bar,
    today as a line; None when there is no visit."""
    rows = calendar.rows
    if not rows:
        return None
    today = calendar.today

    def on(row: selectors.VisitRow) -> date:
        return row.visit.done_on or row.visit.target_on

    start = min(min(on(r) for r in rows), today) - timedelta(days=7)
    end = max(max(max(on(r), r.visit.window_end) for r in rows), today) + timedelta(days=7)
    days = max((end - start).days, 1)

    def x(day: date) -> float:
        return LEFT + (day - start).days / days * PLOT

    lanes = [(key, kinds) for key, kinds in LANES if any(r.visit.kind in kinds for r in rows)]
    labels = _lane_labels()
    axis_y = TOP + LANE * len(lanes) + 4
    legend_y = axis_y + 30
    height = legend_y + 14
    body = []
    for index, (key, kinds) in enumerate(lanes):
        y = TOP + LANE * index + LANE / 2
        body.append(
            f'<text x="{LEFT - 8}" y="{_num(y + 4)}" font-size="11" text-anchor="end" '
            f'fill="#445">{escape(labels[key])}</text>'
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{LEFT + PLOT}" y2="{_num(y)}" '
            f'stroke="#e3e8ef"/>'
        )
        for row in (r for r in rows if r.visit.kind in kinds):
            visit = row.visit
            if row.status in (VisitStatus.DUE, VisitStatus.OVERDUE, VisitStatus.UPCOMING):
                colour = STATUS_COLOURS[row.status]
                body.append(
                    f'<line x1="{_num(x(visit.window_start))}" y1="{_num(y)}" '
                    f'x2="{_num(x(visit.window_end))}" y2="{_num(y)}" stroke="{colour}" '
                    f'stroke-opacity=".35" stroke-width="4" stroke-linecap="round"/>'
                )
            body.append(mark(row.status, x(on(row)), y, _tooltip(row)))
    body.append(
        f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + PLOT}" y2="{axis_y}" stroke="#9aa5b1"/>'
    )
    for tick in _month_ticks(start, end):
        tx = x(tick)
        body.append(
            f'<line x1="{_num(tx)}" y1="{axis_y}" x2="{_num(tx)}" y2="{axis_y + 4}" '
            f'stroke="#9aa5b1"/><text x="{_num(tx)}" y="{axis_y + 15}" font-size="10" '
            f'text-anchor="middle" fill="#556">{tick:%Y-%m}</text>'
        )
    tx = x(today)
    body.append(
        f'<line x1="{_num(tx)}" y1="{TOP - 4}" x2="{_num(tx)}" y2="{axis_y}" stroke="#333" '
        f'stroke-dasharray="3 3"><title>{escape(_("Today, %(on)s") % {"on": fmt(today)})}'
        f"</title></line>"
    )
    lx = LEFT
    for status in LEGEND_ORDER:
        label = str(VisitStatus(status).label)
        body.append(mark(status, lx + MARK, legend_y - 4))
        body.append(
            f'<text x="{_num(lx + 2 * MARK + 5)}" y="{legend_y}" font-size="11" fill="#333">'
            f"{escape(label)}</text>"
        )
        lx += 2 * MARK + 5 + _text_width(label, 11) + 18
    counts = ", ".join(
        "%s %s" % (calendar.count(s), VisitStatus(s).label.lower())
        for s in LEGEND_ORDER
        if calendar.count(s)
    )
    title = _("Protocol calendar")
    desc = _("%(count)s expected visits from %(start)s to %(end)s: %(counts)s.") % {
        "count": len(rows),
        "start": fmt(rows[0].visit.target_on),
        "end": fmt(rows[-1].visit.target_on),
        "counts": counts,
    }
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="visit-calendar" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" width="100%" role="img" '
        f'aria-labelledby="visit-calendar-title visit-calendar-desc" '
        f'font-family="system-ui, sans-serif">'
        f'<title id="visit-calendar-title">{escape(title)}</title>'
        f'<desc id="visit-calendar-desc">{escape(desc)}</desc>'
    )
    # Safe: every text and attribute value above went through escape() or is a number.
    return mark_safe(head + "".join(body) + "</svg>")


def calendar_context(request: HttpRequest, patient) -> dict | None:
    """The "Protocol calendar" card, for users who may read the calendar and enrolled
    patients. Three queries at most, however long the calendar (see
    `selectors.patient_calendar`)."""
    if not request.user.has_perm("visits.view_expectedvisit"):
        return None
    enrollment = getattr(patient, "enrollment", None)
    if enrollment is None or enrollment.is_voided:
        return None
    calendar = selectors.patient_calendar(patient=patient, today=timezone.localdate())
    return {
        "calendar": calendar,
        "calendar_svg": calendar_svg(calendar),
        "can_close": request.user.has_perm("visits.add_visitclosure"),
        "can_reopen": request.user.has_perm("visits.change_visitclosure"),
    }


register_patient_panel(
    Panel(
        key="visits",
        order=210,
        template="visits/partials/_calendar_panel.html",
        context=calendar_context,
    )
)
