"""POST /redemptions on the org's REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED strategy: each discount is
checked against what the engine gives for the reported cart (804); the other strategies record as told."""

from __future__ import annotations

import pytest

from promotions.models import Organization, RedemptionStrategy
from promotions.rules import org_rules_forget
from redemptions.models import Redemption
from tests.factories import PromotionFactory
from tests.redemptions.support import body, codes, line, redeem

FUEL = {"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["FUEL"]}], "kpi": "NONE"}}  # fmt: skip
TEN_PERCENT_OFF_IT = {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 10, "includeItemsFromConditionSet": True}}  # fmt: skip
FUEL_CART = [{"sku": "FUEL", "amount": "1000", "qty": "12"}, {"sku": "SNACK", "amount": "50", "qty": "1"}]


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def fuel_promotion(org):
    return PromotionFactory(org=org, type="POS", condition=FUEL, action=TEN_PERCENT_OFF_IT)


def strategy(org, value: str) -> None:
    Organization.objects.filter(pk=org.pk).update(redemption_strategy=value)


def fuel_redemption(customer, promotion, discount, cart_items=FUEL_CART, txn="TXN-1"):
    data = body(customer, txn=txn, line_items=[line(promotion, sku="FUEL", discount=discount)], amount=1050)
    if cart_items is not None:
        data["cartItems"] = cart_items
    return data


def test_capped_accepts_a_discount_up_to_what_the_cart_gives(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)

    exact = redeem(api, fuel_redemption(customer, fuel_promotion, 100))
    below = redeem(api, fuel_redemption(customer, fuel_promotion, 60, txn="TXN-2"))

    assert exact.status_code == 200, exact.content
    assert below.status_code == 200, below.content
    assert Redemption.objects.count() == 2


def test_capped_refuses_a_discount_over_what_the_cart_gives(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)

    response = redeem(api, fuel_redemption(customer, fuel_promotion, "100.01"))

    assert response.status_code == 400, response.content
    assert codes(response) == [804]
    message = response.json()["errors"][0]["message"]
    assert fuel_promotion.pk in message and "100.01" in message and "100" in message
    assert not Redemption.objects.exists()


def test_capped_refuses_a_promotion_the_cart_does_not_qualify_for(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)

    response = redeem(api, fuel_redemption(customer, fuel_promotion, 1, cart_items=[FUEL_CART[1]]))

    assert response.status_code == 400, response.content
    assert codes(response) == [804]
    assert "does not apply to the reported cart" in response.json()["errors"][0]["message"]
    assert not Redemption.objects.exists()


def test_capped_adds_a_promotions_lines_together(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)
    data = fuel_redemption(customer, fuel_promotion, 60)
    data["lineItems"].append(line(fuel_promotion, sku="FUEL", discount=60))

    response = redeem(api, data)

    assert codes(response) == [804]


def test_capped_needs_the_reported_cart(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)

    response = redeem(api, fuel_redemption(customer, fuel_promotion, 100, cart_items=None))

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("cartItems: required")


def test_without_cart_evaluation_records_the_discount_as_reported(api, org, customer, fuel_promotion):
    # (REDEMPTION_WITH_CART_EVALUATION checks each redemption against its evaluation instead:
    # tests/redemptions/test_redemption_with_cart_evaluation.py)
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION)

    over = redeem(api, fuel_redemption(customer, fuel_promotion, 500))
    no_cart = redeem(api, fuel_redemption(customer, fuel_promotion, 500, cart_items=None, txn="TXN-2"))

    assert over.status_code == 200, over.content
    assert no_cart.status_code == 200, no_cart.content


def test_the_default_strategy_is_without_cart_evaluation(org):
    assert Organization.objects.get(pk=org.pk).redemption_strategy == (
        RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION
    )


def test_a_null_cart_item_is_400(api, org, customer, fuel_promotion):
    strategy(org, RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED)

    response = redeem(api, fuel_redemption(customer, fuel_promotion, 100, cart_items=[None]))

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("cartItems.0:")
