"""The lab analyte catalogue: codes, SI units as reported in China, accepted alternative units with
their exact conversions, reference ranges, and the limits of what is possible and what is usual.

Pure (no ORM). Values are stored in the SI unit; the value and unit as typed are kept beside them.
A value typed in another unit is converted with `to_si` and rounded to the precision the
laboratory reports in the SI unit, so a conversion never invents digits (bilirubin 1.2 mg/dL is
stored as 20.5 µmol/L, not 20.52).

Reference ranges: adult intervals of the Chinese health-industry standards WS/T 405-2012 (blood
cell analysis) and WS/T 404.1-2012 (ALT, AST, ALP, GGT), 404.2-2012 (albumin), 404.4-2018 (total
and direct bilirubin), 404.5-2015 (urea, creatinine; the 60–79-year band, the age of this
cohort). Coagulation, amylase, lipase, glucose and tumour markers carry common hospital ranges:
they depend on the reagent, and a site whose laboratory reports other limits should say so.

Two kinds of limits guard against typing errors, the classic one being a value typed in the
wrong unit: outside `limits` a value is physiologically impossible and refused; outside
`usual` it is possible but extreme, and the coordinator must confirm it.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

D = Decimal


@dataclass(frozen=True)
class Range:
    """An interval; a missing bound is open. `low <= value <= high` is inside."""

    low: Decimal | None = None
    high: Decimal | None = None

    def below(self, value: Decimal) -> bool:
        return self.low is not None and value < self.low

    def above(self, value: Decimal) -> bool:
        return self.high is not None and value > self.high

    def contains(self, value: Decimal) -> bool:
        return not (self.below(value) or self.above(value))

    def display(self) -> str:
        """e.g. "130–175", "≤ 26", "≥ 90"."""
        if self.low is not None and self.high is not None:
            return "%s–%s" % (number(self.low), number(self.high))
        if self.high is not None:
            return "≤ %s" % number(self.high)
        if self.low is not None:
            return "≥ %s" % number(self.low)
        return "—"


@dataclass(frozen=True)
class Unit:
    """An accepted unit: value in the SI unit = value in this unit × `factor`."""

    code: str
    factor: Decimal = D(1)
    decimals: int = 2  # the usual reporting precision in this unit


@dataclass(frozen=True)
class Group:
    code: str
    label: Promise


@dataclass(frozen=True)
class Analyte:
    code: str
    label: Promise
    group: str
    unit: str  # the SI unit, in which values are stored
    decimals: int  # reporting precision in the SI unit (converted values are rounded to it)
    reference: Range | dict[str, Range]  # one range, or {"M": …, "F": …}
    limits: Range  # outside: impossible, refused
    usual: Range  # outside (but within limits): extreme, needs a confirmation
    alternatives: tuple[Unit, ...] = ()
    source: str = ""

    @property
    def units(self) -> tuple[Unit, ...]:
        """The SI unit first, then the alternatives."""
        return (Unit(self.unit, D(1), self.decimals), *self.alternatives)

    @property
    def unit_codes(self) -> tuple[str, ...]:
        return tuple(unit.code for unit in self.units)

    def unit_for(self, code: str | None) -> Unit:
        """The accepted unit `code` (None or "" is the SI unit); KeyError for any other."""
        if not code:
            return self.units[0]
        for unit in self.units:
            if unit.code == code:
                return unit
        raise KeyError(code)

    def reference_for(self, sex: str) -> Range:
        """The reference range for `sex` ("M" / "F")."""
        if isinstance(self.reference, Range):
            return self.reference
        return self.reference[sex]

    def is_sex_specific(self) -> bool:
        return not isinstance(self.reference, Range)


GROUPS: tuple[Group, ...] = (
    Group("blood", gettext_lazy("Blood routine")),
    Group("coagulation", gettext_lazy("Coagulation")),
    Group("liver", gettext_lazy("Liver function")),
    Group("kidney", gettext_lazy("Kidney function")),
    Group("pancreatic", gettext_lazy("Pancreatic and glucose")),
    Group("tumour_markers", gettext_lazy("Tumour markers")),
)

# Units (the strings are stored in LabResult.entered_unit: never change one).
G_L = "×10⁹/L"
PER_UL = "/µL"
K_PER_UL = "×10³/µL"
RATIO = "ratio"
_COUNTS = (Unit(PER_UL, D("0.001"), 0), Unit(K_PER_UL, D(1), 2))
_WS405 = "WS/T 405-2012"
_WS404_1 = "WS/T 404.1-2012"
_COMMON = "common hospital range (reagent-dependent)"

ANALYTES: tuple[Analyte, ...] = (
    # Blood routine -------------------------------------------------------------------------
    Analyte(
        "wbc",
        gettext_lazy("White blood cells (WBC)"),
        "blood",
        G_L,
        2,
        Range(D("3.5"), D("9.5")),
        limits=Range(D(0), D(500)),
        usual=Range(D("0.5"), D(50)),
        alternatives=_COUNTS,
        source=_WS405,
    ),
    Analyte(
        "anc",
        gettext_lazy("Neutrophils (ANC)"),
        "blood",
        G_L,
        2,
        Range(D("1.8"), D("6.3")),
        limits=Range(D(0), D(300)),
        usual=Range(D("0.2"), D(40)),
        alternatives=_COUNTS,
        source=_WS405,
    ),
    Analyte(
        "lymphocytes",
        gettext_lazy("Lymphocytes"),
        "blood",
        G_L,
        2,
        Range(D("1.1"), D("3.2")),
        limits=Range(D(0), D(300)),
        usual=Range(D("0.1"), D(30)),
        alternatives=_COUNTS,
        source=_WS405,
    ),
    Analyte(
        "hemoglobin",
        gettext_lazy("Haemoglobin"),
        "blood",
        "g/L",
        0,
        {"M": Range(D(130), D(175)), "F": Range(D(115), D(150))},
        limits=Range(D(0), D(250)),
        # 5–50 g/L is almost always g/dL typed as g/L: ask before storing it.
        usual=Range(D(50), D(200)),
        alternatives=(Unit("g/dL", D(10), 1),),
        source=_WS405,
    ),
    Analyte(
        "platelets",
        gettext_lazy("Platelets"),
        "blood",
        G_L,
        0,
        Range(D(125), D(350)),
        limits=Range(D(0), D(5000)),
        usual=Range(D(10), D(1000)),
        alternatives=_COUNTS,
        source=_WS405,
    ),
    # Coagulation ---------------------------------------------------------------------------
    Analyte(
        "pt",
        gettext_lazy("Prothrombin time (PT)"),
        "coagulation",
        "s",
        1,
        Range(D(11), D("14.5")),
        limits=Range(D(5), D(200)),
        usual=Range(D(8), D(60)),
        source=_COMMON,
    ),
    Analyte(
        "inr",
        gettext_lazy("INR"),
        "coagulation",
        RATIO,
        2,
        Range(D("0.8"), D("1.2")),
        limits=Range(D("0.5"), D(20)),
        usual=Range(D("0.7"), D(8)),
        source=_COMMON,
    ),
    Analyte(
        "aptt",
        gettext_lazy("Activated partial thromboplastin time (APTT)"),
        "coagulation",
        "s",
        1,
        Range(D(25), D(37)),
        limits=Range(D(10), D(300)),
        usual=Range(D(18), D(150)),
        source=_COMMON,
    ),
    Analyte(
        "fibrinogen",
        gettext_lazy("Fibrinogen"),
        "coagulation",
        "g/L",
        2,
        Range(D(2), D(4)),
        limits=Range(D(0), D(20)),
        usual=Range(D("0.5"), D(10)),
        alternatives=(Unit("mg/dL", D("0.01"), 0),),
        source=_COMMON,
    ),
    Analyte(
        "d_dimer",
        gettext_lazy("D-dimer"),
        "coagulation",
        "mg/L FEU",
        2,
        Range(None, D("0.55")),
        limits=Range(D(0), D(200)),
        usual=Range(None, D(35)),
        alternatives=(
            Unit("µg/mL FEU", D(1), 2),
            Unit("ng/mL FEU", D("0.001"), 0),
            Unit("µg/L FEU", D("0.001"), 0),
        ),
        source=_COMMON,
    ),
    # Liver ---------------------------------------------------------------------------------
    Analyte(
        "alt",
        gettext_lazy("ALT"),
        "liver",
        "U/L",
        0,
        {"M": Range(D(9), D(50)), "F": Range(D(7), D(40))},
        limits=Range(D(0), D(20000)),
        usual=Range(None, D(1000)),
        source=_WS404_1,
    ),
    Analyte(
        "ast",
        gettext_lazy("AST"),
        "liver",
        "U/L",
        0,
        {"M": Range(D(15), D(40)), "F": Range(D(13), D(35))},
        limits=Range(D(0), D(20000)),
        usual=Range(None, D(1000)),
        source=_WS404_1,
    ),
    Analyte(
        "alp",
        gettext_lazy("Alkaline phosphatase (ALP)"),
        "liver",
        "U/L",
        0,
        # Women: the 50–79-year interval (35–100 U/L from 20 to 49 years).
        {"M": Range(D(45), D(125)), "F": Range(D(50), D(135))},
        limits=Range(D(0), D(10000)),
        usual=Range(None, D(2000)),
        source=_WS404_1,
    ),
    Analyte(
        "ggt",
        gettext_lazy("γ-glutamyl transferase (GGT)"),
        "liver",
        "U/L",
        0,
        {"M": Range(D(10), D(60)), "F": Range(D(7), D(45))},
        limits=Range(D(0), D(10000)),
        usual=Range(None, D(2000)),
        source=_WS404_1,
    ),
    Analyte(
        "tbil",
        gettext_lazy("Total bilirubin"),
        "liver",
        "µmol/L",
        1,
        {"M": Range(None, D(26)), "F": Range(None, D(21))},
        limits=Range(D(0), D(1500)),
        usual=Range(None, D(500)),
        alternatives=(Unit("mg/dL", D("17.1"), 2),),
        source="WS/T 404.4-2018",
    ),
    Analyte(
        "dbil",
        gettext_lazy("Direct bilirubin"),
        "liver",
        "µmol/L",
        1,
        Range(None, D(8)),
        limits=Range(D(0), D(1000)),
        usual=Range(None, D(400)),
        alternatives=(Unit("mg/dL", D("17.1"), 2),),
        source="WS/T 404.4-2018",
    ),
    Analyte(
        "albumin",
        gettext_lazy("Albumin"),
        "liver",
        "g/L",
        1,
        Range(D(40), D(55)),
        # Below 5 g/L is g/dL typed as g/L.
        limits=Range(D(5), D(70)),
        usual=Range(D(15), D(60)),
        alternatives=(Unit("g/dL", D(10), 1),),
        source="WS/T 404.2-2012",
    ),
    # Kidney --------------------------------------------------------------------------------
    Analyte(
        "creatinine",
        gettext_lazy("Creatinine"),
        "kidney",
        "µmol/L",
        1,
        {"M": Range(D(57), D(111)), "F": Range(D(41), D(81))},
        # Below 5 µmol/L is mg/dL typed as µmol/L.
        limits=Range(D(5), D(3000)),
        usual=Range(D(20), D(1000)),
        alternatives=(Unit("mg/dL", D("88.4"), 2),),
        source="WS/T 404.5-2015",
    ),
    Analyte(
        "urea",
        gettext_lazy("Urea"),
        "kidney",
        "mmol/L",
        2,
        {"M": Range(D("3.6"), D("9.5")), "F": Range(D("3.1"), D("8.8"))},
        limits=Range(D("0.5"), D(150)),
        usual=Range(D(1), D(50)),
        # Blood urea nitrogen in mg/dL: 1 mg/dL BUN = 0.357 mmol/L urea.
        alternatives=(Unit("mg/dL BUN", D("0.357"), 1),),
        source="WS/T 404.5-2015",
    ),
    Analyte(
        "egfr",
        gettext_lazy("eGFR"),
        "kidney",
        "mL/min/1.73m²",
        0,
        Range(D(90), None),
        limits=Range(D(0), D(250)),
        usual=Range(D(10), D(180)),
        source="KDIGO 2012 (G1 ≥ 90)",
    ),
    # Pancreatic and glucose -----------------------------------------------------------------
    Analyte(
        "amylase",
        gettext_lazy("Amylase (serum)"),
        "pancreatic",
        "U/L",
        0,
        Range(D(35), D(135)),
        limits=Range(D(0), D(50000)),
        usual=Range(None, D(3000)),
        source=_COMMON,
    ),
    Analyte(
        "lipase",
        gettext_lazy("Lipase"),
        "pancreatic",
        "U/L",
        0,
        Range(D(13), D(60)),
        limits=Range(D(0), D(100000)),
        usual=Range(None, D(5000)),
        source=_COMMON,
    ),
    Analyte(
        "glucose",
        gettext_lazy("Glucose"),
        "pancreatic",
        "mmol/L",
        2,
        Range(D("3.9"), D("6.1")),
        # Above 70 mmol/L is mg/dL typed as mmol/L (1260 mg/dL).
        limits=Range(D("0.5"), D(70)),
        usual=Range(D("2.5"), D(30)),
        # 1 mg/dL = 1/18.016 mmol/L, taken as 0.0555.
        alternatives=(Unit("mg/dL", D("0.0555"), 0),),
        source="fasting; WHO 1999 / Chinese diabetes guideline",
    ),
    Analyte(
        "drain_amylase",
        gettext_lazy("Drain amylase"),
        "pancreatic",
        "U/L",
        0,
        # ISGPS 2016: above 3 × the serum amylase ULN (135 U/L) from postoperative day 3.
        Range(None, D(405)),
        limits=Range(D(0), D(500000)),
        usual=Range(None, D(100000)),
        source="ISGPS 2016 (3 × serum ULN)",
    ),
    # Tumour markers ------------------------------------------------------------------------
    Analyte(
        "ca19_9",
        gettext_lazy("CA19-9"),
        "tumour_markers",
        "U/mL",
        1,
        Range(None, D(37)),
        limits=Range(D(0), D(1000000)),
        usual=Range(None, D(100000)),
        alternatives=(Unit("kU/L", D(1), 1),),
        source=_COMMON,
    ),
    Analyte(
        "cea",
        gettext_lazy("CEA"),
        "tumour_markers",
        "ng/mL",
        2,
        Range(None, D(5)),
        limits=Range(D(0), D(100000)),
        usual=Range(None, D(5000)),
        alternatives=(Unit("µg/L", D(1), 2),),
        source=_COMMON,
    ),
    Analyte(
        "ca125",
        gettext_lazy("CA125"),
        "tumour_markers",
        "U/mL",
        1,
        Range(None, D(35)),
        limits=Range(D(0), D(100000)),
        usual=Range(None, D(10000)),
        alternatives=(Unit("kU/L", D(1), 1),),
        source=_COMMON,
    ),
)

BY_CODE: dict[str, Analyte] = {analyte.code: analyte for analyte in ANALYTES}
CODES: tuple[str, ...] = tuple(BY_CODE)
GROUP_LABELS: dict[str, Promise] = {group.code: group.label for group in GROUPS}
UNIT_LABELS: dict[str, Promise] = {RATIO: gettext_lazy("ratio")}


def get(code: str) -> Analyte:
    """The analyte `code`; KeyError for a code not in the catalogue."""
    return BY_CODE[code]


def by_group() -> list[tuple[Group, list[Analyte]]]:
    """The catalogue by group, in catalogue order."""
    return [(group, [a for a in ANALYTES if a.group == group.code]) for group in GROUPS]


def unit_label(code: str) -> str:
    return str(UNIT_LABELS.get(code, code))


def number(value: Decimal) -> str:
    """A decimal without trailing zeros and never in exponent form (120, 20.5, 0.55)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _quantum(decimals: int) -> Decimal:
    return D(1).scaleb(-decimals)


