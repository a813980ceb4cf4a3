"""Server-side SVG charts: the treatment timeline and the CA19-9 trend.

No JavaScript and no CDN (hospital networks block them): each chart is a string of SVG the
template inlines. Charts are for people who may not see colour: every response has its own
shape and its letters beside it, every chart has a <title> and a <desc> that say in words what
it shows, and every text is escaped (a regimen typed as "other" is user input).
"""

import math
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from assessments.models import LabPanel
from assessments.selectors.imaging import Ca199Point, Timeline
from trial.validation import fmt

WIDTH = 760
LEFT = 118  # room for the row labels
RIGHT = 24
PLOT = WIDTH - LEFT - RIGHT
DAYS_PER_MONTH = 30.4375
CA19_9_ULN = Decimal(37)  # upper limit of normal, U/mL
LOG_RANGE = 20  # a log scale once the largest value is 20× the smallest

RESPONSE_COLOURS = {
    "CR": "#1e7b45",
    "PR": "#1d6fa5",
    "SD": "#8a6a00",
    "PD": "#b3261e",
    "NE": "#6b7480",
    "": "#6b7480",
}
REGIMEN_COLOURS = {
    "AG": "#5b7fd6",
    "FOLFIRINOX": "#d9772b",
    "mFOLFIRINOX": "#c99a2e",
    "NALIRIFOX": "#8a62b8",
    "other": "#4f8a80",
}


def _response_names() -> dict[str, str]:
    return {
        "CR": _("complete response"),
        "PR": _("partial response"),
        "SD": _("stable disease"),
        "PD": _("progressive disease"),
        "NE": _("not evaluable"),
    }


def _num(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text(
    x: float, y: float, content: object, *, size: int = 11, anchor: str = "start", **attrs
) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(v)}"' for name, v in attrs.items())
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(content)}</text>"
    )


def _title(content: object) -> str:
    return f"<title>{escape(content)}</title>"


def marker(response: str, cx: float, cy: float, size: float = 7, tooltip: str = "") -> str:
    """The shape of a response: CR circle, PR downward triangle, SD square, PD upward
    triangle, NE (or none) hollow diamond; filled with its colour, with an optional tooltip."""
    colour = RESPONSE_COLOURS.get(response, RESPONSE_COLOURS["NE"])
    tip = _title(tooltip) if tooltip else ""
    s = size
    if response == "CR":
        tag, attrs = "circle", f'cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(s * 0.85)}"'
    elif response == "SD":
        side = s * 1.5
        tag = "rect"
        attrs = (
            f'x="{_num(cx - side / 2)}" y="{_num(cy - side / 2)}" '
            f'width="{_num(side)}" height="{_num(side)}"'
        )
    elif response in ("PR", "PD"):
        tip_y = cy + s if response == "PR" else cy - s  # PR points down, PD up
        base_y = cy - s * 0.8 if response == "PR" else cy + s * 0.8
        tag = "polygon"
        attrs = f'points="{_points([(cx - s, base_y), (cx + s, base_y), (cx, tip_y)])}"'
    else:
        points = [(cx, cy - s), (cx + s, cy), (cx, cy + s), (cx - s, cy)]
        return (
            f'<polygon points="{_points(points)}" fill="#fff" stroke="{colour}" '
            f'stroke-width="2">{tip}</polygon>'
        )
    return f'<{tag} {attrs} fill="{colour}" stroke="#fff" stroke-width="1">{tip}</{tag}>'


def _points(points: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def _svg(chart_id: str, height: float, title: str, desc: str, body: list[str]) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" width="100%" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'font-family="system-ui, sans-serif">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
    )
    # Safe: every text and attribute value above went through escape().
    return mark_safe(head + "".join(body) + "</svg>")


class _Axis:
    """Dates to x coordinates over [start, end], with month ticks from `origin`."""

    def __init__(self, start: date, end: date, origin: date) -> None:
        self.start = min(start, origin)
        self.end = max(end, self.start + timedelta(days=28))
        self.origin = origin
        self.days = (self.end - self.start).days

    def x(self, day: date) -> float:
        return LEFT + (day - self.start).days / self.days * PLOT

    def month_ticks(self) -> list[tuple[int, date]]:
        span = self.days / DAYS_PER_MONTH
        step = 1 if span <= 8 else 2 if span <= 18 else 3 if span <= 36 else 6
        first = math.ceil((self.start - self.origin).days / DAYS_PER_MONTH / step) * step
        ticks = []
        month = first
        while True:
            day = self.origin + timedelta(days=round(month * DAYS_PER_MONTH))
            if day > self.end:
                return ticks
            ticks.append((month, day))
            month += step

    def draw(self, y: float, top: float, today: date | None) -> list[str]:
        body = [
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{LEFT + PLOT}" y2="{_num(y)}" '
            f'stroke="#5b6675" stroke-width="1"/>'
        ]
        for month, day in self.month_ticks():
            x = self.x(day)
            body.append(
                f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(y + 4)}" '
                f'stroke="#d6dce4" stroke-width="1"/>'
            )
            body.append(_text(x, y + 16, _("M%(month)s") % {"month": month}, anchor="middle"))
        if today and self.start <= today <= self.end:
            x = self.x(today)
            body.append(
                f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(y)}" '
                f'stroke="#1b2430" stroke-width="1" stroke-dasharray="3 3"/>'
            )
            body.append(_text(x, top - 2, _("today"), size=10, anchor="middle"))
        body.append(
            _text(
                LEFT + PLOT / 2,
                y + 32,
                _("Months from enrollment (M0 = %(date)s)") % {"date": fmt(self.origin)},
                size=11,
                anchor="middle",
                fill="#5b6675",
            )
        )
        return body


