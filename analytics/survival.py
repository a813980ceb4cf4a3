"""Survival statistics on the analysis dataset: Kaplan-Meier, log-rank and Cox models.

Pure pandas / numpy / lifelines, no ORM: every function takes a DataFrame of the analysis rows
(`analytics.dataset.build`, one row per enrolled patient) and returns JSON-ready dicts (plain
ints, floats, strings, lists and None; never NaN). Invalid requests raise `SurvivalError`, a
ValueError whose message names the problem and whose `field` names the parameter to fix.

Conventions, chosen to match R's survival package (the statistician's reference):

- Kaplan-Meier confidence intervals are the "log" type, R's `survfit` default
  (conf.type = "log"): S(t) * exp(±z * se), se = sqrt(Σ d / (n (n - d))) (Greenwood's variance
  of log S), the upper limit capped at 1, no interval where S(t) = 0. lifelines' own
  `confidence_interval_` is the exponential Greenwood ("log-log") type, so we compute ours.
- Medians and their confidence limits follow R's `quantile.survfit`: the first time the curve
  (or its lower / upper limit) is at or below 0.5; when the curve sits exactly at 0.5 over an
  interval, the midpoint of that interval. None where not reached.
- Cox models use Efron's method for ties (R's `coxph` default), fitted to a tighter tolerance
  than lifelines' default so coefficients agree with R to its printed precision.
- Durations are days from the origin; 0 is allowed (a death on the day of the origin drops the
  curve at day 0 in lifelines and in R alike). Negative durations are refused, events must be
  0/1, rows without a duration or an event are dropped and counted in `excluded`.

The surgery-versus-no-surgery analyses (immortal time) are in `analytics.survival_surgery`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from lifelines.statistics import logrank_test, multivariate_logrank_test, proportional_hazard_test
from scipy.stats import norm

DAYS_PER_MONTH = 30.4375
CONFIDENCE = 0.95
Z = float(norm.ppf(0.5 + CONFIDENCE / 2))
CI_TYPE = "log"  # R survfit's default conf.type
DEFAULT_AT = (180, 365, 730)
MAX_AT = 20
# Cox: fewer events per parameter than this is refused, fewer than RECOMMENDED is a warning.
MIN_EVENTS_PER_PARAMETER = 2
RECOMMENDED_EVENTS_PER_PARAMETER = 10
PH_TRANSFORM = "rank"
COX_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14}
_TOL = math.sqrt(np.finfo(float).eps)  # R's quantile.survfit tolerance

EVENT_NOUNS = {
    "os_event": gettext_lazy("deaths"),
    "rfs_event": gettext_lazy("recurrences or deaths"),
}


class SurvivalError(ValueError):
    """A survival analysis that cannot be done; `field` is the parameter to fix."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# ---------------------------------------------------------------------------------------------
# JSON helpers


def _num(value) -> float | None:
    """A float for JSON, or None for NaN / infinity / None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _time(value) -> int | float | None:
    """A time for JSON: an int when it is a whole number of days."""
    value = _num(value)
    if value is None:
        return None
    return int(value) if value.is_integer() else value


def _months(days) -> float | None:
    return None if days is None else days / DAYS_PER_MONTH


def _label(value) -> str:
    """A group label: whole floats lose their '.0' (ECOG 1.0 -> '1'), booleans are words."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------------------
# Validation


def _event_noun(event: str) -> str:
    return str(EVENT_NOUNS.get(event, gettext_lazy("events")))


def _ids(frame: pd.DataFrame, mask: pd.Series, limit: int = 5) -> str:
    codes = frame.loc[mask, "subject_code"] if "subject_code" in frame else frame.index[mask]
    codes = [str(c) for c in list(codes)[:limit]]
    more = int(mask.sum()) - len(codes)
    return ", ".join(codes) + (" …" if more > 0 else "")


