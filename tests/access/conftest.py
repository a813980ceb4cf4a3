"""The access middleware switched on for tests/access (until config/settings/base.py lists it),
and the matrix test's counts in pytest's summary."""

import pytest
from django.test import override_settings

from tests.access.stats import COUNTS, FAILURES

ACCESS_MIDDLEWARE = "trial.middleware.AccessMiddleware"


def middleware_with_access(middleware: list[str]) -> list[str]:
    """`middleware` with AccessMiddleware after the authentication (and django-otp's)."""
    if ACCESS_MIDDLEWARE in middleware:
        return list(middleware)
    after = [
        i
        for i, name in enumerate(middleware)
        if name
        in (
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django_otp.middleware.OTPMiddleware",
        )
    ]
    position = max(after) + 1
    return [*middleware[:position], ACCESS_MIDDLEWARE, *middleware[position:]]


@pytest.fixture(scope="module")
def access_middleware():
    """AccessMiddleware in MIDDLEWARE for the whole module (clients made inside it use it)."""
    from django.conf import settings

    with override_settings(MIDDLEWARE=middleware_with_access(settings.MIDDLEWARE)):
        yield


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not COUNTS:
        return
    checks = COUNTS["get"] + COUNTS["post"]
    terminalreporter.write_sep("-", "access matrix")
    terminalreporter.write_line(
        f"access matrix: {COUNTS['urls']} URLs × {COUNTS['visitors']} visitors "
        f"({COUNTS['visitors'] - 1} roles + anonymous) × own/other site: "
        f"{COUNTS['get']} GET checks ({COUNTS['get_other']} at the other site) + "
        f"{COUNTS['post']} refused POST checks = {checks} checks, {len(FAILURES)} failures"
    )
    terminalreporter.write_line(f"(the world was built in {COUNTS['world_ms']} ms)")
    for failure in FAILURES[:50]:
        terminalreporter.write_line(f"  {failure}")
