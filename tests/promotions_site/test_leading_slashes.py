"""`//api_gateway/...` (Capillary's example URLs, a base URL ending in `/` joined to a path starting with
one) serves the documented routes; every unknown URL on an API path answers the JSON 404 envelope.

Django's test client parses `//host/path` as a URL with a host, so these requests set `PATH_INFO`
themselves, as a WSGI server passes the request line's path.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.test.client import FakePayload
from prometheus_client import REGISTRY

from promotions.models import PromotionType
from redemptions.models import Redemption
from tests.factories import CustomerFactory, PromotionFactory
from tests.redemptions.support import body as redemption_body
from tests.redemptions.support import line


def send(client, method: str, path: str, data=None, **extra):
    """`path` exactly as a WSGI server would pass it (no URL parsing of a leading `//`)."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, **extra}
    if data is not None:
        payload = json.dumps(data).encode()
        environ |= {
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(payload)),
            "wsgi.input": FakePayload(payload),
        }
    return client.request(**environ)


def request_count(**labels) -> float:
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


@pytest.mark.parametrize("slashes", ["//", "///"])
def test_get_promotion_through_doubled_leading_slash(api, org, slashes):
    # given
    promotion = PromotionFactory(org=org)
    # when
    response = send(api, "GET", f"{slashes}api_gateway/v1/promotions/{promotion.pk}")
    # then
    assert response.status_code == 200
    assert response.json()["data"]["id"] == promotion.pk


def test_redeem_through_doubled_leading_slash(api, org):
    # given: a POS promotion (redeemed directly) and a customer
    promotion = PromotionFactory(org=org, type=PromotionType.POS)
    customer = CustomerFactory(org=org)
    data = redemption_body(customer, txn="TXN-SLASH", line_items=[line(promotion)])
    # when
    response = send(api, "POST", "//api_gateway/v1/promotions/redemptions", data)
    # then
    assert response.status_code == 200, response.content
    assert response.json()["data"]["transactionIdentifier"] == "TXN-SLASH"
    assert Redemption.objects.filter(org=org, transaction_identifier="TXN-SLASH").count() == 1


def test_access_log_and_metrics_see_the_collapsed_path(api, org):
    # given
    promotion = PromotionFactory(org=org)
    labels = {"route": "promotion-detail", "method": "GET", "status": "200"}
    before = request_count(**labels)
    access_log = logging.getLogger("promotions_site.access")
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    access_log.addHandler(handler)
    # when
    try:
        send(api, "GET", f"//api_gateway/v1/promotions/{promotion.pk}")
    finally:
        access_log.removeHandler(handler)
    # then: counted under the route's name, logged under the path the route serves
    assert request_count(**labels) - before == 1
    [record] = records
    assert record.getMessage().startswith(f"GET /api_gateway/v1/promotions/{promotion.pk} 200")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("//api_gateway/v1/nothing/here", {"errors": [{"code": 404, "message": "Not found."}]}),
        ("/api_gateway/v1/promotions//x/earn", {"errors": [{"code": 404, "message": "Not found."}]}),
        ("/api_gateway", {"errors": [{"code": 404, "message": "Not found."}]}),
        ("/v3", {"errors": [{"code": 404, "message": "Not found."}]}),
        (
            "//v2/promotion/nothing",
            {"warnings": [], "errors": [{"status": False, "code": 404, "message": "Not found."}]},
        ),
    ],
)
def test_unknown_api_urls_answer_the_json_404_envelope(api, path, body):
    response = send(api, "GET", path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == body


def test_unknown_non_api_urls_keep_django_pages(client, db):
    # then: outside the API (the admin, the site) a person reads the answers: HTML, the admin's login
    assert send(client, "GET", "/no/such/page")["Content-Type"].startswith("text/html")
    admin = send(client, "GET", "//admin/")
    assert admin.status_code == 302
    assert admin["Location"] == "/admin/login/?next=/admin/"


@pytest.mark.parametrize(
    ("path", "location"), [("//api/docs", "/api/docs/"), ("///admin", "/admin/"), ("//evil.example", None)]
)
def test_leading_slashes_never_make_an_open_redirect(client, db, path, location):
    # when: a path that Django's APPEND_SLASH would redirect
    response = send(client, "GET", path)
    # then: the redirect stays on this site (never a protocol-relative //host/...)
    assert response.get("Location") == location
    assert not (response.get("Location") or "").startswith("//")