def _outcome(df: pd.DataFrame, *, duration: str, event: str) -> tuple[pd.DataFrame, dict]:
    """The rows with an outcome, with numeric columns `_t` (days) and `_e` (0/1).

    Returns (frame, excluded) where excluded = {"missing_outcome": k}. Raises SurvivalError on
    a missing column, non-numeric or negative durations and events other than 0/1.
    """
    for name, field in ((duration, "duration"), (event, "event")):
        if name not in df.columns:
            raise SurvivalError(
                _("The dataset has no column '%(column)s'.") % {"column": name}, field=field
            )
    frame = df.copy()
    t = pd.to_numeric(frame[duration], errors="coerce")
    bad = t.isna() & frame[duration].notna()
    if bad.any():
        raise SurvivalError(
            _("Durations in '%(column)s' must be numbers of days; %(count)d are not (%(ids)s).")
            % {"column": duration, "count": int(bad.sum()), "ids": _ids(frame, bad)},
            field="duration",
        )
    e = frame[event].map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    e = pd.to_numeric(e, errors="coerce")
    bad = e.isna() & frame[event].notna()
    if bad.any():
        raise SurvivalError(
            _("Events in '%(column)s' must be 0 or 1; %(count)d are not (%(ids)s).")
            % {"column": event, "count": int(bad.sum()), "ids": _ids(frame, bad)},
            field="event",
        )
    missing = t.isna() | e.isna()
    frame["_t"], frame["_e"] = t.astype(float), e
    frame = frame.loc[~missing]
    negative = frame["_t"] < 0
    if negative.any():
        raise SurvivalError(
            _(
                "Durations in '%(column)s' cannot be negative; %(count)d are "
                "(%(ids)s): check the dates of these patients."
            )
            % {"column": duration, "count": int(negative.sum()), "ids": _ids(frame, negative)},
            field="duration",
        )
    bad = ~frame["_e"].isin([0, 1])
    if bad.any():
        raise SurvivalError(
            _("Events in '%(column)s' must be 0 or 1; %(count)d are not (%(ids)s).")
            % {"column": event, "count": int(bad.sum()), "ids": _ids(frame, bad)},
            field="event",
        )
    frame["_e"] = frame["_e"].astype(int)
    return frame, {"missing_outcome": int(missing.sum())}


def _require_events(frame: pd.DataFrame, *, event: str, purpose: str) -> None:
    """Refuse an empty frame or one without events; `purpose` is "median", "logrank",
    "cox" or "surgery" (what needs the events, named in the message)."""
    if len(frame) == 0:
        raise SurvivalError(
            _("No patients with a duration and an event status: nothing to analyse."),
            field="duration",
        )
    if frame["_e"].sum() == 0:
        messages = {
            "median": _(
                "No %(events)s among the %(n)d patients: the median needs at least one event."
            ),
            "logrank": _(
                "No %(events)s among the %(n)d patients: the median and the log-rank "
                "test need at least one event."
            ),
            "cox": _(
                "No %(events)s among the %(n)d patients: a Cox model needs at least one event."
            ),
            "surgery": _(
                "No %(events)s among the %(n)d patients: comparing survival needs at "
                "least one event."
            ),
        }
        raise SurvivalError(
            messages[purpose] % {"events": _event_noun(event), "n": len(frame)}, field="event"
        )


def _check_days(at: Iterable, *, field: str = "at") -> tuple[int, ...]:
    days = []
    for value in at:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise SurvivalError(
                _("'%(value)s' is not a whole number of days.") % {"value": value}, field=field
            )
        if not float(value).is_integer():
            raise SurvivalError(
                _("'%(value)s' is not a whole number of days.") % {"value": value}, field=field
            )
        if value < 0:
            raise SurvivalError(
                _("Days must be 0 or more; %(value)s is negative.") % {"value": int(value)},
                field=field,
            )
        days.append(int(value))
    if len(set(days)) > MAX_AT:
        raise SurvivalError(
            _("At most %(max)d time points at once; %(count)d were given.")
            % {"max": MAX_AT, "count": len(set(days))},
            field=field,
        )
    return tuple(sorted(set(days)))


def parse_days(text: str, *, field: str = "at") -> tuple[int, ...]:
    """Days from a query string such as "180,365,730": sorted, without duplicates."""
    parts = [p.strip() for p in (text or "").split(",")]
    if not any(parts):
        raise SurvivalError(_("No days given (for example 180,365,730)."), field=field)
    days = []
    for part in parts:
        if not part:
            continue
        try:
            days.append(int(part))
        except ValueError:
            raise SurvivalError(
                _("'%(value)s' is not a whole number of days.") % {"value": part}, field=field
            ) from None
    return _check_days(days, field=field)


