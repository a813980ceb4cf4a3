"""Kaplan-Meier figure: step curves with 95% bands, censor marks, medians, log-rank p and a
number-at-risk table aligned with the time axis.

The figure draws a summary in the shape `analytics.survival.km_summary` returns (one source of
truth for the estimates, their "log" confidence limits and the R-style medians):

    {"n", "events", "median_days", "median_ci_days": [lo, hi],
     "timeline": [{"time", "survival", "ci_lower", "ci_upper", "at_risk", "events",
                   "censored"}, ...],           # days; one row per distinct time
     "group_order": [...], "groups": {label: {the same keys}},   # when grouped
     "logrank": {"test", "chi2", "df", "p"}}                     # when grouped

or a DataFrame of analysis rows, which it summarises with `km_summary` first.

Number at risk at a tick t = the patients whose duration is >= t (still under observation just
before t): the `at_risk` of the first timeline row at or after t, 0 past the last row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator, PercentFormatter

from analytics.plots_base import (
    DAYS_PER_MONTH,
    GREY,
    GROUP_COLOURS,
    new_figure,
    resolve_labels,
    style,
)
from analytics.survival import km_summary

UNITS = ("months", "days")
DEFAULT_TICK = {"months": 6, "days": 180}
CENSOR_MARKERS = ("+", "|")


def _default_labels(endpoint: str | None, unit: str) -> dict[str, str]:
    title, ylabel = {
        "os": (_("Overall survival"), _("Overall survival probability")),
        "rfs": (_("Recurrence-free survival"), _("Recurrence-free survival probability")),
    }.get(endpoint or "", (_("Kaplan–Meier estimate"), _("Survival probability")))
    return {
        "title": title,
        "ylabel": ylabel,
        "xlabel": _("Time (months)") if unit == "months" else _("Time (days)"),
        "at_risk": _("Number at risk"),
        "overall": _("All patients"),
        # %(group)s and %(n)d; %(median)s is the median phrase below.
        "legend": _("%(group)s (n = %(n)d): %(median)s"),
        "median": _("median %(median)s (95%% CI %(lower)s–%(upper)s)"),
        "not_reached": _("NR"),
        "month_unit": _("mo"),
        "day_unit": _("d"),
        "logrank": _("Log-rank p %(p)s"),
    }


def _group_display_names() -> dict[str, str]:
    """Display names for the label codes of analytics.survival's groupings."""
    return {
        "resected": _("Resected"),
        "not resected": _("Not resected"),
        "M": _("Male"),
        "F": _("Female"),
        "retrospective": _("Retrospective cohort"),
        "prospective": _("Prospective cohort"),
        "<=3": _("≤3 liver metastases"),
        ">3": _(">3 liver metastases"),
        "<50% decline": _("CA19-9 decline <50%"),
        ">=50% decline": _("CA19-9 decline ≥50%"),
    }


