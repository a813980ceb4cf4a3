"""The survival API: Kaplan-Meier, Cox and surgery-effect summaries of the analysis dataset.

Every endpoint is a GET on the analysis rows of the user's sites (`analytics.selectors`),
needs the permission trial.view_analytics, and answers JSON. Query parameters are checked
here; the statistics are `analytics.survival` / `analytics.survival_surgery`, whose refusals
(SurvivalError) become HTTP 400 with the message keyed by the query parameter to fix:
{"group_by": ["Unknown group 'x' for group_by: choose one of sex, cohort, …"]}. Unknown or
repeated parameters are refused too, so a misspelt filter never goes unnoticed.

Endpoints (`endpoint`): os = overall survival from the origin (os_days, os_event); rfs =
recurrence-free survival of the resected patients from the operation (rfs_days, rfs_event).

Landmark (`landmark_days=N` on /survival/): only the patients still at risk N days into the
endpoint's own time scale are kept (duration > N: for os, alive and followed beyond day N
after the origin; for rfs, alive, recurrence-free and followed beyond day N after the
operation), and their times are counted from day N. With group_by=resected and endpoint os,
"resected" then means operated on or before day N (as in a landmark analysis: an operation
after the landmark does not move a patient into the operated group).
"""

from __future__ import annotations

import pandas as pd
from django.http import QueryDict
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors, survival, survival_surgery
from analytics.dataset import Origin

VIEW_ANALYTICS = "trial.view_analytics"
ENDPOINTS = {"os": ("os_days", "os_event"), "rfs": ("rfs_days", "rfs_event")}
# Where a SurvivalError's field points, in terms of this API's query parameters.
PARAMETER_OF_FIELD = {
    "duration": "endpoint",
    "event": "endpoint",
    "surgery": "endpoint",
    "group_by": "group_by",
    "covariates": "covariates",
    "at": "at",
    "landmarks": "landmark_days",
}
# Parameters DRF itself reads (?format=json).
FRAMEWORK_PARAMETERS = ("format",)


# --- OpenAPI descriptions of the query parameters (drf-spectacular) ------------------------

_ORIGIN = OpenApiParameter("origin", OpenApiTypes.STR, enum=[o.value for o in Origin])
_DAYS = "Comma-separated whole days, e.g. 90,180,270."
_ANSWERS = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="The analysis."),
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="A parameter to fix: {name: [message]}."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="Not authenticated."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="Not allowed to see the analyses."),
}
SURVIVAL_SCHEMA = extend_schema(
    operation_id="analytics_survival",
    summary="Kaplan-Meier summary of OS or RFS",
    parameters=[
        OpenApiParameter("endpoint", OpenApiTypes.STR, enum=list(ENDPOINTS), required=True),
        OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(survival.GROUPINGS)),
        _ORIGIN,
        OpenApiParameter("at", OpenApiTypes.STR, description=_DAYS),
        OpenApiParameter("landmark_days", OpenApiTypes.INT, description="One landmark day."),
    ],
    responses=_ANSWERS,
    tags=["analytics"],
)
COX_SCHEMA = extend_schema(
    operation_id="analytics_cox",
    summary="Cox proportional-hazards model",
    parameters=[
        OpenApiParameter("endpoint", OpenApiTypes.STR, enum=list(ENDPOINTS), required=True),
        OpenApiParameter(
            "covariates",
            OpenApiTypes.STR,
            required=True,
            description="Comma-separated, among: %s." % ", ".join(survival.COVARIATES),
        ),
        _ORIGIN,
    ],
    responses=_ANSWERS,
    tags=["analytics"],
)
SURGERY_EFFECT_SCHEMA = extend_schema(
    operation_id="analytics_surgery_effect",
    summary="Resected vs not: naive, landmark and time-varying Cox",
    parameters=[
        OpenApiParameter("endpoint", OpenApiTypes.STR, enum=["os"], required=True),
        OpenApiParameter("landmark_days", OpenApiTypes.STR, description=_DAYS),
        _ORIGIN,
    ],
    responses=_ANSWERS,
    tags=["analytics"],
)


