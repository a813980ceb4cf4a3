"""What every analytics figure shares: the style, the palette, the fonts and `render`.

Figures are built with matplotlib's object-oriented API (`matplotlib.figure.Figure`, never
pyplot), so no global figure manager or interactive backend is involved and building figures is
safe under a threaded gunicorn worker. Rendering picks the Agg-based canvas for the format
(`Figure.savefig` does that for a figure without a pyplot manager).

matplotlib reads some settings from its process-wide rcParams when a text is created (font
family and sizes) and others when a figure is saved (PDF/SVG font handling). Both happen inside
`style()`, which applies this module's settings under a lock so that two threads cannot
interleave their changes to rcParams.

Fonts: Latin text uses DejaVu Sans (shipped with matplotlib); an installed CJK font (Noto Sans
CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, ...) is the fallback family, so Chinese labels
render glyph by glyph from it. Without one, a warning is logged once and figures still render
(Chinese characters then show as empty boxes). `scripts/install-system-deps.sh` installs
`fonts-noto-cjk` on Debian.

Output formats (`render`):
- PNG at 300 dpi (the pHYs chunk says so);
- PDF with TrueType (Type 42) embedded font subsets, so text stays selectable and editable in
  a journal's tools, Chinese included;
- SVG with text converted to paths (`svg.fonttype = "path"`): the file draws identically on a
  machine without the fonts (no CJK font needed by the viewer), at the cost of text not being
  selectable in the SVG.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.4375  # as analytics.dataset: 365.25 / 12
PNG_DPI = 300
FORMATS = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}

# Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour-vision
# deficiencies and in greyscale print by lightness.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
# Group curves in this order (the strongest contrasts first).
GROUP_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
)
GREY = "#8C8C8C"
LIGHT_GREY = "#D9D9D9"
# RECIST 1.1 response: green (good) to vermillion (progression), grey = not evaluable.
RESPONSE_COLOURS = {
    "CR": OKABE_ITO["bluish_green"],
    "PR": OKABE_ITO["blue"],
    "SD": OKABE_ITO["orange"],
    "PD": OKABE_ITO["vermillion"],
    "NE": GREY,
}
RESPONSE_ORDER = ("CR", "PR", "SD", "PD", "NE")

# Family names of CJK fonts that cover Simplified Chinese, best first.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
)
_CJK_FILE = re.compile(r"(cjk|sourcehansans|wqy|wenquanyi|droidsansfallback|uming|ukai)", re.I)
LATIN_FAMILY = "DejaVu Sans"

_STYLE_LOCK = threading.RLock()
_cjk_family: str | None = None
_cjk_searched = False


def cjk_font_family() -> str | None:
    """The family name of an installed CJK font matplotlib can use, or None.

    Looks in matplotlib's font list first; when that has none (its cache predates the font's
    installation), scans the system font directories for CJK font files and registers them.
    The answer is remembered for the life of the process; without a font a warning is logged
    once."""
    global _cjk_family, _cjk_searched
    with _STYLE_LOCK:
        if _cjk_searched:
            return _cjk_family
        _cjk_family = _find_cjk_family()
        if _cjk_family is None:
            for path in font_manager.findSystemFonts():
                if _CJK_FILE.search(path.rsplit("/", 1)[-1]):
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):  # unreadable font file
                        continue
            _cjk_family = _find_cjk_family()
        _cjk_searched = True
        if _cjk_family is None:
            logger.warning(
                "No CJK font found for matplotlib (tried %s): Chinese text in figures will "
                "show as empty boxes. Install one with scripts/install-system-deps.sh.",
                ", ".join(CJK_FAMILIES[:4]),
            )
        return _cjk_family


def _find_cjk_family() -> str | None:
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in installed), None)


def _reset_font_search() -> None:
    """Forget the font search (tests)."""
    global _cjk_family, _cjk_searched
    with _STYLE_LOCK:
        _cjk_family, _cjk_searched = None, False


def rc(base_size: float = 9.0) -> dict:
    families = [LATIN_FAMILY]
    if cjk := cjk_font_family():
        families.append(cjk)
    return {
        "font.family": families,
        "font.size": base_size,
        "axes.titlesize": base_size + 2,
        "axes.titleweight": "bold",
        "axes.labelsize": base_size + 1,
        "axes.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.unicode_minus": True,
        "xtick.labelsize": base_size,
        "ytick.labelsize": base_size,
        "xtick.major.width": 0.8,
        "ytick.major.width": 0.8,
        "legend.fontsize": base_size,
        "legend.frameon": False,
        "lines.linewidth": 1.6,
        "figure.dpi": 100,
        "savefig.dpi": PNG_DPI,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "path",
        "svg.hashsalt": "plm-edc",  # stable element ids: identical input, identical SVG
    }


@contextmanager
def style(base_size: float = 9.0) -> Iterator[None]:
    """Build or save a figure with the analytics style (holds a lock: see the module doc)."""
    with _STYLE_LOCK, matplotlib.rc_context(rc(base_size)):
        yield


def render(fig: Figure, fmt: str) -> bytes:
    """The figure as SVG, PNG (300 dpi) or PDF bytes.

    PDF embeds TrueType subsets of its fonts (Type 42); SVG text is drawn as paths."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError("Unknown figure format %r: use one of %s." % (fmt, ", ".join(FORMATS)))
    buffer = io.BytesIO()
    # No creation date: the same figure renders to the same bytes (caching, tests).
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}[fmt]
    metadata["Creator"] = "PLM-EDC (matplotlib)"
    with style():
        fig.savefig(
            buffer,
            format=fmt,
            dpi=PNG_DPI,
            bbox_inches="tight",
            pad_inches=0.08,
            facecolor="white",
            metadata=metadata,
        )
    return buffer.getvalue()