# ---------------------------------------------------------------------------------------------
# Groupings


@dataclass(frozen=True)
class Grouping:
    """A way of splitting patients: `labels(df)` gives each row's label (NaN = no data).

    `order` lists the labels in their natural order (others follow, sorted); `reference` is the
    default reference level when the grouping is a Cox covariate (else the most frequent)."""

    name: str
    label: str
    labels: Callable[[pd.DataFrame], pd.Series]
    order: tuple[str, ...] = ()
    reference: str | None = None

    def ordered(self, present: Iterable[str]) -> list[str]:
        present = set(present)
        known = [label for label in self.order if label in present]
        return known + sorted(present - set(known))


def _column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    def labels(df: pd.DataFrame) -> pd.Series:
        if name not in df.columns:
            raise SurvivalError(
                _("The dataset has no column '%(column)s'.") % {"column": name}, field="group_by"
            )
        return df[name].map(lambda v: None if _missing(v) else _label(v))

    return labels


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _numeric(df: pd.DataFrame, name: str, field: str) -> pd.Series:
    if name not in df.columns:
        raise SurvivalError(
            _("The dataset has no column '%(column)s'.") % {"column": name}, field=field
        )
    return pd.to_numeric(df[name], errors="coerce")


def _resected(df: pd.DataFrame) -> pd.Series:
    if "resected" not in df.columns:
        raise SurvivalError(_("The dataset has no column 'resected'."), field="group_by")
    return df["resected"].map(
        lambda v: None if _missing(v) else ("resected" if bool(v) else "not resected")
    )


def _liver_mets(df: pd.DataFrame) -> pd.Series:
    count = _numeric(df, "liver_mets_count", "group_by")
    return count.map(lambda v: None if math.isnan(v) else ("<=3" if v <= 3 else ">3"))


def _ca19_9_response(df: pd.DataFrame) -> pd.Series:
    change = _numeric(df, "ca19_9_change_pct_first", "group_by")
    return change.map(
        lambda v: None if math.isnan(v) else (">=50% decline" if v <= -50 else "<50% decline")
    )


GROUPINGS: dict[str, Grouping] = {
    g.name: g
    for g in (
        Grouping("sex", gettext_lazy("Sex"), _column("sex"), ("M", "F")),
        Grouping(
            "cohort",
            gettext_lazy("Cohort"),
            _column("cohort"),
            ("retrospective", "prospective"),
        ),
        Grouping("site", gettext_lazy("Site"), _column("site")),
        Grouping(
            "regimen",
            gettext_lazy("First-line regimen"),
            _column("regimen"),
            ("AG", "FOLFIRINOX", "mFOLFIRINOX", "NALIRIFOX", "other"),
        ),
        Grouping(
            "ecog", gettext_lazy("ECOG performance status"), _column("ecog"), tuple("012345"), "0"
        ),
        Grouping(
            "resected",
            gettext_lazy("Resected (from the origin: immortal-time bias)"),
            _resected,
            ("not resected", "resected"),
            "not resected",
        ),
        Grouping(
            "liver_mets",
            gettext_lazy("Liver metastases (3 or fewer vs more than 3)"),
            _liver_mets,
            ("<=3", ">3"),
            "<=3",
        ),
        Grouping(
            "ca19_9_response",
            # xgettext:no-python-format
            gettext_lazy("CA19-9 decline of 50% or more at the first evaluation"),
            _ca19_9_response,
            ("<50% decline", ">=50% decline"),
            "<50% decline",
        ),
        Grouping(
            "best_response",
            gettext_lazy("Best RECIST response"),
            _column("best_response"),
            ("CR", "PR", "SD", "PD", "NE"),
        ),
        Grouping(
            "r_status",
            gettext_lazy("Resection margin"),
            _column("r_status"),
            ("R0", "R1", "R2"),
            "R0",
        ),
    )
}


