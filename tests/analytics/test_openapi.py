"""The OpenAPI schema (/api/schema/) and the Swagger UI (/api/docs/): the schema validates,
lists every endpoint of /api/v1/ with its query parameters, is for logged-in users only; the
docs page loads nothing but local static files; and a property-based run over the schema's
documented parameters never gets a 500 nor a JSON answer that contradicts the schema."""

import json
import re
from datetime import UTC
from urllib.parse import urlencode

import jsonschema
import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.exports.forms import FORMS
from tests.analytics.test_exports import full_patient

pytestmark = pytest.mark.django_db

SCHEMA_URL, DOCS_URL = "/api/schema/", "/api/docs/"
# Answers every endpoint may give besides its documented ones (JSON errors of the policies).
ALWAYS = {400, 401, 403, 404, 429}


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def api_routes() -> set[str]:
    """Every route under api/v1/ of the URLconf, as OpenAPI paths ({form} for <str:form>)."""
    found: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "")
    return found


def test_the_schema_validates_and_lists_every_endpoint(schema):
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    paths = set(schema["paths"])
    assert "/api/v1/auth/token/" in paths
    assert {
        "/api/v1/exports/analysis-dataset/",
        "/api/v1/exports/forms/{form}/",
        "/api/v1/exports/codebook/",
        "/api/v1/exports/odm/",
        "/api/v1/analytics/survival/",
        "/api/v1/analytics/cox/",
        "/api/v1/analytics/surgery-effect/",
        "/api/v1/forms/",
    } <= paths
    assert {f"/api/v1/forms/{form.name}/" for form in FORMS} <= paths
    # Every route but the JSON 404 of an unknown form is documented.
    assert api_routes() - paths == {"/api/v1/forms/{form}/"}


def _parameters(operation: dict) -> dict[str, dict]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def test_the_schema_describes_the_query_parameters(schema):
    dataset = _parameters(schema["paths"]["/api/v1/exports/analysis-dataset/"]["get"])
    assert set(dataset) == {"format", "origin", "layout", "date_shift", "site", "cohort"}
    assert set(dataset["layout"]["schema"]["enum"]) == {"wide", "counting-process"}
    export = schema["paths"]["/api/v1/exports/forms/{form}/"]["get"]
    assert set(_parameters(export)["form"]["schema"]["enum"]) == {form.name for form in FORMS}
    assert set(export["responses"]["200"]["content"]) == {"text/csv", "application/json"}
    rows = schema["paths"]["/api/v1/forms/lab_results/"]["get"]
    assert {"cursor", "page_size", "site", "cohort", "subject_code", "updated_since"} <= set(
        _parameters(rows)
    )
    assert {"date_from", "date_to", "include_voided"} <= set(_parameters(rows))
    row = schema["components"]["schemas"]["LabResultsRow"]["properties"]
    assert set(row) == set(next(f for f in FORMS if f.name == "lab_results").column_names)
    assert row["sampled_on"]["format"] == "date"
    survival = _parameters(schema["paths"]["/api/v1/analytics/survival/"]["get"])
    assert survival["endpoint"]["required"] is True
    security = {name for s in rows["security"] for name in s}
    assert security == {"tokenAuth", "cookieAuth"}


def test_schema_and_docs_are_for_logged_in_users(client, client_for, statistician):
    assert client.get(SCHEMA_URL).status_code == 401
    assert client.get(DOCS_URL).status_code == 302  # to the login page
    client = client_for(statistician)
    response = client.get(SCHEMA_URL + "?format=json")
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")


def test_the_docs_page_references_only_local_static_files(client_for, statistician):
    response = client_for(statistician).get(DOCS_URL)
    assert response.status_code == 200
    html = response.content.decode()
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in ref for ref in references)
    for ref in references:
        assert ref.startswith("/static/"), ref
        assert finders.find(ref.removeprefix("/static/")), ref
    assert "http://" not in html
    assert "https://" not in html
    assert SCHEMA_URL in html


# --- property-based run over the schema ---------------------------------------------------

JUNK = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


# Valid values of the parameters whose schema does not say them (no enum).
VALID = {"site": st.sampled_from(["SITEA", "SITEB"]), "cursor": st.just(None)}


def _valid(parameter: dict) -> st.SearchStrategy:
    spec = parameter.get("schema", {})
    if parameter["name"] in VALID:
        return VALID[parameter["name"]]
    if "enum" in spec:
        return st.sampled_from([str(v) for v in spec["enum"]])
    kind, form = spec.get("type"), spec.get("format")
    if kind == "boolean":
        return st.sampled_from(["true", "false"])
    if kind == "integer":
        return st.integers(1, 1000).map(str)
    if form == "date":
        return st.dates().map(lambda d: d.isoformat())
    if form == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return JUNK


def _value(parameter: dict, *, broken: bool) -> st.SearchStrategy:
    """A valid value, or, in a broken request, half the time anything at all."""
    if broken:
        return st.one_of(_valid(parameter), JUNK, st.sampled_from(["", "-1", "maybe", "é", "0"]))
    return _valid(parameter)


def _operations(schema: dict) -> list[tuple[str, dict]]:
    return sorted(
        (path, operation["get"])
        for path, operation in schema["paths"].items()
        if "get" in operation and path.startswith("/api/v1/")
    )


def _json_schema(node, components: dict):
    """An OpenAPI 3.0 schema as JSON Schema: references resolved, `nullable` as null."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[-1]], components)
    converted = {k: _json_schema(v, components) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def test_fuzzed_requests_over_the_schema_never_give_a_500(
    client_for, statistician, site_a, investigator, schema
):
    full_patient(site_a, investigator)
    client = client_for(statistician)
    operations = _operations(schema)
    components = schema["components"]["schemas"]
    form_names = [form.name for form in FORMS]

    @st.composite
    def requests(draw):
        path, operation = draw(st.sampled_from(operations))
        parameters = _parameters(operation)
        url = path
        if "{form}" in path:
            url = path.replace("{form}", draw(st.sampled_from([*form_names, "nope", "x-y"])))
        broken = draw(st.integers(0, 2)) == 0  # a third of the requests have wrong values
        query = {}
        for name, parameter in parameters.items():
            if parameter["in"] == "query" and (parameter.get("required") or draw(st.booleans())):
                value = draw(_value(parameter, broken=broken))
                if value is not None:
                    query[name] = value
        if broken and draw(st.booleans()):
            query[draw(st.sampled_from(["colour", "page", "limit"]))] = draw(JUNK)
        return url, query, operation

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(requests())
    def check(request):
        url, query, operation = request
        cache.clear()
        response = client.get(url + ("?" + urlencode(query) if query else ""))
        documented = {int(code) for code in operation["responses"]}
        assert response.status_code < 500, (url, query)
        assert response.status_code in documented | ALWAYS, (url, query, response.status_code)
        content_type = response["Content-Type"].split(";")[0]
        if response.status_code != 200:
            assert content_type == "application/json", (url, query)
            return
        content = operation["responses"]["200"]["content"]
        assert content_type in content, (url, query, content_type)
        data = b"".join(response.streaming_content) if response.streaming else response.content
        if content_type == "application/json":
            spec = _json_schema(content["application/json"]["schema"], components)
            jsonschema.validate(json.loads(data), spec)

    check()
