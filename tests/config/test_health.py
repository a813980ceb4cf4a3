"""/health/: what load balancers and the compose health check ask before sending traffic."""

import os

import pytest
from django.db import DatabaseError

from config import health
from tests.config import closed_port


class _UnreachableDatabase:
    vendor = "postgresql"

    def cursor(self):
        raise DatabaseError("could not connect to server: Connection refused")


@pytest.fixture
def no_broker(settings):
    settings.REDIS_URL = ""  # tasks inline: no broker to check


def test_health_is_200_with_the_database_up_and_no_broker(client, db, no_broker):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"database": True, "redis": None}


def test_health_needs_no_login(client, db, no_broker):
    response = client.get("/health/", follow=False)
    assert response.status_code == 200  # not a redirect to the login page


def test_health_is_503_when_redis_is_unreachable(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {"database": True, "redis": False}


def test_health_is_503_when_the_database_is_unreachable(client, no_broker, monkeypatch):
    monkeypatch.setattr(health, "connection", _UnreachableDatabase())
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["database"] is False


@pytest.mark.redis
def test_health_is_200_with_a_real_redis(client, db, settings):
    settings.REDIS_URL = settings.REDIS_URL or os.environ["REDIS_URL"]
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"database": True, "redis": True}
