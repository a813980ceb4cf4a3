"""CTCAE v5.0 lab grades at every threshold: just below, at, and just above, for the baseline-
normal (×ULN) and baseline-abnormal (×baseline) criteria, and the switch between them."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assessments import ctcae

D = Decimal
EPS = D("0.01")
N = None

# (analyte, lln, uln, baseline, threshold, grade just below, grade at, grade just above)
INCREASED = [
    # ALT / AST, baseline normal: >ULN–3.0, >3.0–5.0, >5.0–20.0, >20.0 × ULN.
    *[
        (code, D(9), D(40), baseline, D(t), *grades)
        for code in ("alt", "ast")
        for baseline in (None, D(30), D(40))  # none, normal, at the ULN (still normal)
        for t, grades in (
            ("40", (N, N, 1)),
            ("120", (1, 1, 2)),
            ("200", (2, 2, 3)),
            ("800", (3, 3, 4)),
        )
    ],
    # ALT / AST, baseline abnormal (100 > ULN 40): 1.5–3.0, >3.0–5.0, >5.0–20.0, >20.0 × baseline.
    *[
        (code, D(9), D(40), D(100), D(t), *grades)
        for code in ("alt", "ast")
        for t, grades in (
            ("150", (N, 1, 1)),
            ("300", (1, 1, 2)),
            ("500", (2, 2, 3)),
            ("2000", (3, 3, 4)),
        )
    ],
    # ALP (ULN 125) / GGT (ULN 60), baseline normal: >ULN–2.5, >2.5–5.0, >5.0–20.0, >20.0.
    ("alp", D(45), D(125), None, D(125), N, N, 1),
    ("alp", D(45), D(125), None, D("312.5"), 1, 1, 2),
    ("alp", D(45), D(125), None, D(625), 2, 2, 3),
    ("alp", D(45), D(125), None, D(2500), 3, 3, 4),
    ("ggt", D(10), D(60), D(60), D(60), N, N, 1),
    ("ggt", D(10), D(60), D(60), D(150), 1, 1, 2),
    ("ggt", D(10), D(60), D(60), D(300), 2, 2, 3),
    ("ggt", D(10), D(60), D(60), D(1200), 3, 3, 4),
    # ALP / GGT, baseline abnormal: 2.0–2.5, >2.5–5.0, >5.0–20.0, >20.0 × baseline.
    ("alp", D(45), D(125), D(200), D(400), N, 1, 1),
    ("alp", D(45), D(125), D(200), D(500), 1, 1, 2),
    ("alp", D(45), D(125), D(200), D(1000), 2, 2, 3),
    ("alp", D(45), D(125), D(200), D(4000), 3, 3, 4),
    ("ggt", D(10), D(60), D(100), D(200), N, 1, 1),
    ("ggt", D(10), D(60), D(100), D(250), 1, 1, 2),
    ("ggt", D(10), D(60), D(100), D(500), 2, 2, 3),
    ("ggt", D(10), D(60), D(100), D(2000), 3, 3, 4),
    # Bilirubin (ULN 26), baseline normal: >ULN–1.5, >1.5–3.0, >3.0–10.0, >10.0 × ULN.
    ("tbil", None, D(26), None, D(26), N, N, 1),
    ("tbil", None, D(26), None, D(39), 1, 1, 2),
    ("tbil", None, D(26), None, D(78), 2, 2, 3),
    ("tbil", None, D(26), None, D(260), 3, 3, 4),
    # Bilirubin, baseline abnormal (40): >1.0–1.5, >1.5–3.0, >3.0–10.0, >10.0 × baseline.
    ("tbil", None, D(26), D(40), D(40), N, N, 1),
    ("tbil", None, D(26), D(40), D(60), 1, 1, 2),
    ("tbil", None, D(26), D(40), D(120), 2, 2, 3),
    ("tbil", None, D(26), D(40), D(400), 3, 3, 4),
    # Creatinine (ULN 111): >ULN–1.5, >1.5–3.0, >3.0–6.0, >6.0 × ULN …
    ("creatinine", D(57), D(111), None, D(111), N, N, 1),
    ("creatinine", D(57), D(111), None, D("166.5"), 1, 1, 2),
    ("creatinine", D(57), D(111), None, D(333), 2, 2, 3),
    ("creatinine", D(57), D(111), None, D(666), 3, 3, 4),
    # … and >1.5–3.0 (G2), >3.0 (G3) × baseline (60): the higher of the two grades.
    ("creatinine", D(57), D(111), D(60), D(90), N, N, 2),
    ("creatinine", D(57), D(111), D(60), D(180), 2, 2, 3),
    # INR (not anticoagulated): >1.2–1.5, >1.5–2.5, >2.5.
    ("inr", D("0.8"), D("1.2"), None, D("1.2"), N, N, 1),
    ("inr", D("0.8"), D("1.2"), None, D("1.5"), 1, 1, 2),
    ("inr", D("0.8"), D("1.2"), None, D("2.5"), 2, 2, 3),
    # Amylase (ULN 135) / lipase (ULN 60), asymptomatic: >ULN–1.5, >1.5–5.0, >5.0 × ULN.
    ("amylase", D(35), D(135), None, D(135), N, N, 1),
    ("amylase", D(35), D(135), None, D("202.5"), 1, 1, 2),
    ("amylase", D(35), D(135), None, D(675), 2, 2, 3),
    ("lipase", D(13), D(60), None, D(60), N, N, 1),
    ("lipase", D(13), D(60), None, D(90), 1, 1, 2),
    ("lipase", D(13), D(60), None, D(300), 2, 2, 3),
]

# Decreased terms: (analyte, lln, threshold, grade just below, at, just above).
DECREASED = [
    ("anc", D("1.8"), D("1.8"), 1, N, N),
    ("anc", D("1.8"), D("1.5"), 2, 1, 1),
    ("anc", D("1.8"), D("1.0"), 3, 2, 2),
    ("anc", D("1.8"), D("0.5"), 4, 3, 3),
    ("wbc", D("3.5"), D("3.5"), 1, N, N),
    ("wbc", D("3.5"), D("3.0"), 2, 1, 1),
    ("wbc", D("3.5"), D("2.0"), 3, 2, 2),
    ("wbc", D("3.5"), D("1.0"), 4, 3, 3),
    ("lymphocytes", D("1.1"), D("1.1"), 1, N, N),
    ("lymphocytes", D("1.1"), D("0.8"), 2, 1, 1),
    ("lymphocytes", D("1.1"), D("0.5"), 3, 2, 2),
    ("lymphocytes", D("1.1"), D("0.2"), 4, 3, 3),
    ("platelets", D(125), D(125), 1, N, N),
    ("platelets", D(125), D(75), 2, 1, 1),
    ("platelets", D(125), D(50), 3, 2, 2),
    ("platelets", D(125), D(25), 4, 3, 3),
    ("hemoglobin", D(130), D(130), 1, N, N),
    ("hemoglobin", D(115), D(100), 2, 1, 1),
    ("hemoglobin", D(115), D(80), 3, 2, 2),
    ("albumin", D(40), D(40), 1, N, N),
    ("albumin", D(40), D(30), 2, 1, 1),
    ("albumin", D(40), D(20), 3, 2, 2),
    # Fibrinogen (LLN 2.0 g/L), the ×LLN part: <1.0–0.75, <0.75–0.5, <0.5–0.25, <0.25 × LLN.
    ("fibrinogen", D(2), D(2), 1, N, N),
    ("fibrinogen", D(2), D("1.5"), 2, 1, 1),
    ("fibrinogen", D(2), D("1.0"), 3, 2, 2),
    ("fibrinogen", D(2), D("0.5"), 4, 3, 3),
]


def _id(case) -> str:
    return "-".join(str(x) for x in case[:1] + case[3:5])


@pytest.mark.parametrize("case", INCREASED, ids=_id)
def test_increased_terms_at_each_threshold(case):
    code, lln, uln, baseline, threshold, below, at, above = case
    grades = [
        ctcae.grade(code, value, lln=lln, uln=uln, baseline=baseline)[1]
        for value in (threshold - EPS, threshold, threshold + EPS)
    ]
    assert grades == [below, at, above]


@pytest.mark.parametrize("case", DECREASED, ids=lambda c: f"{c[0]}-{c[2]}")
def test_decreased_terms_at_each_threshold(case):
    code, lln, threshold, below, at, above = case
    grades = [
        ctcae.grade(code, value, lln=lln, uln=None)[1]
        for value in (threshold - EPS, threshold, threshold + EPS)
    ]
    assert grades == [below, at, above]


def test_anemia_and_hypoalbuminemia_never_reach_grade_4_from_a_value():
    assert ctcae.grade("hemoglobin", D(20), lln=D(130), uln=D(175)) == ("Anemia", 3)
    assert ctcae.grade("albumin", D(6), lln=D(40), uln=D(55)) == ("Hypoalbuminemia", 3)


@pytest.mark.parametrize(
    ("baseline", "value", "expected"),
    [
        (None, D(130), 2),  # no baseline: 130 > 3 × ULN 40
        (D(40), D(60), 1),  # a baseline at the ULN is normal: 60 > ULN
        (D("40.01"), D(60), N),  # just above the ULN it is abnormal: 60 < 1.5 × 40.01
        (D(50), D(130), 1),  # 1.5 × 50 ≤ 130 ≤ 3 × 50
        (D(100), D(130), N),  # 130 < 1.5 × 100
    ],
)
def test_the_baseline_abnormal_switch(baseline, value, expected):
    assert ctcae.grade("alt", value, lln=D(9), uln=D(40), baseline=baseline)[1] == expected


def test_a_value_below_an_abnormal_baseline_is_not_graded_even_above_the_uln():
    assert ctcae.grade("tbil", D(50), lln=None, uln=D(26), baseline=D(60)) == (
        "Blood bilirubin increased",
        N,
    )


def test_the_baseline_does_not_change_decreased_terms():
    with_baseline = ctcae.grade("anc", D("0.9"), lln=D("1.8"), uln=D("6.3"), baseline=D(5))
    assert with_baseline == ctcae.grade("anc", D("0.9"), lln=D("1.8"), uln=D("6.3"))


@pytest.mark.parametrize("code", ["dbil", "pt", "aptt", "d_dimer", "urea", "ca19_9", "glucose"])
def test_analytes_without_a_ctcae_lab_criterion_are_not_graded(code):
    assert ctcae.grade(code, D(1000), lln=D(1), uln=D(2)) == ("", N)


def test_terms_are_the_ctcae_v5_terms():
    assert ctcae.TERMS["anc"] == "Neutrophil count decreased"
    assert ctcae.TERMS["tbil"] == "Blood bilirubin increased"
    assert set(ctcae.TERMS) == ctcae.GRADED
    assert all(len(term) <= 64 for term in ctcae.TERMS.values())


@given(
    low=st.decimals(min_value=0, max_value=5000, places=2),
    high=st.decimals(min_value=0, max_value=5000, places=2),
    baseline=st.one_of(st.none(), st.decimals(min_value=1, max_value=500, places=1)),
)
def test_a_higher_value_never_has_a_lower_increased_grade(low, high, baseline):
    low, high = sorted((low, high))
    for code in ("alt", "alp", "tbil", "creatinine", "lipase"):
        grade_low = ctcae.grade(code, low, lln=D(1), uln=D(50), baseline=baseline)[1] or 0
        grade_high = ctcae.grade(code, high, lln=D(1), uln=D(50), baseline=baseline)[1] or 0
        assert grade_low <= grade_high


@given(
    low=st.decimals(min_value=0, max_value=500, places=2),
    high=st.decimals(min_value=0, max_value=500, places=2),
)
def test_a_lower_count_never_has_a_lower_decreased_grade(low, high):
    low, high = sorted((low, high))
    for code, lln in (("anc", D("1.8")), ("platelets", D(125)), ("hemoglobin", D(115))):
        grade_low = ctcae.grade(code, low, lln=lln, uln=None)[1] or 0
        grade_high = ctcae.grade(code, high, lln=lln, uln=None)[1] or 0
        assert grade_low >= grade_high
