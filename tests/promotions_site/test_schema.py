"""The OpenAPI schema describes every API route, and the docs page needs no CDN."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re

import yaml
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from promotions_site.errors import ErrorCode, is_api_path


def api_routes() -> set[str]:
    """Every API route in the URL configuration, as an OpenAPI path."""
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                route = "/" + prefix + str(pattern.pattern)
                if is_api_path(route) and not route.startswith("/api/"):
                    routes.add(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + m.group(1) + "}", route))

    walk(get_resolver().url_patterns)
    return routes


@functools.cache
def _schema_served() -> dict:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.load(response.content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def served_schema() -> dict:
    """The schema /api/schema/ serves, fetched and parsed once per run (about a second each time) for
    the tests that read it; each gets its own copy."""
    return copy.deepcopy(_schema_served())


def test_schema_lists_every_api_route_with_its_errors(db):
    # when
    response = APIClient().get("/api/schema/")
    # then
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert api_routes() <= set(schema["paths"]), api_routes() - set(schema["paths"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"] or path.startswith("/v3/oauth"), (path, method)
            assert "500" in operation["responses"], (path, method)
    security = schema["components"]["securitySchemes"]
    assert security["basicAuth"]["scheme"] == "basic"
    assert security["oauthToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-CAP-API-OAUTH-TOKEN",
        "description": security["oauthToken"]["description"],
    }


def test_schema_as_json_with_credentials(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/v3/oauth/token/generate" in response.json()["paths"]


def test_docs_page_loads_its_assets_from_this_server(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"(src|href)=\"https?://", html), "the docs page must not load from a CDN"


def test_each_api_gets_its_own_request_component(db):
    # given: several APIs each nesting a class named InputSerializer
    schema = served_schema()

    def request_properties(path):
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return set(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])

    # then: each request body is its own API's input
    assert "earnedPromotions" in request_properties("/api_gateway/v1/promotions/earn/bulk")
    assert "earnedFromId" in request_properties("/api_gateway/v1/promotions/{promotion_id}/earn")
    assert "secret" in request_properties("/v3/oauth/token/generate")
    assert "earnRevokeDetails" in request_properties("/api_gateway/v1/promotions/revokeEarn")


def test_schema_generates_without_warnings_and_validates(db, tmp_path):
    # Every field resolves to a type, every enum and operation id is named once: no guessing by drf-spectacular.
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000


def test_schema_documents_negotiation_errors_and_empty_query_parameters(db):
    schema = served_schema()
    for path, operations in schema["paths"].items():
        envelope = "V2ErrorEnvelope" if path.startswith("/v2/") else "ErrorEnvelope"
        for method, operation in operations.items():
            responses = operation["responses"]
            # 406 anywhere (an Accept header JSON cannot satisfy), 415 wherever a body is read
            assert responses["406"]["content"]["application/json"]["schema"]["$ref"].endswith(envelope)
            assert ("415" in responses) == ("requestBody" in operation), (path, method)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    # an optional query parameter sent empty reads as not sent
                    assert parameter.get("allowEmptyValue") is not parameter.get("required", False)


def test_negotiation_errors_are_answered_in_the_envelope(api):
    # when
    not_acceptable = api.get("/api_gateway/v1/promotions", HTTP_ACCEPT="text/html")
    unsupported = api.post(
        "/v2/promotion/issue?identifierName=mobile&identifierValue=1&source=INSTORE",
        "programId=1",
        content_type="text/plain",
    )
    # then
    assert not_acceptable.status_code == 406
    assert not_acceptable.json() == {"errors": [{"code": 406, "message": ErrorCode.NOT_ACCEPTABLE.message}]}
    assert unsupported.status_code == 415
    assert unsupported.json()["errors"][0]["code"] == 415 and unsupported.json()["warnings"] == []


def test_every_operation_has_a_summary(db):
    schema = served_schema()
    missing = [
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not operation.get("summary", "").strip()
    ]
    assert missing == []


def test_no_operation_is_listed_twice_modulo_a_trailing_slash(db):
    # given: `/api_gateway/v1/promotions` and `/api_gateway/v1/promotions/` both serve list and create
    schema = served_schema()
    # then: each operation appears once, under the path Capillary documents it at
    operations = [
        (method, path.rstrip("/"))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method in {"get", "put", "post", "patch", "delete"} and not operation.get("deprecated")
    ]
    assert len(operations) == len(set(operations)), sorted(operations)
    assert not schema["paths"]["/api_gateway/v1/promotions"]["post"].get("deprecated")
    assert not schema["paths"]["/api_gateway/v1/promotions/"]["get"].get("deprecated")
    # and the other path's, which answers too, as a deprecated alias (so no method a path answers is
    # missing from the schema: a client or a fuzzer reading it meets no undeclared method)
    assert schema["paths"]["/api_gateway/v1/promotions"]["get"]["deprecated"] is True
    assert schema["paths"]["/api_gateway/v1/promotions/"]["post"]["deprecated"] is True


# Keys whose date ends a validity: in an example sent as it is, a past one answers 706 (promotion ended).
EXPIRING_DATE_KEYS = {"endDate", "endDateISO", "validTill", "validTillISO"}


def example_dates(value, key: str = ""):
    """(key, datetime) for every end or validity date in an example value, epoch ms or ISO 8601."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name != "currentCycle":  # a limit's cycle ends; the example does not expire with it
                yield from example_dates(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from example_dates(item, key)
    elif key in EXPIRING_DATE_KEYS and value is not None:
        if isinstance(value, int):
            yield key, dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        else:
            yield key, dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def schema_examples(node):
    """Every example value in the schema: operations' request and response examples, and components'."""
    if isinstance(node, dict):
        for name, item in node.items():
            if name == "examples" and isinstance(item, dict):
                yield from (example["value"] for example in item.values() if "value" in example)
            elif name == "example":
                yield item
            else:
                yield from schema_examples(item)
    elif isinstance(node, list):
        for item in node:
            yield from schema_examples(item)


def test_no_example_date_expires_within_a_year(db):
    # given
    schema = served_schema()
    horizon = timezone.now() + dt.timedelta(days=366)
    # when
    dates = [found for example in schema_examples(schema) for found in example_dates(example)]
    # then: the create-promotion, earn, wallet and issueBulk examples all carry end or validity dates
    assert len(dates) >= 8, dates
    assert [(key, when) for key, when in dates if when < horizon] == []


def test_every_request_list_describes_its_items(db):
    # given: the server validates each item of every list it reads (redemption lineItems, earnIds, ...)
    schema = served_schema()
    components = schema["components"]["schemas"]
    undescribed, seen = [], set()

    def walk(node, where):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                walk(components[name], name)
            return
        if node.get("type") == "array" and not node.get("items"):
            undescribed.append(where)
        for key in ("items", "allOf", "oneOf", "anyOf"):
            parts = node.get(key) or []
            for part in parts if isinstance(parts, list) else [parts]:
                walk(part, where)
        for name, part in node.get("properties", {}).items():
            walk(part, f"{where}.{name}")

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                walk(operation["requestBody"]["content"]["application/json"]["schema"], f"{method} {path}")
    # then
    assert undescribed == []
    line_item = components["RedemptionCreateApiInputLineItemRequest"]
    assert set(line_item["required"]) == {
        "promotionId",
        "redemptionCount",
        "discount",
        "discountAppliedOnQuantity",
        "promotionAppliedOnQuantity",
    }
    assert "earnedPromotionId" in line_item["properties"]
    assert components["CustomerCreateRequest"]["properties"]["mobile"]["pattern"] == r"^\s*\+?[0-9]{8,15}\s*$"