def km_figure(
    source: Mapping | pd.DataFrame,
    *,
    duration: str = "os_days",
    event: str = "os_event",
    group_by: str | None = None,
    endpoint: str | None = None,
    unit: str = "months",
    tick_every: float | None = None,
    max_time: float | None = None,
    group_labels: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    confidence_bands: bool = True,
    censor_marks: bool = True,
    censor_marker: str = "+",
    median_lines: bool = True,
    at_risk_table: bool = True,
    width: float = 6.5,
) -> Figure:
    """The Kaplan-Meier figure of a `km_summary` result (or of a DataFrame, summarised with
    `analytics.survival.km_summary(df, duration=, event=, group_by=)` first).

    `unit` is the time axis ("months": days / 30.4375, ticks every 6; "days": ticks every 180),
    `tick_every` and `max_time` are in that unit. `endpoint` ("os" / "rfs") picks the default
    title and y label; `labels` overrides any text (keys: title, ylabel, xlabel, at_risk,
    overall, legend, median, not_reached, month_unit, day_unit, logrank). `group_labels` maps
    the summary's group labels to display names. Texts are translated with Django's gettext in
    the active language when not given.
    """
    if unit not in UNITS:
        raise ValueError("unit must be one of %s, not %r." % (", ".join(UNITS), unit))
    if censor_marker not in CENSOR_MARKERS:
        raise ValueError("censor_marker must be one of %s." % ", ".join(CENSOR_MARKERS))
    if isinstance(source, pd.DataFrame):
        source = km_summary(source, duration=duration, event=event, group_by=group_by)
    text = resolve_labels(_default_labels(endpoint, unit), labels)
    curves = _curves(source, text, group_labels)
    scale = DAYS_PER_MONTH if unit == "months" else 1.0
    tick = float(tick_every or DEFAULT_TICK[unit])
    if tick <= 0:
        raise ValueError("tick_every must be positive.")
    last = max(row["time"] for _label, curve in curves for row in curve["timeline"]) / scale
    end = float(max_time) if max_time else max(tick, math.ceil(last / tick - 1e-9) * tick)
    ticks = np.arange(0.0, end + 1e-9, tick)

    with style():
        fig, ax, table = _layout(curves, text, width=width, at_risk_table=at_risk_table)

        for index, (name, curve) in enumerate(curves):
            colour = GROUP_COLOURS[index % len(GROUP_COLOURS)] if len(curves) > 1 else "#000000"
            _draw_curve(
                ax,
                curve,
                colour=colour,
                scale=scale,
                end=end,
                legend=_legend_entry(name, curve, text, unit),
                confidence_bands=confidence_bands,
                censor_marks=censor_marks,
                censor_marker=censor_marker,
                median_lines=median_lines,
            )

        ax.set_xlim(0, end)
        ax.set_ylim(0, 1.03)
        ax.xaxis.set_major_locator(MultipleLocator(tick))
        ax.yaxis.set_major_locator(MultipleLocator(0.25))
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel(text["xlabel"])
        ax.set_ylabel(text["ylabel"])
        ax.grid(axis="y", color="#EBEBEB", linewidth=0.6, zorder=0)
        if text["title"]:
            fig.text(
                ax.get_position().x0,
                0.995,
                text["title"],
                ha="left",
                va="top",
                fontsize="x-large",
                fontweight="bold",
                gid="title",
            )
        # Above the plot: inside, it would hide the curves' upper part.
        ax.legend(
            loc="lower left",
            bbox_to_anchor=(0.0, 1.02),
            borderaxespad=0.0,
            handlelength=1.8,
            labelspacing=0.35,
        )
        p = (source.get("logrank") or {}).get("p") if "groups" in source else None
        if p is not None and len(curves) > 1:
            ax.text(
                0.02,
                0.04,
                text["logrank"] % {"p": format_p(p)},
                transform=ax.transAxes,
                ha="left",
                va="bottom",
                gid="logrank",
            )
        if table is not None:
            _at_risk_table(table, curves, ticks=ticks, scale=scale, title=text["at_risk"])
    return fig


# The figure's parts, in inches.
_TITLE, _LEGEND_ROW, _PLOT, _XAXIS, _TABLE_TITLE, _TABLE_ROW, _BOTTOM = (
    0.4,
    0.21,
    3.3,
    0.62,
    0.3,
    0.21,
    0.08,
)


def _layout(curves, text, *, width: float, at_risk_table: bool):
    """The figure with the plot axes and the at-risk table axes (or None) placed in inches:
    title, legend, plot, x axis, table, top to bottom; the left margin fits the row names."""
    rows = len(curves) if at_risk_table else 0
    legend = _LEGEND_ROW * len(curves) + 0.12
    table = (_TABLE_TITLE + _TABLE_ROW * rows) if rows else 0.0
    top = _TITLE if text["title"] else 0.1
    height = top + legend + _PLOT + _XAXIS + table + _BOTTOM
    longest = max(len(name) for name, _curve in curves) if rows else 0
    left = max(0.8, 0.3 + 0.075 * longest)
    right = 0.2
    fig = new_figure(width, height)

    def box(bottom: float, tall: float) -> list[float]:
        return [left / width, bottom / height, (width - left - right) / width, tall / height]

    ax = fig.add_axes(box(_BOTTOM + table + _XAXIS, _PLOT))
    ax.set_label("km")
    if not rows:
        return fig, ax, None
    at_risk = fig.add_axes(box(_BOTTOM, _TABLE_ROW * rows), sharex=ax)
    return fig, ax, at_risk


def _curves(
    summary: Mapping, text: Mapping[str, str], group_labels: Mapping[str, str] | None
) -> list[tuple[str, Mapping]]:
    """[(display name, curve summary)] in the summary's group order (or the overall curve)."""
    names = {**_group_display_names(), **{str(k): str(v) for k, v in (group_labels or {}).items()}}
    if "groups" in summary:
        groups = summary["groups"]
        order = list(summary.get("group_order") or groups)
        curves = [(names.get(str(label), str(label)), groups[label]) for label in order]
    elif "timeline" in summary:
        curves = [(text["overall"], summary)]
    else:
        raise ValueError("A Kaplan-Meier summary needs 'timeline' or 'groups'.")
    for name, curve in curves:
        if not curve.get("timeline"):
            raise ValueError("The Kaplan-Meier curve of %s has no timeline." % name)
    return curves