def grouping(name: str) -> Grouping:
    """The grouping called `name`, or SurvivalError listing the allowed ones."""
    try:
        return GROUPINGS[name]
    except (KeyError, TypeError):
        raise SurvivalError(
            _("Unknown group '%(name)s' for group_by: choose one of %(allowed)s.")
            % {"name": name, "allowed": ", ".join(GROUPINGS)},
            field="group_by",
        ) from None


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier


@dataclass(frozen=True)
class _Curve:
    times: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def _km_curve(t: np.ndarray, e: np.ndarray) -> _Curve:
    """Kaplan-Meier with R's "log" confidence limits, one point per distinct time."""
    times, index = np.unique(t, return_inverse=True)
    events = np.bincount(index, weights=e, minlength=len(times)).astype(int)
    removed = np.bincount(index, minlength=len(times))
    at_risk = len(t) - np.concatenate([[0], np.cumsum(removed)[:-1]])
    survival = np.cumprod(1.0 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0))
        se = np.sqrt(greenwood)  # standard error of log S (inf once everyone has died)
        lower = np.where(survival > 0, survival * np.exp(-Z * se), np.nan)
        upper = np.where(survival > 0, np.minimum(survival * np.exp(Z * se), 1.0), np.nan)
    return _Curve(times, at_risk, events, removed - events, survival, lower, upper)


def _r_quantile(times: np.ndarray, survival: np.ndarray, p: float = 0.5) -> float | None:
    """The time at which the step curve `survival` reaches 1 - p, as R's quantile.survfit."""
    x = np.concatenate([[0.0], times])
    y = np.concatenate([[0.0], 1.0 - survival])  # the cumulative distribution, NaN allowed
    xmax = x[-1]
    keep, seen = [], set()
    for i, value in enumerate(y):  # drop repeated levels (censorings), keeping the first
        key = "nan" if math.isnan(value) else value
        if key not in seen:
            seen.add(key)
            keep.append(i)
    x, y = x[keep], y[keep]
    valid = ~np.isnan(y)
    if not valid.any() or np.nanmax(y) < p:
        return None

    def first(shift: float) -> int | None:
        hits = np.flatnonzero(valid & (y + shift >= p))
        return int(hits[0]) if len(hits) else None

    i1, i2 = first(_TOL), first(-_TOL)
    if i1 is None:
        return None
    if not math.isnan(y[-1]) and abs(p - y[-1]) < _TOL:  # the curve ends flat at 1 - p
        return float((x[i1] + xmax) / 2)
    if i2 is None:
        return None
    return float((x[i1] + x[i2]) / 2)


def _summary(t: np.ndarray, e: np.ndarray, at: tuple[int, ...]) -> dict:
    curve = _km_curve(t, e)
    median = _r_quantile(curve.times, curve.survival)
    median_ci = [_r_quantile(curve.times, curve.lower), _r_quantile(curve.times, curve.upper)]
    survival_at = []
    for day in at:
        i = int(np.searchsorted(curve.times, day, side="right")) - 1
        if day > curve.times[-1]:
            s, ci = None, [None, None]  # beyond the last follow-up: not estimable
        elif i < 0:
            s, ci = 1.0, [1.0, 1.0]
        else:
            s, ci = _num(curve.survival[i]), [_num(curve.lower[i]), _num(curve.upper[i])]
        survival_at.append({"day": day, "survival": s, "ci": ci, "at_risk": int((t >= day).sum())})
    return {
        "n": len(t),
        "events": int(e.sum()),
        "median_days": _time(median),
        "median_ci_days": [_time(v) for v in median_ci],
        "median_months": _months(median),
        "median_ci_months": [_months(v) for v in median_ci],
        "survival_at": survival_at,
        "timeline": [
            {
                "time": _time(curve.times[i]),
                "survival": _num(curve.survival[i]),
                "ci_lower": _num(curve.lower[i]),
                "ci_upper": _num(curve.upper[i]),
                "at_risk": int(curve.at_risk[i]),
                "events": int(curve.events[i]),
                "censored": int(curve.censored[i]),
            }
            for i in range(len(curve.times))
        ],
    }


