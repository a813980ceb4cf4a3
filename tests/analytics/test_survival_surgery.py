"""Surgery vs no surgery without immortal-time bias (analytics.survival_surgery): the
counting-process layout on hand-built patients, and a synthetic cohort where surgery does
nothing, yet looks protective when compared naively from the origin."""

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxTimeVaryingFitter

from analytics.survival import SurvivalError
from analytics.survival_surgery import surgery_effect, to_counting_process

HAND = pd.DataFrame(
    {
        "subject_code": ["MID", "DAY0", "NEVER", "LASTDAY", "DIEDFIRST", "ZERO", "BEFORE"],
        "os_days": [300, 200, 50, 120, 30, 0, 90],
        "os_event": [1, 0, 1, 1, 1, 1, 0],
        "surgery_days": [100, 0, np.nan, 120, np.nan, np.nan, -5],
    }
)


def rows(frame: pd.DataFrame, subject: str) -> list[tuple]:
    part = frame[frame["id"] == subject]
    return [tuple(r) for r in part[["start", "stop", "event", "surgery"]].itertuples(index=False)]


def test_counting_process_layout():
    cp = to_counting_process(HAND)
    assert list(cp.columns) == ["id", "start", "stop", "event", "surgery"]
    # operated mid-follow-up: unoperated up to and including the operation day, then operated
    assert rows(cp, "MID") == [(0, 100, 0, 0), (100, 300, 1, 1)]
    # operated on day 0: operated throughout
    assert rows(cp, "DAY0") == [(0, 200, 0, 1)]
    # never operated, or died before the operation could happen
    assert rows(cp, "NEVER") == [(0, 50, 1, 0)]
    assert rows(cp, "DIEDFIRST") == [(0, 30, 1, 0)]
    # operated on the last day (died that day): split half a day earlier, death counts as
    # operated, no zero-length interval
    assert rows(cp, "LASTDAY") == [(0, 119.5, 0, 0), (119.5, 120, 1, 1)]
    # no follow-up at all: half a day, as lifelines and R refuse (0, 0]
    assert rows(cp, "ZERO") == [(0, 0.5, 1, 0)]
    # operated before the origin (e.g. a retrospective patient enrolled after surgery)
    assert rows(cp, "BEFORE") == [(0, 90, 0, 1)]
    assert (cp["stop"] > cp["start"]).all()
    assert cp.groupby("id")["event"].sum().to_dict() == dict(
        zip(HAND["subject_code"], HAND["os_event"], strict=True)
    )


def test_counting_process_is_accepted_by_lifelines_time_varying_cox():
    cp = to_counting_process(HAND)
    ctv = CoxTimeVaryingFitter(penalizer=0.1).fit(
        cp, id_col="id", event_col="event", start_col="start", stop_col="stop"
    )
    assert list(ctv.summary.index) == ["surgery"]
    assert np.isfinite(ctv.summary.loc["surgery", "coef"])


def test_counting_process_refuses_an_operation_after_the_end_of_follow_up():
    late = HAND.assign(surgery_days=[100, 0, 60, 120, np.nan, np.nan, -5])
    with pytest.raises(SurvivalError) as caught:
        to_counting_process(late)
    assert str(caught.value) == (
        "1 patients were operated after the end of their follow-up (NEVER): check their last "
        "date known alive."
    )
    assert caught.value.field == "surgery"


def null_effect_cohort(seed: int = 20260312, n: int = 2000) -> pd.DataFrame:
    """Death times independent of surgery (median 1 year); half the patients are planned for
    an operation between days 30 and 300, which happens only if they are still alive and
    followed then."""
    rng = np.random.default_rng(seed)
    death = np.ceil(rng.exponential(365 / np.log(2), n))
    censor = rng.integers(300, 1100, n)
    planned = np.where(rng.random(n) < 0.5, rng.integers(30, 300, n), np.nan)
    os_days = np.minimum(death, censor)
    surgery_days = np.where(planned < os_days, planned, np.nan)
    return pd.DataFrame(
        {
            "subject_code": ["P%04d" % i for i in range(n)],
            "os_days": os_days,
            "os_event": (death <= censor).astype(int),
            "surgery_days": surgery_days,
            "resected": ~np.isnan(surgery_days),
        }
    )


