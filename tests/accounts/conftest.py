"""Helpers for the account-security tests: real logins (not force_login), TOTP codes."""

import pytest
from django.core.cache import cache
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

# The login-log receivers connect when trial.accounts is imported: at start-up through
# TrialConfig.ready(), and here too so that a force_login before any request is logged.
import trial.accounts  # noqa: F401

PASSWORD = "test-password-123"  # tests/factories/trial.py UserFactory
LOGIN_URL = "/accounts/login/"
VERIFY_URL = "/accounts/login/code/"
TWO_FACTOR_URL = "/accounts/two-factor/"
HOME = "/patients/"


def login(client, username: str, password: str = PASSWORD, **extra):
    """POST the login form as a browser would."""
    return client.post(LOGIN_URL, {"username": username, "password": password}, **extra)


def current_code(device: TOTPDevice, drift: int = 0) -> str:
    """The code the user's authenticator app shows now (computed from the device key)."""
    device.refresh_from_db()
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + drift)
    return f"{value:0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """A 6-digit code that no time step within the device's tolerance accepts."""
    valid = {current_code(device, d) for d in range(-2, 3)}
    return next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in valid)


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """The API token throttle counts requests per address in the default cache."""
    cache.clear()
    yield
    cache.clear()