def group_labels(df: pd.DataFrame, group_by: str) -> tuple[pd.Series, list[str]]:
    """Each row's label under grouping `group_by` (None = no data) and the ordered labels."""
    spec = grouping(group_by)
    labels = spec.labels(df)
    return labels, spec.ordered(labels.dropna().unique())


def km_summary(
    df: pd.DataFrame,
    *,
    duration: str = "os_days",
    event: str = "os_event",
    at: Sequence[int] = DEFAULT_AT,
    group_by: str | None = None,
) -> dict:
    """Kaplan-Meier summary of `duration`/`event`, overall or by `group_by` with a log-rank test.

    Overall keys: n, events, median_days, median_ci_days, median_months, median_ci_months,
    survival_at, timeline, plus ci_type, confidence, excluded ({missing_outcome,
    missing_group}); with group_by also group_by, group_order, groups {label: the same keys}
    and logrank {test, chi2, df, p}. The overall figures are over the patients analysed (with
    a group label when grouped). `timeline` has one row per distinct time; the curve starts at
    (0, 1.0) and steps down at each row's time.
    """
    at = _check_days(at)
    frame, excluded = _outcome(df, duration=duration, event=event)
    result: dict = {"ci_type": CI_TYPE, "confidence": CONFIDENCE}
    if group_by is None:
        _require_events(frame, event=event, purpose="median")
        result.update(_summary(frame["_t"].to_numpy(), frame["_e"].to_numpy(), at))
        result["excluded"] = excluded
        return result

    labels, order = group_labels(frame, group_by)
    excluded["missing_group"] = int(labels.isna().sum())
    frame, labels = frame.loc[labels.notna()], labels.loc[labels.notna()]
    if not order:
        raise SurvivalError(
            _("No patients with data for group '%(group)s' among the %(n)d with an outcome.")
            % {"group": group_by, "n": len(labels.index) + excluded["missing_group"]},
            field="group_by",
        )
    if len(order) == 1:
        raise SurvivalError(
            _(
                "Group '%(group)s' has only one level among patients with data (%(level)s): "
                "nothing to compare."
            )
            % {"group": group_by, "level": order[0]},
            field="group_by",
        )
    _require_events(frame, event=event, purpose="logrank")
    t, e = frame["_t"].to_numpy(), frame["_e"].to_numpy()
    result.update(_summary(t, e, at))
    result.update({"excluded": excluded, "group_by": group_by, "group_order": order})
    lab = labels.to_numpy()
    result["groups"] = {level: _summary(t[lab == level], e[lab == level], at) for level in order}
    if len(order) == 2:
        first, second = lab == order[0], lab == order[1]
        test = logrank_test(t[first], t[second], e[first], e[second])
        name = "logrank"
    else:
        test = multivariate_logrank_test(t, lab, e)
        name = "multivariate logrank"
    result["logrank"] = {
        "test": name,
        "chi2": _num(test.test_statistic),
        "df": int(test.degrees_of_freedom),
        "p": _num(test.p_value),
    }
    return result


# ---------------------------------------------------------------------------------------------
# Cox proportional hazards


@dataclass(frozen=True)
class Numeric:
    """A numeric Cox covariate (the hazard ratio is per `unit`)."""

    name: str
    label: str
    unit: str


NUMERIC_COVARIATES: dict[str, Numeric] = {
    c.name: c
    for c in (
        Numeric("age", gettext_lazy("Age"), "year"),
        Numeric("liver_mets_count", gettext_lazy("Number of liver metastases"), "lesion"),
        Numeric(
            "ca19_9_change_pct_first",
            gettext_lazy("CA19-9 change at the first evaluation (%)"),
            "percentage point",
        ),
    )
}
COVARIATES: tuple[str, ...] = (*NUMERIC_COVARIATES, *GROUPINGS)


def _unknown_covariate(name, allowed: Iterable[str]) -> SurvivalError:
    return SurvivalError(
        _("Unknown covariate '%(name)s': choose among %(allowed)s.")
        % {"name": name, "allowed": ", ".join(allowed)},
        field="covariates",
    )


def _reference(spec: Grouping, labels: pd.Series, order: list[str]) -> str:
    if spec.reference in order:
        return spec.reference
    counts = labels.value_counts()
    return max(order, key=lambda level: (counts[level], -order.index(level)))


