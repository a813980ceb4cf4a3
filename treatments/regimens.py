"""The regimen catalogue and the dose arithmetic: pure Python, no ORM, tested as plain functions.

Codes are the values stored in `treatments.models.Regimen` and `treatments.models.Drug` (a test
keeps them in step). Doses are the standard doses of the pivotal trials, per administration:

- AG: nab-paclitaxel 125 mg/m² + gemcitabine 1000 mg/m² on days 1, 8 and 15 of a 28-day
  cycle. MPACT (Von Hoff DD et al., N Engl J Med 2013;369:1691-703).
- FOLFIRINOX: oxaliplatin 85, irinotecan 180, leucovorin 400 mg/m², 5-FU 400 mg/m² bolus, then
  5-FU 2400 mg/m² as a 46-hour infusion, every 14 days. PRODIGE 4/ACCORD 11 (Conroy T et al.,
  N Engl J Med 2011;364:1817-25).
- mFOLFIRINOX: irinotecan 150 mg/m², no 5-FU bolus, otherwise as FOLFIRINOX, every 14 days.
  PRODIGE 24/CCTG PA.6 (Conroy T et al., N Engl J Med 2018;379:2395-406), the modification
  most centres also use in metastatic disease.
- NALIRIFOX: liposomal irinotecan 50 mg/m² (free-base), oxaliplatin 60, leucovorin 400 mg/m²,
  5-FU 2400 mg/m² over 46 hours, on days 1 and 15 of a 28-day cycle, i.e. every 14 days.
  NAPOLI-3 (Wainberg ZA et al., Lancet 2023;402:1272-81).
- other: the user names the regimen and types its cycle length; the planned doses they enter
  are the reference.

Relative dose intensity (RDI) follows Hryniuk's definition: the dose actually given per unit of
time over the dose planned per unit of time, with the time the cycles really took.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

# Stored codes (treatments.models.Regimen / Drug values).
AG, FOLFIRINOX, MFOLFIRINOX, NALIRIFOX, OTHER = (
    "AG",
    "FOLFIRINOX",
    "mFOLFIRINOX",
    "NALIRIFOX",
    "other",
)
NAB_PACLITAXEL, GEMCITABINE = "nab_paclitaxel", "gemcitabine"
OXALIPLATIN, IRINOTECAN, LIPOSOMAL_IRINOTECAN = "oxaliplatin", "irinotecan", "liposomal_irinotecan"
LEUCOVORIN, FU_BOLUS, FU_INFUSION = "leucovorin", "fluorouracil_bolus", "fluorouracil_infusion"

# A given dose above this share of the standard dose for the BSA is refused as a likely typo.
MAX_DOSE_RATIO = Decimal("1.5")
# A dose below this share of the planned (or standard) dose counts as a dose reduction.
REDUCED_BELOW = Decimal("0.95")


@dataclass(frozen=True)
class StandardDose:
    drug: str
    mg_m2: Decimal  # per administration
    administrations: int  # per cycle


@dataclass(frozen=True)
class RegimenSpec:
    code: str
    cycle_length_days: int
    doses: tuple[StandardDose, ...]
    source: str

    @property
    def drugs(self) -> tuple[str, ...]:
        return tuple(dose.drug for dose in self.doses)

    def dose_for(self, drug: str) -> StandardDose | None:
        return next((dose for dose in self.doses if dose.drug == drug), None)


def _d(drug: str, mg_m2: str, administrations: int = 1) -> StandardDose:
    return StandardDose(drug, Decimal(mg_m2), administrations)


REGIMENS: dict[str, RegimenSpec] = {
    AG: RegimenSpec(
        AG,
        28,
        (_d(NAB_PACLITAXEL, "125", 3), _d(GEMCITABINE, "1000", 3)),
        "MPACT, N Engl J Med 2013",
    ),
    FOLFIRINOX: RegimenSpec(
        FOLFIRINOX,
        14,
        (
            _d(OXALIPLATIN, "85"),
            _d(IRINOTECAN, "180"),
            _d(LEUCOVORIN, "400"),
            _d(FU_BOLUS, "400"),
            _d(FU_INFUSION, "2400"),
        ),
        "PRODIGE 4/ACCORD 11, N Engl J Med 2011",
    ),
    MFOLFIRINOX: RegimenSpec(
        MFOLFIRINOX,
        14,
        (
            _d(OXALIPLATIN, "85"),
            _d(IRINOTECAN, "150"),
            _d(LEUCOVORIN, "400"),
            _d(FU_INFUSION, "2400"),
        ),
        "PRODIGE 24, N Engl J Med 2018",
    ),
    NALIRIFOX: RegimenSpec(
        NALIRIFOX,
        14,
        (
            _d(LIPOSOMAL_IRINOTECAN, "50"),
            _d(OXALIPLATIN, "60"),
            _d(LEUCOVORIN, "400"),
            _d(FU_INFUSION, "2400"),
        ),
        "NAPOLI-3, Lancet 2023",
    ),
}


def regimen_spec(code: str) -> RegimenSpec | None:
    """The standard regimen `code`, or None for "other" (named and dosed by the user)."""
    return REGIMENS.get(code)


def cycle_length(code: str, typed: int | None = None) -> int | None:
    """Cycle length in days: the regimen's, or `typed` for "other"."""
    spec = regimen_spec(code)
    return spec.cycle_length_days if spec else typed


