"""Specimen labels: the specimen code as a Code 128 (code set B) barcode, rendered as inline
SVG in pure Python, and the label's text. A label carries no PHI: the pseudonymous subject code
and the specimen facts only (no name, record number or date of birth)."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from biobank.models import Specimen

# Bar/space widths (in modules, bar first) of the Code 128 symbols 0–106 (ISO/IEC 15417).
# Every symbol is 11 modules wide; the stop (106) is 13, its termination bar included.
# fmt: off
PATTERNS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312",
    "132212", "221213", "221312", "231212", "112232", "122132", "122231", "113222",
    "123122", "123221", "223211", "221132", "221231", "213212", "223112", "312131",
    "311222", "321122", "321221", "312212", "322112", "322211", "212123", "212321",
    "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121",
    "313121", "211331", "231131", "213113", "213311", "213131", "311123", "311321",
    "331121", "312113", "312311", "332111", "314111", "221411", "431111", "111224",
    "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112",
    "421211", "212141", "214121", "412121", "111143", "111341", "131141", "114113",
    "114311", "411113", "411311", "113141", "114131", "311141", "411131", "211412",
    "211214", "211232", "2331112",
)
# fmt: on
START_B = 104
STOP = 106
QUIET_ZONE = 10  # modules of white on each side, as the symbology requires


def code128_values(text: str) -> list[int]:
    """The symbol values of `text` in code set B: start, characters, checksum, stop.

    Raises ValueError for a character outside printable ASCII (32–126)."""
    values = [START_B]
    for char in text:
        if not 32 <= ord(char) <= 126:
            raise ValueError(f"Code 128 B cannot encode {char!r}")
        values.append(ord(char) - 32)
    checksum = (START_B + sum(i * v for i, v in enumerate(values[1:], start=1))) % 103
    return [*values, checksum, STOP]


def code128_bars(text: str) -> list[tuple[int, int]]:
    """The bars of `text` as (x, width) in modules, the quiet zone included."""
    bars, x = [], QUIET_ZONE
    for value in code128_values(text):
        for index, width in enumerate(PATTERNS[value]):
            if index % 2 == 0:
                bars.append((x, int(width)))
            x += int(width)
    return bars


def code128_svg(text: str, *, height: int = 40, title: str = "") -> SafeString:
    """`text` as an inline SVG Code 128 barcode (one unit per module; scale it with CSS)."""
    bars = code128_bars(text)
    width = bars[-1][0] + bars[-1][1] + QUIET_ZONE
    rects = "".join(f'<rect x="{x}" y="0" width="{w}" height="{height}"/>' for x, w in bars)
    label = escape(title or text)
    return mark_safe(  # noqa: S308 - built from numbers and an escaped label only
        f'<svg xmlns="http://www.w3.org/2000/svg" class="barcode" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" role="img" aria-label="{label}">'
        f'<title>{label}</title><g fill="#000">{rects}</g></svg>'
    )


def specimen_label(specimen: Specimen) -> dict:
    """What a specimen's label prints: the code and its barcode, the subject code and the
    specimen facts. Nothing that identifies the person."""
    return {
        "code": specimen.code,
        "barcode": code128_svg(specimen.code),
        "subject_code": specimen.patient.subject_code,
        "kind": specimen.get_kind_display(),
        "origin": specimen.get_origin_display(),
        "preservation": specimen.get_preservation_display(),
        "collected_on": specimen.collected_at,
        "weight_mg": specimen.weight_mg,
        "aliquot_of": specimen.parent.code if specimen.parent_id else "",
    }
