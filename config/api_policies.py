"""The policies every REST endpoint shares, named in REST_FRAMEWORK (config/settings/base.py):
authentication, content negotiation and the JSON error handler. (Apart from config/api.py:
REST_FRAMEWORK's settings import this module while rest_framework.views is loading, so it
must not import the views or the routers at module level.)

Errors are always JSON. A bad request is HTTP 400 with the messages keyed by the parameter to
fix: {"group_by": ["Unknown group 'x' for group_by: choose one of sex, cohort, …"]}; other
errors are {"detail": "…"} (401 not logged in, 403 not allowed, 404, 429 too many requests,
500). A breaking change adds /api/v2/ beside this one.
"""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, negotiation, renderers
from rest_framework.response import Response

logger = logging.getLogger(__name__)
NON_FIELD = "non_field_errors"


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's login session, answering 401 (not 403) to a request without one.

    DRF answers 403 when no authentication scheme can be named in a WWW-Authenticate header;
    naming the session makes "not logged in" (401) and "not allowed" (403) distinguishable for
    scripts. Token authentication will sit beside it.
    """

    def authenticate_header(self, request) -> str:
        return 'Session realm="api"'


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """JSON always; the browsable HTML view only while DEBUG is on (decided per request, so
    the mode's own DEBUG counts)."""

    def select_renderer(self, request, renderers_, format_suffix=None):
        if not settings.DEBUG:
            renderers_ = [
                r for r in renderers_ if not isinstance(r, renderers.BrowsableAPIRenderer)
            ]
        return super().select_renderer(request, renderers_, format_suffix)

    def filter_renderers(self, renderers_, format):
        """The renderers of ?format=…; 400 naming the formats offered (DRF answers 404)."""
        kept = [r for r in renderers_ if r.format == format]
        if not kept:
            raise exceptions.ValidationError(
                {
                    "format": [
                        _("'%(value)s' is not a format of this API: use %(allowed)s.")
                        % {"value": format, "allowed": ", ".join(r.format for r in renderers_)}
                    ]
                }
            )
        return kept


def _as_field_dict(detail) -> dict:
    if isinstance(detail, dict):
        return detail
    return {NON_FIELD: detail if isinstance(detail, list) else [detail]}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """JSON for every error: validation errors as {parameter: [messages]} (Django's
    ValidationError too), the others as {"detail": message}; an unexpected exception is
    logged and answered with a JSON 500 (re-raised under DEBUG, for the debug page)."""
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        exc = exceptions.ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(exc, exceptions.ValidationError):
            response.data = _as_field_dict(response.data)
        return response
    if settings.DEBUG:
        return None
    view = context.get("view")
    logger.exception("API error in %s", type(view).__name__ if view else "?", exc_info=exc)
    set_rollback()
    return Response(
        {"detail": _("The server could not answer this request; the error has been logged.")},
        status=500,
    )
