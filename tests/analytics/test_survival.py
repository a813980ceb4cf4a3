"""Kaplan-Meier, log-rank and Cox summaries (analytics.survival): agreement with R's survival
package on public data sets shipped with lifelines, hand-computed values, and every refusal.

R values are written as R prints them and compared to the printed precision (`printed`: half a
unit of the last printed digit). Sources:

- lung = R survival::lung (NCCTG advanced lung cancer). R codes status 1 = censored,
  2 = dead; lifelines' copy (load_lung) codes it 0/1 with 1 = dead (165 deaths, as in R),
  and sex 1 = male, 2 = female as in R.
  * print(survfit(Surv(time, status) ~ 1, data = lung)): n 228, events 165, median 310,
    0.95LCL 285, 0.95UCL 363; ~ sex: sex=1 138 112 270 212 310, sex=2 90 53 426 348 550;
    ~ ph.ecog: 0: 63 37 394 348 574, 1: 113 82 306 268 429, 2: 50 44 199 156 288,
    3: 1 1 118 NA NA (1 observation deleted due to missingness). survfit's default
    conf.type = "log". Printed in E. C. Zabor, "Survival analysis in R" tutorial
    (emilyzabor.com/tutorials/survival_analysis_in_r_tutorial.html) and STHDA "Survival
    analysis basics" (sthda.com/english/wiki/survival-analysis-basics).
  * summary(survfit(Surv(time, status) ~ 1, data = lung), times = 365.25): survival 0.409,
    lower 95% CI 0.345, upper 0.486 (Zabor, section "Estimating x-year survival").
  * survdiff(Surv(time, status) ~ sex, data = lung): "Chisq= 10.3 on 1 degrees of freedom,
    p= 0.001"; ~ ph.ecog: "Chisq= 22 on 3 degrees of freedom, p= 7e-05" (same tutorials).
  * summary(coxph(Surv(time, status) ~ sex, data = lung)): coef -0.5310, exp(coef) 0.5880,
    se(coef) 0.1672, z -3.176, Pr(>|z|) 0.00149, lower .95 0.4237, upper .95 0.816,
    Concordance= 0.579 (STHDA "Cox proportional-hazards model",
    sthda.com/english/wiki/cox-proportional-hazards-model).
  * summary(coxph(Surv(time, status) ~ age + sex, data = lung)): age 0.017045 (exp 1.017191,
    se 0.009223, p 0.0646), sex -0.513219 (exp 0.598566, se 0.167458, p 0.00218),
    Concordance= 0.603 — the printout quoted in the issue and in many tutorials.
- Rossi recidivism data (lifelines load_rossi = carData::Rossi's first 9 columns):
  J. Fox and S. Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R",
  appendix to An R Companion to Applied Regression (2nd ed., 2011), section 3:
  coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi),
  Efron ties. (The issue quoted p = 0.0382 for fin and 0.0081 for age; the appendix prints
  0.04742 and 0.00903, which is also what lifelines computes.)
"""

import json
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_lung, load_rossi

from analytics.survival import (
    CI_TYPE,
    GROUPINGS,
    Numeric,
    SurvivalError,
    cox,
    grouping,
    km_summary,
    parse_days,
)


def printed(value: float, text: str) -> bool:
    """True when `value` rounds to R's printed `text` (half a unit of its last digit)."""
    if "e" in text.lower():
        mantissa, exponent = text.lower().split("e")
        decimals = len(mantissa.partition(".")[2]) - int(exponent)
    else:
        decimals = len(text.partition(".")[2])
    return abs(value - float(text)) <= 0.5 * 10**-decimals + 1e-12


def json_ready(result: dict) -> dict:
    """The result survives strict JSON (no NaN, no numpy types)."""
    return json.loads(json.dumps(result, allow_nan=False))


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    df = load_lung().rename(columns={"time": "os_days", "status": "os_event", "ph.ecog": "ecog"})
    df["sex"] = df["sex"].map({1: "M", 2: "F"})
    df["subject_code"] = ["L%03d" % i for i in range(len(df))]
    return df


# --- R agreement: Kaplan-Meier and log-rank ---------------------------------------------------


def test_lung_overall_median_and_ci_match_r_survfit(lung):
    result = json_ready(km_summary(lung, at=(365,)))
    assert result["ci_type"] == CI_TYPE == "log"
    assert (result["n"], result["events"]) == (228, 165)
    assert result["median_days"] == 310
    assert result["median_ci_days"] == [285, 363]
    assert math.isclose(result["median_months"], 310 / 30.4375)
    one_year = result["survival_at"][0]
    assert printed(one_year["survival"], "0.409")
    assert printed(one_year["ci"][0], "0.345")
    assert printed(one_year["ci"][1], "0.486")
    assert one_year["at_risk"] == 65


