"""Password policy, open redirects, CSRF, deactivated users and import upload checks."""

import json

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from exchange.forms import check_upload_content
from exchange.models import ImportRun
from patients.models import Baseline
from tests.accounts.conftest import HOME, LOGIN_URL, PASSWORD, login
from tests.factories.patients import enrolled_patient
from tests.factories.trial import UserFactory
from trial.models import LoginEvent, Role

# --- Password policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Tr0ub4dor&x", "at least 12 characters"),
        ("password1234", "too common"),
        ("583920175026", "entirely numeric"),
        ("carolwhitfield", "too similar to the username"),
    ],
)
def test_weak_passwords_are_refused(db, password, message):
    user = UserFactory.build(username="carolwhitfield", first_name="Carol")
    with pytest.raises(ValidationError, match=message):
        validate_password(password, user)


def test_a_good_password_passes(db):
    validate_password("rapid-Heron-lake-42", UserFactory.build(username="carol"))


def test_the_password_change_page(client, site_a):
    user = UserFactory(username="carol", roles=[Role.COORDINATOR], sites=[site_a])
    client.force_login(user)
    page = client.get("/accounts/password/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"},
    )
    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)  # unchanged
    new = "rapid-Heron-lake-42"
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/accounts/password/done/"
    user.refresh_from_db()
    assert user.check_password(new)
    assert client.get(HOME).status_code == 200  # still logged in here


def test_the_password_change_page_needs_a_login(client, db):
    assert client.get("/accounts/password/")["Location"].startswith(LOGIN_URL)


# --- Open redirect and CSRF ------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "http:evil.example", "/\\evil.example"]
)
def test_no_open_redirect_after_login(client, db, target):
    UserFactory(username="carol")
    response = client.post(
        f"{LOGIN_URL}?next={target}", {"username": "carol", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == HOME


def test_a_local_next_is_followed(client, db):
    UserFactory(username="carol")
    response = client.post(
        LOGIN_URL, {"username": "carol", "password": PASSWORD, "next": "/visits/worklist/"}
    )
    assert response["Location"] == "/visits/worklist/"


def test_a_crf_post_without_the_csrf_token_is_refused(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    client = Client(enforce_csrf_checks=True)
    client.force_login(coordinator)
    url = f"/patients/{patient.pk}/baseline/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"ecog": "1", "assessed_on": "2026-01-10"})
    assert response.status_code == 403
    assert not Baseline.objects.filter(patient=patient).exists()


def test_a_login_post_without_the_csrf_token_is_refused(db):
    UserFactory(username="carol")
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, {"username": "carol", "password": PASSWORD})
    assert response.status_code == 403


# --- Deactivated users -----------------------------------------------------------------------


@pytest.fixture
def departed(site_a):
    """A coordinator who entered a patient, then left: the admin unticks "active"."""
    user = UserFactory(username="dora", first_name="Dora", roles=[Role.COORDINATOR], sites=[site_a])
    patient = enrolled_patient(site=site_a, user=user)
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    return user, patient, token


def test_a_deactivated_users_records_keep_their_name(client_for, departed, monitor):
    user, patient, _token = departed
    response = client_for(monitor).get(f"/patients/{patient.pk}/history/")
    assert response.status_code == 200
    assert "dora" in response.content.decode()
    assert patient.history.filter(history_user=user).exists()


def test_a_deactivated_user_cannot_log_in(client, departed):
    response = login(client, "dora")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.FAILED, username="dora").exists()


def test_a_deactivated_users_api_token_is_refused(client, departed):
    _user, _patient, token = departed
    response = client.get("/api/v1/analytics/survival/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 401
    assert "inactive" in response.json()["detail"].lower()
    response = client.post(
        "/api/v1/auth/token/",
        json.dumps({"username": "dora", "password": PASSWORD}),
        content_type="application/json",
    )
    assert response.status_code == 400


def test_a_deactivated_users_open_session_ends(client, site_a):
    user = UserFactory(username="erin", roles=[Role.COORDINATOR], sites=[site_a])
    client.force_login(user)
    user.is_active = False
    user.save()
    assert client.get(HOME)["Location"].startswith(LOGIN_URL)


# --- Import uploads --------------------------------------------------------------------------

IMPORT_URL = "/exchange/import/"


def _upload(client, content: bytes, name: str):
    data = {"file": SimpleUploadedFile(name, content), "waiver_reference": "2024-KY-213"}
    return client.post(IMPORT_URL, data)


def test_the_upload_limit_is_10_mb_by_default(settings):
    assert settings.IMPORT_MAX_BYTES == 10 * 1024 * 1024


def test_an_upload_over_the_limit_is_refused(client_for, data_manager, settings):
    settings.IMPORT_MAX_BYTES = 1024
    response = _upload(client_for(data_manager), b"subject_code\n" + b"x\n" * 600, "a.csv")
    assert response.status_code == 400
    assert "The file is 0.0 MB: at most 0.0 MB." not in response.content.decode()
    assert "at most" in response.content.decode()
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"subject_code\n", "cohort.txt", "Upload a .csv or .xlsx file, not cohort.txt"),
        (b"subject_code\n", "cohort.exe", "Upload a .csv or .xlsx file"),
        (b"subject_code,sex\n", "cohort.xlsx", "is not an Excel (XLSX) workbook"),
        (b"PK\x03\x04 not a zip", "cohort.xlsx", "is not an Excel (XLSX) workbook"),
        (b"PK\x03\x04 not a zip", "cohort.csv", "looks like an Excel workbook"),
        (b"subject_code\n" + b"a" * 5000 + b"\x00", "cohort.csv", "is not a text file"),
        ("subject_code\nCJFH-0001 é\n".encode("latin-1"), "cohort.csv", "is not UTF-8 text"),
    ],
)
def test_the_type_is_checked_against_the_content(content, name, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_upload_content(content, name)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"subject_code,sex\nCJFH-0001,F\n", "cohort.CSV"),
        ("\ufeffsubject_code,sex\nCJFH-0001,女\n".encode(), "cohort.csv"),
    ],
)
def test_utf8_csv_is_accepted(content, name):
    assert check_upload_content(content, name) == "csv"


def test_a_refused_upload_shows_the_field_error_and_writes_nothing(client_for, data_manager):
    response = _upload(client_for(data_manager), b"\xff\xfe\x00s\x00u", "cohort.csv")
    assert response.status_code == 400
    assert "is not a text file" in response.content.decode()
    assert not ImportRun.objects.exists()
