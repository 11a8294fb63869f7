"""A NUL character (`%00`, `\\u0000`) in any input answers what that input documents, never a 500.

PostgreSQL stores no NUL in text: one that reaches a query is a database error. The test walks every
API route and method (tests/promotions_site/api_routes.py) with a NUL in each input in turn (each path
parameter, query parameter, body value and credential), and every admin changelist with a NUL in its
search, each of its filters, its date drill-down, its ordering and page, and its object pages.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.urls import reverse
from rest_framework.test import APIClient

from promotions.models import User
from tests import factories
from tests.conftest import basic_auth
from tests.promotions_site.api_routes import CASES, Call, Ids, api_routes, case_id, org_seed
from tests.promotions_site.test_authorization import assert_answer

NUL = "\x00"


def _nul_leaves(value, path=()):
    """(path, body with the leaf at `path` replaced by a NUL) for every leaf of a JSON body."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        yield path, NUL
        return
    for key, child in items:
        for leaf_path, replaced in _nul_leaves(child, (*path, key)):
            copy = dict(value) if isinstance(value, dict) else list(value)
            copy[key] = replaced
            yield leaf_path, copy


def _path_variants(pattern: str, path: str):
    """The call's path with each of its route's parameters (`<str:promotion_id>`) replaced by a NUL."""
    pattern_parts, path_parts = pattern.split("/"), path.lstrip("/").split("/")
    for index, part in enumerate(pattern_parts):
        if part.startswith("<"):
            for value in ("%00", "1%00"):
                replaced = [*path_parts[:index], value, *path_parts[index + 1 :]]
                yield f"path {part}={value}", "/" + "/".join(replaced)


def _send(api: APIClient, method: str, path: str, query: dict | None, body, **headers):
    url = path + (f"?{urlencode(query)}" if query else "")
    if method == "GET":
        return api.get(url, **headers)
    return getattr(api, method.lower())(url, body, format="json", **headers)


def _auth(seed) -> dict:
    return {"HTTP_AUTHORIZATION": basic_auth(seed.client.username, seed.client.plain_secret)}


def _basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@pytest.mark.parametrize("key", sorted(CASES), ids=case_id)
def test_api_answers_a_nul_in_each_input_as_documented(key, org):
    # given
    mine = org_seed(org)
    case, method = CASES[key], key[1]
    pattern = api_routes()[key]
    auth = _auth(mine)

    def call() -> Call:
        return case.call(Ids(mine))

    # (what, path, query, body, headers, the statuses it may answer)
    variants = []
    base = call()
    for what, path in _path_variants(pattern, base.path):
        variants.append((what, path, base.query, base.body, auth, {404}))
    for name in base.query or {}:
        fresh = call()
        variants.append((f"query {name}", fresh.path, {**fresh.query, name: NUL}, fresh.body, auth, {400}))
    if method != "GET" and base.body is not None:
        for leaf, _ in _nul_leaves(base.body):
            fresh = call()
            body = dict(_nul_leaves(fresh.body))[leaf]
            variants.append((f"body {'.'.join(map(str, leaf))}", fresh.path, fresh.query, body, auth, {400}))
    credential_refused = {case.status} if case.public else {401}
    for what, headers in [
        ("Basic username", {"HTTP_AUTHORIZATION": _basic(f"{mine.client.username}{NUL}", "x")}),
        ("Basic username NUL only", {"HTTP_AUTHORIZATION": _basic(NUL, "x")}),
        ("Basic secret", {"HTTP_AUTHORIZATION": _basic(mine.client.username, NUL)}),
        ("token header", {"HTTP_X_CAP_API_OAUTH_TOKEN": f"tok{NUL}en"}),
        ("Bearer token", {"HTTP_AUTHORIZATION": f"Bearer tok{NUL}en"}),
    ]:
        fresh = call()
        variants.append((what, fresh.path, fresh.query, fresh.body, headers, credential_refused))
    # Inputs a NUL does not make invalid (an unknown parameter, a replaced request id, a header the
    # route ignores) may be served: each on a seed of its own, as a served write uses up the seed's rows.
    for what, query, headers, statuses in [
        ("query key", {NUL: "1"}, {}, {case.status}),
        ("X-Request-ID", {}, {"HTTP_X_REQUEST_ID": f"r{NUL}"}, {case.status}),
        ("Idempotency-Key", {}, {"HTTP_IDEMPOTENCY_KEY": f"k{NUL}"}, {400, case.status}),
    ]:
        seed = org_seed(factories.OrganizationFactory())
        fresh = case.call(Ids(seed))
        variants.append(
            (
                what,
                fresh.path,
                {**(fresh.query or {}), **query},
                fresh.body,
                {**_auth(seed), **headers},
                statuses,
            )
        )

    # when / then
    for what, path, query, body, headers, statuses in variants:
        response = _send(APIClient(), method, path, query, body, **headers)
        assert response.status_code in statuses, f"{what}: {response.status_code} {response.content[:300]!r}"
        if response.status_code >= 400:
            assert_answer(response, path, response.status_code, tuple(_codes(response)))


def _codes(response) -> list[int]:
    return [error["code"] for error in response.json().get("errors") or ()]


# --- the admin -----------------------------------------------------------------------------------

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _make(model, org):
    if model._meta.label == "auth.Group":
        return model.objects.create(name="Marketers")
    return factories.make_in_org(model, org)


@pytest.mark.parametrize("model,model_admin", REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_admin_changelist_answers_a_nul_in_each_input_with_a_page_or_400(client, org, model, model_admin):
    # given: a superuser (every filter, the org filter too) and a row, so every filter offers choices
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123-456"))
    obj = _make(model, org)
    listing = client.get(_admin_url(model, "changelist"))
    assert listing.status_code == 200
    changelist = listing.context["cl"]
    parameters = {"q", "o", "p", "_changelist_filters", NUL}
    for spec in changelist.filter_specs:
        parameters.update(spec.expected_parameters())
    if changelist.date_hierarchy:
        parameters.update(f"{changelist.date_hierarchy}__{part}" for part in ("year", "month", "day"))
    urls = [f"{_admin_url(model, 'changelist')}?{urlencode({name: value})}" for name in parameters
            for value in (NUL, f"1{NUL}")]  # fmt: skip
    change = _admin_url(model, "change", obj.pk)
    urls += [
        re.sub(r"/[^/]+/change/$", f"/{quoted}/{view}/", change)
        for quoted in ("%00", "1%00")
        for view in ("change", "delete", "history")
    ]
    # when / then
    for url in urls:
        response = client.get(url)
        assert response.status_code in {200, 302, 400, 404}, f"{url}: {response.status_code}"


def test_admin_pages_of_our_own_answer_a_nul_with_400(client, org):
    # given
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123-456"))
    promotion = factories.PromotionFactory(org=org)
    urls = [
        reverse("admin:wallets_bulkjob_issue", args=[NUL]),
        reverse("admin:wallets_bulkjob_issue", args=[promotion.pk]) + "?identifier_type=%00",
        reverse("admin:wallets_bulkjob_earn") + f"?promotion={promotion.pk}%00",
        reverse("admin-dashboard") + "?org=%00",
        reverse("admin:autocomplete") + "?app_label=wallets&model_name=bulkjob&field_name=promotion&term=%00",
        reverse("admin:login") + "?next=%00",
    ]
    # when / then
    for url in urls:
        response = client.get(url)
        assert response.status_code == 400, f"{url}: {response.status_code}"
        assert b"NUL" in response.content