class CanViewAnalytics(permissions.BasePermission):
    """The analyses are for statisticians, investigators and data managers (trial.roles)."""

    message = "You do not have permission to see the analyses."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(VIEW_ANALYTICS))


def _refuse(parameter: str, message: str) -> ValidationError:
    return ValidationError({parameter: [message]})


def _from_survival_error(error: survival.SurvivalError) -> ValidationError:
    return _refuse(PARAMETER_OF_FIELD.get(error.field, "non_field_errors"), error.message)


def _parameters(query: QueryDict, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as {name: value}; 400 for an unknown or a repeated parameter."""
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name, given in query.lists():
        if name in FRAMEWORK_PARAMETERS:
            continue
        if name not in allowed:
            errors[name] = [
                _("Unknown parameter '%(name)s': use %(allowed)s.")
                % {"name": name, "allowed": ", ".join(allowed)}
            ]
        elif len(given) > 1:
            errors[name] = [_("Give '%(name)s' once.") % {"name": name}]
        else:
            values[name] = given[0].strip()
    if errors:
        raise ValidationError(errors)
    return values


def _endpoint(values: dict[str, str], *, allowed: tuple[str, ...] = ("os", "rfs")) -> str:
    endpoint = values.get("endpoint", "")
    if endpoint not in allowed:
        message = (
            _("'%(value)s' is not an endpoint: choose %(allowed)s.")
            if endpoint
            else _("Choose the endpoint: %(allowed)s.")
        )
        raise _refuse("endpoint", message % {"value": endpoint, "allowed": " or ".join(allowed)})
    return endpoint


def _origin(values: dict[str, str]) -> Origin:
    text = values.get("origin", Origin.ENROLLMENT.value)
    try:
        return Origin(text)
    except ValueError:
        raise _refuse(
            "origin",
            _("'%(value)s' is not an origin for overall survival: choose %(allowed)s.")
            % {"value": text, "allowed": ", ".join(o.value for o in Origin)},
        ) from None


def _day_list(values: dict[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    if name not in values:
        return default
    try:
        return survival.parse_days(values[name], field=name)
    except survival.SurvivalError as error:
        raise _refuse(name, error.message) from None


def _landmark_day(values: dict[str, str]) -> int | None:
    if "landmark_days" not in values:
        return None
    days = _day_list(values, "landmark_days", ())
    if len(days) != 1:
        raise _refuse(
            "landmark_days",
            _("Give one landmark day here (for example 90); %(count)d were given.")
            % {"count": len(days)},
        )
    return days[0]


def _frame(request: Request, origin: Origin) -> pd.DataFrame:
    return selectors.analysis_frame(user=request.user, origin=origin)


def landmark_frame(frame: pd.DataFrame, *, endpoint: str, day: int) -> pd.DataFrame:
    """The rows still at risk `day` days into `endpoint`'s time scale, with their duration
    counted from that day (and, for os, `resected` = operated on or before it); 400 when
    nobody is left. See the module docstring."""
    duration, _event = ENDPOINTS[endpoint]
    times = pd.to_numeric(frame[duration], errors="coerce")
    at_risk = times > day
    if not at_risk.any():
        raise _refuse(
            "landmark_days",
            _(
                "Nobody is still at risk %(day)d days into %(endpoint)s (the longest follow-up "
                "is %(longest)s days): choose an earlier landmark."
            )
            % {
                "day": day,
                "endpoint": endpoint.upper(),
                "longest": "—" if times.isna().all() else int(times.max()),
            },
        )
    kept = frame.loc[at_risk].copy()
    kept[duration] = times[at_risk] - day
    if endpoint == "os":
        surgery_days = pd.to_numeric(kept["surgery_days"], errors="coerce")
        kept["resected"] = surgery_days.notna() & (surgery_days <= day)
    return kept


@SURVIVAL_SCHEMA
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, CanViewAnalytics])
def survival_view(request: Request) -> Response:
    """GET /api/v1/analytics/survival/?endpoint=os|rfs[&group_by=…][&origin=…][&at=180,365,730]
    [&landmark_days=N]: the Kaplan-Meier summary (`survival.km_summary`) with `endpoint`,
    `origin`, `group_by` and `landmark_days`."""
    values = _parameters(
        request.query_params, ("endpoint", "group_by", "origin", "at", "landmark_days")
    )
    endpoint = _endpoint(values)
    origin = _origin(values)
    at = _day_list(values, "at", survival.DEFAULT_AT)
    landmark = _landmark_day(values)
    group_by = values.get("group_by") or None
    if group_by is not None:
        try:
            survival.grouping(group_by)
        except survival.SurvivalError as error:
            raise _from_survival_error(error) from None
    frame = _frame(request, origin)
    if landmark is not None:
        frame = landmark_frame(frame, endpoint=endpoint, day=landmark)
    duration, event = ENDPOINTS[endpoint]
    try:
        result = survival.km_summary(
            frame, duration=duration, event=event, at=at, group_by=group_by
        )
    except survival.SurvivalError as error:
        raise _from_survival_error(error) from None
    return Response(
        {
            "endpoint": endpoint,
            "origin": origin.value,
            "group_by": group_by,
            "landmark_days": landmark,
            **result,
        }
    )


@COX_SCHEMA
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, CanViewAnalytics])
def cox_view(request: Request) -> Response:
    """GET /api/v1/analytics/cox/?endpoint=os|rfs&covariates=age,sex,ecog[&origin=…]: the Cox
    model (`survival.cox`) with `endpoint` and `origin`."""
    values = _parameters(request.query_params, ("endpoint", "covariates", "origin"))
    endpoint = _endpoint(values)
    origin = _origin(values)
    covariates = [c.strip() for c in values.get("covariates", "").split(",") if c.strip()]
    if not covariates:
        raise _refuse(
            "covariates",
            _("Choose at least one covariate among %(allowed)s.")
            % {"allowed": ", ".join(survival.COVARIATES)},
        )
    unknown = [c for c in covariates if c not in survival.COVARIATES]
    if unknown:
        raise _refuse(
            "covariates",
            _("Unknown covariate '%(name)s': choose among %(allowed)s.")
            % {"name": unknown[0], "allowed": ", ".join(survival.COVARIATES)},
        )
    duration, event = ENDPOINTS[endpoint]
    try:
        result = survival.cox(
            _frame(request, origin), duration=duration, event=event, covariates=covariates
        )
    except survival.SurvivalError as error:
        raise _from_survival_error(error) from None
    return Response({"endpoint": endpoint, "origin": origin.value, **result})


@SURGERY_EFFECT_SCHEMA
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, CanViewAnalytics])
def surgery_effect_view(request: Request) -> Response:
    """GET /api/v1/analytics/surgery-effect/?endpoint=os[&landmark_days=90,180,270][&origin=…]:
    resected vs not three ways (`survival_surgery.surgery_effect`): naive (biased), landmark
    and time-varying Cox, with `endpoint` and `origin`."""
    values = _parameters(request.query_params, ("endpoint", "landmark_days", "origin"))
    if values.get("endpoint") == "rfs":
        raise _refuse(
            "endpoint",
            _(
                "The surgery effect is measured on overall survival only: recurrence-free "
                "survival starts at the operation, so there is no unoperated group. Use "
                "endpoint=os."
            ),
        )
    endpoint = _endpoint(values, allowed=("os",))
    origin = _origin(values)
    landmarks = _day_list(values, "landmark_days", survival_surgery.DEFAULT_LANDMARKS)
    duration, event = ENDPOINTS[endpoint]
    try:
        result = survival_surgery.surgery_effect(
            _frame(request, origin), landmarks=landmarks, duration=duration, event=event
        )
    except survival.SurvivalError as error:
        raise _from_survival_error(error) from None
    return Response({"endpoint": endpoint, "origin": origin.value, **result})
