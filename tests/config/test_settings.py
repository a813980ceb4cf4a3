"""Settings modes from the environment: production's deploy checks and refusals, the env
helpers, and the embedded local defaults. Modes other than `test` run in a subprocess, since
settings read the environment once, at import.
"""

import json
import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_bool, env_int, env_list, env_str
from tests.config import BASE_DIR, child_environment, run_django

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(64),
    "DATABASE_URL": "postgres://plm_edc:s3cret@127.0.0.1:5432/plm_edc",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "edc.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://edc.example.org",
}
SETUP = ["-c", "import django; django.setup(); print('loaded')"]


def production_env(**changes: str | None) -> dict[str, str]:
    """The realistic production environment with `changes`; None removes a variable."""
    variables = {**PRODUCTION, **changes}
    present = {key: value for key, value in variables.items() if value is not None}
    return child_environment("config.settings.production", **present)


# (a) ------------------------------------------------------------------------------------------


def test_production_passes_check_deploy_with_no_warnings():
    result = run_django(["manage.py", "check", "--deploy"], production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


# (b) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        pytest.param({"SECRET_KEY": None}, "SECRET_KEY", id="secret-key-unset"),
        pytest.param({"SECRET_KEY": "too-short-" + "x" * 30}, "SECRET_KEY", id="secret-key-short"),
        pytest.param(
            {"SECRET_KEY": "insecure-" + secrets.token_urlsafe(64)},
            "SECRET_KEY",
            id="secret-key-insecure-prefix",
        ),
        pytest.param({"DATABASE_URL": None}, "DATABASE_URL", id="database-url-unset"),
        pytest.param(
            {"DATABASE_URL": "sqlite:////tmp/plm_edc.sqlite3"},
            "DATABASE_URL",
            id="database-url-sqlite",
        ),
        pytest.param({"REDIS_URL": None}, "REDIS_URL", id="redis-url-unset"),
        pytest.param({"REDIS_URL": ""}, "REDIS_URL", id="redis-url-empty"),
        pytest.param(
            {"SECURE_HSTS_SECONDS": "one year"}, "SECURE_HSTS_SECONDS", id="hsts-not-a-number"
        ),
        pytest.param({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT", id="bad-bool"),
    ],
)
def test_production_refuses_an_unsafe_environment(changes, named):
    result = run_django(SETUP, production_env(**changes))
    assert result.returncode != 0, result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured:"), result.stderr
    assert named in error


def test_production_loads_with_the_realistic_environment():
    # The refusals above are for the named variable, not for the environment as a whole.
    result = run_django(SETUP, production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"


# (c) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " yes "])
def test_env_bool_reads_true(monkeypatch, raw):
    monkeypatch.setenv("PLM_TEST_FLAG", raw)
    assert env_bool("PLM_TEST_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off", ""])
def test_env_bool_reads_false(monkeypatch, raw):
    monkeypatch.setenv("PLM_TEST_FLAG", raw)
    assert env_bool("PLM_TEST_FLAG", True) is False


def test_env_bool_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv("PLM_TEST_FLAG", raising=False)
    assert env_bool("PLM_TEST_FLAG", True) is True
    assert env_bool("PLM_TEST_FLAG", False) is False


def test_env_bool_refuses_anything_else_naming_the_variable(monkeypatch):
    monkeypatch.setenv("PLM_TEST_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="PLM_TEST_FLAG must be true or false"):
        env_bool("PLM_TEST_FLAG")


def test_env_int_reads_a_whole_number(monkeypatch):
    monkeypatch.setenv("PLM_TEST_NUMBER", "587")
    assert env_int("PLM_TEST_NUMBER", 25) == 587


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_env_int_unset_or_blank_gives_the_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("PLM_TEST_NUMBER", raising=False)
    else:
        monkeypatch.setenv("PLM_TEST_NUMBER", raw)
    assert env_int("PLM_TEST_NUMBER", 25) == 25


@pytest.mark.parametrize("raw", ["five", "5.5", "60s"])
def test_env_int_refuses_a_bad_number_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("PLM_TEST_NUMBER", raw)
    with pytest.raises(ImproperlyConfigured, match="PLM_TEST_NUMBER must be a whole number"):
        env_int("PLM_TEST_NUMBER", 25)


def test_env_str_without_a_default_requires_the_variable(monkeypatch):
    monkeypatch.delenv("PLM_TEST_TEXT", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PLM_TEST_TEXT"):
        env_str("PLM_TEST_TEXT")
    assert env_str("PLM_TEST_TEXT", "fallback") == "fallback"
    monkeypatch.setenv("PLM_TEST_TEXT", "")
    assert env_str("PLM_TEST_TEXT", "fallback") == ""  # set but empty is a value


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("PLM_TEST_LIST", " edc.example.org, ,localhost,")
    assert env_list("PLM_TEST_LIST") == ["edc.example.org", "localhost"]
    monkeypatch.delenv("PLM_TEST_LIST")
    assert env_list("PLM_TEST_LIST", "a,b") == ["a", "b"]
    assert env_list("PLM_TEST_LIST") == []


# (d) ------------------------------------------------------------------------------------------

SHOW_LOCAL = [
    "-c",
    "import json, django; django.setup(); from django.conf import settings as s;"
    "db = s.DATABASES['default'];"
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']), 'debug': s.DEBUG,"
    " 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'broker': s.CELERY_BROKER_URL,"
    " 'backend': s.CELERY_RESULT_BACKEND, 'email': s.EMAIL_BACKEND}))",
]


def test_local_defaults_to_sqlite_under_var_and_inline_tasks():
    result = run_django(SHOW_LOCAL, child_environment("config.settings.local"))
    assert result.returncode == 0, result.stderr
    local = json.loads(result.stdout)
    assert local["engine"] == "django.db.backends.sqlite3"
    assert local["name"] == str(BASE_DIR / "var" / "plm_edc.sqlite3")
    assert local["debug"] is True
    assert local["eager"] is True
    assert local["broker"] == "memory://"
    assert local["backend"] is None
    assert local["email"] == "django.core.mail.backends.console.EmailBackend"


def test_local_uses_the_services_it_is_given():
    env = child_environment(
        "config.settings.local",
        DATABASE_URL="postgres://plm_edc:pw@db.internal:5432/plm_edc",
        REDIS_URL="redis://cache.internal:6379/1",
        EMAIL_HOST="smtp.example.org",
    )
    result = run_django(SHOW_LOCAL, env)
    assert result.returncode == 0, result.stderr
    local = json.loads(result.stdout)
    assert local["engine"] == "django.db.backends.postgresql"
    assert local["name"] == "plm_edc"
    assert local["eager"] is False
    assert local["broker"] == local["backend"] == "redis://cache.internal:6379/1"
    assert local["email"] == "django.core.mail.backends.smtp.EmailBackend"