def test_lung_by_sex_matches_r_survfit_and_survdiff(lung):
    result = json_ready(km_summary(lung, group_by="sex"))
    assert result["group_order"] == ["M", "F"]
    male, female = result["groups"]["M"], result["groups"]["F"]
    assert (male["n"], male["events"], male["median_days"]) == (138, 112, 270)
    assert male["median_ci_days"] == [212, 310]
    assert (female["n"], female["events"], female["median_days"]) == (90, 53, 426)
    assert female["median_ci_days"] == [348, 550]
    logrank = result["logrank"]
    assert logrank["test"] == "logrank"
    assert logrank["df"] == 1
    assert printed(logrank["chi2"], "10.3")
    assert printed(logrank["p"], "0.001")
    assert result["excluded"] == {"missing_outcome": 0, "missing_group": 0}


def test_lung_by_ecog_uses_the_multivariate_logrank_and_drops_the_missing_value(lung):
    result = json_ready(km_summary(lung, group_by="ecog"))
    assert result["group_order"] == ["0", "1", "2", "3"]
    assert result["excluded"]["missing_group"] == 1
    assert result["n"] == 227
    expected = {
        "0": (63, 37, 394, [348, 574]),
        "1": (113, 82, 306, [268, 429]),
        "2": (50, 44, 199, [156, 288]),
        "3": (1, 1, 118, [None, None]),
    }
    for level, (n, events, median, ci) in expected.items():
        group = result["groups"][level]
        assert (group["n"], group["events"], group["median_days"]) == (n, events, median)
        assert group["median_ci_days"] == ci
    assert result["logrank"]["test"] == "multivariate logrank"
    assert result["logrank"]["df"] == 3
    assert printed(result["logrank"]["chi2"], "22")
    assert printed(result["logrank"]["p"], "7e-05")


def test_km_curve_is_lifelines_kaplan_meier(lung):
    """Our own step function (needed for R's "log" limits) is the lifelines estimate."""
    timeline = km_summary(lung)["timeline"]
    kmf = KaplanMeierFitter().fit(lung["os_days"], lung["os_event"])
    times = [row["time"] for row in timeline]
    assert times == sorted(lung["os_days"].unique().tolist())
    expected = kmf.survival_function_["KM_estimate"].loc[times].to_numpy()
    assert np.allclose([row["survival"] for row in timeline], expected, rtol=0, atol=1e-12)
    table = kmf.event_table.loc[times]
    assert [row["at_risk"] for row in timeline] == table["at_risk"].tolist()
    assert [row["events"] for row in timeline] == table["observed"].tolist()
    assert [row["censored"] for row in timeline] == table["censored"].tolist()


# --- R agreement: Cox -------------------------------------------------------------------------


def test_lung_cox_on_sex_matches_r_coxph(lung):
    result = json_ready(cox(lung, covariates=["sex"]))
    assert (result["n"], result["events"]) == (228, 165)
    assert result["reference_levels"] == {"sex": "M"}
    [sex] = result["covariates"]
    assert (sex["name"], sex["level"]) == ("sex", "F")
    assert printed(sex["coef"], "-0.5310")
    assert printed(sex["hr"], "0.5880")
    assert printed(sex["se"], "0.1672")
    assert printed(sex["z"], "-3.176")
    assert printed(sex["p"], "0.00149")
    assert printed(sex["hr_ci"][0], "0.4237")
    assert printed(sex["hr_ci"][1], "0.816")
    assert printed(result["concordance"], "0.579")
    assert result["ties"] == "efron"
    assert result["ph_test"]["transform"] == "rank"
    assert [(c["name"], c["level"]) for c in result["ph_test"]["covariates"]] == [("sex", "F")]
    assert 0 < result["ph_test"]["covariates"][0]["p"] < 1
    assert result["warnings"] == []


def test_lung_cox_on_age_and_sex_matches_r_coxph(lung):
    result = cox(lung, covariates=["age", "sex"])
    age, sex = result["covariates"]
    assert (age["name"], age["level"], sex["level"]) == ("age", None, "F")
    assert printed(age["coef"], "0.017045")
    assert printed(age["hr"], "1.017191")
    assert printed(age["se"], "0.009223")
    assert printed(age["p"], "0.0646")
    assert printed(sex["coef"], "-0.513219")
    assert printed(sex["hr"], "0.598566")
    assert printed(sex["se"], "0.167458")
    assert printed(sex["p"], "0.00218")
    assert printed(result["concordance"], "0.603")


