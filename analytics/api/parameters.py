"""Query parameters of the export and form endpoints (analytics.api.exports, analytics.api.forms):
each refusal is a DRF ValidationError keyed by the parameter to fix, so the API answers 400
{"site": ["'X' is not one of your sites: choose SITEA, SITEB."]} (config/api_policies.py).
"""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import negotiation, renderers
from rest_framework.exceptions import ValidationError

from trial.models import Cohort
from trial.scoping import sites_for

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def refuse(parameter: str, message: str) -> ValidationError:
    return ValidationError({parameter: [message]})


def parameters(query: QueryDict, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as {name: value}; 400 for an unknown or a repeated parameter."""
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name, given in query.lists():
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


def choice(values: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """The value of `name`, one of `allowed` (`default` when absent)."""
    value = values.get(name, default)
    if value not in allowed:
        raise refuse(
            name,
            _("'%(value)s' is not allowed for %(name)s: choose %(allowed)s.")
            % {"value": value, "name": name, "allowed": ", ".join(allowed)},
        )
    return value


def boolean(values: dict[str, str], name: str) -> bool:
    """true/false (also 1/0, yes/no); false when absent."""
    value = values.get(name, "false").lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise refuse(
        name, _("'%(value)s' is not true or false (for %(name)s).") % {"value": value, "name": name}
    )


def site_code(values: dict[str, str], user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The `site` code, which must be one of the user's sites."""
    code = values.get("site") or None
    if code is None:
        return None
    codes = list(sites_for(user).order_by("code").values_list("code", flat=True))
    if code not in codes:
        raise refuse(
            "site",
            _("'%(value)s' is not one of your sites: choose %(allowed)s.")
            % {"value": code, "allowed": ", ".join(codes) or "—"},
        )
    return code


def cohort(values: dict[str, str]) -> str | None:
    value = values.get("cohort") or None
    if value is None:
        return None
    return choice(values, "cohort", tuple(Cohort.values), "")


def iso_date(values: dict[str, str], name: str) -> date | None:
    text = values.get(name) or None
    if text is None:
        return None
    try:
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise refuse(
            name,
            _("'%(value)s' is not a date: write it as YYYY-MM-DD, e.g. 2026-03-12.")
            % {"value": text},
        )
    return parsed


def iso_datetime(values: dict[str, str], name: str) -> datetime | None:
    """An ISO 8601 date-time (a date alone means its midnight), in the current time zone when
    it has no offset."""
    text = values.get(name) or None
    if text is None:
        return None
    try:
        parsed = parse_datetime(text)
        if parsed is None and (day := parse_date(text)) is not None:
            parsed = datetime(day.year, day.month, day.day)  # noqa: DTZ001 (made aware below)
    except ValueError:
        parsed = None
    if parsed is None:
        raise refuse(
            name,
            _("'%(value)s' is not a date and time: write it as ISO 8601, e.g. %(example)s.")
            % {"value": text, "example": "2026-03-12T08:30:00+08:00"},
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


class JsonOnlyNegotiation(negotiation.BaseContentNegotiation):
    """For the export endpoints, whose `format` query parameter picks the file format (csv,
    json, …) and is no content negotiation: errors are always JSON, and the streamed files
    are Django responses that no renderer touches."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers_, format_suffix=None):
        renderer = renderers.JSONRenderer()
        return renderer, renderer.media_type


# OpenAPI descriptions of the shared parameters.
SITE = OpenApiParameter(
    "site", OpenApiTypes.STR, description="Only the patients of this site (code), one of yours."
)
COHORT = OpenApiParameter("cohort", OpenApiTypes.STR, enum=list(Cohort.values))
DATE_SHIFT = OpenApiParameter(
    "date_shift",
    OpenApiTypes.BOOL,
    description=(
        "Move every date of a patient by the patient's stable offset (−180…+180 days, never "
        "0); intervals such as os_days stay exact."
    ),
)


def format_parameter(allowed: tuple[str, ...], default: str) -> OpenApiParameter:
    return OpenApiParameter(
        "format", OpenApiTypes.STR, enum=list(allowed), default=default, description="File format."
    )
