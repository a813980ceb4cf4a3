"""The idle-session timeout: SESSION_IDLE_MINUTES without a request ends the session."""

import time

import pytest
from django.conf import settings

from tests.accounts.conftest import HOME, LOGIN_URL, login
from tests.factories.trial import UserFactory
from trial import accounts
from trial.models import LoginEvent, Role


@pytest.fixture
def user(site_a):
    return UserFactory(username="carol", roles=[Role.COORDINATOR], sites=[site_a])


def _idle_for(client, minutes: float) -> None:
    """Travel in time: the session's last request was `minutes` ago."""
    session = client.session
    session[accounts.LAST_ACTIVITY_KEY] = int(time.time() - minutes * 60)
    session.save()


def test_the_default_idle_limit_is_30_minutes():
    assert settings.SESSION_IDLE_MINUTES == 30
    assert not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE >= settings.SESSION_IDLE_MINUTES * 60


def test_a_login_stamps_the_session(client, user):
    login(client, "carol")
    stamp = client.session[accounts.LAST_ACTIVITY_KEY]
    assert abs(stamp - time.time()) < 5


def test_a_session_idle_for_29_minutes_goes_on(client, user):
    login(client, "carol")
    _idle_for(client, 29)
    assert client.get(HOME).status_code == 200
    # The request counts as activity: the stamp moved to now.
    assert abs(client.session[accounts.LAST_ACTIVITY_KEY] - time.time()) < 5


def test_a_session_idle_for_31_minutes_ends_with_a_message(client, user):
    login(client, "carol")
    _idle_for(client, 31)
    response = client.get(HOME, follow=True)
    assert response.redirect_chain[-1][0].startswith(LOGIN_URL)
    assert "next=/patients/" in response.redirect_chain[-1][0]
    assert "Your session ended after 30 minutes without activity" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = LoginEvent.objects.filter(user=user).first()  # newest first
    assert event.kind == LoginEvent.Kind.SESSION_EXPIRED
    assert not LoginEvent.objects.filter(user=user, kind=LoginEvent.Kind.LOGOUT).exists()


def test_a_post_after_the_idle_limit_saves_nothing(client, user):
    login(client, "carol")
    _idle_for(client, 45)
    response = client.post("/patients/screen/", {"sex": "F"})
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)


def test_the_limit_is_configurable(client, user, settings):
    settings.SESSION_IDLE_MINUTES = 5
    login(client, "carol")
    _idle_for(client, 6)
    response = client.get(HOME, follow=True)
    assert "after 5 minutes without activity" in response.content.decode()


def test_the_middleware_clock_can_be_moved(client, user, monkeypatch):
    login(client, "carol")
    real = accounts.clock()
    monkeypatch.setattr(accounts, "clock", lambda: real + accounts.timedelta(minutes=31))
    response = client.get(HOME)
    assert response.status_code == 302
    assert LoginEvent.objects.filter(user=user, kind=LoginEvent.Kind.SESSION_EXPIRED).exists()


def test_force_login_sessions_are_stamped_too(client, user):
    client.force_login(user)
    assert accounts.LAST_ACTIVITY_KEY in client.session
    assert client.get(HOME).status_code == 200


def test_an_active_session_is_not_rewritten_on_every_request(
    client, user, django_assert_max_num_queries
):
    client.force_login(user)
    client.get(HOME)
    stamp = client.session[accounts.LAST_ACTIVITY_KEY]
    client.get(HOME)
    assert client.session[accounts.LAST_ACTIVITY_KEY] == stamp  # within TOUCH_SECONDS