def _label_step(xs: list[float], width: float) -> int:
    """Label every n-th of the points at `xs` so that labels `width` wide do not overlap."""
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    if not gaps:
        return 1
    return max(1, math.ceil(width / min(gaps)))


def timeline_svg(timeline: Timeline, *, chart_id: str = "treatment-timeline") -> SafeString:
    """The treatment timeline: regimen lines as bars labelled with the regimen, cycles as
    ticks, imaging and evaluations as response-shaped markers, MDT referrals flagged, on one
    axis in months from the enrollment, with a legend."""
    axis = _Axis(timeline.start, timeline.end, timeline.origin)
    body: list[str] = []
    names = _response_names()
    top = 18
    y = top
    row = 34
    described: list[str] = []
    for line in timeline.lines:
        x1, x2 = axis.x(line.start), axis.x(line.end)
        colour = REGIMEN_COLOURS.get(line.regimen, REGIMEN_COLOURS["other"])
        label = _("Line %(number)s") % {"number": line.number}
        body.append(_text(8, y + 15, label, size=12, font_weight="600"))
        period = _("%(name)s, %(start)s to %(end)s, %(count)s cycles") % {
            "name": line.name,
            "start": fmt(line.start),
            "end": fmt(line.end),
            "count": len(line.cycles),
        }
        described.append("%s: %s" % (label, period))
        body.append(
            f'<rect x="{_num(x1)}" y="{_num(y + 6)}" width="{_num(max(x2 - x1, 2))}" height="14" '
            f'rx="3" fill="{colour}" fill-opacity="0.85">{_title(period)}</rect>'
        )
        xs = [axis.x(tick.on) for tick in line.cycles]
        step = _label_step(xs, 16)
        for index, (tick, x) in enumerate(zip(line.cycles, xs, strict=True)):
            tip = _("Cycle %(number)s, %(date)s") % {"number": tick.number, "date": fmt(tick.on)}
            body.append(
                f'<line x1="{_num(x)}" y1="{_num(y + 4)}" x2="{_num(x)}" y2="{_num(y + 22)}" '
                f'stroke="#1b2430" stroke-width="1.5">{_title(tip)}</line>'
            )
            if index % step == 0 or index == len(line.cycles) - 1:
                body.append(_text(x, y + 2, "C%s" % tick.number, size=9, anchor="middle"))
        name_x = x1 + 4 if x2 - x1 > 7 * len(line.name) + 8 else x2 + 4
        fill = "#fff" if name_x < x2 else "#1b2430"
        body.append(_text(name_x, y + 17, line.name, size=11, fill=fill, font_weight="600"))
        y += row
    if not timeline.lines:
        body.append(_text(8, y + 15, _("Chemotherapy"), size=12, font_weight="600"))
        body.append(_text(LEFT, y + 15, _("No regimen line recorded."), fill="#5b6675"))
        y += row

    body.append(_text(8, y + 15, _("Imaging"), size=12, font_weight="600"))
    for study in timeline.imaging:
        x = axis.x(study.on)
        code = _("BL") if study.is_baseline else (study.response or "—")
        tip = "%s %s: %s" % (
            study.modality,
            fmt(study.on),
            _("RECIST baseline") if study.is_baseline else names.get(study.response, "—"),
        )
        if study.is_baseline:
            body.append(
                f'<circle cx="{_num(x)}" cy="{_num(y + 10)}" r="4" fill="#fff" stroke="#1b2430" '
                f'stroke-width="1.5">{_title(tip)}</circle>'
            )
        else:
            body.append(marker(study.response, x, y + 10, size=5, tooltip=tip))
        body.append(_text(x, y + 28, code, size=9, anchor="middle"))
    if timeline.imaging:
        described.append(
            _("Imaging: %(items)s")
            % {
                "items": "; ".join(
                    "%s %s" % (fmt(s.on), _("baseline") if s.is_baseline else s.response or "—")
                    for s in timeline.imaging
                )
            }
        )
    y += row

    body.append(_text(8, y + 15, _("Evaluations"), size=12, font_weight="600"))
    for mark in timeline.evaluations:
        x = axis.x(mark.on)
        tip = _(
            "Evaluation %(n)s, %(date)s, after %(cycles)s cycles: %(response)s — %(decision)s"
        ) % {
            "n": mark.sequence,
            "date": fmt(mark.on),
            "cycles": mark.cycles_completed,
            "response": names.get(mark.response, "—"),
            "decision": mark.decision_label,
        }
        body.append(marker(mark.response, x, y + 12, size=7, tooltip=tip))
        body.append(
            _text(x, y + 32, mark.response or "—", size=10, anchor="middle", font_weight="700")
        )
        if mark.decision == "refer_mdt":
            body.append(_mdt_flag(x + 9, y + 2))
    if timeline.evaluations:
        described.append(
            _("Evaluations: %(items)s")
            % {
                "items": "; ".join(
                    "E%s %s %s (%s)" % (m.sequence, fmt(m.on), m.response or "—", m.decision_label)
                    for m in timeline.evaluations
                )
            }
        )
    else:
        body.append(_text(LEFT, y + 15, _("No response evaluation yet."), fill="#5b6675"))
    y += row + 6

    body += axis.draw(y, top - 6, timeline.today)
    y += 48
    body += _legend(y)
    y += 34
    title = _("Treatment timeline")
    desc = ". ".join(described) or _("Nothing recorded yet.")
    return _svg(chart_id, y, title, desc, body)


