"""Shared fixtures: role users at two sites, a logged-in client per role, service gates.

Tests run on PostgreSQL when DATABASE_URL points at it, else on SQLite. Tests marked
`postgres` or `redis` skip when the service is missing, unless REQUIRE_SERVICES=1 (CI), where
a missing service is a failure.
"""

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.factories.trial import SiteFactory, UserFactory
from trial.models import Role

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest) -> bool:
    """Keep (and reuse) the SQLite test database between runs as `--reuse-db` asks; on
    PostgreSQL the test database is named per process (config/settings/test.py), so it is
    dropped at the end instead of piling up."""
    on_sqlite = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    return bool(request.config.getvalue("reuse_db")) and on_sqlite


@pytest.fixture(autouse=True)
def _empty_cache():
    """No test sees what another cached (datasets, throttle counters)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _service_gates(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("the test database is not PostgreSQL (set DATABASE_URL=postgres://…)")
    if request.node.get_closest_marker("redis"):
        import redis

        url = settings.REDIS_URL or os.environ.get("REDIS_URL", "")
        if not url:
            _missing("REDIS_URL is not set")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            _missing(f"Redis at {url} is not reachable: {exc}")


def pytest_report_header(config):
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [
        f"database: {engine}; redis: {settings.REDIS_URL or 'none'}; "
        f"require services: {REQUIRE_SERVICES}"
    ]


@pytest.fixture
def site_a(db):
    return SiteFactory(code="SITEA", name="Site A")


@pytest.fixture
def site_b(db):
    return SiteFactory(code="SITEB", name="Site B")


def _role_user(role: str, *sites, **extra):
    return UserFactory(roles=[role], sites=list(sites), **extra)


@pytest.fixture
def coordinator(site_a):
    return _role_user(Role.COORDINATOR, site_a, username="coord_a")


@pytest.fixture
def coordinator_b(site_b):
    return _role_user(Role.COORDINATOR, site_b, username="coord_b")


@pytest.fixture
def investigator(site_a):
    return _role_user(Role.INVESTIGATOR, site_a, username="inv_a")


@pytest.fixture
def statistician(site_a, site_b):
    return _role_user(Role.STATISTICIAN, site_a, site_b, username="stat")


@pytest.fixture
def monitor(site_a):
    return _role_user(Role.MONITOR, site_a, username="mon_a")


@pytest.fixture
def data_manager(site_a, site_b):
    return _role_user(Role.DATA_MANAGER, site_a, site_b, username="dm")


@pytest.fixture
def site_admin(site_a):
    return _role_user(Role.SITE_ADMIN, site_a, username="sadmin_a", is_staff=True)


@pytest.fixture
def client_for(client):
    """`client_for(user)` logs the test client in as `user` and returns it."""

    def login(user):
        client.force_login(user)
        return client

    return login
