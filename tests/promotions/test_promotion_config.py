"""GET /api_gateway/v1/promotions/config: promotion summaries, the includeExpired / includeInactive
flags, promotionIds, org isolation, bad input, and the route ahead of `{promotionId}`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from promotions.serializers import reward_text
from promotions_site.timefmt import to_epoch_ms, to_iso
from tests.factories import PromotionFactory, PromotionRestrictionFactory

URL = "/api_gateway/v1/promotions/config"


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["promotionId"] for item in response.json()["data"]]


@pytest.fixture
def promotions(org):
    now = timezone.now()
    return {
        "running": PromotionFactory(org=org, name="running"),
        "inactive": PromotionFactory(org=org, name="inactive", active=False),
        "ended": PromotionFactory(
            org=org, name="ended", start_date=now - dt.timedelta(days=9), end_date=now - dt.timedelta(days=1)
        ),
    }


def test_summary_shape(api, org):
    # given
    promotion = PromotionFactory(
        org=org, name="200 off on 1500", message_label="200 off", custom_field_values={"channel": "POS"},
        action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "200.000000"}},
    )  # fmt: skip
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=2)
    echoed = api.get(f"/api_gateway/v1/promotions/{promotion.pk}").json()["data"]["promotionRestrictions"]
    # when
    response = api.get(URL)
    # then
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "promotionId": promotion.pk,
                "promotionName": "200 off on 1500",
                "promotionType": "CUSTOMER",
                "expiry": to_epoch_ms(promotion.end_date),
                "expiryISO": to_iso(promotion.end_date),
                "description": "200 off",
                "reward": "200 off the cart",
                "isActive": True,
                "customFieldValues": {"channel": "POS"},
                # the limits as the promotion's own API echoes them
                "promotionRestrictions": echoed,
            }
        ],
        "errors": [],
    }
    assert echoed["Customer"][0]["kpi"] == "REDEMPTION"


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", {"running"}),
        ("?includeExpired=true", {"running", "ended"}),
        ("?includeInactive=true", {"running", "inactive"}),
        ("?includeExpired=true&includeInactive=true", {"running", "inactive", "ended"}),
        ("?includeExpired=false&includeInactive=false", {"running"}),
    ],
)
def test_flags(api, promotions, query, expected):
    assert set(ids(api.get(URL + query))) == {promotions[name].pk for name in expected}


def test_promotion_ids_narrow_and_another_orgs_ids_are_left_out(api, other_org, promotions):
    theirs = PromotionFactory(org=other_org)
    query = f"?includeInactive=true&promotionIds={promotions['inactive'].pk},{theirs.pk},{'0' * 24}"
    assert ids(api.get(URL + query)) == [promotions["inactive"].pk]


def test_only_the_callers_org(api, org, other_org):
    mine = PromotionFactory(org=org)
    PromotionFactory(org=other_org)
    assert ids(api.get(URL)) == [mine.pk]


@pytest.mark.parametrize(
    "query",
    ["?includeExpired=maybe", "?includeInactive=2", "?limit=0", "?limit=abc", "?promotionIds=" + "a" * 25],
)
def test_bad_query_is_400(api, query):
    response = api.get(URL + query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_config_is_not_read_as_a_promotion_id(api, org):
    # `/promotions/config` is its own route, not `/promotions/{promotionId}` with id "config"
    PromotionFactory(org=org)
    response = api.get(URL)
    assert response.status_code == 200 and isinstance(response.json()["data"], list)


def test_read_only_client_reads(read_api, org):
    promotion = PromotionFactory(org=org)
    assert ids(read_api.get(URL)) == [promotion.pk]


@pytest.mark.parametrize(
    "action, text",
    [
        ({"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": "10.000000"}}, "10% off the cart"),
        ({"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": "12.500000"}}, "12.5 off the items"),
        ({"type": "FREE_PRODUCT", "freeProductAction": {}}, "1 item(s) free"),
        ({"type": "FIXED_PRICE", "fixedPriceAction": {"value": "99.000000"}}, "at a fixed price of 99"),
        (
            {"type": "PER_UNIT", "perUnitAction": {"rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": "5.000000"}}, "perUnitKPI": "QUANTITY", "perUnitDivider": "2.000000"}},
            "5 off the items, for every 2 units",
        ),
        ({"type": "TENDER", "tenderBasedAction": {"type": "ABSOLUTE", "value": "50.000000"}}, "50 off the tender"),
    ],
)  # fmt: skip
def test_reward_text(action, text):
    assert reward_text(action) == text