ROSSI_R = {  # name: (coef, exp(coef), se(coef), z, Pr(>|z|)) as printed by Fox & Weisberg
    "fin": ("-0.37942", "0.68426", "0.19138", "-1.983", "0.04742"),
    "age": ("-0.05744", "0.94418", "0.02200", "-2.611", "0.00903"),
    "race": ("0.31390", "1.36875", "0.30799", "1.019", "0.30812"),
    "wexp": ("-0.14980", "0.86088", "0.21222", "-0.706", "0.48029"),
    "mar": ("-0.43370", "0.64810", "0.38187", "-1.136", "0.25606"),
    "paro": ("-0.08487", "0.91863", "0.19576", "-0.434", "0.66461"),
    "prio": ("0.09150", "1.09581", "0.02865", "3.194", "0.00140"),
}


def test_rossi_cox_matches_fox_and_weisberg():
    rossi = load_rossi()
    numeric = {name: Numeric(name, name, "unit") for name in ROSSI_R}
    result = cox(rossi, duration="week", event="arrest", covariates=list(ROSSI_R), numeric=numeric)
    assert (result["n"], result["events"]) == (432, 114)
    assert result["reference_levels"] == {}
    for row in result["covariates"]:
        coef, hr, se, z, p = ROSSI_R[row["name"]]
        assert printed(row["coef"], coef), row
        assert printed(row["hr"], hr), row
        assert printed(row["se"], se), row
        assert printed(row["z"], z), row
        assert printed(row["p"], p), row
    assert [row["name"] for row in result["covariates"]] == list(ROSSI_R)
    assert result["events_per_parameter"] == pytest.approx(114 / 7)


# --- Hand-computed Kaplan-Meier ---------------------------------------------------------------

FIVE = pd.DataFrame(
    {
        "subject_code": ["A", "B", "C", "D", "E"],
        "os_days": [2, 3, 5, 7, 7],
        "os_event": [1, 0, 1, 1, 0],
    }
)


def test_five_patient_kaplan_meier_by_hand():
    """S(2) = 4/5, S(5) = 4/5 * 2/3, S(7) = 8/15 * 1/2. Greenwood's variance of log S:
    1/(5*4) = 0.05 at day 2, + 1/(3*2) at day 5, + 1/(2*1) at day 7; "log" limits
    S * exp(±1.959964 * sqrt(var)), the upper capped at 1."""
    result = json_ready(km_summary(FIVE, at=(0, 1, 4, 7, 8)))
    z = 1.959963984540054
    s2, s5, s7 = 0.8, 0.8 * 2 / 3, 0.8 * 2 / 3 / 2
    v2, v5, v7 = 0.05, 0.05 + 1 / 6, 0.05 + 1 / 6 + 0.5
    assert result["timeline"] == [
        {
            "time": 2,
            "survival": pytest.approx(s2),
            "ci_lower": pytest.approx(s2 * math.exp(-z * math.sqrt(v2))),
            "ci_upper": 1.0,
            "at_risk": 5,
            "events": 1,
            "censored": 0,
        },
        {
            "time": 3,
            "survival": pytest.approx(s2),
            "ci_lower": pytest.approx(s2 * math.exp(-z * math.sqrt(v2))),
            "ci_upper": 1.0,
            "at_risk": 4,
            "events": 0,
            "censored": 1,
        },
        {
            "time": 5,
            "survival": pytest.approx(s5),
            "ci_lower": pytest.approx(s5 * math.exp(-z * math.sqrt(v5))),
            "ci_upper": 1.0,
            "at_risk": 3,
            "events": 1,
            "censored": 0,
        },
        {
            "time": 7,
            "survival": pytest.approx(s7),
            "ci_lower": pytest.approx(s7 * math.exp(-z * math.sqrt(v7))),
            "ci_upper": 1.0,
            "at_risk": 2,
            "events": 1,
            "censored": 1,
        },
    ]
    assert (result["n"], result["events"]) == (5, 3)
    # The curve first reaches 0.5 or less at day 7; the lower limit (0.214 at day 5) at day 5;
    # the upper limit never does.
    assert result["median_days"] == 7
    assert result["median_ci_days"] == [5, None]
    assert result["median_ci_months"] == [pytest.approx(5 / 30.4375), None]
    at = {row["day"]: row for row in result["survival_at"]}
    assert at[0] == {"day": 0, "survival": 1.0, "ci": [1.0, 1.0], "at_risk": 5}
    assert at[1]["survival"] == 1.0
    assert at[4]["survival"] == pytest.approx(0.8)
    assert at[4]["at_risk"] == 3
    assert at[7]["survival"] == pytest.approx(s7)
    assert at[8] == {"day": 8, "survival": None, "ci": [None, None], "at_risk": 0}


