"""The regimen catalogue (standard doses of MPACT, PRODIGE 4, PRODIGE 24, NAPOLI-3), the dose
arithmetic and relative dose intensity, against hand-computed cases; the CTCAE catalogue."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treatments import ctcae_terms, regimens
from treatments.models import Drug, Regimen
from treatments.regimens import GivenDose, relative_dose_intensity

D = Decimal


def _doses(code: str) -> dict[str, tuple[Decimal, int]]:
    return {d.drug: (d.mg_m2, d.administrations) for d in regimens.regimen_spec(code).doses}


# --- the catalogue --------------------------------------------------------------------------


def test_the_codes_are_the_models_choices():
    assert set(regimens.REGIMENS) | {regimens.OTHER} == set(Regimen.values)
    drugs = {d.drug for spec in regimens.REGIMENS.values() for d in spec.doses}
    assert drugs <= set(Drug.values)


def test_ag_is_nab_paclitaxel_125_and_gemcitabine_1000_on_days_1_8_15_every_28_days():
    spec = regimens.regimen_spec("AG")
    assert spec.cycle_length_days == 28
    assert _doses("AG") == {"nab_paclitaxel": (D(125), 3), "gemcitabine": (D(1000), 3)}


def test_folfirinox_is_the_prodige_4_schedule_every_14_days():
    assert regimens.regimen_spec("FOLFIRINOX").cycle_length_days == 14
    assert _doses("FOLFIRINOX") == {
        "oxaliplatin": (D(85), 1),
        "irinotecan": (D(180), 1),
        "leucovorin": (D(400), 1),
        "fluorouracil_bolus": (D(400), 1),
        "fluorouracil_infusion": (D(2400), 1),
    }


def test_modified_folfirinox_has_irinotecan_150_and_no_bolus():
    assert regimens.regimen_spec("mFOLFIRINOX").cycle_length_days == 14
    assert _doses("mFOLFIRINOX") == {
        "oxaliplatin": (D(85), 1),
        "irinotecan": (D(150), 1),
        "leucovorin": (D(400), 1),
        "fluorouracil_infusion": (D(2400), 1),
    }


def test_nalirifox_is_the_napoli_3_schedule_every_14_days():
    assert regimens.regimen_spec("NALIRIFOX").cycle_length_days == 14
    assert _doses("NALIRIFOX") == {
        "liposomal_irinotecan": (D(50), 1),
        "oxaliplatin": (D(60), 1),
        "leucovorin": (D(400), 1),
        "fluorouracil_infusion": (D(2400), 1),
    }


def test_other_regimens_have_no_standard_and_take_the_typed_cycle_length():
    assert regimens.regimen_spec("other") is None
    assert regimens.cycle_length("other", 21) == 21
    assert regimens.cycle_length("AG", 21) == 28


# --- doses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mg_m2", "bsa", "expected"),
    [
        ("1000", "1.88", "1880"),
        ("125", "1.75", "219"),
        ("85", "1.62", "138"),
        ("2400", "1.5", "3600"),
    ],
)
def test_dose_for_bsa_is_rounded_to_whole_milligrams(mg_m2, bsa, expected):
    assert regimens.dose_for_bsa(D(mg_m2), D(bsa)) == D(expected)


def test_percent_of_the_standard_dose():
    ratio = regimens.dose_ratio(D(3200), D(1000), D("1.88"))
    assert regimens.percent(ratio) == 170  # 3200 / 1880 = 1.702


@pytest.mark.parametrize(
    ("given_mg", "given_days", "planned_mg_m2", "expected"),
    [
        ("1740", 3, "1000", False),  # 100%
        ("1653", 3, "1000", False),  # 95.0%: not yet a reduction
        ("1652", 3, "1000", True),  # 94.9%
        ("1740", 2, "1000", True),  # day 15 omitted
        ("1392", 3, "800", True),  # full dose of a plan at 80% of the standard
    ],
)
def test_what_counts_as_a_dose_reduction(given_mg, given_days, planned_mg_m2, expected):
    reduced = regimens.is_reduced(
        given_mg=D(given_mg),
        planned_mg_m2=D(planned_mg_m2),
        bsa_m2=D("1.74"),
        given_days=given_days,
        planned_days=3,
        standard_mg_m2=D(1000),
    )
    assert reduced is expected


# --- relative dose intensity ----------------------------------------------------------------

START = date(2026, 1, 5)


def _cycles(days: list[int], mg: str, bsa: str = "1.8", given_days: int = 3) -> list[GivenDose]:
    return [GivenDose(START + timedelta(days=d), D(bsa), D(mg), given_days) for d in days]


def test_full_dose_on_schedule_is_an_rdi_of_one():
    # Gemcitabine 1800 mg (1000 mg/m² × 1.8 m²) on days 1, 8, 15 of two 28-day cycles:
    # 6000 mg/m² over 8 weeks = 750 mg/m²/week; planned 3000 mg/m² per 4 weeks = 750.
    rdi = relative_dose_intensity(
        _cycles([0, 28], "1800"), mg_m2=D(1000), administrations=3, cycle_length_days=28
    )
    assert rdi == D("1.000")


def test_a_one_week_delay_lowers_the_rdi():
    # Same doses over 9 weeks: 6000 / 9 = 666.7 mg/m²/week; ÷ 750 = 0.889.
    rdi = relative_dose_intensity(
        _cycles([0, 35], "1800"), mg_m2=D(1000), administrations=3, cycle_length_days=28
    )
    assert rdi == D("0.889")


def test_a_reduced_cycle_lowers_the_rdi():
    # Oxaliplatin 85 mg/m² every 14 days, BSA 2.0: 170 mg, 170 mg, then 136 mg (80%).
    # Given 85 + 85 + 68 = 238 mg/m² over 6 weeks = 39.67/week; planned 85 / 2 = 42.5/week.
    given = [
        GivenDose(START, D(2), D(170), 1),
        GivenDose(START + timedelta(days=14), D(2), D(170), 1),
        GivenDose(START + timedelta(days=28), D(2), D(136), 1),
    ]
    rdi = relative_dose_intensity(given, mg_m2=D(85), administrations=1, cycle_length_days=14)
    assert rdi == D("0.933")


def test_a_missed_administration_counts():
    # AG with day 15 omitted in the single cycle: 2 of 3 administrations = 0.667.
    rdi = relative_dose_intensity(
        _cycles([0], "225", bsa="1.8", given_days=2),
        mg_m2=D(125),
        administrations=3,
        cycle_length_days=28,
    )
    assert rdi == D("0.667")


def test_no_cycles_no_rdi():
    assert relative_dose_intensity([], mg_m2=D(85), administrations=1, cycle_length_days=14) is None


@given(
    bsa=st.decimals(min_value=D("1.2"), max_value=D("2.6"), places=2),
    cycles=st.integers(min_value=1, max_value=30),
    regimen=st.sampled_from(["AG", "FOLFIRINOX", "mFOLFIRINOX", "NALIRIFOX"]),
)
def test_full_doses_on_schedule_stay_at_100_percent(bsa, cycles, regimen):
    spec = regimens.regimen_spec(regimen)
    for standard in spec.doses:
        given = [
            GivenDose(
                START + timedelta(days=spec.cycle_length_days * n),
                bsa,
                standard.mg_m2 * bsa,  # unrounded: exactly the standard dose
                standard.administrations,
            )
            for n in range(cycles)
        ]
        rdi = relative_dose_intensity(
            given,
            mg_m2=standard.mg_m2,
            administrations=standard.administrations,
            cycle_length_days=spec.cycle_length_days,
        )
        assert rdi == D("1.000")


@given(
    delays=st.lists(st.integers(min_value=0, max_value=21), min_size=1, max_size=12),
    factor=st.decimals(min_value=D("0.3"), max_value=D("1"), places=2),
)
def test_delays_and_reductions_never_raise_the_rdi_above_the_given_share(delays, factor):
    day, given = 0, []
    for delay in delays:
        given.append(GivenDose(START + timedelta(days=day), D(2), D(170) * factor, 1))
        day += 14 + delay
    rdi = relative_dose_intensity(given, mg_m2=D(85), administrations=1, cycle_length_days=14)
    assert D(0) < rdi <= factor + D("0.0005")
    if not any(delays[:-1]):
        assert abs(rdi - factor) <= D("0.0005")


# --- the CTCAE catalogue --------------------------------------------------------------------


def test_the_ctcae_catalogue_covers_the_expected_terms():
    terms = {t.term for t in ctcae_terms.TERMS}
    assert len(ctcae_terms.TERMS) >= 40
    assert len(terms) == len(ctcae_terms.TERMS)
    assert {
        "Neutrophil count decreased",
        "Febrile neutropenia",
        "Biliary tract infection",
        "Thromboembolic event",
        "Peripheral sensory neuropathy",
        "Diarrhea",
        "Fatigue",
        "Alopecia",
        "Palmar-plantar erythrodysesthesia syndrome",
        "Alanine aminotransferase increased",
        "Blood bilirubin increased",
        ctcae_terms.OTHER,
    } <= terms
    assert all(len(t.term) <= 64 for t in ctcae_terms.TERMS)  # AdverseEvent.term max_length


def test_the_choices_are_grouped_by_organ_class():
    groups = dict(ctcae_terms.grouped_choices())
    assert "Febrile neutropenia" in dict(groups["Blood and lymphatic system disorders"])
    assert "Biliary tract infection" in dict(groups["Infections and infestations"])
    assert sum(len(choices) for choices in groups.values()) == len(ctcae_terms.TERMS)


def test_grade_ranges_follow_ctcae():
    assert ctcae_terms.term_get("Alopecia").allows(2)
    assert not ctcae_terms.term_get("Alopecia").allows(3)
    assert not ctcae_terms.term_get("Febrile neutropenia").allows(2)
    assert not ctcae_terms.term_get("Neutrophil count decreased").allows(5)
    assert ctcae_terms.term_label("other", "Hiccups") == "Hiccups"
