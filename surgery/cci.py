"""The Comprehensive Complication Index (Slankamenac et al., Ann Surg 2013), pure.

CCI = sqrt(sum of the weights of every complication) / 2, capped at 100; a grade V
complication (death) makes it 100; no complication, 0.
"""

import math
from collections.abc import Iterable

# Weights per Clavien-Dindo grade (Slankamenac 2013, table 2).
WEIGHTS: dict[str, int] = {
    "I": 300,
    "II": 1750,
    "IIIa": 2750,
    "IIIb": 4550,
    "IVa": 7200,
    "IVb": 8550,
}
# Clavien-Dindo grades from mild to death: the order "max grade" is taken in.
ORDER: tuple[str, ...] = ("I", "II", "IIIa", "IIIb", "IVa", "IVb", "V")


def cci(grades: Iterable[str]) -> float:
    """The CCI of the complications graded `grades` (Clavien-Dindo), rounded to 0.1.

    Raises ValueError for a grade that is not a Clavien-Dindo grade.
    """
    total = 0
    for grade in grades:
        if grade == "V":
            return 100.0
        if grade not in WEIGHTS:
            raise ValueError(f"not a Clavien-Dindo grade: {grade!r}")
        total += WEIGHTS[grade]
    return round(min(100.0, math.sqrt(total) / 2), 1)


def max_grade(grades: Iterable[str]) -> str | None:
    """The highest Clavien-Dindo grade among `grades`, or None when there is none."""
    ranked = [ORDER.index(g) for g in grades if g in ORDER]
    return ORDER[max(ranked)] if ranked else None
