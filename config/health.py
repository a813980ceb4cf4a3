"""Liveness and readiness for load balancers and docker compose: database and broker reachable."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


def _redis_ok() -> bool | None:
    if not settings.REDIS_URL:
        return None  # tasks run inline: no broker to check
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def health(request: HttpRequest) -> JsonResponse:
    """200 with {"database": true, "redis": true|null} when ready, 503 when a component is down."""
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    ready = all(value is not False for value in checks.values())
    return JsonResponse(checks, status=200 if ready else 503)
