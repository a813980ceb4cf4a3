"""AccessMiddleware: the one place every request passes the access matrix (trial.access).

It runs as a view middleware, after the URL is resolved and before the view: the URL name
picks the rule; a URL without a rule is refused (deny by default); someone not signed in is
sent to the login page (a page) or answered 401 (the JSON API); a user without the rule's
permissions gets 403 (JSON for the API, Django's 403 page otherwise). Django's admin is left
to its own checks. The views keep their decorators and their site scoping, so a mistake in
one layer does not open a URL.

The API authenticates scripts by token inside the DRF view, after this middleware; so for an
API URL a request without a session is authenticated here too with the REST framework's
non-session authentication classes (the token), without touching `request.user`.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from trial import access

logger = logging.getLogger(__name__)

# The JSON API and its OpenAPI schema live under /api/ (config/api.py); the Swagger UI there
# is a page for a browser session, sent to the login page like any other.
API_PREFIX = "/api/"
PAGES_UNDER_API = frozenset({"api-docs"})


def is_api(path: str, url_name: str | None) -> bool:
    """True for a URL of the JSON API, which answers in JSON (401/403) instead of pages."""
    return path.startswith(API_PREFIX) and url_name not in PAGES_UNDER_API


class _Refused(Exception):
    """A token the REST framework refuses (invalid, or its user inactive): 401 with its reason."""


def _api_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """The user of an API request: the session's, else the one its token names (via the REST
    framework's configured authentication classes other than the session). A token that is
    refused raises _Refused with the REST framework's message ("Invalid token.", "User
    inactive or deleted."), as the view would answer."""
    if request.user.is_authenticated:
        return request.user
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    wrapped = Request(request, authenticators=())
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication, SessionAuthentication):
            continue
        try:
            result = authentication().authenticate(wrapped)
        except APIException as refused:
            raise _Refused(str(refused.detail)) from refused
        if result is not None:
            return result[0]
    return AnonymousUser()


def _json(detail: str, status: int) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401:
        # As the REST framework answers: name a scheme the client can use.
        response["WWW-Authenticate"] = "Token"
    return response


class AccessMiddleware:
    """Enforces trial.access.RULES for every URL except Django's admin."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None:
            return None
        if match.namespaces and match.namespaces[0] in access.EXEMPT_NAMESPACES:
            return None
        name = match.view_name
        api = is_api(request.path_info, name)
        rule = access.rule_for(name if match.url_name else None)
        if rule is None:
            logger.error("No access rule for URL %s (%s): refused.", name, request.path_info)
            return self._forbidden(api, _("This address has no access rule."))
        if rule.public:
            return None
        try:
            user = _api_user(request) if api else request.user
        except _Refused as refused:
            return _json(str(refused), 401)
        if not user.is_authenticated:
            if api:
                return _json(_("Authentication credentials were not provided."), 401)
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        write = request.method not in access.READ_METHODS
        if access.user_allows(user, rule, write=write, kwargs=view_kwargs):
            return None
        logger.info(
            "Access refused: %s %s (%s) for user %s.",
            request.method,
            request.path_info,
            name,
            user.pk,
        )
        return self._forbidden(api, _("You do not have permission to perform this action."))

    @staticmethod
    def _forbidden(api: bool, message: str) -> HttpResponse:
        if api:
            return _json(message, 403)
        raise PermissionDenied(message)
