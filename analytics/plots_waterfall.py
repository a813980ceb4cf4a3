"""Waterfall plot: one bar per patient, best percentage change from baseline, sorted from the
largest increase (left) to the deepest decrease (right).

- kind="recist": change in the sum of target-lesion diameters; reference lines at +20%
  (progression) and -30% (partial response); bars coloured by best RECIST response.
- kind="ca19_9": change in CA19-9; reference line at -50%; bars coloured by a decline of 50%
  or more (change <= -50%) versus not.

Bars above +100% are drawn to +100% and marked with a triangle above them, with a note.
Patients without a value are left out and counted in a note.

Input: `WaterfallValue`s, dicts with exactly its field names (other keys, identifying ones
included, are refused with ValueError), or a mapping {subject_code: change_pct}.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from django.utils.translation import gettext as _
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MultipleLocator

from analytics.plots_base import (
    GREY,
    OKABE_ITO,
    RESPONSE_COLOURS,
    RESPONSE_ORDER,
    check_keys,
    new_figure,
    resolve_labels,
    style,
)

KINDS = ("recist", "ca19_9")
REFERENCE_LINES = {"recist": (20.0, -30.0), "ca19_9": (-50.0,)}
CA19_9_DECLINE = -50.0
CLIP = 100.0
MAX_CODES = 40  # subject codes under the bars up to this many patients
DECLINE_COLOUR = OKABE_ITO["blue"]
NO_DECLINE_COLOUR = OKABE_ITO["orange"]


@dataclass(frozen=True)
class WaterfallValue:
    """One patient's bar: the best change from baseline in percent (None = no value) and, for
    RECIST, the best response (CR / PR / SD / PD / NE, None = not evaluable)."""

    subject_code: str
    change_pct: float | None
    response: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject_code, str) or not self.subject_code.strip():
            raise ValueError(
                "A waterfall value needs a subject code, not %r." % (self.subject_code,)
            )
        value = self.change_pct
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    "%s: change_pct must be a number, not %r." % (self.subject_code, value)
                )
            if math.isnan(value):
                object.__setattr__(self, "change_pct", None)
            elif value < -100:
                raise ValueError(
                    "%s: a change of %.1f%% from baseline is impossible (below -100%%)."
                    % (self.subject_code, value)
                )
        if self.response is not None and self.response not in RESPONSE_ORDER:
            raise ValueError(
                "%s: response must be one of %s, not %r."
                % (self.subject_code, ", ".join(RESPONSE_ORDER), self.response)
            )


_FIELDS = frozenset(f.name for f in fields(WaterfallValue))


def _values(values) -> list[WaterfallValue]:
    if isinstance(values, Mapping):
        return [WaterfallValue(str(code), change) for code, change in values.items()]
    result = []
    for value in values:
        if not isinstance(value, WaterfallValue):
            check_keys(value, _FIELDS, "Waterfall")
            value = WaterfallValue(**value)
        result.append(value)
    return result


def _default_labels(kind: str) -> dict[str, str]:
    if kind == "recist":
        title = _("Best change in target lesions from baseline")
        ylabel = _("Change in sum of target lesion diameters (%)")
    else:
        title = _("Best change in CA19-9 from baseline")
        ylabel = _("Change in CA19-9 (%)")
    return {
        "title": title,
        "ylabel": ylabel,
        "xlabel": _("Patients (n = %(n)d)"),
        "CR": _("Complete response"),
        "PR": _("Partial response"),
        "SD": _("Stable disease"),
        "PD": _("Progressive disease"),
        "NE": _("Not evaluable"),
        "decline": _("Decline ≥50%"),
        "no_decline": _("Decline <50%"),
        "progression_line": _("+20% (progression)"),
        "response_line": _("−30% (partial response)"),
        "ca19_9_line": _("−50%"),
        "clipped": _("▲ change above +%(clip)d%%, bar cut at +%(clip)d%%"),
        # %(count)d: the patients without a value (a plural form is picked for the count).
        "missing": _("Patients without a value, not shown: %(count)d."),
        "empty": _("No patients with a value to show."),
    }


def waterfall_figure(
    values: Iterable[WaterfallValue | Mapping] | Mapping[str, float],
    *,
    kind: str = "recist",
    labels: Mapping[str, str] | None = None,
    clip: float = CLIP,
    show_codes: bool | None = None,
    width: float = 7.0,
) -> Figure:
    """The waterfall plot of best % changes from baseline (see the module doc).

    `show_codes` writes the subject codes under the bars (default: up to 40 patients).
    `labels` overrides any text (keys: title, ylabel, xlabel, CR, PR, SD, PD, NE, decline,
    no_decline, progression_line, response_line, ca19_9_line, clipped, missing, empty)."""
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, not %r." % (", ".join(KINDS), kind))
    if clip <= 0:
        raise ValueError("clip must be positive.")
    items = _values(values)
    codes = [item.subject_code for item in items]
    if len(set(codes)) != len(codes):
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        raise ValueError("Subject code(s) %s appear more than once." % ", ".join(duplicates))
    text = resolve_labels(_default_labels(kind), labels)
    bars = sorted(
        (item for item in items if item.change_pct is not None),
        key=lambda item: (-item.change_pct, item.subject_code),
    )
    missing = len(items) - len(bars)
    if show_codes is None:
        show_codes = len(bars) <= MAX_CODES
    with style():
        return _draw(
            bars,
            kind=kind,
            text=text,
            clip=clip,
            missing=missing,
            show_codes=show_codes,
            width=width,
        )


def _colour(item: WaterfallValue, kind: str) -> str:
    if kind == "recist":
        return RESPONSE_COLOURS[item.response or "NE"]
    return DECLINE_COLOUR if item.change_pct <= CA19_9_DECLINE else NO_DECLINE_COLOUR


def _draw(bars, *, kind, text, clip, missing, show_codes, width) -> Figure:
    # Inches, top to bottom: title, legend, plot, codes and x label, notes.
    top, plot, notes_height = 0.85, 3.0, 0.3
    axis = (0.75 if show_codes else 0.3) if bars else 0.0
    height = top + plot + axis + notes_height
    left, right = 0.75, 1.45  # the reference lines' labels sit in the right margin
    fig = new_figure(width, height)
    ax = fig.add_axes(
        [
            left / width,
            (notes_height + axis) / height,
            (width - left - right) / width,
            plot / height,
        ]
    )
    ax.set_label("waterfall")
    fig.text(
        left / width,
        1 - 0.06 / height,
        text["title"],
        ha="left",
        va="top",
        fontsize="x-large",
        fontweight="bold",
        gid="title",
    )
    notes = []
    if missing:
        notes.append(text["missing"] % {"count": missing})
    if not bars:
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
        _notes(fig, notes)
        return fig

    n = len(bars)
    heights = [min(item.change_pct, clip) for item in bars]
    rects = ax.bar(
        range(n),
        heights,
        width=0.8,
        color=[_colour(item, kind) for item in bars],
        edgecolor="none",
        zorder=2,
    )
    for rect, item in zip(rects, bars, strict=True):
        rect.set_gid("bar:%s" % item.subject_code)
    clipped = [i for i, item in enumerate(bars) if item.change_pct > clip]
    if clipped:
        ax.plot(
            clipped,
            [clip + 6] * len(clipped),
            linestyle="none",
            marker="^",
            # no wider than a bar (0.8 of a slot): the axes' width in points / bars
            markersize=min(5.0, 0.8 * ax.get_position().width * width * 72 / n),
            color="black",
            zorder=3,
            gid="clipped",
        )
        notes.append(text["clipped"] % {"clip": round(clip)})

    line_labels = {
        20.0: text["progression_line"],
        -30.0: text["response_line"],
        -50.0: text["ca19_9_line"],
    }
    for level in REFERENCE_LINES[kind]:
        ax.axhline(
            level, color="#4D4D4D", linestyle=(0, (4, 3)), linewidth=0.8, zorder=4, gid="reference"
        )
        ax.text(
            1.0,
            level,
            " " + line_labels[level],
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize="small",
            color="#4D4D4D",
        )
    ax.axhline(0, color="black", linewidth=0.8, zorder=3)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-105, clip + 15)
    ax.yaxis.set_major_locator(MultipleLocator(25 if clip <= 100 else 50))
    ax.spines["bottom"].set_visible(False)
    ax.grid(axis="y", color="#EBEBEB", linewidth=0.6, zorder=0)
    ax.set_ylabel(text["ylabel"])
    if show_codes:
        ax.set_xticks(
            range(n),
            [item.subject_code for item in bars],
            rotation=90,
            fontsize=6.5 if n > 20 else 8,
        )
        ax.tick_params(axis="x", length=0)
    else:
        ax.set_xticks([])
    ax.set_xlabel(text["xlabel"] % {"n": n})

    if kind == "recist":
        present = {item.response or "NE" for item in bars}
        handles = [
            Patch(color=RESPONSE_COLOURS[r], label=text[r]) for r in RESPONSE_ORDER if r in present
        ]
    else:
        handles = [
            Patch(color=DECLINE_COLOUR, label=text["decline"]),
            Patch(color=NO_DECLINE_COLOUR, label=text["no_decline"]),
        ]
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.02),
        ncol=len(handles),
        borderaxespad=0.0,
        handlelength=1.2,
        columnspacing=1.2,
    )
    _notes(fig, notes)
    return fig


def _notes(fig: Figure, notes: list[str]) -> None:
    if notes:
        fig.text(
            0.75 / fig.get_figwidth(),
            0.01,
            "   ".join(notes),
            ha="left",
            va="bottom",
            fontsize="small",
            color=GREY,
            gid="notes",
        )
