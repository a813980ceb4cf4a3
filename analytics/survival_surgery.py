"""Surgery versus no surgery on overall survival, without immortal-time bias.

Patients are operated months after the OS origin, and only if they are still alive then: a
"resected vs not" comparison from the origin credits the operated with the time they had to
survive to be operated (immortal time) and makes surgery look protective even when it does
nothing. `surgery_effect` shows that naive comparison (flagged as biased) beside the two
analyses that respect time: landmark analyses and a Cox model with surgery as a time-varying
covariate, whose data layout `to_counting_process` also serves to R users
(`coxph(Surv(start, stop, event) ~ surgery, data = ...)`).

Counting-process rules (durations are whole days from the origin; `surgery_days` is the day
of the operation, NaN if never operated):
- never operated: one row (0, T], surgery 0;
- operated on day S with 0 < S < T: (0, S] with surgery 0 and event 0, then (S, T] with
  surgery 1 and the patient's event: on the day of the operation the patient still counts
  as unoperated, from the next day as operated (R's usual split);
- operated on day 0 or before the origin (S <= 0): one row (0, T], surgery 1;
- operated on the last day of follow-up (S == T > 0, e.g. a death on the operating table):
  the split is put half a day earlier, (0, T - 0.5] surgery 0 and (T - 0.5, T] surgery 1,
  so the death or censoring is attributed to the operated state and no interval has zero
  length; with whole-day durations no other event falls inside that half day, so the risk
  sets are those of a split at T;
- follow-up of 0 days (T == 0): the interval is (0, 0.5], as zero-length intervals are
  refused by both lifelines and R; again no risk set changes;
- an operation after the end of follow-up (S > T) is a data error: `to_counting_process`
  refuses it, `surgery_effect` leaves the patient out and counts them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from lifelines import CoxPHFitter, CoxTimeVaryingFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from lifelines.statistics import logrank_test

from analytics.survival import (
    COX_FIT_OPTIONS,
    SurvivalError,
    _check_days,
    _event_noun,
    _ids,
    _num,
    _outcome,
    _require_events,
    _time,
    cox,
)

DEFAULT_LANDMARKS = (90, 180, 270)
HALF_DAY = 0.5
COUNTING_COLUMNS = ["id", "start", "stop", "event", "surgery"]


def _surgery_day(frame: pd.DataFrame, surgery: str) -> pd.Series:
    if surgery not in frame.columns:
        raise SurvivalError(
            _("The dataset has no column '%(column)s'.") % {"column": surgery}, field="surgery"
        )
    day = pd.to_numeric(frame[surgery], errors="coerce")
    bad = day.isna() & frame[surgery].notna()
    if bad.any():
        raise SurvivalError(
            _("Surgery days in '%(column)s' must be numbers; %(count)d are not (%(ids)s).")
            % {"column": surgery, "count": int(bad.sum()), "ids": _ids(frame, bad)},
            field="surgery",
        )
    return day


def to_counting_process(
    df: pd.DataFrame,
    *,
    id_column: str = "subject_code",
    duration: str = "os_days",
    event: str = "os_event",
    surgery: str = "surgery_days",
) -> pd.DataFrame:
    """Start/stop rows (id, start, stop, event, surgery 0/1) for a Cox model with surgery as
    a time-varying covariate; the rules are in this module's docstring. Rows without an
    outcome are left out; an operation after the end of follow-up is refused."""
    frame, _excluded = _outcome(df, duration=duration, event=event)
    day = _surgery_day(frame, surgery)
    late = day > frame["_t"]
    if late.any():
        raise SurvivalError(
            _(
                "%(count)d patients were operated after the end of their follow-up (%(ids)s): "
                "check their last date known alive."
            )
            % {"count": int(late.sum()), "ids": _ids(frame, late)},
            field="surgery",
        )
    ids = frame[id_column] if id_column in frame.columns else pd.Series(frame.index, frame.index)
    rows = []
    for pid, t, e, s in zip(ids, frame["_t"], frame["_e"], day, strict=True):
        end = t if t > 0 else HALF_DAY
        if np.isnan(s):
            rows.append((pid, 0.0, end, e, 0))
        elif s <= 0:
            rows.append((pid, 0.0, end, e, 1))
        else:
            split = s if s < t else t - HALF_DAY
            rows.append((pid, 0.0, split, 0, 0))
            rows.append((pid, split, t, e, 1))
    result = pd.DataFrame(rows, columns=COUNTING_COLUMNS)
    return result.astype({"start": float, "stop": float, "event": int, "surgery": int})


def _binary_cox(t: np.ndarray, e: np.ndarray, x: np.ndarray) -> dict:
    """Hazard ratio of x = 1 vs 0 (Efron ties); None with a note when not estimable."""
    if e[x == 1].sum() == 0 or e[x == 0].sum() == 0:
        return {
            "hr": None,
            "hr_ci": [None, None],
            "p": None,
            "note": _("No events in one group: the hazard ratio cannot be estimated."),
        }
    data = pd.DataFrame({"t": t, "e": e, "x": x.astype(float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            cph = CoxPHFitter().fit(data, "t", "e", fit_options=COX_FIT_OPTIONS)
        except ConvergenceError:
            return {
                "hr": None,
                "hr_ci": [None, None],
                "p": None,
                "note": _("The Cox model did not converge."),
            }
    return _hr(cph.summary.loc["x"])


def _empty_arm(operated_events: int, unoperated_events: int) -> str | None:
    """A note when one arm has no event (no hazard ratio can be estimated), else None."""
    if operated_events and unoperated_events:
        return None
    group = _("operated") if not operated_events else _("unoperated")
    return _("No events among the %(group)s patients: the hazard ratio cannot be estimated.") % {
        "group": group
    }


def _not_estimable(note: str) -> dict:
    return {"hr": None, "hr_ci": [None, None], "coef": None, "se": None, "p": None, "note": note}


def _hr(row: pd.Series) -> dict:
    return {
        "hr": _num(row["exp(coef)"]),
        "hr_ci": [_num(row["exp(coef) lower 95%"]), _num(row["exp(coef) upper 95%"])],
        "coef": _num(row["coef"]),
        "se": _num(row["se(coef)"]),
        "p": _num(row["p"]),
        "note": None,
    }


def _landmark(frame: pd.DataFrame, day: pd.Series, landmark: int, event: str) -> dict:
    alive = frame["_t"] > landmark
    operated = (day <= landmark) & alive
    t = (frame.loc[alive, "_t"] - landmark).to_numpy()
    e = frame.loc[alive, "_e"].to_numpy()
    x = operated[alive].to_numpy().astype(int)
    result: dict = {
        "landmark_day": landmark,
        "n": int(alive.sum()),
        "events": int(e.sum()),
        "groups": {
            "operated": {"n": int(x.sum()), "events": int(e[x == 1].sum())},
            "not_operated": {"n": int((x == 0).sum()), "events": int(e[x == 0].sum())},
        },
        "hr": None,
        "hr_ci": [None, None],
        "p": None,
        "coef": None,
        "se": None,
        "logrank_p": None,
        "skipped": None,
        "note": None,
    }
    if x.sum() == 0 or (x == 0).sum() == 0:
        message = (
            _(
                "Landmark day %(day)d skipped: none of the %(n)d patients alive and followed "
                "beyond it had been operated by then."
            )
            if x.sum() == 0
            else _(
                "Landmark day %(day)d skipped: all %(n)d patients alive and followed beyond it "
                "had been operated by then."
            )
        )
        result["skipped"] = message % {"day": landmark, "n": int(alive.sum())}
        return result
    if e.sum() == 0:
        result["skipped"] = _(
            "Landmark day %(day)d skipped: no %(events)s after it among the %(n)d patients."
        ) % {"day": landmark, "events": _event_noun(event), "n": int(alive.sum())}
        return result
    result.update(_binary_cox(t, e, x))
    test = logrank_test(t[x == 1], t[x == 0], e[x == 1], e[x == 0])
    result["logrank_p"] = _num(test.p_value)
    return result


def surgery_effect(
    df: pd.DataFrame,
    *,
    landmarks: Sequence[int] = DEFAULT_LANDMARKS,
    duration: str = "os_days",
    event: str = "os_event",
    surgery: str = "surgery_days",
) -> dict:
    """Hazard ratio of death for surgery, three ways: `naive` (resected from the origin,
    biased), `landmark` (one entry per landmark day L: patients alive beyond L, operated by L
    or not, time from L) and `time_varying` (Cox on the counting-process rows). HR < 1 means
    operated patients die at a lower rate. Patients operated after the end of follow-up are
    left out and counted in `excluded` (surgery_after_follow_up)."""
    landmarks = _check_days(landmarks, field="landmarks")
    frame, excluded = _outcome(df, duration=duration, event=event)
    day = _surgery_day(frame, surgery)
    late = day > frame["_t"]
    excluded["surgery_after_follow_up"] = int(late.sum())
    frame, day = frame.loc[~late], day.loc[~late]
    _require_events(frame, event=event, purpose="surgery")
    operated = day.notna()
    if operated.all() or not operated.any():
        message = (
            _("All %(n)d patients were operated: nothing to compare.")
            if operated.all()
            else _("None of the %(n)d patients was operated: nothing to compare.")
        )
        raise SurvivalError(message % {"n": len(frame)}, field="surgery")

    naive_frame = pd.DataFrame(
        {duration: frame["_t"], event: frame["_e"], "resected": operated}, index=frame.index
    )
    events = frame["_e"].astype(bool)
    empty_arm = _empty_arm(events[operated].sum(), events[~operated].sum())
    naive = {
        "n": len(frame),
        "events": int(events.sum()),
        "operated": int(operated.sum()),
        "biased": True,
        "reason": _(
            "Immortal-time bias: operated patients had to survive until their operation, and "
            "that time counts in their favour when survival is compared from the origin."
        ),
    }
    if empty_arm:
        naive |= _not_estimable(empty_arm)
    else:
        naive_model = cox(naive_frame, duration=duration, event=event, covariates=["resected"])
        row = naive_model["covariates"][0]
        naive |= {
            "n": naive_model["n"],
            "events": naive_model["events"],
            "hr": row["hr"],
            "hr_ci": row["hr_ci"],
            "coef": row["coef"],
            "se": row["se"],
            "p": row["p"],
            "note": None,
        }

    counting = to_counting_process(
        frame.assign(**{surgery: day}), duration=duration, event=event, surgery=surgery
    )
    time_varying = {
        "n": len(frame),
        "intervals": len(counting),
        "events": int(counting["event"].sum()),
        "operated": int(operated.sum()),
    }
    after = counting["surgery"] == 1
    empty_arm = _empty_arm(counting.loc[after, "event"].sum(), counting.loc[~after, "event"].sum())
    if empty_arm:
        time_varying |= _not_estimable(empty_arm)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ctv = CoxTimeVaryingFitter().fit(
                counting,
                id_col="id",
                event_col="event",
                start_col="start",
                stop_col="stop",
                fit_options=COX_FIT_OPTIONS,
            )
        time_varying |= _hr(ctv.summary.loc["surgery"])

    return {
        "n": len(frame),
        "events": int(frame["_e"].sum()),
        "operated": int(operated.sum()),
        "median_surgery_day": _time(day[operated].median()),
        "excluded": excluded,
        "naive": naive,
        "landmark": [_landmark(frame, day, landmark, event) for landmark in landmarks],
        "time_varying": time_varying,
    }
