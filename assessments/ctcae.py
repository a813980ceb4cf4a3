"""CTCAE v5.0 grades of lab values, for the analytes where CTCAE v5.0 defines a lab criterion.

Pure (no ORM). Thresholds are taken literally from CTCAE v5.0 (27 Nov 2017): a band written
">3.0 - 5.0 x ULN" means 3.0 × ULN < value ≤ 5.0 × ULN, and "<1.5 - 1.0 x 10e9/L" means
1.0 ≤ value < 1.5. Values are in the catalogue's SI units (`assessments.analytes`).

What a lab value alone cannot decide is left out, and said so where it matters:
- Anemia grade 4 and hypoalbuminemia grade 4 are clinical ("life-threatening"): never derived.
- Serum amylase and lipase increased: ">2.0 - 5.0 x ULN" is grade 2 when asymptomatic and grade
  3 with signs or symptoms, ">5.0 x ULN" grade 3 or 4 likewise. Symptoms are not on a lab panel,
  so the asymptomatic grade is given.
- INR increased: the criteria for patients not on anticoagulation (the ×baseline criteria for
  anticoagulated patients are not applied).
- Fibrinogen decreased: the ×LLN criteria only; the "% decrease from baseline" criteria for a
  patient whose baseline is abnormal are not implemented.

Baseline-relative criteria (ALT, AST, ALP, GGT, bilirubin): v5.0 grades against the baseline
value instead of the ULN when the patient's baseline is abnormal (above the ULN), as it often is
with liver metastases. Creatinine increased uses both ×ULN and ×baseline in the same grade
(">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN"): the higher grade wins.
"""

from decimal import Decimal

from django.utils.translation import gettext_noop

D = Decimal

# Stored in LabResult.ctcae_term in English (the CTCAE term); translated when displayed.
TERMS: dict[str, str] = {
    "alt": gettext_noop("Alanine aminotransferase increased"),
    "ast": gettext_noop("Aspartate aminotransferase increased"),
    "alp": gettext_noop("Alkaline phosphatase increased"),
    "ggt": gettext_noop("GGT increased"),
    "tbil": gettext_noop("Blood bilirubin increased"),
    "creatinine": gettext_noop("Creatinine increased"),
    "anc": gettext_noop("Neutrophil count decreased"),
    "wbc": gettext_noop("White blood cell decreased"),
    "lymphocytes": gettext_noop("Lymphocyte count decreased"),
    "platelets": gettext_noop("Platelet count decreased"),
    "hemoglobin": gettext_noop("Anemia"),
    "albumin": gettext_noop("Hypoalbuminemia"),
    "inr": gettext_noop("INR increased"),
    "amylase": gettext_noop("Serum amylase increased"),
    "lipase": gettext_noop("Lipase increased"),
    "fibrinogen": gettext_noop("Fibrinogen decreased"),
}
GRADED: frozenset[str] = frozenset(TERMS)
# The increased terms whose criteria switch to ×baseline when the baseline is above the ULN.
BASELINE_SWITCH: frozenset[str] = frozenset({"alt", "ast", "alp", "ggt", "tbil"})
# Every analyte whose grade can depend on the baseline.
USES_BASELINE: frozenset[str] = BASELINE_SWITCH | {"creatinine"}

# (grade, multiplier, lower bound inclusive): grade g when value > multiplier × reference
# (or ≥ when inclusive). Listed in increasing order; the highest band reached wins.
Cuts = tuple[tuple[int, Decimal, bool], ...]

_ULN_ALT_AST: Cuts = ((1, D(1), False), (2, D(3), False), (3, D(5), False), (4, D(20), False))
_BASE_ALT_AST: Cuts = ((1, D("1.5"), True), (2, D(3), False), (3, D(5), False), (4, D(20), False))
_ULN_ALP_GGT: Cuts = ((1, D(1), False), (2, D("2.5"), False), (3, D(5), False), (4, D(20), False))
_BASE_ALP_GGT: Cuts = ((1, D(2), True), (2, D("2.5"), False), (3, D(5), False), (4, D(20), False))
_ULN_BILI: Cuts = ((1, D(1), False), (2, D("1.5"), False), (3, D(3), False), (4, D(10), False))
_BASE_BILI: Cuts = ((1, D(1), False), (2, D("1.5"), False), (3, D(3), False), (4, D(10), False))
_ULN_CREATININE: Cuts = ((1, D(1), False), (2, D("1.5"), False), (3, D(3), False), (4, D(6), False))
_BASE_CREATININE: Cuts = ((2, D("1.5"), False), (3, D(3), False))
_ULN_AMYLASE_LIPASE: Cuts = ((1, D(1), False), (2, D("1.5"), False), (3, D(5), False))
_INR: Cuts = ((1, D("1.2"), False), (2, D("1.5"), False), (3, D("2.5"), False))

