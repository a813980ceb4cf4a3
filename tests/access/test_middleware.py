"""AccessMiddleware: deny by default, the login page or 401 for anonymous visitors, 403 (JSON
for the API) without the permissions, token authentication for the API, the admin left to its
own checks; and the system check that lists URLs without a rule."""

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.factories.trial import UserFactory
from trial import access
from trial.access import Rule

pytestmark = pytest.mark.usefixtures("access_middleware")
TEST_URLS = "tests.access.urls"


@pytest.fixture
def guarded(monkeypatch):
    """/access-test/guarded/ needs trial.lock_record (data managers); its view checks nothing."""
    monkeypatch.setitem(
        access.RULES, "access-test-guarded", Rule(read=("trial.lock_record",), scope="none")
    )
    monkeypatch.setitem(access.RULES, "access-test-unnamed", access.PUBLIC)
    return "/access-test/guarded/"


@override_settings(ROOT_URLCONF=TEST_URLS)
def test_the_middleware_alone_refuses_a_view_that_checks_nothing(
    guarded, client_for, coordinator, data_manager
):
    assert client_for(coordinator).get(guarded).status_code == 403
    assert client_for(coordinator).post(guarded).status_code == 403
    assert client_for(data_manager).get(guarded).status_code == 200
    assert client_for(data_manager).post(guarded).status_code == 200


@override_settings(ROOT_URLCONF=TEST_URLS)
def test_head_and_options_are_reads_every_other_method_a_write(monkeypatch, client_for, monitor):
    monkeypatch.setitem(
        access.RULES,
        "access-test-guarded",
        Rule(read=("patients.view_patient",), write=("patients.change_patient",), scope="none"),
    )
    client = client_for(monitor)
    url = "/access-test/guarded/"
    assert [client.generic(m, url).status_code for m in ("GET", "HEAD", "OPTIONS")] == [200] * 3
    assert [client.generic(m, url).status_code for m in ("POST", "PUT", "PATCH", "DELETE")] == [
        403
    ] * 4


@override_settings(ROOT_URLCONF=TEST_URLS)
def test_a_url_without_a_rule_or_a_name_is_refused_even_to_a_superuser(client, db):
    client.force_login(UserFactory(is_superuser=True))
    assert client.get("/access-test/unruled/").status_code == 403
    assert client.get("/access-test/unnamed/").status_code == 403


@override_settings(ROOT_URLCONF=TEST_URLS)
def test_the_system_check_lists_urls_without_a_rule_and_rules_without_a_url(monkeypatch):
    monkeypatch.setitem(access.RULES, "no-such-url", access.LOGIN_ONLY)
    messages = access.check_access_rules()
    errors = {(m.id, m.obj) for m in messages if m.id == "trial.E001"}
    assert errors == {
        ("trial.E001", "access-test-guarded"),
        ("trial.E001", "access-test-unruled"),
        ("trial.E001", "/access-test/unnamed/"),
    }
    assert [(m.id, m.obj) for m in messages if m.id == "trial.W001"] == [
        ("trial.W001", "no-such-url")
    ]


def test_the_project_passes_the_system_check():
    assert access.check_access_rules() == []


def test_the_check_is_registered_with_django():
    from django.core import checks

    assert access.check_access_rules in checks.registry.registry.get_checks()


def test_anonymous_visitors_go_to_the_login_page(client, db):
    response = client.get(reverse("patients:patient-list"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/patients/"


def test_anonymous_api_calls_get_a_json_401(client, db):
    for url in (reverse("forms_api:list"), reverse("api-schema")):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert response["WWW-Authenticate"].startswith("Token")


def test_the_swagger_page_sends_a_browser_to_the_login_page(client, db):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_api_refusals_are_json_403(client_for, monitor):
    response = client_for(monitor).get(reverse("analytics_api:survival"), {"endpoint": "os"})
    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_pages_refused_get_the_403_page(client_for, monitor):
    response = client_for(monitor).get(reverse("exchange:import"))
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_an_api_token_counts_as_its_user(client, statistician, monitor):
    url = reverse("forms_api:cycles")
    allowed = Token.objects.create(user=statistician)
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {allowed.key}").status_code == 200
    refused = Token.objects.create(user=monitor)
    response = client.get(
        reverse("exports_api:codebook"), HTTP_AUTHORIZATION=f"Token {refused.key}"
    )
    assert response.status_code == 403
    response = client.get(url, HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401


def test_the_admin_keeps_its_own_checks(client, client_for, site_admin):
    # Anonymous visitors get the admin's own login page, not a refusal of the matrix.
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client_for(site_admin).get("/admin/").status_code == 200


def test_requirements_on_the_form_named_in_the_url(client_for, site_admin, db):
    rule = access.RULES["quality:record"]
    assert access.user_allows(site_admin, rule, write=False, kwargs={"label": "patients.patient"})
    assert not access.user_allows(
        site_admin, rule, write=False, kwargs={"label": "treatments.adverseevent"}
    )
    # No such record model (or not a clinical one): nothing to protect, the view answers 404.
    assert access.user_allows(site_admin, rule, write=False, kwargs={"label": "no.such"})
    assert client_for(site_admin).get("/quality/records/no.such/1/").status_code == 404
    assert client_for(site_admin).get("/quality/records/trial.study/1/").status_code == 404
    assert access.role_allows("monitor", rule, write=True, kwargs={"label": "patients.consent"})
    assert not access.role_allows(
        "statistician", rule, write=True, kwargs={"label": "patients.consent"}
    )


def test_either_of_two_permissions(client_for, coordinator, monitor, statistician):
    url = reverse("quality:query-list")
    assert client_for(coordinator).get(url).status_code == 200  # answers queries
    assert client_for(monitor).get(url).status_code == 200  # raises them
    assert client_for(statistician).get(url).status_code == 403


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"public": True, "login_only": True}, "exactly one of"),
        ({"read": ("view_patient",)}, "not an 'app_label.codename'"),
        ({"read": ("view:no such",)}, "does not name a URL keyword"),
        ({"public": True, "write": ("a.b",)}, "need read permissions"),
    ],
)
def test_a_rule_is_exactly_one_kind_of_valid_requirements(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rule(**kwargs)
