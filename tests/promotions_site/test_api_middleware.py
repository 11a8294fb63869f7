"""The API's paths go through a lean middleware stack (`promotions_site/handlers.py`); the answers are the
ones the whole stack gives, byte for byte, headers included.

Each request is sent as a WSGI server sends it, once through `ApiSplitWSGIHandler` (the production
handler, `promotions_site.wsgi.application`) and once through Django's own `WSGIHandler` with the whole
`settings.MIDDLEWARE` on every path, with the same `X-Request-ID`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.handlers.wsgi import WSGIHandler

from promotions.models import PromotionType
from promotions_site.handlers import ApiSplitWSGIHandler, served_by_api_stack
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, CustomerFactory, PromotionFactory
from tests.redemptions.support import URL, body, line

pytestmark = pytest.mark.django_db(transaction=True)  # the handlers close the connection per request


def call(handler, method: str, path: str, *, data: bytes = b"", query: str = "", **headers) -> tuple:
    """(status, headers, body) of `handler` for one request, as a WSGI server passes it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_X_REQUEST_ID": "same-request-id-1",
        "wsgi.input": io.BytesIO(data),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if data:
        environ |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(data))}
    environ |= {"HTTP_" + name.upper(): value for name, value in headers.items()}
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, sorted(response_headers)

    chunks = handler(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return answer["status"], answer["headers"], content


@pytest.fixture
def handlers():
    return ApiSplitWSGIHandler(), WSGIHandler()


@pytest.fixture
def auth(org):
    client = ApiClientFactory(org=org)
    return basic_auth(client.username, client.plain_secret)


def test_paths_served_by_the_api_stack():
    # given / when / then: the REST API's paths, a run of leading slashes reading as one
    for path in ("/api_gateway/v1/promotions/redemptions", "//api_gateway/v1/promotions", "/api_gateway",
                 "/v2/promotion/issue", "/v3/oauth/token/generate"):  # fmt: skip
        assert served_by_api_stack(path), path
    # and not the admin, the Swagger page (CSRF), the schema, the probes or a look-alike prefix
    for path in ("/admin/", "/admin/login/", "/api/docs/", "/api/schema/", "/health/live", "/", "/api_gatewayx",
                 "/metrics"):  # fmt: skip
        assert not served_by_api_stack(path), path


def test_api_stack_leaves_out_only_the_admin_middleware(settings):
    # then: the same order, less the admin's five
    kept = [name for name in settings.MIDDLEWARE if name not in settings.ADMIN_ONLY_MIDDLEWARE]
    assert kept == settings.API_MIDDLEWARE
    assert len(settings.MIDDLEWARE) - len(settings.API_MIDDLEWARE) == 5


@pytest.mark.parametrize(
    "method, path, data, query",
    [
        ("GET", "/api_gateway/v1/promotions/config", b"", "promotionIds=x"),
        ("GET", "/api_gateway/v1/promotions/nope/nope/nope", b"", ""),  # JSON 404
        ("GET", "/api_gateway", b"", ""),
        ("GET", "//api_gateway/v1/promotions/config", b"", ""),
        ("POST", URL, b"{not json", ""),  # 400
        ("POST", URL, b"{}", ""),  # 400 per field
        ("DELETE", URL, b"", ""),  # 405
        ("OPTIONS", URL, b"", ""),
        ("GET", "/api_gateway/v1/promotions/config%00", b"", "a=%00"),
        ("POST", "/v3/oauth/token/generate", b'{"key": "nobody", "secret": "x"}', ""),
    ],
)
def test_api_answers_are_the_whole_stacks(handlers, auth, method, path, data, query):
    # when
    split, whole = (
        call(handler, method, path, data=data, query=query, authorization=auth) for handler in handlers
    )
    # then: status, every header, every byte
    assert split == whole


def test_unauthenticated_and_oversized_answers_are_the_whole_stacks(handlers, settings):
    # when / then: 401 without credentials, 413 over the body cap
    for data in (b'{"a": 1}', b"x" * (settings.API_MAX_BODY_BYTES + 1)):
        split, whole = (call(handler, "POST", URL, data=data) for handler in handlers)
        assert split == whole
        assert split[0].startswith(("401", "413")), split[0]


def test_a_redemption_answers_as_through_the_whole_stack(handlers, org, auth):
    # given: two redemptions of a POS promotion, one through each handler
    promotion = PromotionFactory(org=org, type=PromotionType.POS)
    customer = CustomerFactory(org=org)
    answers = [
        call(handler, "POST", URL, data=json.dumps(body(customer, txn=txn, line_items=[line(promotion)])).encode(),
             authorization=auth)
        for handler, txn in zip(handlers, ("TXN-A", "TXN-B"), strict=True)
    ]  # fmt: skip
    # then: 200, the same headers (the bodies differ by the transaction and the ids only)
    (split_status, split_headers, split_body), (whole_status, whole_headers, whole_body) = answers
    assert split_status == whole_status == "200 OK"
    assert split_headers == whole_headers
    assert json.loads(split_body)["data"]["transactionIdentifier"] == "TXN-A"
    assert json.loads(whole_body)["data"]["transactionIdentifier"] == "TXN-B"
    names = {name for name, _ in split_headers}
    assert {"X-Request-ID", "X-Frame-Options", "X-Content-Type-Options", "Content-Length"} <= names
    assert "Set-Cookie" not in names and "Vary" not in names


def test_admin_keeps_the_whole_stack(handlers):
    # when: the admin's login page, which needs the session and CSRF middleware
    split, whole = (call(handler, "GET", "/admin/login/") for handler in handlers)
    # then: both set the CSRF cookie (its value is random) and answer the same header names
    assert split[0] == whole[0] == "200 OK"
    assert [name for name, _ in split[1]] == [name for name, _ in whole[1]]
    assert any(name == "Set-Cookie" and "csrftoken=" in value for name, value in split[1]), split[1]


def test_the_served_application_freezes_what_it_loaded_and_collects_young_objects_less_often():
    # given a fresh interpreter (the served module changes the process's garbage collector)
    code = "import gc, promotions_site.wsgi; print(gc.get_threshold()[0], gc.get_freeze_count() > 100_000)"
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only"}
    # when the application is loaded as gunicorn loads it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    # then what it loaded is out of the collector's way and the youngest generation holds 50,000 objects
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["50000", "True"]
