"""Swimmer plot: one horizontal bar per patient along the treatment journey.

Input is a list of `SwimmerRow` (or of dicts with exactly its field names), every time in days
from the patient's enrollment (negative = before enrollment, e.g. chemotherapy started before a
retrospective enrollment). A row carries the pseudonymous subject code and nothing else that
identifies the patient: a dict with another key is refused (`ValueError`), identifying keys
(name, date of birth, hospital number, phone, ...) with a message saying so.

Drawn per patient, bottom to top by follow-up (the longest at the top):
- a grey bar from enrollment (0) to the end of follow-up (death or last known alive);
- a blue segment for first-line chemotherapy, a green one for adjuvant chemotherapy;
- a black diamond at the operation;
- a circle per response evaluation, coloured by its RECIST response (CR / PR / SD / PD / NE);
- a purple triangle at recurrence;
- at the end of the bar, a cross (x) for death or an arrow (->) for a patient alive at last
  contact (censored).
Up to `max_rows` patients (200) are drawn, the figure growing taller with their number; beyond
that the patients with the longest follow-up are drawn and a note says how many are not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields

from django.utils.translation import gettext as _
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from analytics.plots_base import (
    DAYS_PER_MONTH,
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    RESPONSE_COLOURS,
    RESPONSE_ORDER,
    check_keys,
    new_figure,
    resolve_labels,
    style,
)

MAX_ROWS = 200
CHEMO_COLOUR = "#8EBEE0"  # a tint of Okabe-Ito blue
ADJUVANT_COLOUR = "#8FD1B8"  # a tint of Okabe-Ito bluish green
RECURRENCE_COLOUR = OKABE_ITO["reddish_purple"]


@dataclass(frozen=True)
class SwimmerRow:
    """One patient of a swimmer plot; every time is in days from enrollment.

    subject_code: the pseudonymous code shown on the y axis.
    follow_up_days: enrollment to the end of follow-up (death, or last known alive), >= 0.
    died: True when follow-up ended with death (cross), False when censored (arrow).
    chemo: (start, end) of first-line chemotherapy, or None.
    surgery_day: the day of the operation, or None.
    adjuvant: (start, end) of adjuvant chemotherapy, or None.
    evaluations: ((day, response), ...) with response one of CR, PR, SD, PD, NE.
    recurrence_day: the day recurrence was detected, or None.
    """

    subject_code: str
    follow_up_days: float
    died: bool = False
    chemo: tuple[float, float] | None = None
    surgery_day: float | None = None
    adjuvant: tuple[float, float] | None = None
    evaluations: tuple[tuple[float, str], ...] = field(default_factory=tuple)
    recurrence_day: float | None = None

    def __post_init__(self) -> None:
        code = self.subject_code
        if not isinstance(code, str) or not code.strip():
            raise ValueError("A swimmer row needs a subject code, not %r." % (code,))
        if not _finite(self.follow_up_days) or self.follow_up_days < 0:
            raise ValueError(
                "%s: follow_up_days must be a number of days >= 0, not %r."
                % (code, self.follow_up_days)
            )
        for name in ("chemo", "adjuvant"):
            span = getattr(self, name)
            if span is None:
                continue
            span = tuple(span)
            if len(span) != 2 or not all(map(_finite, span)) or span[1] < span[0]:
                raise ValueError("%s: %s must be (start, end) days, start <= end." % (code, name))
            object.__setattr__(self, name, (float(span[0]), float(span[1])))
        for name in ("surgery_day", "recurrence_day"):
            value = getattr(self, name)
            if value is not None and not _finite(value):
                raise ValueError("%s: %s must be a number of days or None." % (code, name))
        evaluations = tuple((float(day), str(response)) for day, response in self.evaluations)
        for day, response in evaluations:
            if response not in RESPONSE_ORDER or not _finite(day):
                raise ValueError(
                    "%s: evaluation (%r, %r) needs a day and a response among %s."
                    % (code, day, response, ", ".join(RESPONSE_ORDER))
                )
        object.__setattr__(self, "evaluations", evaluations)

    @classmethod
    def from_mapping(cls, row: Mapping) -> SwimmerRow:
        """A row from a dict with the field names; other keys are refused (see the module)."""
        check_keys(row, _FIELDS, "Swimmer")
        return cls(**row)

    @property
    def end(self) -> float:
        """The last day drawn for this patient."""
        days = [self.follow_up_days, self.surgery_day, self.recurrence_day]
        days += [span[1] for span in (self.chemo, self.adjuvant) if span]
        days += [day for day, _response in self.evaluations]
        return max(day for day in days if day is not None)

    @property
    def start(self) -> float:
        days = [0.0] + [span[0] for span in (self.chemo, self.adjuvant) if span]
        return min(days)


_FIELDS = frozenset(f.name for f in fields(SwimmerRow))


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _default_labels(unit: str) -> dict[str, str]:
    return {
        "title": _("Treatment and follow-up by patient"),
        "xlabel": _("Months from enrollment") if unit == "months" else _("Days from enrollment"),
        "ylabel": _("Patient"),
        "follow_up": _("Follow-up"),
        "chemo": _("First-line chemotherapy"),
        "adjuvant": _("Adjuvant chemotherapy"),
        "surgery": _("Surgery"),
        "recurrence": _("Recurrence"),
        "death": _("Death"),
        "alive": _("Alive at last contact"),
        "CR": _("Complete response"),
        "PR": _("Partial response"),
        "SD": _("Stable disease"),
        "PD": _("Progressive disease"),
        "NE": _("Not evaluable"),
        # %(shown)d and %(total)d
        "truncated": _(
            "Showing the %(shown)d patients with the longest follow-up of %(total)d; "
            "the others are not drawn."
        ),
        "empty": _("No patients to show."),
    }


def swimmer_figure(
    rows: Iterable[SwimmerRow | Mapping],
    *,
    unit: str = "months",
    max_rows: int = MAX_ROWS,
    labels: Mapping[str, str] | None = None,
    width: float = 7.0,
) -> Figure:
    """The swimmer plot of `rows` (SwimmerRow or dicts with its fields; days from enrollment).

    `unit` is the x axis ("months" = days / 30.4375, or "days"). `labels` overrides any text
    (keys: title, xlabel, ylabel, follow_up, chemo, adjuvant, surgery, recurrence, death, alive,
    CR, PR, SD, PD, NE, truncated, empty)."""
    if unit not in ("months", "days"):
        raise ValueError("unit must be 'months' or 'days', not %r." % (unit,))
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1.")
    patients = [
        row if isinstance(row, SwimmerRow) else SwimmerRow.from_mapping(row) for row in rows
    ]
    codes = [row.subject_code for row in patients]
    if len(set(codes)) != len(codes):
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        raise ValueError("Subject code(s) %s appear more than once." % ", ".join(duplicates))
    text = resolve_labels(_default_labels(unit), labels)
    scale = DAYS_PER_MONTH if unit == "months" else 1.0

    total = len(patients)
    # Longest follow-up first, then by code (stable across runs); drawn bottom to top reversed.
    patients.sort(key=lambda row: (-row.follow_up_days, row.subject_code))
    shown = patients[:max_rows]
    shown.reverse()

    with style():
        return _draw(shown, total=total, text=text, scale=scale, width=width)


def _sizes(n: int) -> tuple[float, float, float]:
    """Row height (inches), tick label size and marker size for `n` patients."""
    if n <= 30:
        return 0.24, 8.0, 6.0
    if n <= 80:
        return 0.16, 6.5, 5.0
    return 0.12, 5.0, 3.8


def _draw(shown: Sequence[SwimmerRow], *, total: int, text, scale: float, width: float) -> Figure:
    n = len(shown)
    row_height, tick_size, marker_size = _sizes(max(n, 1))
    handles = _legend_handles(_present(shown), text, marker_size=6.0)
    columns = min(4, len(handles))
    top = 0.5 + 0.19 * math.ceil(len(handles) / columns) + 0.12 if shown else 0.5
    bottom = 0.75 if n < total else 0.55
    plot = max(row_height * n, 1.0)
    height = top + plot + bottom
    fig = new_figure(width, height)
    left, right = 0.95, 0.25
    ax = fig.add_axes(
        [left / width, bottom / height, (width - left - right) / width, plot / height]
    )
    ax.set_label("swimmer")
    fig.text(
        left / width,
        1 - 0.08 / height,
        text["title"],
        ha="left",
        va="top",
        fontsize="x-large",
        fontweight="bold",
        gid="title",
    )
    if not shown:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            text["empty"],
            ha="center",
            va="center",
            transform=ax.transAxes,
            color=GREY,
            gid="empty",
        )
        return fig

    bar = 0.62
    arrow_head = offset_copy(ax.transData, fig=fig, x=11, units="points")
    for y, row in enumerate(shown):
        end = row.follow_up_days / scale
        ax.barh(
            y, end, left=0, height=bar, color=LIGHT_GREY, linewidth=0, zorder=1, gid="follow-up"
        )
        for span, colour, key in (
            (row.chemo, CHEMO_COLOUR, "chemo"),
            (row.adjuvant, ADJUVANT_COLOUR, "adjuvant"),
        ):
            if span:
                ax.barh(
                    y,
                    (span[1] - span[0]) / scale,
                    left=span[0] / scale,
                    height=bar,
                    color=colour,
                    linewidth=0,
                    zorder=2,
                    gid=key,
                )
        if row.surgery_day is not None:
            ax.plot(
                row.surgery_day / scale,
                y,
                marker="D",
                markersize=marker_size,
                color="black",
                linestyle="none",
                zorder=5,
                gid="surgery",
            )
        for day, response in row.evaluations:
            ax.plot(
                day / scale,
                y,
                marker="o",
                markersize=marker_size,
                markerfacecolor=RESPONSE_COLOURS[response],
                markeredgecolor="white",
                markeredgewidth=0.5,
                linestyle="none",
                zorder=4,
                gid="evaluation-%s" % response,
            )
        if row.recurrence_day is not None:
            ax.plot(
                row.recurrence_day / scale,
                y,
                marker="v",
                markersize=marker_size + 1,
                color=RECURRENCE_COLOUR,
                markeredgecolor="black",
                markeredgewidth=0.4,
                linestyle="none",
                zorder=5,
                gid="recurrence",
            )
        if row.died:
            ax.plot(
                end,
                y,
                marker="X",
                markersize=marker_size + 1,
                color="black",
                markeredgecolor="white",
                markeredgewidth=0.3,
                linestyle="none",
                zorder=6,
                gid="death",
            )
        else:
            ax.annotate(
                "",
                xy=(end, y),
                xycoords=arrow_head,
                xytext=(end, y),
                textcoords="data",
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": "#4D4D4D",
                    "lw": 0.9,
                    "shrinkA": 0,
                    "shrinkB": 0,
                    "mutation_scale": marker_size + 2,
                },
                annotation_clip=False,
                gid="alive",
            )

    first = min(row.start for row in shown) / scale
    last = max(row.end for row in shown) / scale
    ax.set_xlim(min(0.0, first), last * 1.04 + (1 if scale > 1 else 30))
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(range(n), [row.subject_code for row in shown])
    ax.tick_params(axis="y", labelsize=tick_size, length=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 6, 10]))
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", color="#EBEBEB", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.set_xlabel(text["xlabel"])
    ax.set_ylabel(text["ylabel"])
    ax.axvline(0, color="#4D4D4D", linewidth=0.6, zorder=0)

    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0 + 0.1 / plot),
        ncol=columns,
        borderaxespad=0.0,
        handlelength=1.4,
        columnspacing=1.2,
        fontsize="small",
    )
    if len(shown) < total:
        fig.text(
            left / width,
            0.08 / height,
            text["truncated"] % {"shown": len(shown), "total": total},
            ha="left",
            va="bottom",
            fontsize="small",
            color=GREY,
            gid="truncated",
        )
    return fig


def _present(shown: Sequence[SwimmerRow]) -> set[str]:
    """The legend entries the rows use."""
    present: set[str] = set()
    for row in shown:
        present |= {key for key in ("chemo", "adjuvant") if getattr(row, key)}
        present |= {response for _day, response in row.evaluations}
        present.add("death" if row.died else "alive")
        if row.surgery_day is not None:
            present.add("surgery")
        if row.recurrence_day is not None:
            present.add("recurrence")
    return present


def _legend_handles(present: set[str], text, *, marker_size: float) -> list:
    def marker(key: str, **style_) -> Line2D:
        style_ = {"markersize": marker_size, **style_}
        return Line2D([], [], linestyle="none", label=text[key], **style_)

    handles = [Patch(color=LIGHT_GREY, label=text["follow_up"])]
    if "chemo" in present:
        handles.append(Patch(color=CHEMO_COLOUR, label=text["chemo"]))
    if "adjuvant" in present:
        handles.append(Patch(color=ADJUVANT_COLOUR, label=text["adjuvant"]))
    if "surgery" in present:
        handles.append(marker("surgery", marker="D", color="black"))
    for response in RESPONSE_ORDER:
        if response in present:
            handles.append(
                marker(
                    response,
                    marker="o",
                    markerfacecolor=RESPONSE_COLOURS[response],
                    markeredgecolor="white",
                )
            )
    if "recurrence" in present:
        handles.append(
            marker(
                "recurrence",
                marker="v",
                color=RECURRENCE_COLOUR,
                markeredgecolor="black",
                markeredgewidth=0.4,
            )
        )
    if "death" in present:
        handles.append(marker("death", marker="X", color="black"))
    if "alive" in present:
        handles.append(
            marker("alive", marker=r"$\rightarrow$", color="#4D4D4D", markersize=marker_size + 4)
        )
    return handles
