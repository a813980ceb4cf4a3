"""Publication-ready oncology figures for the analytics app (matplotlib, no ORM).

Every builder takes plain data (a `analytics.survival.km_summary` result or a DataFrame, a list
of `SwimmerRow`, a list of `WaterfallValue`) and returns a `matplotlib.figure.Figure`; `render`
turns a figure into SVG, PNG (300 dpi) or PDF bytes. Texts are translated with Django's gettext
in the caller's active language unless given in `labels`. Inputs carry pseudonymous subject
codes only: rows with any other key (a name, a date of birth, ...) are refused.

    from analytics import plots
    png = plots.render(plots.km_figure(summary, endpoint="os"), "png")

The pieces live in plots_base (style, fonts, render), plots_km, plots_swimmer and
plots_waterfall; this module is the public surface.
"""

from analytics.plots_base import (
    DAYS_PER_MONTH,
    FORMATS,
    GROUP_COLOURS,
    OKABE_ITO,
    RESPONSE_COLOURS,
    cjk_font_family,
    content_type,
    render,
)
from analytics.plots_km import at_risk_at, format_p, km_figure
from analytics.plots_swimmer import MAX_ROWS, SwimmerRow, swimmer_figure
from analytics.plots_waterfall import WaterfallValue, waterfall_figure

__all__ = [
    "DAYS_PER_MONTH",
    "FORMATS",
    "GROUP_COLOURS",
    "MAX_ROWS",
    "OKABE_ITO",
    "RESPONSE_COLOURS",
    "SwimmerRow",
    "WaterfallValue",
    "at_risk_at",
    "cjk_font_family",
    "content_type",
    "format_p",
    "km_figure",
    "render",
    "swimmer_figure",
    "waterfall_figure",
]