def _mdt_flag(x: float, y: float) -> str:
    return (
        f'<g><path d="M{_num(x)} {_num(y + 14)} V{_num(y)} h12 l-3 4 l3 4 h-12" '
        f'fill="#1d4e89" stroke="#1d4e89" stroke-width="1.2"/>'
        # "MDT" is the abbreviation in both languages; the tooltip carries the words.
        f"{_text(x + 15, y + 8, 'MDT', size=9, font_weight='700', fill='#1d4e89')}"
        f"{_title(_('Referred to the MDT for surgery'))}</g>"
    )


def _text_width(text: str, size: float) -> float:
    """Approximate rendered width: CJK characters are about one em wide, Latin ~0.56 em."""
    return sum(size if ord(char) >= 0x2E80 else 0.56 * size for char in text)


def _legend(y: float) -> list[str]:
    """Two rows: the response shapes; then the baseline study, a cycle and an MDT referral.
    Items are laid out by the width of their (translated) labels, so no language overlaps."""
    body = []
    x = 8.0
    for code, name in _response_names().items():
        body.append(marker(code, x + 6, y, size=6))
        label = "%s %s" % (code, name)
        body.append(_text(x + 16, y + 4, label, size=10))
        x += 16 + _text_width(label, 10) + 14
    y += 20
    body.append(
        f'<circle cx="14" cy="{_num(y)}" r="4" fill="#fff" stroke="#1b2430" stroke-width="1.5"/>'
    )
    label = _("BL RECIST baseline study")
    body.append(_text(24, y + 4, label, size=10))
    x = 24 + _text_width(label, 10) + 16
    body.append(
        f'<line x1="{_num(x)}" y1="{_num(y - 7)}" x2="{_num(x)}" y2="{_num(y + 7)}" '
        f'stroke="#1b2430" stroke-width="1.5"/>'
    )
    label = _("C1, C2 … chemotherapy cycles (day 1)")
    body.append(_text(x + 8, y + 4, label, size=10))
    x += 8 + _text_width(label, 10) + 16
    body.append(_mdt_flag(x, y - 8))
    body.append(_text(x + 50, y + 4, _("referred to the MDT"), size=10))
    return body


# --- CA19-9 -------------------------------------------------------------------------------


