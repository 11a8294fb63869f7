"""Capillary's own promotion objects go through create, read, update and list unchanged.

`promotions/examples/capillary-promotion-objects.json` holds, unchanged, the 14 promotion objects of
the example responses of Capillary's public "Get Cart Promotions" page (the create API's schema shows
them as examples too). A client copies such an object (drops
what the server owns, gives it a fresh name and dates) and creates it; each must be accepted, read
back equal (values compared as decimals), updated with its own GET body without a change, and listed
by id. Golden carts per object (one where it applies, one where it does not) belong to the evaluation
engine's tests, which do not exist yet.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from promotions.models import AuditEvent, Promotion
from promotions.schema import CAPILLARY_OBJECTS_FILE

URL = "/api_gateway/v1/promotions"
OBJECTS = json.loads(CAPILLARY_OBJECTS_FILE.read_text())["promotions"]
# What Capillary's server sets, not the client: a copy drops them (the dates are given fresh).
SERVER_OWNED = ("id", "orgId", "createdBy", "createdOn", "lastUpdatedBy", "lastUpdatedOn")
SIX_DECIMALS = re.compile(r"^-?[0-9]+\.[0-9]{6}$")


def as_decimals(value):
    """A JSON value with every number and decimal string as a Decimal, so `"10.000000"` equals 10."""
    if isinstance(value, dict):
        return {key: as_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_decimals(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return Decimal(value)
    return value


VALUE_KEYS = {"value", "limit", "perUnitDivider", "quantity"}


def values(value):
    """Every value of a condition, action or limit (the keys Capillary writes with six decimals)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in VALUE_KEYS:
                yield item
            else:
                yield from values(item)
    elif isinstance(value, list):
        for item in value:
            yield from values(item)


def copied(index: int) -> dict:
    """Fixture object `index` as a client copying it sends it: server-owned fields dropped, a fresh
    name and dates that have not passed."""
    body = {key: value for key, value in copy.deepcopy(OBJECTS[index]).items() if key not in SERVER_OWNED}
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    body["name"] = f"{body['name'][:40]} copy {index}"
    body["startDate"] = int(start.timestamp() * 1000)
    body["endDate"] = int((start + dt.timedelta(days=90)).timestamp() * 1000)
    return body


def assert_echoes(data: dict, sent: dict) -> None:
    """The API's answer holds what was sent: every kept field equal, values compared as decimals;
    condition, action and limits in Capillary's shape, values as six-decimal strings."""
    for key, value in sent.items():
        if key == "campaignId":
            assert data[key] == str(value)
        else:
            assert as_decimals(data[key]) == as_decimals(value), key
    for key in ("condition", "action", "promotionRestrictions"):
        found = list(values(data[key]))
        assert [value for value in found if not SIX_DECIMALS.fullmatch(str(value))] == [], key
        assert all(isinstance(value, str) for value in found), key


CASES = [pytest.param(index, id=obj["name"]) for index, obj in enumerate(OBJECTS)]


def test_the_fixture_is_capillarys_fourteen_objects():
    assert len(OBJECTS) == 14
    assert {obj["action"]["type"] for obj in OBJECTS} == {"CART_BASED", "PRODUCT_BASED", "PER_UNIT"}


@pytest.mark.parametrize("index", CASES)
def test_a_copied_capillary_object_is_created_as_it_stands(api, index):
    # given
    sent = copied(index)

    # when
    response = api.post(URL, sent, format="json")

    # then
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert_echoes(data, sent)
    # Capillary's objects are already in the shape stored and echoed: kept exactly as published
    stored = Promotion.objects.get(pk=data["id"])
    assert (stored.condition, stored.action) == (OBJECTS[index]["condition"], OBJECTS[index]["action"])
    assert (data["condition"], data["action"]) == (OBJECTS[index]["condition"], OBJECTS[index]["action"])
    # store scope and loyalty-only kept as published; an object without them has none (every store)
    assert stored.store_criteria == OBJECTS[index].get("storeCriteria")
    assert stored.is_loyalty_only is OBJECTS[index].get("isLoyaltyOnly", False)
    assert (data["storeCriteria"], data["isLoyaltyOnly"]) == (stored.store_criteria, stored.is_loyalty_only)


@pytest.mark.parametrize("index", CASES)
def test_a_created_object_reads_back_equal_and_its_get_body_puts_back_unchanged(api, index):
    # given
    sent = copied(index)
    created = api.post(URL, sent, format="json").json()["data"]
    stored = Promotion.objects.get(pk=created["id"])

    # when: read, then the read body sent back as the update
    fetched = api.get(f"{URL}/{created['id']}").json()["data"]
    updated = api.put(f"{URL}/{created['id']}", fetched, format="json")

    # then
    assert fetched == created
    assert_echoes(fetched, sent)
    assert updated.status_code == 200, updated.content
    assert {
        key: value for key, value in updated.json()["data"].items() if not key.startswith("lastUpdated")
    } == {key: value for key, value in fetched.items() if not key.startswith("lastUpdated")}
    stored_after = Promotion.objects.get(pk=created["id"])
    assert (stored_after.condition, stored_after.action) == (stored.condition, stored.action)
    assert (stored_after.store_criteria, stored_after.is_loyalty_only) == (
        stored.store_criteria,
        stored.is_loyalty_only,
    )
    update = AuditEvent.objects.get(action="promotion.update", object_id=created["id"])
    assert update.data["changed"] == []


def test_the_objects_are_listed_by_id(api):
    # given
    bodies = [copied(index) for index in range(len(OBJECTS))]
    ids = [api.post(URL, body, format="json").json()["data"]["id"] for body in bodies]

    # when
    listed = api.get(f"{URL}/", {"promotionIds": ",".join(ids)})

    # then
    assert listed.status_code == 200
    by_id = {item["id"]: item for item in listed.json()["data"]}
    assert set(by_id) == set(ids)
    for body, promotion_id in zip(bodies, ids, strict=True):
        assert_echoes(by_id[promotion_id], body)
        assert by_id[promotion_id] == api.get(f"{URL}/{promotion_id}").json()["data"]


def test_the_import_command_takes_the_copied_objects_and_a_second_run_changes_nothing(org, tmp_path):
    # given: the 14 objects as a client copies them, in an import file
    path = tmp_path / "capillary.json"
    path.write_text(json.dumps([copied(index) for index in range(len(OBJECTS))]))

    # when
    first, second = io.StringIO(), io.StringIO()
    call_command("import_promotions", str(path), "--org", str(org.pk), "--no-progress", stdout=first)
    call_command("import_promotions", str(path), "--org", str(org.pk), "--no-progress", stdout=second)

    # then
    assert f"{len(OBJECTS)} created, 0 already existed, 0 failed" in first.getvalue()
    assert f"0 created, {len(OBJECTS)} already existed, 0 failed" in second.getvalue()
    stored = {promotion.name: promotion for promotion in Promotion.objects.for_org(org)}
    for index, obj in enumerate(OBJECTS):
        promotion = stored[copied(index)["name"]]
        assert (promotion.condition, promotion.action) == (obj["condition"], obj["action"])
        assert (promotion.store_criteria, promotion.is_loyalty_only) == (
            obj.get("storeCriteria"),
            obj.get("isLoyaltyOnly", False),
        )
