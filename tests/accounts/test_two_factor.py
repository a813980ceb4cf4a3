"""Optional TOTP two-factor login (django-otp), required for the roles in REQUIRE_2FA_ROLES."""

import pytest
from axes.models import AccessAttempt
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.conftest import (
    HOME,
    LOGIN_URL,
    TWO_FACTOR_URL,
    VERIFY_URL,
    current_code,
    login,
    wrong_code,
)
from tests.factories.trial import UserFactory
from trial import accounts
from trial.models import LoginEvent, Role


@pytest.fixture
def investigator_user(site_a):
    return UserFactory(username="ivan", roles=[Role.INVESTIGATOR], sites=[site_a])


@pytest.fixture
def enrolled(investigator_user):
    """The investigator with a confirmed authenticator device."""
    return TOTPDevice.objects.create(user=investigator_user, name="phone", confirmed=True)


@pytest.fixture
def no_totp_throttle(settings):
    """django-otp makes each wrong code wait longer; off where a test types codes in a row."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_enrollment_shows_a_qr_code_and_the_secret(client, investigator_user):
    client.force_login(investigator_user)
    response = client.get(TWO_FACTOR_URL)
    assert response.status_code == 200
    html = response.content.decode()
    device = TOTPDevice.objects.get(user=investigator_user)
    assert not device.confirmed
    assert "<svg" in html
    assert "<path" in html
    secret = accounts.totp_secret_base32(device)
    assert len(secret) == 32
    assert secret in html
    # Reloading keeps the same secret, so a half-scanned code stays valid.
    client.get(TWO_FACTOR_URL)
    assert TOTPDevice.objects.filter(user=investigator_user).count() == 1


def test_enrollment_is_confirmed_with_a_code(client, investigator_user):
    client.force_login(investigator_user)
    client.get(TWO_FACTOR_URL)
    device = TOTPDevice.objects.get(user=investigator_user)

    response = client.post(TWO_FACTOR_URL, {"code": wrong_code(device)})
    assert response.status_code == 200
    assert "This code is wrong or has expired" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed

    device.throttling_failure_count = 0  # no wait between the two tries in this test
    device.save()
    response = client.post(TWO_FACTOR_URL, {"code": current_code(device)}, follow=True)
    assert response.redirect_chain[-1][0] == HOME
    assert "Two-factor login is on" in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert client.session["otp_device_id"] == device.persistent_id  # this session is verified
    assert "Two-factor login is on (since" in client.get(TWO_FACTOR_URL).content.decode()


def test_a_code_that_is_not_six_digits_is_a_field_error(client, investigator_user):
    client.force_login(investigator_user)
    response = client.post(TWO_FACTOR_URL, {"code": "12ab"})
    assert "Enter the 6 digits" in response.content.decode()


def test_login_with_a_device_asks_for_the_code(client, enrolled):
    response = login(client, "ivan")
    assert response.status_code == 302
    assert response["Location"] == VERIFY_URL
    assert "_auth_user_id" not in client.session  # not logged in before the code
    assert client.get(HOME).status_code == 302  # still anonymous

    page = client.get(VERIFY_URL)
    assert "Password accepted for <strong>ivan</strong>" in page.content.decode()
    response = client.post(VERIFY_URL, {"code": current_code(enrolled)})
    assert response.status_code == 302
    assert response["Location"] == HOME
    assert client.session["_auth_user_id"] == str(enrolled.user_id)
    assert client.session["otp_device_id"] == enrolled.persistent_id
    assert client.get(HOME).status_code == 200
    assert LoginEvent.objects.filter(user=enrolled.user, kind=LoginEvent.Kind.LOGIN).count() == 1


def test_the_code_step_keeps_a_safe_next(client, enrolled):
    login_page = f"{LOGIN_URL}?next=/visits/worklist/"
    client.post(login_page, {"username": "ivan", "password": "test-password-123"})
    response = client.post(VERIFY_URL, {"code": current_code(enrolled)})
    assert response["Location"] == "/visits/worklist/"


def test_a_wrong_code_is_a_failed_login(client, enrolled):
    login(client, "ivan")
    response = client.post(VERIFY_URL, {"code": wrong_code(enrolled)})
    assert response.status_code == 200
    assert "This code is wrong or has expired" in response.content.decode()
    assert "_auth_user_id" not in client.session
    failed = LoginEvent.objects.get(kind=LoginEvent.Kind.FAILED)
    assert failed.user == enrolled.user
    assert AccessAttempt.objects.get(username="ivan").failures_since_start == 1


def test_a_used_code_cannot_be_replayed(client, enrolled):
    code = current_code(enrolled)
    login(client, "ivan")
    assert client.post(VERIFY_URL, {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    login(client, "ivan")
    response = client.post(VERIFY_URL, {"code": code})
    assert response.status_code == 200  # refused: the same time step again
    assert "_auth_user_id" not in client.session


def test_wrong_codes_lock_out_like_wrong_passwords(client, enrolled, no_totp_throttle, settings):
    login(client, "ivan")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(VERIFY_URL, {"code": wrong_code(enrolled)}).status_code == 200
    response = client.post(VERIFY_URL, {"code": wrong_code(enrolled)})
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.LOCKED_OUT, user=enrolled.user).exists()
    # Locked: the right code no longer helps, nor does the password.
    assert client.post(VERIFY_URL, {"code": current_code(enrolled)}).status_code == 429
    assert login(client, "ivan").status_code == 429


def test_the_code_page_needs_the_password_first(client, enrolled):
    response = client.get(VERIFY_URL)
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def test_without_a_device_nothing_changes_for_force_login(client, investigator_user):
    client.force_login(investigator_user)
    assert client.get(HOME).status_code == 200


def test_a_session_with_a_device_but_no_code_is_sent_to_the_code_page(client, enrolled):
    client.force_login(enrolled.user)  # as the admin login would: password only
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY_URL}?next=%2Fpatients%2F"
    response = client.post(VERIFY_URL, {"code": current_code(enrolled), "next": "/patients/"})
    assert response["Location"] == HOME
    assert client.get(HOME).status_code == 200


def test_a_required_role_must_enroll_before_anything_else(client, investigator_user, settings):
    settings.REQUIRE_2FA_ROLES = [Role.INVESTIGATOR]
    login(client, "ivan")
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(TWO_FACTOR_URL)
    page = client.get(response["Location"])
    assert "Your role requires two-factor login" in page.content.decode()
    assert client.get("/api/v1/analytics/survival/").status_code == 403
    device = TOTPDevice.objects.get(user=investigator_user)
    response = client.post(TWO_FACTOR_URL, {"code": current_code(device), "next": HOME})
    assert response["Location"] == HOME
    assert client.get(HOME).status_code == 200


def test_roles_not_listed_are_not_asked(client, coordinator, settings):
    settings.REQUIRE_2FA_ROLES = [Role.INVESTIGATOR]
    client.force_login(coordinator)
    assert client.get(HOME).status_code == 200


def test_a_misspelt_role_stops_the_start_up(settings):
    settings.REQUIRE_2FA_ROLES = ["investigators"]
    with pytest.raises(Exception, match="REQUIRE_2FA_ROLES names unknown roles investigators"):
        accounts.two_factor_roles()