def _steps(curve: Mapping, scale: float) -> tuple[np.ndarray, ...]:
    """x, survival, lower, upper as step vertices starting at (0, 1)."""
    rows = curve["timeline"]

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if row[key] is None else row[key] for row in rows], dtype=float)

    x = np.concatenate([[0.0], column("time") / scale])
    y = np.concatenate([[1.0], column("survival")])
    lower = np.concatenate([[1.0], column("ci_lower")])
    upper = np.concatenate([[1.0], column("ci_upper")])
    return x, y, lower, upper


def _draw_curve(
    ax,
    curve: Mapping,
    *,
    colour: str,
    scale: float,
    end: float,
    legend: str,
    confidence_bands: bool,
    censor_marks: bool,
    censor_marker: str,
    median_lines: bool,
) -> None:
    x, y, lower, upper = _steps(curve, scale)
    ax.plot(x, y, drawstyle="steps-post", color=colour, label=legend, zorder=3, gid="curve")
    if confidence_bands:
        ax.fill_between(
            x, lower, upper, step="post", color=colour, alpha=0.15, linewidth=0, zorder=2
        )
    if censor_marks:
        # One mark per censored patient (ties overlap), so marks = censored patients.
        xs, ys = [], []
        for row in curve["timeline"]:
            at = row["time"] / scale
            if row["censored"] and at <= end:
                xs += [at] * int(row["censored"])
                ys += [row["survival"]] * int(row["censored"])
        if xs:
            ax.plot(
                xs,
                ys,
                linestyle="none",
                marker=censor_marker,
                markersize=6 if censor_marker == "+" else 7,
                markeredgewidth=1.1,
                color=colour,
                zorder=4,
                gid="censor",
            )
    median = curve.get("median_days")
    if median_lines and median is not None and median / scale <= end:
        at = median / scale
        style_ = {"color": colour, "linestyle": (0, (3, 2)), "linewidth": 0.8, "zorder": 1}
        ax.plot([0, at], [0.5, 0.5], gid="median", **style_)
        ax.plot([at, at], [0, 0.5], gid="median", **style_)


def _number(days, unit: str) -> str:
    if unit == "days":
        return "%d" % round(days)
    return "%.1f" % (days / DAYS_PER_MONTH)


def _legend_entry(name: str, curve: Mapping, text: Mapping[str, str], unit: str) -> str:
    median, (lower, upper) = curve.get("median_days"), (curve.get("median_ci_days") or [None] * 2)
    unit_text = text["month_unit"] if unit == "months" else text["day_unit"]

    def value(days) -> str:
        return text["not_reached"] if days is None else _number(days, unit)

    phrase = text["median"] % {
        "median": ("%s %s" % (value(median), unit_text)) if median is not None else value(None),
        "lower": value(lower),
        "upper": value(upper),
    }
    return text["legend"] % {"group": name, "n": int(curve["n"]), "median": phrase}


def format_p(p: float) -> str:
    """'= 0.042', '= 0.31', '< 0.001' (the comparison sign included)."""
    if p < 0.001:
        return "< 0.001"
    if p < 0.01:
        return "= %.3f" % p
    return "= %.2f" % p


def at_risk_at(curve: Mapping, day: float) -> int:
    """Patients still at risk at `day` (duration >= day) from a timeline."""
    for row in curve["timeline"]:
        if row["time"] >= day - 1e-9:
            return int(row["at_risk"])
    return 0


def _at_risk_table(table, curves, *, ticks: np.ndarray, scale: float, title: str) -> None:
    table.set_label("at-risk")
    rows = len(curves)
    table.set_ylim(rows - 0.5, -0.5)
    for row, (_name, curve) in enumerate(curves):
        for tick in ticks:
            table.text(
                tick,
                row,
                str(at_risk_at(curve, tick * scale)),
                ha="center",
                va="center",
                gid="at-risk",
                clip_on=False,
            )
    table.set_yticks(range(rows), [name for name, _curve in curves])
    colours = [GROUP_COLOURS[i % len(GROUP_COLOURS)] for i in range(rows)] if rows > 1 else ["k"]
    for label, colour in zip(table.get_yticklabels(), colours, strict=True):
        label.set_color(colour)
        label.set_fontweight("bold")
    table.tick_params(axis="y", length=0, pad=22)
    table.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    for spine in table.spines.values():
        spine.set_visible(False)
    table.set_title(title, loc="left", fontsize="medium", fontweight="bold", color=GREY, pad=6)
    table.patch.set_visible(False)