def _nice(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _format_value(value: Decimal) -> str:
    number = float(value)
    if number >= 100:
        return f"{number:,.0f}".replace(",", "\u202f")
    return f"{number:.1f}".rstrip("0").rstrip(".")


def ca19_9_svg(
    points: list[Ca199Point],
    *,
    baseline: Decimal | None,
    start: date,
    end: date,
    origin: date,
    uninformative: bool = False,
    today: date | None = None,
    chart_id: str = "ca19-9-trend",
) -> SafeString:
    """The CA19-9 trend on the timeline's axis: points with their dates and the change from
    the baseline, the 37 U/mL upper limit of normal, the baseline as a dotted line, on a log
    scale when the values span more than 20-fold. Empty when there is no value at all."""
    if not points and baseline is None:
        return mark_safe("")
    axis = _Axis(start, end, origin)
    values = [float(p.value) for p in points]
    if baseline is not None:
        values.append(float(baseline))
    low = min([*values, float(CA19_9_ULN)])
    high = max([*values, float(CA19_9_ULN)])
    log = max(low, 0.5) * LOG_RANGE <= high
    top, bottom = 24, 204
    if log:
        low_power = math.floor(math.log10(max(low, 0.5)))
        high_power = math.ceil(math.log10(high)) if high > 1 else 1
        if high_power == low_power:
            high_power += 1

        def y_of(value: float) -> float:
            share = (math.log10(max(value, 0.5)) - low_power) / (high_power - low_power)
            return bottom - share * (bottom - top)

        ticks = [10**p for p in range(low_power, high_power + 1)]
    else:
        ceiling = _nice(high * 1.1)
        step = _nice(ceiling / 5)

        def y_of(value: float) -> float:
            return bottom - value / ceiling * (bottom - top)

        ticks = [step * i for i in range(int(ceiling / step) + 1)]
    body: list[str] = []
    for tick in ticks:
        y = y_of(tick)
        body.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{LEFT + PLOT}" y2="{_num(y)}" '
            f'stroke="#eef2f7" stroke-width="1"/>'
        )
        body.append(
            _text(LEFT - 6, y + 4, _format_value(Decimal(str(tick))), size=10, anchor="end")
        )
    scale = _("log scale") if log else _("linear scale")
    body.append(_text(8, top - 8, _("CA19-9 (U/mL, %(scale)s)") % {"scale": scale}, size=11))
    uln_y = y_of(float(CA19_9_ULN))
    body.append(
        f'<line x1="{LEFT}" y1="{_num(uln_y)}" x2="{LEFT + PLOT}" y2="{_num(uln_y)}" '
        f'stroke="#b3261e" stroke-width="1" stroke-dasharray="6 4"/>'
    )
    body.append(
        _text(LEFT + PLOT - 2, uln_y + 12, _("ULN 37 U/mL"), size=10, anchor="end", fill="#b3261e")
    )
    if baseline is not None:
        base_y = y_of(float(baseline))
        body.append(
            f'<line x1="{LEFT}" y1="{_num(base_y)}" x2="{LEFT + PLOT}" y2="{_num(base_y)}" '
            f'stroke="#1d4e89" stroke-width="1" stroke-dasharray="1 3"/>'
        )
        body.append(
            _text(
                LEFT + PLOT - 2,
                base_y - 4,
                _("baseline %(value)s") % {"value": _format_value(baseline)},
                size=10,
                anchor="end",
                fill="#1d4e89",
            )
        )
    coordinates = [(axis.x(p.on), y_of(float(p.value))) for p in points]
    if len(coordinates) > 1:
        body.append(
            f'<polyline points="{_points(coordinates)}" fill="none" stroke="#1b2430" '
            f'stroke-width="1.5"/>'
        )
    step = _label_step([x for x, _y in coordinates], 64)
    described = []
    for index, (point, (x, y)) in enumerate(zip(points, coordinates, strict=True)):
        change = ""
        if point.context == LabPanel.Context.BASELINE:
            change = _("baseline")
        elif baseline and not uninformative:
            percent = (point.value - baseline) * 100 / baseline
            change = "%+.0f%%" % percent
        words = "%s: %s U/mL%s" % (
            fmt(point.on),
            _format_value(point.value),
            " (%s)" % change if change else "",
        )
        described.append(words)
        body.append(
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="4" fill="#1b2430" stroke="#fff" '
            f'stroke-width="1">{_title(words)}</circle>'
        )
        if index % step == 0 or index == len(points) - 1:
            label = _format_value(point.value) + (" (%s)" % change if change else "")
            body.append(_text(x, y - 8, label, size=10, anchor="middle"))
            body.append(
                _text(
                    x,
                    bottom + 14,
                    point.on.isoformat(),
                    size=9,
                    anchor="end",
                    transform="rotate(-35 %s %s)" % (_num(x), _num(bottom + 14)),
                )
            )
    y = bottom + 52
    body += axis.draw(y, top, today)
    y += 42
    if uninformative:
        body.append(
            _text(
                8,
                y,
                _(
                    "CA19-9 is uninformative for this patient (baseline under 5 U/mL or "
                    "missing, e.g. Lewis-antigen negative): do not read its changes as response."
                ),
                size=11,
                fill="#a15c00",
            )
        )
        y += 16
    title = _("CA19-9 trend")
    desc = "; ".join(described) or _("No CA19-9 result yet.")
    if baseline is not None:
        desc = _("Baseline %(value)s U/mL. ") % {"value": _format_value(baseline)} + desc
    return _svg(chart_id, y + 6, title, desc, body)
