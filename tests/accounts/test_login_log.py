"""The login log: every login, logout, failure, lockout; the page /accounts/log/ and its CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tests.accounts.conftest import login
from tests.factories.trial import UserFactory
from trial.models import LoginEvent, Role

LOG_URL = "/accounts/log/"


@pytest.fixture
def carol(site_a):
    return UserFactory(username="carol", roles=[Role.COORDINATOR], sites=[site_a])


def test_a_login_and_a_logout_are_logged_with_address_and_browser(client, carol):
    login(client, "carol", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="Firefox/140")
    client.post("/accounts/logout/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="Firefox/140")
    logout, login_event = LoginEvent.objects.all()  # newest first
    assert login_event.kind == LoginEvent.Kind.LOGIN
    assert logout.kind == LoginEvent.Kind.LOGOUT
    for event in (login_event, logout):
        assert event.user == carol
        assert event.username == "carol"
        assert event.ip_address == "10.1.2.3"
        assert event.user_agent == "Firefox/140"


def test_a_failed_login_is_logged_without_the_password(client, carol):
    login(client, "carol", "my-secret-guess-42")
    event = LoginEvent.objects.get()
    assert event.kind == LoginEvent.Kind.FAILED
    assert event.user == carol  # the account the name belongs to
    stored = " ".join(str(v) for v in LoginEvent.objects.values().get().values())
    assert "my-secret-guess-42" not in stored


def test_a_failed_login_of_an_unknown_name_keeps_the_name(client, db):
    login(client, "mallory", "whatever-123456")
    event = LoginEvent.objects.get()
    assert (event.kind, event.user, event.username) == (LoginEvent.Kind.FAILED, None, "mallory")


def test_a_lockout_is_logged(client, carol):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "carol", "wrong-password-000")
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.LOCKED_OUT, user=carol).count() == 1


def test_the_address_behind_a_reverse_proxy(client, carol, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    login(client, "carol", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.0.0.2")
    assert LoginEvent.objects.get().ip_address == "203.0.113.7"  # not the forged left entry


def test_the_page_is_for_data_managers_and_site_admins(client_for, coordinator, monitor):
    assert client_for(coordinator).get(LOG_URL).status_code == 403
    assert client_for(monitor).get(LOG_URL).status_code == 403


def test_anonymous_users_are_sent_to_the_login(client, db):
    response = client.get(LOG_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def _event(kind, user=None, username="", days_ago=0, ip="10.0.0.1"):
    event = LoginEvent.objects.create(
        kind=kind, user=user, username=username or (user.username if user else ""), ip_address=ip
    )
    if days_ago:
        LoginEvent.objects.filter(pk=event.pk).update(at=timezone.now() - timedelta(days=days_ago))
    return event


def test_data_managers_see_every_event_and_site_admins_their_sites_users(
    client_for, data_manager, site_admin, coordinator, coordinator_b
):
    _event(LoginEvent.Kind.LOGIN, coordinator)
    _event(LoginEvent.Kind.FAILED, coordinator_b)
    _event(LoginEvent.Kind.FAILED, username="nobody-known")
    html = client_for(data_manager).get(LOG_URL).content.decode()
    assert "coord_a" in html
    assert "coord_b" in html
    assert "nobody-known" in html
    client = client_for(site_admin)
    response = client.get(LOG_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "coord_a" in html
    assert "coord_b" not in html
    assert "nobody-known" not in html
    rows = list(csv.reader(io.StringIO(client.get(LOG_URL + "?format=csv").content.decode())))
    # The data manager works at site A too, so their events are among site A's users'.
    assert {row[2] for row in rows[1:]} == {"coord_a", "dm", "sadmin_a"}


def test_filters_by_user_kind_and_date(client_for, data_manager, coordinator, coordinator_b):
    _event(LoginEvent.Kind.LOGIN, coordinator, days_ago=10)
    _event(LoginEvent.Kind.FAILED, coordinator)
    _event(LoginEvent.Kind.LOGIN, coordinator_b)
    client = client_for(data_manager)

    def usernames_and_kinds(query: str) -> list[tuple[str, str]]:
        response = client.get(f"{LOG_URL}?{query}&format=csv")
        assert response["Content-Type"].startswith("text/csv")
        return [(r[2], r[1]) for r in list(csv.reader(io.StringIO(response.content.decode())))[1:]]

    assert usernames_and_kinds("user=coord_a") == [("coord_a", "failed"), ("coord_a", "login")]
    assert ("coord_b", "login") in usernames_and_kinds("kind=login")
    assert ("coord_a", "failed") not in usernames_and_kinds("kind=login")
    today = timezone.localdate().isoformat()
    rows = usernames_and_kinds(f"user=coord&date_from={today}&date_to={today}")
    assert ("coord_a", "login") not in rows  # ten days ago
    assert ("coord_a", "failed") in rows
    assert ("coord_b", "login") in rows


def test_a_bad_date_range_is_a_field_error(client_for, data_manager):
    response = client_for(data_manager).get(LOG_URL + "?date_from=2026-03-10&date_to=2026-03-01")
    assert "is before the start date" in response.content.decode()


def test_the_csv_neutralises_formulas(client_for, data_manager):
    _event(LoginEvent.Kind.FAILED, username="=HYPERLINK(1)")
    response = client_for(data_manager).get(LOG_URL + "?format=csv&kind=failed")
    assert response["Content-Disposition"] == 'attachment; filename="login-log.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["at", "event", "username", "user", "ip_address", "user_agent"]
    assert rows[1][1:3] == ["failed", "'=HYPERLINK(1)"]
    assert len(rows) == 2


def test_the_page_has_a_fixed_number_of_queries(
    client_for, data_manager, coordinator, django_assert_max_num_queries
):
    client = client_for(data_manager)
    for day in range(60):
        _event(LoginEvent.Kind.LOGIN, coordinator, days_ago=day)
    with django_assert_max_num_queries(10):
        response = client.get(LOG_URL)
    assert response.status_code == 200
    assert "Page 1 of 2" in response.content.decode()
