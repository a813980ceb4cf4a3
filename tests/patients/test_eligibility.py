"""The eligibility criteria (patients.eligibility): pure functions, so a table and properties."""

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients.eligibility import (
    ADULT_AGE,
    ConsentBasis,
    Criterion,
    Facts,
    age_on,
    evaluate,
    failures,
)

ELIGIBLE = Facts(
    age_years=64,
    confirmed_pathologically=True,
    is_pdac=True,
    synchronous_liver_metastases=True,
    prior_systemic_therapy=False,
    cohort="prospective",
    consent=ConsentBasis.SIGNED,
)


def _failed(facts: Facts) -> dict[Criterion, str]:
    return {r.criterion: r.detail for r in failures(facts)}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {}),
        ({"age_years": ADULT_AGE}, {}),
        ({"age_years": 17}, {Criterion.AGE: "Age at screening is 17 years."}),
        ({"age_years": 0}, {Criterion.AGE: "Age at screening is 0 years."}),
        ({"age_years": None}, {Criterion.AGE: "Age at screening is unknown."}),
        (
            {"confirmed_pathologically": False, "is_pdac": False},
            {Criterion.PDAC: "No pathological confirmation."},
        ),
        # Without confirmation a "PDAC" answer does not count.
        ({"confirmed_pathologically": False}, {Criterion.PDAC: "No pathological confirmation."}),
        ({"is_pdac": False}, {Criterion.PDAC: "The pathology is not PDAC."}),
        (
            {"synchronous_liver_metastases": False},
            {Criterion.LIVER_METASTASES: "No synchronous liver metastases."},
        ),
        (
            {"prior_systemic_therapy": True},
            {Criterion.NO_PRIOR_THERAPY: "Prior systemic therapy excludes the prospective cohort."},
        ),
        ({"prior_systemic_therapy": True, "cohort": "retrospective"}, {}),
        (
            {"consent": ConsentBasis.WAIVER},
            {Criterion.CONSENT: "A waiver applies to retrospective cases only."},
        ),
        ({"consent": ConsentBasis.WAIVER, "cohort": "retrospective"}, {}),
        ({"consent": ConsentBasis.SIGNED, "cohort": "retrospective"}, {}),
        (
            {"consent": ConsentBasis.NONE},
            {Criterion.CONSENT: "No signed study consent is recorded."},
        ),
        (
            {"consent": ConsentBasis.NONE, "cohort": "retrospective"},
            {Criterion.CONSENT: "No signed study consent is recorded."},
        ),
        (
            {"age_years": 16, "synchronous_liver_metastases": False, "consent": ConsentBasis.NONE},
            {
                Criterion.AGE: "Age at screening is 16 years.",
                Criterion.LIVER_METASTASES: "No synchronous liver metastases.",
                Criterion.CONSENT: "No signed study consent is recorded.",
            },
        ),
    ],
)
def test_failures_table(changes, expected):
    assert _failed(replace(ELIGIBLE, **changes)) == expected


def test_evaluate_lists_every_criterion_in_order_with_a_label():
    results = evaluate(ELIGIBLE)
    assert [r.criterion for r in results] == [
        Criterion.AGE,
        Criterion.PDAC,
        Criterion.LIVER_METASTASES,
        Criterion.NO_PRIOR_THERAPY,
        Criterion.CONSENT,
    ]
    assert all(r.met for r in results)
    assert results[0].label == "Age 18 or older at screening"
    assert results[3].label == "No prior systemic therapy (prospective cohort)"


def test_failures_can_leave_out_consent_while_it_is_pending():
    facts = replace(ELIGIBLE, consent=ConsentBasis.NONE, age_years=15)
    assert [r.criterion for r in failures(facts)] == [Criterion.AGE, Criterion.CONSENT]
    pending = failures(facts, ignore=frozenset({Criterion.CONSENT}))
    assert [r.criterion for r in pending] == [Criterion.AGE]


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1960, 5, 17), date(2026, 5, 16), 65),
        (date(1960, 5, 17), date(2026, 5, 17), 66),
        (date(2008, 6, 2), date(2026, 6, 1), 17),
        (date(2008, 6, 1), date(2026, 6, 1), 18),
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # a leap-day birthday counts from 1 March
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(2000, 12, 31), date(2001, 1, 1), 0),
    ],
)
def test_age_on_table(born, on, age):
    assert age_on(born, on) == age