def _design(
    frame: pd.DataFrame,
    covariates: list[str],
    numeric: Mapping[str, Numeric],
    groupings: Mapping[str, Grouping],
) -> tuple[pd.DataFrame, dict[str, tuple[str, str | None]], dict[str, str], pd.Series]:
    """(design columns, column -> (covariate, level), reference levels, rows with all data)."""
    raw = {}
    for name in covariates:
        if name in numeric:
            raw[name] = _numeric(frame, name, "covariates")
        else:
            raw[name] = groupings[name].labels(frame)
    complete = pd.concat(raw, axis=1).notna().all(axis=1)
    columns: dict[str, pd.Series] = {}
    meaning: dict[str, tuple[str, str | None]] = {}
    references: dict[str, str] = {}
    n = int(complete.sum())
    if n == 0:
        raise SurvivalError(
            _("None of the %(total)d patients with an outcome has data for all of %(names)s.")
            % {"total": len(frame), "names": ", ".join(covariates)},
            field="covariates",
        )
    for name in covariates:
        values = raw[name][complete]
        if name in numeric:
            if values.nunique() < 2:
                raise SurvivalError(
                    _(
                        "Covariate '%(name)s' is constant (%(value)s) among the %(n)d patients "
                        "with data: its effect cannot be estimated."
                    )
                    % {"name": name, "value": _label(values.iloc[0]) if n else "—", "n": n},
                    field="covariates",
                )
            columns[name], meaning[name] = values.astype(float), (name, None)
            continue
        spec = groupings[name]
        order = spec.ordered(values.unique())
        if len(order) < 2:
            raise SurvivalError(
                _(
                    "Covariate '%(name)s' is constant (%(value)s) among the %(n)d patients "
                    "with data: its effect cannot be estimated."
                )
                % {"name": name, "value": order[0] if order else "—", "n": n},
                field="covariates",
            )
        references[name] = _reference(spec, values, order)
        for level in order:
            if level != references[name]:
                column = "%s=%s" % (name, level)
                columns[column] = (values == level).astype(float)
                meaning[column] = (name, level)
    return pd.DataFrame(columns, index=frame.index[complete]), meaning, references, complete


def _fit_cox(data: pd.DataFrame, *, notes: list[str]) -> CoxPHFitter:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            cph = CoxPHFitter().fit(
                data, duration_col="_t", event_col="_e", fit_options=COX_FIT_OPTIONS
            )
        except ConvergenceError:
            raise SurvivalError(
                _(
                    "The Cox model did not converge: a covariate may separate patients with and "
                    "without events perfectly. Remove or merge sparse levels."
                ),
                field="covariates",
            ) from None
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(
            _(
                "The Cox model converged with difficulty (a level with very few or no events?); "
                "treat its hazard ratios with caution."
            )
        )
    return cph


def _coefficients(cph: CoxPHFitter, meaning: dict) -> list[dict]:
    summary = cph.summary
    rows = []
    for column, (name, level) in meaning.items():
        row = summary.loc[column]
        rows.append(
            {
                "name": name,
                "level": level,
                "coef": _num(row["coef"]),
                "hr": _num(row["exp(coef)"]),
                "hr_ci": [_num(row["exp(coef) lower 95%"]), _num(row["exp(coef) upper 95%"])],
                "se": _num(row["se(coef)"]),
                "z": _num(row["z"]),
                "p": _num(row["p"]),
            }
        )
    return rows