_INCREASED: dict[str, tuple[Cuts, Cuts | None]] = {
    "alt": (_ULN_ALT_AST, _BASE_ALT_AST),
    "ast": (_ULN_ALT_AST, _BASE_ALT_AST),
    "alp": (_ULN_ALP_GGT, _BASE_ALP_GGT),
    "ggt": (_ULN_ALP_GGT, _BASE_ALP_GGT),
    "tbil": (_ULN_BILI, _BASE_BILI),
    "amylase": (_ULN_AMYLASE_LIPASE, None),
    "lipase": (_ULN_AMYLASE_LIPASE, None),
}

# Decreased terms: (grade, absolute limit in SI units): grade g when value < limit. Grade 1 is
# "<LLN", added from the patient's reference range.
_BELOW: dict[str, tuple[tuple[int, Decimal], ...]] = {
    "anc": ((2, D("1.5")), (3, D("1.0")), (4, D("0.5"))),
    "wbc": ((2, D("3.0")), (3, D("2.0")), (4, D("1.0"))),
    "lymphocytes": ((2, D("0.8")), (3, D("0.5")), (4, D("0.2"))),
    "platelets": ((2, D(75)), (3, D(50)), (4, D(25))),
    "hemoglobin": ((2, D(100)), (3, D(80))),  # g/L; grade 4 is clinical
    "albumin": ((2, D(30)), (3, D(20))),  # g/L; grade 4 is clinical
}
# Fibrinogen decreased: multiples of the LLN.
_FIBRINOGEN_LLN = ((1, D(1)), (2, D("0.75")), (3, D("0.5")), (4, D("0.25")))


def _above(value: Decimal, reference: Decimal, cuts: Cuts) -> int | None:
    grade = None
    for band, multiplier, inclusive in cuts:
        limit = multiplier * reference
        if value > limit or (inclusive and value == limit):
            grade = band
    return grade


def _below(value: Decimal, limits: list[tuple[int, Decimal]]) -> int | None:
    grade = None
    for band, limit in limits:
        if value < limit:
            grade = max(grade or 0, band)
    return grade


def baseline_is_abnormal(*, baseline: Decimal | None, uln: Decimal | None) -> bool:
    """For the increased terms, an abnormal baseline is one above the ULN."""
    return baseline is not None and uln is not None and baseline > uln


def grade(
    analyte: str,
    value: Decimal,
    *,
    lln: Decimal | None,
    uln: Decimal | None,
    baseline: Decimal | None = None,
) -> tuple[str, int | None]:
    """The CTCAE v5.0 term and grade of one value, e.g. ("Anemia", 2).

    `value` is in the SI unit; `lln` / `uln` are the patient's reference limits; `baseline`
    is the patient's baseline value of the analyte (None when there is none, or when the value
    graded is itself the baseline). The grade is None when the value meets no criterion; the
    term is "" for an analyte CTCAE does not grade from a lab value.
    """
    term = TERMS.get(analyte, "")
    if not term:
        return "", None
    if analyte in _INCREASED:
        by_uln, by_baseline = _INCREASED[analyte]
        if by_baseline and baseline_is_abnormal(baseline=baseline, uln=uln):
            return term, _above(value, baseline, by_baseline)
        return term, _above(value, uln, by_uln) if uln is not None else None
    if analyte == "creatinine":
        grades = [_above(value, uln, _ULN_CREATININE) if uln is not None else None]
        if baseline is not None and baseline > 0:
            grades.append(_above(value, baseline, _BASE_CREATININE))
        reached = [g for g in grades if g is not None]
        return term, max(reached) if reached else None
    if analyte == "inr":
        return term, _above(value, D(1), _INR)
    if analyte == "fibrinogen":
        if lln is None:
            return term, None
        return term, _below(value, [(band, m * lln) for band, m in _FIBRINOGEN_LLN])
    limits = list(_BELOW[analyte])
    if lln is not None:
        limits.insert(0, (1, lln))
    return term, _below(value, limits)
