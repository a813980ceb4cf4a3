"""docker-compose.yml against the settings: no Docker engine needed, the file is parsed.

The variable list comes from the settings source (tests.config.settings_variables), so a new
`env_*("NAME")` in config/settings fails here until compose passes NAME to the app services.
"""

import re
import secrets
import shlex
from urllib.parse import urlsplit

import pytest
import yaml

from tests.config import (
    BASE_DIR,
    MissingVariable,
    child_environment,
    closed_port,
    interpolate,
    run_django,
    service_environment,
    settings_variables,
)

APP_SERVICES = ("web", "worker", "beat")
# Settings variables compose deliberately does not pass, and why.
NOT_PASSED = {"DEBUG": "production.py forces DEBUG = False whatever the environment says"}
# Deployment-specific values with no safe default: compose must stop when they are missing.
REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "POSTGRES_PASSWORD")
# What an operator's .env holds (see the README); values are realistic, not real.
OPERATOR_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "edc.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://edc.example.org",
    "POSTGRES_PASSWORD": secrets.token_hex(24),
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def resolved_environment(service: dict, env: dict[str, str] = OPERATOR_ENV) -> dict[str, str]:
    return {
        key: interpolate(value, env)
        for key, value in service_environment(service).items()
        if value is not None
    }


def command_words(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def command_text(service: dict) -> str:
    return " ".join(" ".join(command_words(service)).split())


def test_the_stack_has_every_service(services):
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)


def test_the_settings_scan_finds_the_variables_it_should():
    # Guards the scan itself: if it silently found nothing, the next test would prove nothing.
    found = settings_variables()
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT"):
        assert name in found
    # Settings read the environment only through the helpers, so the scan is complete.
    for path in (BASE_DIR / "config" / "settings").glob("*.py"):
        if path.name != "env.py":
            source = path.read_text()
            assert "os.environ" not in source, path.name
            assert "getenv" not in source, path.name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_the_production_settings(services, name):
    environment = service_environment(services[name])
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_variable_the_settings_read_reaches_the_app_services(services, name):
    passed = set(service_environment(services[name]))
    missing = set(settings_variables()) - passed - set(NOT_PASSED)
    assert not missing, (
        f"config/settings reads {sorted(missing)} but docker-compose.yml does not pass them to "
        f"{name}: add them to x-django-env (or to NOT_PASSED here, with the reason)."
    )


def test_app_services_share_one_environment(services):
    web = service_environment(services["web"])
    for name in ("worker", "beat"):
        assert service_environment(services[name]) == web


@pytest.mark.parametrize("variable", REQUIRED)
def test_compose_stops_when_a_required_value_is_missing(services, variable):
    env = {key: value for key, value in OPERATOR_ENV.items() if key != variable}
    users = [s for s in services.values() if variable in str(s.get("environment"))]
    assert users, f"no service uses {variable}"
    for service in users:
        with pytest.raises(MissingVariable) as missing:
            resolved_environment(service, env)
        assert missing.value.name == variable


def test_database_url_points_at_the_postgres_service(services):
    url = urlsplit(resolved_environment(services["web"])["DATABASE_URL"])
    postgres = resolved_environment(services["postgres"])
    assert url.scheme in {"postgres", "postgresql"}
    assert url.hostname == "postgres"
    assert url.port == 5432
    assert url.path == "/" + postgres["POSTGRES_DB"]
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"] == OPERATOR_ENV["POSTGRES_PASSWORD"]


def test_redis_url_points_at_the_redis_service(services):
    url = urlsplit(resolved_environment(services["web"])["REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert url.port == 6379


def test_web_migrates_collects_static_files_then_serves_with_gunicorn(services):
    text = command_text(services["web"])
    assert re.search(r"\bgunicorn config\.wsgi(:application)?\b", text)
    assert "--bind 0.0.0.0:8000" in text
    steps = [
        text.index("manage.py migrate"),
        text.index("manage.py collectstatic"),
        text.index("gunicorn"),
    ]
    assert steps == sorted(steps)
    assert any(port.endswith(":8000") for port in services["web"]["ports"])


@pytest.mark.parametrize(("name", "program"), [("worker", "worker"), ("beat", "beat")])
def test_worker_and_beat_run_the_config_celery_app(services, name, program):
    words = command_words(services[name])
    assert words[0] == "celery"
    assert words[words.index("-A") + 1] == "config"
    assert program in words


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("postgres", "pg_isready"),
        ("redis", "redis-cli ping"),
        ("web", "/health/"),
        ("worker", "inspect ping"),
    ],
)
def test_services_have_health_checks(services, name, probe):
    check = services[name]["healthcheck"]["test"]
    assert probe in (check if isinstance(check, str) else " ".join(check))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["redis"]["condition"] == "service_healthy"
    if name != "beat":  # beat only publishes to the broker
        assert depends_on["postgres"]["condition"] == "service_healthy"


def test_web_health_probe_is_a_host_the_app_allows(services):
    # Behind the proxy the app redirects http to https and validates Host; the container's
    # own probe must pass both, so it sends X-Forwarded-Proto and a host from ALLOWED_HOSTS.
    probe = " ".join(services["web"]["healthcheck"]["test"])
    assert "'X-Forwarded-Proto': 'https'" in probe
    host = re.search(r"'Host': '([^']+)'", probe).group(1)
    allowed = resolved_environment(services["web"])["ALLOWED_HOSTS"].split(",")
    assert host in allowed


def test_the_compose_environment_passes_the_deploy_checks(services):
    env = child_environment("config.settings.production", **resolved_environment(services["web"]))
    result = run_django(["manage.py", "check", "--deploy"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def test_the_web_health_probe_gets_through_production_security(services):
    # The app under the compose environment, asked as the probe asks: a health answer (503
    # here: nothing listens on the ports given), not a redirect (301) or a bad host (400).
    env = child_environment(
        "config.settings.production",
        **{
            **resolved_environment(services["web"]),
            "DATABASE_URL": f"postgres://plm_edc:x@127.0.0.1:{closed_port()}/plm_edc",
            "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        },
    )
    code = (
        "import django; django.setup(); from django.test import Client; c = Client();"
        "probe = c.get('/health/', HTTP_HOST='localhost', HTTP_X_FORWARDED_PROTO='https');"
        "plain = c.get('/health/', HTTP_HOST='edc.example.org');"
        "print(probe.status_code, probe.content.decode(), plain.status_code, plain['Location'])"
    )
    result = run_django(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1)[0] in {"200", "503"}
    assert '"database": false' in result.stdout
    assert result.stdout.rstrip().endswith("301 https://edc.example.org/health/")
