"""Lockout after repeated failed logins (django-axes), on the login page and the API token."""

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.utils import timezone

from tests.accounts.conftest import HOME, LOGIN_URL, PASSWORD, login
from tests.factories.trial import UserFactory
from trial.models import LoginEvent

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


def _fail(client, username="alice", times=1, **extra):
    for _ in range(times):
        response = login(client, username, "wrong-password-000", **extra)
    return response


def test_the_limit_and_cool_off_come_from_the_settings():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AUTHENTICATION_BACKENDS[0].startswith("axes.backends.")


def test_failures_below_the_limit_show_the_login_error(client, user):
    response = _fail(client, times=settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    response = login(client, "alice")  # the right password still works before the limit
    assert response.status_code == 302
    assert response["Location"] == HOME


def test_the_fifth_failure_locks_out_with_a_clear_page(client, user):
    response = _fail(client, times=settings.AXES_FAILURE_LIMIT)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed logins" in html
    assert "Try again in 30 minutes" in html
    assert "<strong>alice</strong>" in html
    # Locked: even the right password is refused, with the same page, and nobody is logged in.
    response = login(client, "alice")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    kinds = list(LoginEvent.objects.filter(username="alice").values_list("kind", flat=True))
    assert kinds.count(LoginEvent.Kind.FAILED) == settings.AXES_FAILURE_LIMIT + 1
    assert kinds.count(LoginEvent.Kind.LOCKED_OUT) == 2
    assert LoginEvent.Kind.LOGIN not in kinds


def test_the_lock_is_per_user_name_and_address(client, user):
    UserFactory(username="bob")
    _fail(client, times=settings.AXES_FAILURE_LIMIT, REMOTE_ADDR="10.0.0.9")
    # The same name from another computer, and another name from the same one, still work.
    assert login(client, "alice", REMOTE_ADDR="10.0.0.10").status_code == 302
    client.post("/accounts/logout/")
    assert login(client, "bob", REMOTE_ADDR="10.0.0.9").status_code == 302
    client.post("/accounts/logout/")
    assert login(client, "alice", REMOTE_ADDR="10.0.0.9").status_code == 429


def test_login_works_again_after_the_cool_off(client, user):
    _fail(client, times=settings.AXES_FAILURE_LIMIT)
    assert login(client, "alice").status_code == 429
    # Travel 31 minutes on: the failures are older than the cool-off.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))
    response = login(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == HOME
    assert not AccessAttempt.objects.exists()  # a success clears the counter


def test_the_wait_is_not_over_after_29_minutes(client, user):
    _fail(client, times=settings.AXES_FAILURE_LIMIT)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=29))
    assert login(client, "alice").status_code == 429


def test_an_administrator_reset_unlocks_at_once(client, user):
    _fail(client, times=settings.AXES_FAILURE_LIMIT)
    assert reset(username="alice") == 1
    assert login(client, "alice").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(client, user):
    _fail(client, times=settings.AXES_FAILURE_LIMIT - 1)
    assert login(client, "alice").status_code == 302
    client.post("/accounts/logout/")
    response = _fail(client, times=settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 200


def _token(client, password, **extra):
    return client.post(
        TOKEN_URL,
        json.dumps({"username": "alice", "password": password}),
        content_type="application/json",
        **extra,
    )


def test_the_api_token_endpoint_counts_failures_and_locks_out(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _token(client, "wrong-password-000").status_code == 400
    # The failure that reaches the limit locks the pair, and the answer says so.
    assert _token(client, "wrong-password-000").status_code == 429
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 5
    # Locked: the right password gets no token, and the web login of that pair is locked too.
    response = _token(client, PASSWORD)
    assert response.status_code == 429
    assert "token" not in response.json()
    assert "locked" in response.json()["detail"]
    assert login(client, "alice").status_code == 429
    failed = LoginEvent.objects.filter(username="alice", kind=LoginEvent.Kind.FAILED)
    assert failed.count() >= settings.AXES_FAILURE_LIMIT + 1
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.LOCKED_OUT, user=user).exists()


def test_the_api_token_is_given_for_the_right_password(client, user):
    response = _token(client, PASSWORD)
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_the_login_page_is_not_at_risk_of_a_lockout_by_get(client, user):
    for _ in range(10):
        assert client.get(LOGIN_URL).status_code == 200
    assert not AccessAttempt.objects.exists()