def test_median_on_a_flat_at_one_half_is_the_midpoint_as_in_r():
    """R's quantile.survfit: S = 0.5 exactly between days 2 and 3 -> median 2.5 (lifelines'
    median_survival_time_ says 2); a curve ending flat at 0.5 -> midpoint to the last time."""
    four = pd.DataFrame({"os_days": [1, 2, 3, 4], "os_event": [1, 1, 1, 1]})
    assert km_summary(four)["median_days"] == 2.5
    assert KaplanMeierFitter().fit([1, 2, 3, 4], [1, 1, 1, 1]).median_survival_time_ == 2
    flat = pd.DataFrame({"os_days": [1, 2, 3, 4], "os_event": [1, 1, 0, 0]})
    assert km_summary(flat)["median_days"] == 3


def test_zero_day_durations_count_at_day_zero_like_r_and_lifelines():
    df = pd.DataFrame({"os_days": [0, 0, 2, 3, 5], "os_event": [1, 0, 1, 1, 0]})
    result = km_summary(df, at=(0,))
    assert result["timeline"][0] == {
        "time": 0,
        "survival": pytest.approx(0.8),
        "ci_lower": pytest.approx(0.8 * math.exp(-1.959963984540054 * math.sqrt(0.05))),
        "ci_upper": 1.0,
        "at_risk": 5,
        "events": 1,
        "censored": 1,
    }
    assert result["survival_at"][0]["survival"] == pytest.approx(0.8)
    lifelines_curve = KaplanMeierFitter().fit(df["os_days"], df["os_event"])
    assert lifelines_curve.survival_function_.loc[0.0, "KM_estimate"] == pytest.approx(0.8)


def test_missing_outcomes_are_dropped_and_counted_and_booleans_and_decimals_accepted():
    df = pd.DataFrame(
        {
            "os_days": [Decimal("10"), None, 30, 40, np.nan],
            "os_event": [True, True, None, False, 1],
        }
    )
    result = km_summary(df)
    assert result["excluded"] == {"missing_outcome": 3}
    assert (result["n"], result["events"]) == (2, 1)


def test_all_dead_curve_has_no_interval_at_zero_survival():
    df = pd.DataFrame({"os_days": [1, 2], "os_event": [1, 1]})
    last = json_ready(km_summary(df))["timeline"][-1]
    assert last["survival"] == 0.0
    assert (last["ci_lower"], last["ci_upper"]) == (None, None)


# --- Groupings ----------------------------------------------------------------------------------


def study_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_code": ["S%02d" % i for i in range(8)],
            "os_days": [100, 200, 300, 400, 500, 600, 700, 800],
            "os_event": [1, 1, 0, 1, 1, 0, 1, 0],
            "resected": [False, True, True, False, True, False, True, False],
            "liver_mets_count": [1, 3, 4, 8, np.nan, 2, 5, 3],
            "ca19_9_change_pct_first": [-50.0, -49.9, 10.0, np.nan, -80.0, -20.0, -55.0, 0.0],
            "ecog": [0.0, 1.0, 1.0, np.nan, 0.0, 2.0, 0.0, 1.0],
            "r_status": [None, "R0", "R1", None, "R0", None, "R0", None],
        }
    )


def test_groupings_label_the_study_columns():
    df = study_rows()
    assert GROUPINGS["liver_mets"].labels(df).tolist() == [
        "<=3", "<=3", ">3", ">3", None, "<=3", ">3", "<=3",
    ]  # fmt: skip
    assert GROUPINGS["ca19_9_response"].labels(df).tolist() == [
        ">=50% decline", "<50% decline", "<50% decline", None,
        ">=50% decline", "<50% decline", ">=50% decline", "<50% decline",
    ]  # fmt: skip
    assert GROUPINGS["ecog"].labels(df).tolist() == ["0", "1", "1", None, "0", "2", "0", "1"]
    assert GROUPINGS["resected"].labels(df).tolist()[:2] == ["not resected", "resected"]
    assert set(GROUPINGS) == {
        "sex", "cohort", "site", "regimen", "ecog", "resected", "liver_mets",
        "ca19_9_response", "best_response", "r_status",
    }  # fmt: skip