def dose_for_bsa(mg_m2: Decimal, bsa_m2: Decimal) -> Decimal:
    """The dose in mg for a body-surface area, rounded to whole milligrams (as prescribed)."""
    return (Decimal(mg_m2) * Decimal(bsa_m2)).quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def dose_ratio(given_mg: Decimal, mg_m2: Decimal, bsa_m2: Decimal) -> Decimal | None:
    """Given dose over `mg_m2` × BSA (1 = 100%); None when the reference is zero."""
    reference = Decimal(mg_m2) * Decimal(bsa_m2)
    if not reference:
        return None
    return Decimal(given_mg) / reference


def percent(ratio: Decimal | None) -> int | None:
    """A ratio as a whole percentage (1.704 → 170)."""
    if ratio is None:
        return None
    return int((ratio * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def is_reduced(
    *,
    given_mg: Decimal,
    planned_mg_m2: Decimal,
    bsa_m2: Decimal,
    given_days: int,
    planned_days: int,
    standard_mg_m2: Decimal | None = None,
) -> bool:
    """A drug is reduced when less than 95% of the planned dose × BSA was given, fewer
    administrations than planned were given, or the plan itself is below 95% of the standard."""
    if given_days < planned_days:
        return True
    ratio = dose_ratio(given_mg, planned_mg_m2, bsa_m2)
    if ratio is not None and ratio < REDUCED_BELOW:
        return True
    return bool(standard_mg_m2) and Decimal(planned_mg_m2) < REDUCED_BELOW * standard_mg_m2


@dataclass(frozen=True)
class GivenDose:
    """One cycle's dose of one drug, as recorded: enough to compute dose intensity."""

    given_on: date
    bsa_m2: Decimal
    given_mg: Decimal  # per administration
    given_days: int  # administrations given

    @property
    def mg_m2(self) -> Decimal:
        """Total mg/m² given in the cycle."""
        if not self.bsa_m2:
            return Decimal(0)
        return Decimal(self.given_mg) * self.given_days / Decimal(self.bsa_m2)


def planned_dose_intensity(
    *, mg_m2: Decimal, administrations: int, cycle_length_days: int
) -> Decimal:
    """Planned dose intensity in mg/m² per week."""
    return Decimal(mg_m2) * administrations / (Decimal(cycle_length_days) / 7)


def relative_dose_intensity(
    given: Iterable[GivenDose],
    *,
    mg_m2: Decimal,
    administrations: int,
    cycle_length_days: int,
) -> Decimal | None:
    """RDI of one drug over the cycles of a line, as a ratio (1 = 100%), to three decimals.

    (total mg/m² given ÷ actual weeks) ÷ (standard mg/m² × administrations ÷ cycle weeks), where
    the actual time runs from the first cycle's date to the last cycle's date plus one cycle
    length. None without cycles or without a planned dose.
    """
    given = list(given)
    if not given or not mg_m2 or not administrations or not cycle_length_days:
        return None
    first = min(dose.given_on for dose in given)
    last = max(dose.given_on for dose in given)
    weeks = Decimal((last - first).days + cycle_length_days) / 7
    actual = sum((dose.mg_m2 for dose in given), Decimal(0)) / weeks
    planned = planned_dose_intensity(
        mg_m2=mg_m2, administrations=administrations, cycle_length_days=cycle_length_days
    )
    return (actual / planned).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