def content_type(fmt: str) -> str:
    """The MIME type of a `render` format."""
    return FORMATS[fmt.lower()]


def resolve_labels(defaults: Mapping[str, str], labels: Mapping[str, str] | None) -> dict:
    """`defaults` overridden by `labels`; a key the figure does not use is refused, so a typo
    does not silently leave an untranslated default."""
    labels = dict(labels or {})
    unknown = sorted(set(labels) - set(defaults))
    if unknown:
        raise ValueError(
            "Unknown label key(s) %s: this figure takes %s."
            % (", ".join(unknown), ", ".join(sorted(defaults)))
        )
    return {**{key: str(value) for key, value in defaults.items()}, **labels}


# Keys that carry identifying data (PHI): never accepted by a figure's input.
PHI_KEYS = frozenset(
    {
        "name",
        "full_name",
        "first_name",
        "last_name",
        "hospital_number",
        "hospital_record_number",
        "medical_record_number",
        "mrn",
        "date_of_birth",
        "dob",
        "birth_date",
        "phone",
        "telephone",
        "address",
        "id_number",
        "national_id",
        "email",
    }
)


def check_keys(row: Mapping, allowed: frozenset[str] | set[str], what: str) -> None:
    """Refuse a row with keys outside `allowed`: identifying keys (PHI_KEYS) get their own
    message, so a caller passing patient rows by mistake learns why."""
    phi = sorted(set(row) & PHI_KEYS)
    if phi:
        raise ValueError(
            "%s rows take pseudonymous subject codes only; identifying field(s) %s refused."
            % (what, ", ".join(phi))
        )
    unknown = sorted(set(row) - set(allowed))
    if unknown:
        raise ValueError(
            "Unknown %s field(s) %s: the fields are %s."
            % (what, ", ".join(map(str, unknown)), ", ".join(sorted(allowed)))
        )


def new_figure(width: float, height: float) -> Figure:
    """A white figure of `width` x `height` inches (call inside `style()`)."""
    return Figure(figsize=(width, height), facecolor="white", layout=None)
