"""The REST API at /api/v1/ (included by config/urls.py): the token endpoint, one router for
the apps' read-only exports, the analytics endpoints, the statisticians' exports and the form
read endpoints. A breaking change adds /api/v2/ beside this one. The OpenAPI schema and its
Swagger UI are at /api/schema/ and /api/docs/ (`docs_urlpatterns`, included under /api/).

Shared policies (JSON only, token and session authentication, permission and throttle
defaults, JSON errors keyed by the parameter to fix) are in REST_FRAMEWORK
(config/settings/base.py) and config/api_policies.py.
"""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.utils.translation import gettext as _
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions, parsers, renderers, routers, status, throttling
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response


class ApiSessionScheme(SessionScheme):
    """The schema's name for config.api_policies.SessionAuthentication (the session cookie)."""

    target_class = "config.api_policies.SessionAuthentication"


class TokenThrottle(throttling.AnonRateThrottle):
    """Token requests per client address (REST_FRAMEWORK's rate "token"), whoever asks."""

    scope = "token"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ObtainToken(ObtainAuthToken):
    """POST /api/v1/auth/token/ {"username", "password"} → {"token": "…"}: the user's API
    token (the same one on every call; an administrator deletes it in the admin to revoke
    it). JSON only; wrong credentials or an inactive user → 400; throttled per address."""

    authentication_classes = []  # a session must not make this a CSRF-checked request
    parser_classes = [parsers.JSONParser]
    renderer_classes = [renderers.JSONRenderer]
    throttle_classes = [TokenThrottle]

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.ValidationError:
            # Failures count towards the login lockout (django-axes); once locked, say so.
            if getattr(request, "axes_locked_out", False) or getattr(
                request._request, "axes_locked_out", False
            ):
                return Response(
                    {
                        "detail": _(
                            "Too many failed logins: this account is locked for a while. "
                            "Try again later or ask an administrator to unlock it."
                        )
                    },
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            raise


# Read-only export ViewSets of the apps register here (CONVENTIONS.md, "REST API").
router = routers.SimpleRouter()

urlpatterns = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("analytics/", include("analytics.api.urls")),
    path("exports/", include("analytics.api.export_urls")),
    path("forms/", include("analytics.api.form_urls")),
    path("records/", include("exchange.api.urls")),
    *router.urls,
]

# The schema for scripts; the docs page for a browser session (else the login page).
docs_urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
