"""RECIST 1.1 (assessments.recist): a table of cases for every rule, then invariants that must
hold for any series of assessments (hypothesis)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessments.recist import (
    Assessment,
    Lesion,
    NonTarget,
    Response,
    baseline_problems,
    evaluate,
    is_sum_progression,
)

D = Decimal
START = date(2026, 1, 5)


def liver(mm) -> Lesion:
    return Lesion("liver", False, D(str(mm)))


def pancreas(mm) -> Lesion:
    return Lesion("pancreas", False, D(str(mm)))


def node(mm) -> Lesion:
    return Lesion("lymph_node", True, D(str(mm)))


def series(baseline: dict, *follow_ups) -> list[Assessment]:
    """Assessments 8 weeks apart; a follow-up is a dict of lesions or a (lesions, non_target,
    new_lesions) tuple."""
    assessments = [Assessment(START, baseline)]
    for index, item in enumerate(follow_ups, start=1):
        lesions, non_target, new = item if isinstance(item, tuple) else (item, "present", False)
        on = START + timedelta(weeks=8 * index)
        assessments.append(Assessment(on, lesions, non_target, new))
    return assessments


def responses(assessments) -> list[str]:
    return [r.response for r in evaluate(assessments).results[1:]]


BASE = {"T1": liver(50), "T2": liver(50)}  # sum 100 mm

# (case, baseline, follow-ups, expected responses of the follow-ups)
CASES = [
    ("CR: every lesion gone", BASE, [({"T1": liver(0), "T2": liver(0)}, "absent", False)], ["CR"]),
    (
        "CR: node below 10 mm short axis counts as normal",
        {"T1": liver(20), "T2": node(18)},
        [({"T1": liver(0), "T2": node("9.9")}, "absent", False)],
        ["CR"],
    ),
    (
        "not CR: node at exactly 10 mm (a partial response by the sum)",
        {"T1": liver(20), "T2": node(18)},
        [({"T1": liver(0), "T2": node(10)}, "absent", False)],
        ["PR"],
    ),
    (
        "targets gone but non-target lesions present: PR",
        BASE,
        [({"T1": liver(0), "T2": liver(0)}, "present", False)],
        ["PR"],
    ),
    (
        "targets gone but non-target lesions not evaluated: PR",
        BASE,
        [({"T1": liver(0), "T2": liver(0)}, "not_evaluated", False)],
        ["PR"],
    ),
    ("PR at exactly -30%", BASE, [{"T1": liver(35), "T2": liver(35)}], ["PR"]),
    ("SD at -29.9%", BASE, [{"T1": liver(35), "T2": liver("35.1")}], ["SD"]),
    ("SD unchanged", BASE, [{"T1": liver(50), "T2": liver(50)}], ["SD"]),
    ("PD at +20% with +5 mm", {"T1": liver(25)}, [{"T1": liver(30)}], ["PD"]),
    ("not PD: +20% but only +4 mm", {"T1": liver(20)}, [{"T1": liver(24)}], ["SD"]),
    (
        "not PD: +5 mm but only +19.9%",
        {"T1": liver(50), "T2": liver("50.5")},
        [{"T1": liver("60.5"), "T2": liver("60")}],
        ["SD"],
    ),
    (
        "PD: a new lesion, even while the targets shrink",
        BASE,
        [({"T1": liver(20), "T2": liver(20)}, "present", True)],
        ["PD"],
    ),
    (
        "PD: unequivocal progression of the non-target lesions",
        BASE,
        [({"T1": liver(40), "T2": liver(40)}, "progression", False)],
        ["PD"],
    ),
    (
        "nadir after a response: +20% over the nadir is PD though below the baseline",
        BASE,
        [{"T1": liver(30), "T2": liver(30)}, {"T1": liver(36), "T2": liver(36)}],
        ["PR", "PD"],
    ),
    (
        "nadir after a response: just under +20% over the nadir is SD",
        BASE,
        [{"T1": liver(30), "T2": liver(30)}, {"T1": liver(36), "T2": liver("35.9")}],
        ["PR", "SD"],
    ),
    (
        "nadir 0 after CR: a reappearing 5 mm is PD",
        BASE,
        [
            ({"T1": liver(0), "T2": liver(0)}, "absent", False),
            ({"T1": liver(5), "T2": liver(0)}, "absent", False),
        ],
        ["CR", "PD"],
    ),
    ("NE: a target lesion not measured", BASE, [{"T1": liver(40)}], ["NE"]),
    (
        "a target not measured, but a new lesion: PD",
        BASE,
        [({"T1": liver(40)}, "present", True)],
        ["PD"],
    ),
    (
        "a target not measured, but the measured ones alone are PD",
        BASE,
        [{"T1": liver(130)}],
        ["PD"],
    ),
    (
        "an NE study does not become the nadir",
        BASE,
        [{"T1": liver(10)}, {"T1": liver(45), "T2": liver(45)}],
        ["NE", "SD"],
    ),
]


@pytest.mark.parametrize(
    ("baseline", "follow_ups", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_recist_response_table(baseline, follow_ups, expected):
    assert responses(series(baseline, *follow_ups)) == expected


def test_sums_and_changes_from_baseline_and_nadir():
    results = evaluate(
        series(BASE, {"T1": liver(30), "T2": liver(30)}, {"T1": liver(36), "T2": liver(36)})
    ).results
    assert [(r.sum_mm, r.change_from_baseline_pct, r.change_from_nadir_pct) for r in results] == [
        (D(100), None, None),
        (D(60), D("-40.0"), D("-40.0")),
        (D(72), D("-28.0"), D("20.0")),
    ]
    assert [r.nadir_mm for r in results] == [None, D(100), D(60)]


def test_nodes_are_summed_by_their_short_axis():
    results = evaluate(series({"T1": liver(20), "T2": node(16)}, {"T1": liver(20), "T2": node(8)}))
    assert results.results[0].sum_mm == D(36)
    assert results.results[1].sum_mm == D(28)


def test_a_missing_target_leaves_the_sum_unknown_and_names_the_lesion():
    result = evaluate(series(BASE, {"T1": liver(40)})).results[1]
    assert (result.response, result.sum_mm, result.change_from_baseline_pct) == ("NE", None, None)
    assert result.missing == ("T2",)
    assert "T2" in result.reasons[0]


def test_best_overall_response_and_first_progression():
    follow_ups = [
        {"T1": liver(40)},  # NE
        {"T1": liver(45), "T2": liver(45)},  # SD
        {"T1": liver(30), "T2": liver(30)},  # PR
        {"T1": liver(40), "T2": liver(40)},  # PD over the nadir of 60
        ({"T1": liver(30), "T2": liver(30)}, "present", True),  # PD again
    ]
    evaluation = evaluate(series(BASE, *follow_ups))
    assert [r.response for r in evaluation.results[1:]] == ["NE", "SD", "PR", "PD", "PD"]
    assert [r.best_response for r in evaluation.results[1:]] == [None, "SD", "PR", "PR", "PR"]
    fourth = START + timedelta(weeks=32)
    assert [r.first_progression_on for r in evaluation.results[1:]] == [
        None,
        None,
        None,
        fourth,
        fourth,
    ]
    assert (evaluation.best_response, evaluation.first_progression_on) == ("PR", fourth)


def test_the_lesion_kind_comes_from_the_baseline():
    # T2 is a node at the baseline: 9 mm at follow-up is normal even if typed as "liver".
    evaluation = evaluate(
        series(
            {"T1": liver(20), "T2": node(20)},
            ({"T1": liver(0), "T2": liver(9)}, "absent", False),
        )
    )
    assert evaluation.results[1].response == "CR"


def test_an_empty_series():
    evaluation = evaluate([])
    assert (evaluation.results, evaluation.best_response, evaluation.first_progression_on) == (
        [],
        None,
        None,
    )


# --- the baseline's RECIST limits --------------------------------------------------------

PROBLEMS = [
    ("valid", {"T1": liver(10), "T2": node(15)}, []),
    ("no target", {}, [""]),
    (
        "six targets",
        {
            "T1": liver(20),
            "T2": liver(20),
            "T3": pancreas(30),
            "T4": node(20),
            "T5": node(20),
            "T6": Lesion("lung", False, D(12)),
        },
        [""],
    ),
    ("three in one organ", {"T1": liver(20), "T2": liver(20), "T3": liver(20)}, ["T3"]),
    ("three nodes: nodes are one organ", {"T1": node(20), "T2": node(20), "T3": node(20)}, ["T3"]),
    ("non-nodal lesion under 10 mm", {"T1": liver("9.9")}, ["T1"]),
    ("node under 15 mm short axis", {"T1": liver(20), "T2": node("14.9")}, ["T2"]),
]


@pytest.mark.parametrize(
    ("lesions", "labels"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS]
)
def test_baseline_limits(lesions, labels):
    problems = baseline_problems(lesions)
    assert [p.label for p in problems] == labels
    for problem in problems:
        if problem.label:
            assert problem.label in problem.message


def test_baseline_messages_give_the_values():
    (problem,) = baseline_problems({"T1": liver(20), "T2": node("14.9")})
    assert problem.message == (
        "T2: a lymph node is a target only with a short axis of at least 15 mm (14.9 mm given)."
    )
    (problem,) = baseline_problems({"T1": liver(20), "T2": liver(20), "T3": liver(20)})
    assert "T1, T2, T3" in problem.message
    assert "at most 2 target lesions per organ" in problem.message


def test_evaluate_reports_the_problems_of_its_baseline():
    evaluation = evaluate(series({"T1": liver(5)}, {"T1": liver(5)}))
    assert [p.label for p in evaluation.problems] == ["T1"]


def test_plain_tuples_are_accepted():
    evaluation = evaluate(
        [
            Assessment(START, {"T1": ("liver", False, D(40))}),
            Assessment(START + timedelta(days=56), {"T1": ("liver", False, D(20))}),
        ]
    )
    assert evaluation.results[1].response == "PR"


# --- invariants (hypothesis) --------------------------------------------------------------

ORGANS = ["liver", "pancreas", "lung", "peritoneum"]
tenths = st.integers(min_value=0, max_value=2000).map(lambda n: D(n) / 10)


@st.composite
def non_nodal_baselines(draw) -> dict[str, Lesion]:
    organs = draw(st.lists(st.sampled_from(ORGANS), min_size=1, max_size=5))
    counts: dict[str, int] = {}
    lesions = {}
    for index, organ in enumerate(organs, start=1):
        if counts.get(organ, 0) == 2:
            continue
        counts[organ] = counts.get(organ, 0) + 1
        size = draw(st.integers(min_value=100, max_value=1500)) / D(10)
        lesions[f"T{index}"] = Lesion(organ, False, size)
    return lesions


@st.composite
def baselines_with_nodes(draw) -> dict[str, Lesion]:
    lesions = draw(non_nodal_baselines())
    if len(lesions) < 5 and draw(st.booleans()):
        lesions["N1"] = node(draw(st.integers(min_value=150, max_value=600)) / D(10))
    return lesions


@st.composite
def assessment_series(draw, baseline_strategy=non_nodal_baselines, allow_missing=True):
    baseline = draw(baseline_strategy())
    assessments = [Assessment(START, baseline)]
    for index in range(draw(st.integers(min_value=1, max_value=5))):
        lesions = {}
        for label, lesion in baseline.items():
            if allow_missing and draw(st.integers(0, 9)) == 0:
                continue  # not measured
            # Shrinking to 0 is frequent in practice, so give it a real chance.
            size = D(0) if draw(st.integers(0, 5)) == 0 else draw(tenths)
            lesions[label] = Lesion(lesion.organ, lesion.is_lymph_node, size)
        non_target = draw(st.sampled_from(list(NonTarget)))
        new = draw(st.integers(0, 7)) == 0
        on = START + timedelta(weeks=8 * (index + 1))
        assessments.append(Assessment(on, lesions, non_target, new))
    return assessments


def _scaled(assessments: list[Assessment], factor: int) -> list[Assessment]:
    return [
        Assessment(
            a.on,
            {
                k: Lesion(v.organ, v.is_lymph_node, v.diameter_mm * factor)
                for k, v in a.lesions.items()
            },
            a.non_target,
            a.new_lesions,
        )
        for a in assessments
    ]


@settings(max_examples=150, deadline=None)
@given(assessment_series(), st.integers(min_value=2, max_value=5))
def test_scaling_every_diameter_keeps_the_response_unless_the_5_mm_rule_decides(
    assessments, factor
):
    original = evaluate(assessments).results
    scaled = evaluate(_scaled(assessments, factor)).results
    for assessment, before, after in zip(assessments[1:], original[1:], scaled[1:], strict=True):
        if before.response == after.response:
            continue
        # Only the absolute 5 mm condition is not scale-free: the (measured) sum rose ≥ 20%
        # over the nadir, and the increase was under 5 mm before scaling.
        measured = sum((lesion.diameter_mm for lesion in assessment.lesions.values()), D(0))
        assert measured >= before.nadir_mm * D("1.2")
        assert measured - before.nadir_mm < 5
        assert after.response == Response.PD


@settings(max_examples=120, deadline=None)
@given(assessment_series(baselines_with_nodes), st.data())
def test_a_new_lesion_always_means_progression(assessments, data):
    index = data.draw(st.integers(min_value=1, max_value=len(assessments) - 1))
    target = assessments[index]
    assessments[index] = Assessment(target.on, target.lesions, target.non_target, True)
    result = evaluate(assessments).results[index]
    assert result.response == Response.PD
    assert evaluate(assessments).first_progression_on <= target.on


@settings(max_examples=150, deadline=None)
@given(assessment_series(baselines_with_nodes))
def test_a_sum_up_20_percent_and_5_mm_over_the_nadir_is_always_progression(assessments):
    results = evaluate(assessments).results
    complete_sums = [results[0].sum_mm]
    for assessment, result in zip(assessments[1:], results[1:], strict=True):
        nadir = min(complete_sums)
        measured = sum((lesion.diameter_mm for lesion in assessment.lesions.values()), D(0))
        if measured - nadir >= 5 and measured >= nadir * D("1.2"):
            assert result.response == Response.PD
        if result.sum_mm is not None:
            complete_sums.append(result.sum_mm)
        assert result.nadir_mm == nadir


@settings(max_examples=150, deadline=None)
@given(assessment_series(baselines_with_nodes))
def test_complete_response_only_when_every_non_nodal_target_is_gone(assessments):
    results = evaluate(assessments).results
    for assessment, result in zip(assessments[1:], results[1:], strict=True):
        if result.response != Response.CR:
            continue
        baseline = assessments[0].lesions
        non_nodal = [
            lesion.diameter_mm
            for label, lesion in assessment.lesions.items()
            if not baseline[label].is_lymph_node
        ]
        assert sum(non_nodal, D(0)) == 0
        assert assessment.non_target == NonTarget.ABSENT
        assert not assessment.new_lesions
        assert set(assessment.lesions) == set(baseline)


@settings(max_examples=120, deadline=None)
@given(assessment_series(baselines_with_nodes))
def test_best_response_is_the_best_so_far_and_ne_only_when_a_target_is_missing(assessments):
    rank = {"CR": 4, "PR": 3, "SD": 2, "PD": 1}
    results = evaluate(assessments).results
    seen: list[str] = []
    for assessment, result in zip(assessments[1:], results[1:], strict=True):
        seen.append(result.response)
        ranked = [r for r in seen if r in rank]
        assert result.best_response == (max(ranked, key=rank.get) if ranked else None)
        if result.response == Response.NE:
            assert set(assessment.lesions) < set(assessments[0].lesions)
        if result.response == Response.PR:
            assert result.sum_mm <= results[0].sum_mm * D("0.7") or all(
                lesion.diameter_mm == 0 or lesion.is_lymph_node
                for lesion in assessment.lesions.values()
            )


def test_is_sum_progression_needs_both_conditions():
    assert is_sum_progression(D(30), D(25))
    assert not is_sum_progression(D(24), D(20))  # +20% but +4 mm
    assert not is_sum_progression(D("119.9"), D(100))  # +19.9 mm but +19.9%
    assert is_sum_progression(D(5), D(0))