def test_groups_are_ordered_naturally_and_missing_labels_counted():
    result = km_summary(study_rows(), group_by="liver_mets")
    assert result["group_order"] == ["<=3", ">3"]
    assert list(result["groups"]) == ["<=3", ">3"]
    assert result["excluded"] == {"missing_outcome": 0, "missing_group": 1}
    assert result["n"] == 7
    assert result["groups"]["<=3"]["n"] == 4


# --- Refusals -----------------------------------------------------------------------------------


def test_unknown_group_names_the_field_and_the_allowed_ones():
    with pytest.raises(SurvivalError) as caught:
        km_summary(study_rows(), group_by="blood_type")
    assert caught.value.field == "group_by"
    assert str(caught.value).startswith("Unknown group 'blood_type' for group_by: choose one of")
    assert "sex, cohort, site, regimen, ecog, resected, liver_mets" in str(caught.value)
    with pytest.raises(SurvivalError, match="Unknown group 'x'"):
        grouping("x")


def test_group_with_one_level_has_nothing_to_compare():
    df = study_rows().assign(r_status=["R0", "R0", None, None, "R0", None, None, None])
    with pytest.raises(SurvivalError) as caught:
        km_summary(df, group_by="r_status")
    assert str(caught.value) == (
        "Group 'r_status' has only one level among patients with data (R0): nothing to compare."
    )
    assert caught.value.field == "group_by"


def test_group_without_any_data_is_refused():
    df = study_rows().assign(r_status=None)
    with pytest.raises(SurvivalError) as caught:
        km_summary(df, group_by="r_status")
    assert str(caught.value) == (
        "No patients with data for group 'r_status' among the 8 with an outcome."
    )


def test_no_events_is_refused_with_the_count():
    df = study_rows().assign(os_event=0)
    with pytest.raises(SurvivalError) as caught:
        km_summary(df)
    assert str(caught.value) == (
        "No deaths among the 8 patients: the median needs at least one event."
    )
    assert caught.value.field == "event"
    with pytest.raises(SurvivalError) as caught:
        km_summary(df, group_by="liver_mets")
    assert str(caught.value) == (
        "No deaths among the 7 patients: the median and the log-rank test need at least one event."
    )
    rfs = pd.DataFrame({"rfs_days": [10, 20], "rfs_event": [0, 0]})
    with pytest.raises(SurvivalError, match="No recurrences or deaths among the 2 patients"):
        km_summary(rfs, duration="rfs_days", event="rfs_event")


def test_no_patients_with_an_outcome_is_refused():
    df = pd.DataFrame({"os_days": [np.nan, np.nan], "os_event": [np.nan, 1]})
    with pytest.raises(SurvivalError, match="No patients with a duration and an event status"):
        km_summary(df)


def test_bad_durations_and_events_are_refused_naming_the_patients():
    df = study_rows()
    with pytest.raises(SurvivalError) as caught:
        km_summary(df.assign(os_days=[100, -3, 300, 400, 500, 600, 700, 800]))
    assert caught.value.field == "duration"
    assert str(caught.value) == (
        "Durations in 'os_days' cannot be negative; 1 are (S01): check the dates of these patients."
    )
    with pytest.raises(SurvivalError) as caught:
        km_summary(df.assign(os_event=[1, 2, 0, 1, 1, 0, 1, 0]))
    assert str(caught.value) == "Events in 'os_event' must be 0 or 1; 1 are not (S01)."
    with pytest.raises(SurvivalError, match="must be numbers of days; 1 are not \\(S00\\)"):
        km_summary(df.assign(os_days=["soon", 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(SurvivalError, match="Events in 'os_event' must be 0 or 1"):
        km_summary(df.assign(os_event=["dead", 1, 0, 1, 1, 0, 1, 0]))
    with pytest.raises(SurvivalError) as caught:
        km_summary(df, duration="pfs_days")
    assert (str(caught.value), caught.value.field) == (
        "The dataset has no column 'pfs_days'.",
        "duration",
    )


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ((-30,), "Days must be 0 or more; -30 is negative."),
        ((1.5,), "'1.5' is not a whole number of days."),
        (("365",), "'365' is not a whole number of days."),
        (tuple(range(21)), "At most 20 time points at once; 21 were given."),
    ],
)
def test_bad_at_days_are_refused(at, message):
    with pytest.raises(SurvivalError) as caught:
        km_summary(FIVE, at=at)
    assert (str(caught.value), caught.value.field) == (message, "at")


def test_parse_days():
    assert parse_days("730, 180,365,180") == (180, 365, 730)
    assert parse_days("0") == (0,)
    with pytest.raises(SurvivalError, match="'1y' is not a whole number of days."):
        parse_days("180,1y")
    with pytest.raises(SurvivalError, match="Days must be 0 or more; -1 is negative."):
        parse_days("-1")
    with pytest.raises(SurvivalError, match="No days given"):
        parse_days(" , ")
    with pytest.raises(SurvivalError) as caught:
        parse_days("x", field="landmarks")
    assert caught.value.field == "landmarks"


def cox_rows(n: int = 60, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "subject_code": ["C%03d" % i for i in range(n)],
            "os_days": rng.integers(30, 900, n),
            "os_event": (rng.random(n) < 0.6).astype(int),
            "age": rng.integers(40, 80, n).astype(float),
            "sex": rng.choice(["M", "F"], n, p=[0.6, 0.4]),
            "regimen": rng.choice(["AG", "NALIRIFOX", "mFOLFIRINOX"], n, p=[0.5, 0.3, 0.2]),
            "ecog": rng.choice([0, 1, 2], n),
            "liver_mets_count": rng.integers(1, 9, n),
        }
    )