def to_si(analyte: Analyte, value: Decimal, unit: str | None) -> Decimal:
    """`value` typed in `unit` (None: the SI unit) as a value in the SI unit.

    A value typed in the SI unit is returned as typed; a converted one is rounded (half up) to
    the analyte's reporting precision. KeyError for a unit the analyte does not accept.
    """
    accepted = analyte.unit_for(unit)
    if accepted.code == analyte.unit:
        return value
    return (value * accepted.factor).quantize(_quantum(analyte.decimals), rounding=ROUND_HALF_UP)


def from_si(analyte: Analyte, value: Decimal, unit: str, *, decimals: int = 4) -> Decimal:
    """`value` in the SI unit expressed in `unit`, rounded to `decimals` places."""
    accepted = analyte.unit_for(unit)
    return (value / accepted.factor).quantize(_quantum(decimals), rounding=ROUND_HALF_UP)


def flag(analyte: Analyte, value: Decimal, sex: str) -> str:
    """ "H" above the reference range, "L" below it, "" inside it (bounds are inside)."""
    reference = analyte.reference_for(sex)
    if reference.above(value):
        return "H"
    if reference.below(value):
        return "L"
    return ""


def is_impossible(analyte: Analyte, value: Decimal) -> bool:
    return not analyte.limits.contains(value)


