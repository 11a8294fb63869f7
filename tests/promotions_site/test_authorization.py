"""The authorization matrix: every API route and method (found in the URL configuration) called
anonymously, with a read-only client, as its own org, and naming another org's ids.

The cases live in tests/promotions_site/api_routes.py; a route or method without one fails the first test.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from rest_framework.permissions import SAFE_METHODS
from rest_framework.test import APIClient

from tests.conftest import basic_auth
from tests.promotions_site.api_routes import CASES, MISSING, Ids, api_routes, case_id, org_seed, send

PROTECTED = sorted(key for key, case in CASES.items() if not case.public)
FOREIGN = [(key, index) for key in sorted(CASES) for index in range(len(CASES[key].foreign))]
ORG_MODELS = [
    model
    for model in apps.get_models()
    if any(field.name == "org" and field.concrete for field in model._meta.get_fields())
]


def error_codes(response) -> tuple[int, ...]:
    return tuple(error["code"] for error in response.json().get("errors") or ())


def assert_answer(response, path: str, status: int, codes: tuple[int, ...]) -> None:
    """`status` with these error codes, in the envelope the path documents."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    if path.startswith("/v2/") and codes:
        assert set(body) == {"warnings", "errors"}
        assert all(error["status"] is False for error in body["errors"])
    elif codes:
        assert all(set(error) >= {"code", "message"} for error in body["errors"])
    assert error_codes(response) == codes


def snapshot(org) -> dict[str, list[dict]]:
    """Every row of every model that belongs to `org`."""
    return {
        model._meta.label: list(model._default_manager.filter(org=org).order_by("pk").values())
        for model in ORG_MODELS
    }


@pytest.fixture
def mine(org):
    return org_seed(org)


@pytest.fixture
def theirs(other_org):
    return org_seed(other_org)


def test_every_api_route_has_a_case():
    routes = api_routes()
    missing = sorted(set(routes) - set(CASES))
    assert not missing, f"API routes without a case in tests/promotions_site/api_routes.py CASES: {missing}"
    assert not set(CASES) - set(routes), f"cases of routes that do not exist: {set(CASES) - set(routes)}"


@pytest.mark.parametrize("key", sorted(CASES), ids=case_id)
def test_anonymous_is_401(key, mine):
    case, method = CASES[key], key[1]
    call = case.call(Ids(mine))
    before = snapshot(mine.org)
    # when: no credentials, and a known username with a wrong secret
    anonymous = send(APIClient(), method, call)
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=basic_auth(mine.client.username, "not-the-secret"))
    wrong_secret = send(wrong, method, call)
    # then
    if case.public:
        assert anonymous.status_code == case.status, anonymous.content
        return
    for response in (anonymous, wrong_secret):
        assert_answer(response, call.path, 401, (401,))
        assert response["WWW-Authenticate"]
    assert snapshot(mine.org) == before


@pytest.mark.parametrize("key", PROTECTED, ids=case_id)
def test_read_only_client_reads_and_cannot_write(key, mine):
    case, method = CASES[key], key[1]
    before = snapshot(mine.org)
    response = send(mine.read_api, method, case.call(Ids(mine)))
    if method in SAFE_METHODS or case.read_access:
        assert response.status_code == case.status, response.content
        return
    assert_answer(response, case.call(Ids(mine)).path, 403, (403,))
    assert snapshot(mine.org) == before


@pytest.mark.parametrize("key", sorted(CASES), ids=case_id)
def test_own_org_is_served(key, mine, theirs):
    case, method = CASES[key], key[1]
    before = snapshot(theirs.org)
    response = send(mine.api, method, case.call(Ids(mine)))
    assert response.status_code == case.status, response.content
    if case.check is not None:
        case.check(response, mine, theirs)
    assert snapshot(theirs.org) == before


@pytest.mark.parametrize(
    ("key", "index"), FOREIGN, ids=lambda v: case_id(v) if isinstance(v, tuple) else str(v)
)
def test_another_orgs_ids_answer_as_unknown_ones(key, index, mine, theirs):
    case, method = CASES[key], key[1]
    probe = case.foreign[index]
    before = snapshot(theirs.org)
    # when: the same call naming ids that exist in no org, then ids of the other org
    unknown = send(mine.api, method, case.call(Ids(mine, MISSING, probe.ids)))
    call = case.call(Ids(mine, theirs, probe.ids))
    response = send(mine.api, method, call)
    # then: the documented answer, the same as for unknown ids, and nothing of theirs touched
    assert_answer(response, call.path, probe.status, probe.codes)
    assert (unknown.status_code, error_codes(unknown)) == (response.status_code, error_codes(response))
    if probe.check is not None:
        probe.check(response, mine, theirs)
    assert snapshot(theirs.org) == before


@pytest.mark.parametrize("key", sorted({key[0]: key for key in CASES}.values()), ids=case_id)  # one per route
def test_options_and_head_are_behind_the_same_door(key, mine):
    """DRF answers OPTIONS (metadata) and HEAD (as GET) on every route without a case of their own."""
    case = CASES[key]
    call = case.call(Ids(mine))
    for method in ("options", "head"):
        response = getattr(APIClient(), method)(call.path)
        if case.public:
            assert response.status_code < 500, (method, response.status_code)
        else:
            assert response.status_code == 401, (method, response.status_code)
            assert response["WWW-Authenticate"]