# --- properties ---------------------------------------------------------------------------

facts_strategy = st.builds(
    Facts,
    age_years=st.none() | st.integers(min_value=0, max_value=120),
    confirmed_pathologically=st.booleans(),
    is_pdac=st.booleans(),
    synchronous_liver_metastases=st.booleans(),
    prior_systemic_therapy=st.booleans(),
    cohort=st.sampled_from(["prospective", "retrospective"]),
    consent=st.sampled_from(list(ConsentBasis)),
)


def _eligible_by_the_protocol(f: Facts) -> bool:
    """The criteria as the registry record states them, written independently of the code."""
    prospective = f.cohort == "prospective"
    adult = f.age_years is not None and f.age_years >= 18
    consent = f.consent == ConsentBasis.SIGNED or (
        f.consent == ConsentBasis.WAIVER and not prospective
    )
    return (
        adult
        and f.confirmed_pathologically
        and f.is_pdac
        and f.synchronous_liver_metastases
        and not (prospective and f.prior_systemic_therapy)
        and consent
    )


@given(facts_strategy)
def test_eligible_iff_every_criterion_is_met(facts):
    results = evaluate(facts)
    assert (failures(facts) == []) == _eligible_by_the_protocol(facts)
    assert (failures(facts) == []) == all(r.met for r in results)
    assert failures(facts) == [r for r in results if not r.met]


@given(facts_strategy)
def test_every_failure_says_why(facts):
    for result in failures(facts):
        assert result.label
        assert result.detail


@given(facts_strategy, st.sets(st.sampled_from(list(Criterion))))
def test_ignored_criteria_never_fail(facts, ignored):
    kept = failures(facts, ignore=frozenset(ignored))
    assert not {r.criterion for r in kept} & ignored
    assert kept == [r for r in failures(facts) if r.criterion not in ignored]


@given(facts_strategy)
def test_a_waiver_never_satisfies_consent_for_the_prospective_cohort(facts):
    facts = replace(facts, cohort="prospective", consent=ConsentBasis.WAIVER)
    consent = next(r for r in evaluate(facts) if r.criterion == Criterion.CONSENT)
    assert not consent.met
    assert Criterion.CONSENT in {r.criterion for r in failures(facts)}


@given(facts_strategy)
def test_signed_consent_always_satisfies_consent(facts):
    facts = replace(facts, consent=ConsentBasis.SIGNED)
    assert Criterion.CONSENT not in {r.criterion for r in failures(facts)}


@given(facts_strategy)
def test_prior_therapy_never_excludes_the_retrospective_cohort(facts):
    facts = replace(facts, cohort="retrospective", prior_systemic_therapy=True)
    assert Criterion.NO_PRIOR_THERAPY not in {r.criterion for r in failures(facts)}


def _anniversary(born: date, years: int) -> date:
    """The `years`-th birthday; a 29 February birthday falls on 1 March in common years."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def _reference_age(born: date, on: date) -> int:
    years = 0
    while _anniversary(born, years + 1) <= on:
        years += 1
    return years


@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=0, max_value=120 * 366),
)
def test_age_on_matches_counting_birthdays(born, days):
    on = born + timedelta(days=days)
    assert age_on(born, on) == _reference_age(born, on)


@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2000, 12, 31)),
    days=st.integers(min_value=0, max_value=40000),
)
def test_age_never_decreases_and_grows_by_one_a_year(born, days):
    on = born + timedelta(days=days)
    assert age_on(born, on) <= age_on(born, on + timedelta(days=1)) <= age_on(born, on) + 1
    assert age_on(born, _anniversary(born, 30)) == 30