def is_extreme(analyte: Analyte, value: Decimal) -> bool:
    """Possible, but outside the usual range: a value to confirm before it is stored."""
    return not is_impossible(analyte, value) and not analyte.usual.contains(value)


def typed(value: Decimal, unit: str) -> str:
    """A value as the user typed it, with its unit: "1.2 mg/dL"."""
    return ("%s %s" % (number(value), unit_label(unit))).strip()


def _as_typed(analyte: Analyte, value: Decimal, unit: str | None, si_value: Decimal) -> str:
    shown = typed(value, unit or analyte.unit)
    if unit and unit != analyte.unit:
        shown = "%s (%s)" % (shown, typed(si_value, analyte.unit))
    return shown


def unknown_unit_message(analyte: Analyte, unit: str) -> str:
    return _("%(analyte)s: the unit “%(unit)s” is not accepted; use one of: %(units)s.") % {
        "analyte": analyte.label,
        "unit": unit,
        "units": ", ".join(unit_label(code) for code in analyte.unit_codes),
    }


def impossible_message(
    analyte: Analyte, value: Decimal, unit: str | None, si_value: Decimal
) -> str:
    """e.g. "Haemoglobin 900 g/L is not possible (0–250 g/L): check the unit." """
    return _("%(analyte)s %(value)s is not possible (%(limits)s): check the unit.") % {
        "analyte": analyte.label,
        "value": _as_typed(analyte, value, unit, si_value),
        "limits": ("%s %s" % (analyte.limits.display(), unit_label(analyte.unit))).strip(),
    }


def extreme_message(analyte: Analyte, value: Decimal, unit: str | None, si_value: Decimal) -> str:
    """Asks the coordinator to confirm a possible but extreme value."""
    low = analyte.usual.below(si_value)
    message = (
        _(
            "%(analyte)s %(value)s is unusually low (usual %(usual)s): check the value and the "
            "unit, and tick “confirm” if it is right."
        )
        if low
        else _(
            "%(analyte)s %(value)s is unusually high (usual %(usual)s): check the value and the "
            "unit, and tick “confirm” if it is right."
        )
    )
    return message % {
        "analyte": analyte.label,
        "value": _as_typed(analyte, value, unit, si_value),
        "usual": ("%s %s" % (analyte.usual.display(), unit_label(analyte.unit))).strip(),
    }