def cox(
    df: pd.DataFrame,
    *,
    duration: str = "os_days",
    event: str = "os_event",
    covariates: Sequence[str],
    numeric: Mapping[str, Numeric] = NUMERIC_COVARIATES,
    groupings: Mapping[str, Grouping] = GROUPINGS,
) -> dict:
    """Cox proportional-hazards model (Efron ties) of `duration`/`event` on `covariates`.

    Numeric covariates (`numeric`, default NUMERIC_COVARIATES) enter as they are; the others
    are groupings (`groupings`, default GROUPINGS), dummy-coded against a reference level:
    the grouping's documented default when present (ecog 0, resected "not resected",
    liver_mets "<=3", ca19_9_response "<50% decline", r_status R0), else the most frequent
    level (ties: the first in the natural order).
    Rows missing any covariate are dropped and counted. Events per parameter below
    MIN_EVENTS_PER_PARAMETER (2) are refused, below RECOMMENDED_EVENTS_PER_PARAMETER (10)
    give a warning. `ph_test` holds the Schoenfeld-residual test of proportional hazards
    with the "rank" time transform (lifelines' default; R's cox.zph uses "km" and, since
    survival 3.0, a different score test, so its p-values differ somewhat).

    Returns n, events, excluded, reference_levels, covariates [{name, level, coef, hr, hr_ci,
    se, z, p}] (level is None for numeric covariates), concordance, log_likelihood,
    events_per_parameter, ph_test {transform, covariates [{name, level, statistic, p}]},
    warnings [messages].
    """
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(dict.fromkeys(covariates or []))
    if not covariates:
        raise SurvivalError(_("Choose at least one covariate."), field="covariates")
    for name in covariates:
        if name not in numeric and name not in groupings:
            raise _unknown_covariate(name, [*numeric, *groupings])
    frame, excluded = _outcome(df, duration=duration, event=event)
    design, meaning, references, complete = _design(frame, covariates, numeric, groupings)
    excluded["missing_covariates"] = int((~complete).sum())
    frame = frame.loc[complete]
    _require_events(frame, event=event, purpose="cox")
    events = int(frame["_e"].sum())
    parameters = len(design.columns)
    per_parameter = events / parameters
    notes: list[str] = []
    if per_parameter < MIN_EVENTS_PER_PARAMETER:
        raise SurvivalError(
            _(
                "Too few %(events)s for this model: %(count)d for %(parameters)d parameters "
                "(%(per).1f per parameter; at least %(min)d are needed, %(recommended)d are "
                "recommended). Use fewer covariates or merge levels."
            )
            % {
                "events": _event_noun(event),
                "count": events,
                "parameters": parameters,
                "per": per_parameter,
                "min": MIN_EVENTS_PER_PARAMETER,
                "recommended": RECOMMENDED_EVENTS_PER_PARAMETER,
            },
            field="covariates",
        )
    if per_parameter < RECOMMENDED_EVENTS_PER_PARAMETER:
        notes.append(
            _(
                "Only %(per).1f %(events)s per parameter (%(recommended)d or more are "
                "recommended): the estimates may be unstable and over-fitted."
            )
            % {
                "per": per_parameter,
                "events": _event_noun(event),
                "recommended": RECOMMENDED_EVENTS_PER_PARAMETER,
            }
        )
    if "resected" in covariates and duration == "os_days":
        notes.append(
            _(
                "'resected' compared from the OS origin is biased by immortal time (patients "
                "must survive until their operation); see the surgery-effect analysis."
            )
        )
    data = design.assign(_t=frame["_t"], _e=frame["_e"])
    cph = _fit_cox(data, notes=notes)
    return {
        "n": len(frame),
        "events": events,
        "excluded": excluded,
        "ties": "efron",
        "reference_levels": references,
        "covariates": _coefficients(cph, meaning),
        "concordance": _num(cph.concordance_index_),
        "log_likelihood": _num(cph.log_likelihood_),
        "events_per_parameter": per_parameter,
        "ph_test": _ph_test(cph, data, meaning, notes),
        "warnings": notes,
    }


def _ph_test(cph: CoxPHFitter, data: pd.DataFrame, meaning: dict, notes: list[str]) -> dict:
    result: dict = {"transform": PH_TRANSFORM, "covariates": []}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = proportional_hazard_test(cph, data, time_transform=PH_TRANSFORM)
    except Exception:  # lifelines raises assorted errors on degenerate residuals
        notes.append(_("The proportional-hazards test could not be computed for this model."))
        return result
    summary = test.summary
    for column, (name, level) in meaning.items():
        row = summary.loc[column]
        result["covariates"].append(
            {
                "name": name,
                "level": level,
                "statistic": _num(row["test_statistic"]),
                "p": _num(row["p"]),
            }
        )
    return result