def test_cox_reference_levels_dummy_coding_and_missing_covariates():
    df = cox_rows()
    df.loc[[3, 5], "age"] = np.nan
    result = json_ready(cox(df, covariates=["regimen", "ecog", "liver_mets", "age"]))
    assert result["reference_levels"] == {"regimen": "AG", "ecog": "0", "liver_mets": "<=3"}
    assert [(c["name"], c["level"]) for c in result["covariates"]] == [
        ("regimen", "mFOLFIRINOX"),
        ("regimen", "NALIRIFOX"),
        ("ecog", "1"),
        ("ecog", "2"),
        ("liver_mets", ">3"),
        ("age", None),
    ]
    assert result["excluded"] == {"missing_outcome": 0, "missing_covariates": 2}
    assert result["n"] == 58
    assert result["events_per_parameter"] == pytest.approx(result["events"] / 6)
    for row in result["covariates"]:
        assert row["hr"] == pytest.approx(math.exp(row["coef"]))
        assert row["hr_ci"][0] < row["hr"] < row["hr_ci"][1]
    assert len(result["ph_test"]["covariates"]) == 6
    assert any("per parameter" in w for w in result["warnings"])


def test_cox_refusals():
    df = cox_rows()
    with pytest.raises(SurvivalError) as caught:
        cox(df, covariates=["age", "shoe_size"])
    assert caught.value.field == "covariates"
    assert str(caught.value).startswith("Unknown covariate 'shoe_size': choose among age, ")
    with pytest.raises(SurvivalError, match="Choose at least one covariate."):
        cox(df, covariates=[])
    with pytest.raises(SurvivalError) as caught:
        cox(df.assign(sex="F"), covariates=["sex"])
    assert str(caught.value) == (
        "Covariate 'sex' is constant (F) among the 60 patients with data: its effect cannot "
        "be estimated."
    )
    with pytest.raises(SurvivalError, match="Covariate 'age' is constant \\(61\\)"):
        cox(df.assign(age=61.0), covariates=["age"])
    with pytest.raises(SurvivalError, match="No deaths among the 60 patients: a Cox model"):
        cox(df.assign(os_event=0), covariates=["age"])
    with pytest.raises(SurvivalError, match="has data for all of age, ecog"):
        cox(df.assign(ecog=np.nan), covariates=["age", "ecog"])
    few = df.assign(os_event=[1] * 5 + [0] * 55)
    with pytest.raises(SurvivalError) as caught:
        cox(few, covariates=["age", "sex", "regimen"])
    assert str(caught.value) == (
        "Too few deaths for this model: 5 for 4 parameters (1.2 per parameter; at least 2 "
        "are needed, 10 are recommended). Use fewer covariates or merge levels."
    )


def test_cox_on_resected_warns_of_immortal_time():
    df = cox_rows().assign(resected=lambda d: d["os_days"] > 400)
    result = cox(df, covariates=["resected"])
    assert result["reference_levels"] == {"resected": "not resected"}
    assert any("immortal time" in w for w in result["warnings"])
