"""The analyte catalogue: every code complete and consistent; unit conversions exact both ways
(hypothesis); flags at the reference bounds; limits catch a value typed in the wrong unit."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessments import analytes
from assessments.analytes import ANALYTES, Range

D = Decimal

EXPECTED_CODES = {
    "blood": {"wbc", "anc", "lymphocytes", "hemoglobin", "platelets"},
    "coagulation": {"pt", "inr", "aptt", "fibrinogen", "d_dimer"},
    "liver": {"alt", "ast", "alp", "ggt", "tbil", "dbil", "albumin"},
    "kidney": {"creatinine", "urea", "egfr"},
    "pancreatic": {"amylase", "lipase", "glucose", "drain_amylase"},
    "tumour_markers": {"ca19_9", "cea", "ca125"},
}
# Alternative units with the factor to the SI unit the issue names.
EXPECTED_FACTORS = [
    ("hemoglobin", "g/dL", D(10)),
    ("tbil", "mg/dL", D("17.1")),
    ("dbil", "mg/dL", D("17.1")),
    ("creatinine", "mg/dL", D("88.4")),
    ("glucose", "mg/dL", D("0.0555")),
    ("urea", "mg/dL BUN", D("0.357")),
    ("albumin", "g/dL", D(10)),
    ("wbc", "/µL", D("0.001")),
    ("anc", "/µL", D("0.001")),
    ("platelets", "/µL", D("0.001")),
    ("fibrinogen", "mg/dL", D("0.01")),
    ("d_dimer", "µg/mL FEU", D(1)),
    ("cea", "µg/L", D(1)),
]


def test_the_catalogue_has_exactly_the_agreed_codes_in_their_groups():
    by_group = {group.code: {a.code for a in members} for group, members in analytes.by_group()}
    assert by_group == EXPECTED_CODES
    assert len(analytes.CODES) == len(set(analytes.CODES)) == 27


@pytest.mark.parametrize("analyte", ANALYTES, ids=lambda a: a.code)
def test_every_analyte_is_complete_and_consistent(analyte):
    assert str(analyte.label)
    assert analyte.unit
    assert len(analyte.unit) <= 16  # LabResult.entered_unit
    assert len(analyte.code) <= 24  # LabResult.analyte
    assert analyte.source
    assert len(set(analyte.unit_codes)) == len(analyte.unit_codes)
    ranges = [analyte.reference_for("M"), analyte.reference_for("F")]
    for reference in ranges:
        assert reference.low is not None or reference.high is not None
        if reference.low is not None and reference.high is not None:
            assert reference.low < reference.high
    # Hard limits enclose the usual range, which encloses the reference range.
    limits, usual = analyte.limits, analyte.usual
    assert limits.low is not None
    assert limits.low >= 0
    assert limits.high is not None
    for bound in (usual.low, usual.high, *(b for r in ranges for b in (r.low, r.high))):
        if bound is not None:
            assert limits.contains(bound)
    for reference in ranges:
        for bound in (reference.low, reference.high):
            if bound is not None:
                assert usual.contains(bound), (analyte.code, bound)
    # The stored value (12 digits, 4 decimals) holds every possible value in every unit.
    for unit in analyte.units:
        assert limits.high / unit.factor < D(10) ** 8


@pytest.mark.parametrize(("code", "unit", "factor"), EXPECTED_FACTORS)
def test_the_alternative_units_convert_with_the_standard_factors(code, unit, factor):
    assert analytes.get(code).unit_for(unit).factor == factor


def test_sex_specific_reference_ranges():
    hemoglobin, creatinine = analytes.get("hemoglobin"), analytes.get("creatinine")
    assert hemoglobin.reference_for("M") == Range(D(130), D(175))
    assert hemoglobin.reference_for("F") == Range(D(115), D(150))
    assert creatinine.reference_for("M") == Range(D(57), D(111))
    assert creatinine.reference_for("F") == Range(D(41), D(81))


def test_bilirubin_in_mg_dl_is_stored_in_umol_l_at_the_reported_precision():
    tbil = analytes.get("tbil")
    assert analytes.to_si(tbil, D("1.2"), "mg/dL") == D("20.5")
    assert analytes.to_si(tbil, D("20.52"), None) == D("20.52")  # typed in SI: as typed
    assert analytes.to_si(analytes.get("hemoglobin"), D("9.5"), "g/dL") == D(95)
    assert analytes.to_si(analytes.get("platelets"), D(180000), "/µL") == D(180)
    assert analytes.to_si(analytes.get("glucose"), D(100), "mg/dL") == D("5.55")


def test_an_unknown_unit_is_a_key_error():
    with pytest.raises(KeyError):
        analytes.to_si(analytes.get("alt"), D(40), "mg/dL")


@pytest.mark.parametrize(
    ("code", "sex", "value", "expected"),
    [
        ("hemoglobin", "M", "129.9", "L"),
        ("hemoglobin", "M", "130", ""),
        ("hemoglobin", "M", "175", ""),
        ("hemoglobin", "M", "175.1", "H"),
        ("hemoglobin", "F", "120", ""),
        ("creatinine", "F", "90", "H"),
        ("creatinine", "M", "90", ""),
        ("ca19_9", "M", "37", ""),
        ("ca19_9", "M", "37.1", "H"),
        ("ca19_9", "M", "0", ""),
        ("egfr", "F", "89", "L"),
        ("egfr", "F", "140", ""),
    ],
)
def test_flags_at_the_reference_bounds(code, sex, value, expected):
    assert analytes.flag(analytes.get(code), D(value), sex) == expected


@pytest.mark.parametrize(
    ("code", "value", "impossible", "extreme"),
    [
        ("hemoglobin", "900", True, False),  # typed as if in g/L ×10
        ("hemoglobin", "-1", True, False),
        ("hemoglobin", "9", False, True),  # g/dL typed as g/L
        ("hemoglobin", "120", False, False),
        ("platelets", "50000", True, False),
        ("platelets", "5", False, True),
        ("wbc", "-0.1", True, False),
        ("glucose", "100", True, False),  # mg/dL typed as mmol/L
        ("creatinine", "0.9", True, False),  # mg/dL typed as µmol/L
        ("albumin", "3.5", True, False),  # g/dL typed as g/L
        ("ca19_9", "250000", False, True),
        ("alt", "1500", False, True),
    ],
)
def test_limits_refuse_the_impossible_and_question_the_extreme(code, value, impossible, extreme):
    analyte = analytes.get(code)
    assert analytes.is_impossible(analyte, D(value)) is impossible
    assert analytes.is_extreme(analyte, D(value)) is extreme


def test_messages_carry_the_values_and_the_limits():
    hemoglobin = analytes.get("hemoglobin")
    assert (
        analytes.impossible_message(hemoglobin, D(900), None, D(900))
        == "Haemoglobin 900 g/L is not possible (0–250 g/L): check the unit."
    )
    assert "90 g/dL (900 g/L)" in analytes.impossible_message(hemoglobin, D(90), "g/dL", D(900))
    assert "unusually low (usual 50–200 g/L)" in analytes.extreme_message(
        hemoglobin, D(9), None, D(9)
    )
    message = analytes.unknown_unit_message(analytes.get("tbil"), "mmol/L")
    assert "µmol/L, mg/dL" in message


def test_numbers_are_shown_without_trailing_zeros_or_exponents():
    assert analytes.number(D("120.0000")) == "120"
    assert analytes.number(D("20.5000")) == "20.5"
    assert analytes.number(D("1E+2")) == "100"
    assert analytes.number(D("0.0000")) == "0"


# --- round trips (hypothesis) ------------------------------------------------------------

CONVERTIBLE = [(a, u) for a in ANALYTES for u in a.alternatives]


def _si_values(analyte):
    """SI values at the analyte's reporting precision, within its limits."""
    quantum = D(1).scaleb(-analyte.decimals)
    low = int(analyte.limits.low / quantum)
    high = int(analyte.limits.high / quantum)
    return st.integers(min_value=low, max_value=high).map(lambda n: n * quantum)


@pytest.mark.parametrize(("analyte", "unit"), CONVERTIBLE, ids=lambda x: getattr(x, "code", x))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_si_to_another_unit_and_back_is_exact(analyte, unit, data):
    si_value = data.draw(_si_values(analyte))
    typed = analytes.from_si(analyte, si_value, unit.code)
    assert analytes.to_si(analyte, typed, unit.code) == si_value


@pytest.mark.parametrize(("analyte", "unit"), CONVERTIBLE, ids=lambda x: getattr(x, "code", x))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_typed_value_comes_back_within_the_reporting_precision(analyte, unit, data):
    high = analyte.limits.high / unit.factor
    typed = data.draw(st.decimals(min_value=0, max_value=high, places=min(unit.decimals + 1, 4)))
    si_value = analytes.to_si(analyte, typed, unit.code)
    back = analytes.from_si(analyte, si_value, unit.code)
    # Rounding to the SI precision moves the value by at most half a reporting step.
    tolerance = D("0.5") * D(1).scaleb(-analyte.decimals) / unit.factor + D("0.00005")
    assert abs(back - typed) <= tolerance
