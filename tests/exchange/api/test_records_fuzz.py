"""Property-based run over the write endpoints' OpenAPI schema: bodies built from each
request schema (valid values, values of the wrong type, out of range, unknown codes, missing
or extra fields, raw non-JSON), with right, stale, missing or malformed If-Match headers and
good or bad record ids. No request gets a 500, every answer is one the schema documents (or a
policy error), and every success validates against the documented response schema."""

from datetime import date

import jsonschema
import pytest
from django.core.cache import cache
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.api.records import FORMS_BY_NAME
from tests.exchange.api.helpers import records_url, token_client

pytestmark = pytest.mark.django_db

ALWAYS = {400, 401, 403, 404, 429}  # the policies' errors, on any endpoint
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", "2026-02-30", "0", "-1", "1e400", "NaN", "null", "\x00", "é" * 600]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
RAW = st.sampled_from(["{", "[1, 2]", "null", '"text"', "{}", '{"a": }'])


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(node: dict, components: dict) -> dict:
    while "$ref" in node:
        node = components[node["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        return {**_resolve(node["allOf"][0], components), **merged}
    if "oneOf" in node:  # a nullable enum: {"oneOf": [enum, NullEnum]}
        return {"oneOf": [_resolve(item, components) for item in node["oneOf"]]}
    return node


def _valid(spec: dict, components: dict) -> st.SearchStrategy:
    """Values the schema allows (and, for dates, mostly inside the patient's study period)."""
    spec = _resolve(spec, components)
    if "oneOf" in spec:
        return st.one_of(*(_valid(item, components) for item in spec["oneOf"]))
    if "enum" in spec:
        values = [v for v in spec["enum"] if v is not None]
        strategy = st.sampled_from(values) if values else st.none()
    elif spec.get("type") == "integer":
        strategy = st.integers(spec.get("minimum", -5), min(spec.get("maximum", 10**6), 10**6))
    elif spec.get("type") == "number":
        strategy = st.decimals(-(10**6), 10**6, places=2).map(str)
    elif spec.get("type") == "boolean":
        strategy = st.booleans()
    elif spec.get("format") == "date":
        strategy = st.one_of(st.dates(date(2026, 5, 1), date(2026, 10, 31)), st.dates()).map(
            date.isoformat
        )
    elif spec.get("type") == "array":
        strategy = st.lists(_body(spec["items"], components), max_size=4)
    elif spec.get("type") == "object":
        strategy = _body(spec, components)
    else:
        strategy = st.text(max_size=spec.get("maxLength", 40))
    if spec.get("nullable"):
        strategy = st.one_of(st.none(), strategy)
    return strategy


def _body(
    spec: dict, components: dict, overrides: dict | None = None, *, broken: bool = False
) -> st.SearchStrategy:
    """An object of the schema: each field valid or left out; in a broken body, also junk
    values and an unknown field."""
    spec = _resolve(spec, components)
    overrides = overrides or {}
    fields = {}
    for name, prop in spec.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        valid = overrides[name] if name in overrides else _valid(prop, components)
        fields[name] = st.one_of(valid, JUNK) if broken else valid
    required = set(spec.get("required", ()))
    return st.fixed_dictionaries(
        {name: strategy for name, strategy in fields.items() if name in required},
        optional={
            **{name: strategy for name, strategy in fields.items() if name not in required},
            **({"colour": JUNK} if broken else {}),
        },
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


@pytest.mark.parametrize("form", list(FORMS_BY_NAME))
def test_fuzzed_writes_never_give_a_500(form, world, coordinator, schema):
    patient, line, valid = world
    client = token_client(coordinator)
    model = FORMS_BY_NAME[form].model
    components = schema["components"]["schemas"]
    collection = schema["paths"][f"/api/v1/records/{form}/"]
    item = schema["paths"][f"/api/v1/records/{form}/{{id}}/"]
    overrides = {
        "subject_code": st.sampled_from([patient.subject_code, "NOBODY-0001"]),
        "line_id": st.sampled_from([line.pk, line.pk + 1000]),
        "contact_id": st.sampled_from([None, 1, 10**6]),
    }
    seen: dict[int, int] = {}

    def target() -> int:
        """An active record of the form to edit: the last one, or a new valid one."""
        record = model.objects.active().filter(patient=patient).order_by("-id").first()
        if record is None:
            cache.clear()
            response = client.post(records_url(form), valid[form], format="json")
            if response.status_code == 201:
                return response.json()["id"]
            record = model._base_manager.filter(patient=patient).order_by("-id").first()
        return record.pk if record else 1

    @st.composite
    def requests(draw):
        method = draw(st.sampled_from(["post", "patch", "put", "delete", "get"]))
        operation = (collection if method == "post" else item)[method]
        content = operation.get("requestBody", {}).get("content", {})
        spec = content.get("application/json", {}).get("schema", {"type": "object"})
        kind = draw(st.sampled_from(["broken", "schema", "near", "near"]))
        body = None
        if content and kind == "broken":
            body = draw(st.one_of(_body(spec, components, overrides, broken=True), RAW))
        elif content and kind == "schema":
            body = draw(_body(spec, components, overrides))
        elif content:
            # The valid body with a few fields changed to other values the schema allows: the
            # requests that get past the serializer into the services' rules.
            body = {"void_reason": "Sent in error"} if method == "delete" else dict(valid[form])
            properties = _resolve(spec, components).get("properties", {})
            writable = [n for n, p in properties.items() if not p.get("readOnly")]
            for name in draw(st.lists(st.sampled_from(writable), max_size=2, unique=True)):
                strategy = (
                    overrides[name] if name in overrides else _valid(properties[name], components)
                )
                body[name] = draw(strategy)
            if method in ("patch", "put"):
                body["change_reason"] = draw(st.sampled_from(["", "Corrected"]))
        record = draw(st.sampled_from(["target", "target", "target", "999999", "x", "-3"]))
        if_match = draw(st.sampled_from(["current", "current", "stale", None, "*", "3", "W/x"]))
        return method, operation, body, record, if_match

    @settings(
        max_examples=100,
        derandomize=True,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(requests())
    def check(request):
        method, operation, body, record, if_match = request
        cache.clear()
        url = records_url(form)
        headers = {}
        if method != "post":
            record_id = target() if record == "target" else record
            url = records_url(form, record_id)
            stored = (
                model._base_manager.filter(pk=record_id).first() if record == "target" else None
            )
            if if_match == "current":
                headers["HTTP_IF_MATCH"] = f'W/"{stored.version if stored else 1}"'
            elif if_match == "stale":
                headers["HTTP_IF_MATCH"] = f'W/"{(stored.version if stored else 1) + 7}"'
            elif if_match is not None:
                headers["HTTP_IF_MATCH"] = if_match
        call = getattr(client, method)
        if isinstance(body, str):
            response = call(url, body, content_type="application/json", **headers)
        elif body is None:
            response = call(url, **headers)
        else:
            response = call(url, body, format="json", **headers)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        documented = {int(code) for code in operation["responses"]}
        assert response.status_code < 500, (method, url, body, response.content[:300])
        assert response.status_code in documented | ALWAYS, (method, body, response.status_code)
        assert response["Content-Type"].startswith("application/json")
        data = response.json()
        if response.status_code < 300:
            spec = operation["responses"][str(response.status_code)]["content"]
            jsonschema.validate(data, _json_schema(spec["application/json"]["schema"], components))
            assert response["ETag"] == f'W/"{data["version"]}"'
        else:
            assert isinstance(data, dict)
            assert data

    check()
    print(form, sorted(seen.items()))
    # The run reached the services (some writes succeeded) and their refusals.
    assert seen.keys() & {200, 201}, seen
    assert seen.keys() >= {400, 404, 428}, seen
