"""The fuzzer's own envelope check refuses what docs/api.md says no error may look like."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.fuzz.test_api_fuzz import error_envelope

V1, V2 = "/api_gateway/v1/promotions/x", "/v2/promotion/issue"


def answer(status: int, body, content_type: str = "application/json"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SimpleNamespace(
        status_code=status, headers={"content-type": [content_type]}, content=content, text=content.decode()
    )


def check(path: str, response):
    return error_envelope(None, response, SimpleNamespace(path=path))


@pytest.mark.parametrize(
    ("path", "response"),
    [
        (V1, answer(404, b"<h1>Not Found</h1>", "text/html")),
        (V1, answer(500, b"Server Error", "application/json")),
        (V1, answer(400, {"detail": "Invalid"})),
        (V1, answer(400, {"errors": []})),
        (V1, answer(400, {"errors": [{"code": "400", "message": "x"}]})),
        (V1, answer(400, {"errors": [{"message": "x"}]})),
        (V1, answer(400, {"errors": [{"code": 400, "message": "x"}], "data": None})),
        (V2, answer(400, {"errors": [{"code": 8015, "message": "x"}]})),
        (V2, answer(400, {"warnings": [], "errors": [{"status": True, "code": 8015, "message": "x"}]})),
    ],
)
def test_refuses_an_error_outside_the_envelope(path, response):
    with pytest.raises(AssertionError, match="documented JSON envelope"):
        check(path, response)


def test_accepts_the_documented_envelopes():
    assert check(V1, answer(404, {"errors": [{"code": 404, "message": "Not found."}]}))
    assert check(
        V1, answer(400, {"errors": [{"promotionId": "a", "code": 731, "message": "Invalid earn id."}]})
    )
    assert check(
        V2, answer(400, {"warnings": [], "errors": [{"status": False, "code": 8015, "message": "x"}]})
    )
    assert check(V1, answer(200, {"data": []})) is None