def test_immortal_time_makes_a_null_surgery_look_protective_only_in_the_naive_analysis():
    result = surgery_effect(null_effect_cohort())
    json.dumps(result, allow_nan=False)
    naive, tv = result["naive"], result["time_varying"]
    assert result["n"] == naive["n"] == tv["n"] == 2000
    assert naive["operated"] == tv["operated"] == result["operated"] > 500
    assert naive["biased"] is True
    assert "Immortal-time bias" in naive["reason"]
    assert naive["hr"] < 0.8
    assert naive["hr_ci"][1] < 1
    assert tv["hr_ci"][0] < 1 < tv["hr_ci"][1]
    assert tv["intervals"] == 2000 + tv["operated"]
    assert tv["events"] == result["events"]
    landmarks = result["landmark"]
    assert [lm["landmark_day"] for lm in landmarks] == [90, 180, 270]
    covering = [lm["hr_ci"][0] < 1 < lm["hr_ci"][1] for lm in landmarks]
    assert sum(covering) >= 2
    for lm in landmarks:
        assert lm["skipped"] is None
        groups = lm["groups"]
        assert groups["operated"]["n"] + groups["not_operated"]["n"] == lm["n"]
        assert groups["operated"]["events"] + groups["not_operated"]["events"] == lm["events"]
        assert 0 < lm["logrank_p"] <= 1


def test_landmark_groups_by_hand():
    df = pd.DataFrame(
        {
            "subject_code": list("ABCDEF"),
            "os_days": [50, 150, 400, 500, 250, 600],
            "os_event": [1, 1, 1, 0, 1, 1],
            "surgery_days": [np.nan, 60, 80, 120, np.nan, 200],
        }
    )
    result = surgery_effect(df, landmarks=(100, 700))
    lm100, lm700 = result["landmark"]
    # alive beyond day 100: B, C, D, E, F; operated by then: B (60), C (80)
    assert lm100["n"] == 5
    assert lm100["groups"] == {
        "operated": {"n": 2, "events": 2},
        "not_operated": {"n": 3, "events": 2},
    }
    assert lm700["skipped"] == (
        "Landmark day 700 skipped: none of the 0 patients alive and followed beyond it had "
        "been operated by then."
    )
    assert lm700["hr"] is None


def test_landmark_with_everyone_operated_is_skipped_with_a_message():
    df = pd.DataFrame(
        {
            "subject_code": list("ABCD"),
            "os_days": [50, 150, 400, 500],
            "os_event": [1, 1, 1, 0],
            "surgery_days": [np.nan, 20, 30, 40],
        }
    )
    [lm] = surgery_effect(df, landmarks=(60,))["landmark"]
    assert lm["skipped"] == (
        "Landmark day 60 skipped: all 3 patients alive and followed beyond it had been "
        "operated by then."
    )


def test_surgery_effect_counts_operations_after_follow_up_and_refuses_nothing_to_compare():
    df = null_effect_cohort(n=200)
    df.loc[0, ["surgery_days", "os_days"]] = [400, 300]
    result = surgery_effect(df)
    assert result["excluded"] == {"missing_outcome": 0, "surgery_after_follow_up": 1}
    assert result["n"] == 199
    with pytest.raises(SurvivalError) as caught:
        surgery_effect(df.assign(surgery_days=np.nan))
    assert str(caught.value) == "None of the 200 patients was operated: nothing to compare."
    with pytest.raises(SurvivalError, match="No deaths among the 199 patients: comparing"):
        surgery_effect(df.assign(os_event=0))
    with pytest.raises(SurvivalError, match="Days must be 0 or more; -90 is negative."):
        surgery_effect(df, landmarks=(-90,))


def test_no_event_among_the_operated_gives_no_hazard_ratio_but_says_why():
    rng = np.random.default_rng(7)
    n = 60
    operated = np.arange(n) < 15
    frame = pd.DataFrame(
        {
            "subject_code": [f"S{i:03d}" for i in range(n)],
            "os_days": rng.integers(200, 900, n),
            # Every operated patient is alive (censored); the others die.
            "os_event": np.where(operated, 0, 1),
            "surgery_days": np.where(operated, 120, np.nan),
        }
    )
    result = surgery_effect(frame, landmarks=(90,))
    for analysis in (result["naive"], result["time_varying"]):
        assert analysis["hr"] is None
        assert analysis["hr_ci"] == [None, None]
        assert "No events among the operated patients" in analysis["note"]
    assert result["naive"]["biased"] is True
    json.dumps(result)  # strict JSON: no NaN sneaks in
