"""GET /api_gateway/v1/promotions/till/{tillId}: the promotions evaluable at a till, by its store
hierarchy and storeCriteria; the till by id or code; org isolation and unknown tills."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import ConceptFactory, PromotionFactory, StoreFactory, TillFactory, ZoneFactory

URL = "/api_gateway/v1/promotions/till/{}"


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["data"]}


def scoped(org, kind: str, values: list[int], operator: str = "IN", **extra):
    return PromotionFactory(
        org=org, store_criteria={"type": kind, "values": values, "operator": operator}, **extra
    )


@pytest.fixture
def till(org):
    """A till of store 501, in zone 31 under zone 30, and in concept 41."""
    north = ZoneFactory(org=org, external_id=30)
    city = ZoneFactory(org=org, external_id=31, parent=north)
    brand = ConceptFactory(org=org, external_id=41)
    store = StoreFactory(org=org, external_id=501, zone=city, concept=brand)
    return TillFactory(org=org, store=store, code="till.north")


def test_store_criteria_is_applied_through_the_tills_hierarchy(api, org, till):
    # given
    everywhere = PromotionFactory(org=org)
    this_store = scoped(org, "STORE", [501])
    other_store = scoped(org, "STORE", [502])
    parent_zone = scoped(org, "ZONE", [30])
    other_zone = scoped(org, "ZONE", [99])
    concept = scoped(org, "CONCEPT", [41])
    not_here = scoped(org, "STORE", [501], operator="NOT_IN")
    not_elsewhere = scoped(org, "ZONE", [99], operator="NOT_IN")
    # when
    found = listed(api.get(URL.format(till.pk)))
    # then
    assert found == {everywhere.pk, this_store.pk, parent_zone.pk, concept.pk, not_elsewhere.pk}
    assert not found & {other_store.pk, other_zone.pk, not_here.pk}


def test_only_running_promotions(api, org, till):
    now = timezone.now()
    running = PromotionFactory(org=org)
    PromotionFactory(org=org, active=False)
    PromotionFactory(org=org, start_date=now - dt.timedelta(days=9), end_date=now - dt.timedelta(days=1))
    PromotionFactory(org=org, start_date=now + dt.timedelta(days=1), end_date=now + dt.timedelta(days=9))
    assert listed(api.get(URL.format(till.pk))) == {running.pk}


def test_the_till_by_its_code(api, org, till):
    promotion = scoped(org, "STORE", [501])
    assert listed(api.get(URL.format("till.north"))) == {promotion.pk}


def test_the_items_are_full_promotion_objects(api, org, till):
    promotion = PromotionFactory(org=org)
    [item] = api.get(URL.format(till.pk)).json()["data"]
    assert item == api.get(f"/api_gateway/v1/promotions/{promotion.pk}").json()["data"]


@pytest.mark.parametrize("till_id", ["999999999", "no.such.till", "0", "99999999999999999999999", "Till%00"])
def test_an_unknown_till_is_404(api, till_id):
    response = api.get(URL.format(till_id))
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Passed till is not found"}]}


def test_another_orgs_till_is_404_and_their_promotions_never_listed(api, org, other_org, till):
    # given
    theirs = TillFactory(org=other_org)
    PromotionFactory(org=other_org)
    mine = PromotionFactory(org=org)
    # then
    assert api.get(URL.format(theirs.pk)).status_code == 404
    assert api.get(URL.format(theirs.code)).status_code == 404
    assert listed(api.get(URL.format(till.pk))) == {mine.pk}
