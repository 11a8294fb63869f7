"""The wallet's `remainingRedemption` subtracts what open carts reserve (docs/cart-locks.md): a limit's
remaining is limit - used - reserved, never below 0, on both read paths."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from promotions.rules import org_rules_forget
from promotions.windows import window_at, window_rule_stored
from redemptions.models import CartLock, RedemptionCounter
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from wallets.selectors import customer_get, wallet_get, wallet_read
from wallets.serializers import WALLET_RESPONSE

pytestmark = pytest.mark.django_db

CART_OVER_1500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}
MONTHLY = {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}}


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def org(db):
    return OrganizationFactory(redemption_strategy="REDEMPTION_WITH_CART_EVALUATION")


def remaining(api, customer) -> dict[str, list]:
    response = api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}", {"includeRedemptions": "true"})
    assert response.status_code == 200, response.content
    [item] = response.json()["data"]
    return {
        level: [limit["remainingRedemption"] for limit in limits]
        for level, limits in item["restrictions"].items()
    }


def test_an_open_cart_lock_is_not_remaining(org, api):
    # given: a customer's instance of a promotion with limits at every level
    promotion = PromotionFactory(org=org, type="CUSTOMER", condition=CART_OVER_1500, action=CART_100_OFF)
    for level, limit, window in (
        ("Customer", 3, {}),
        ("Promotion", 10, MONTHLY),
        ("Earn", 2, {}),
        ("Cart", 1, {}),
    ):
        PromotionRestrictionFactory(promotion=promotion, level=level, kpi="REDEMPTION", limit=limit, **window)
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="DISCOUNT", limit=Decimal("150"))
    customer = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    before = remaining(api, customer)

    # when: an evaluation applies the promotion and holds it in an open cart
    evaluation = api.post(
        "/api_gateway/v1/promotions/evaluate",
        {
            "amount": "2000.00",
            "customerId": customer.pk,
            "cartItems": [{"sku": "A", "amount": "2000.00", "qty": "1"}],
        },
        format="json",
    )
    assert evaluation.status_code == 200, evaluation.content
    assert CartLock.objects.filter(status="OPEN").count() == 1
    assert RedemptionCounter.objects.filter(reserved__gt=0).exists()

    # then: the wallet's remaining subtracts what the cart reserves, at every level but Cart
    assert before == {"Cart": [1], "Customer": [3], "Promotion": ["150.000000", 10], "Earn": [2]}
    assert remaining(api, customer) == {
        "Cart": [1],
        "Customer": [2],
        "Promotion": ["50.000000", 9],
        "Earn": [1],
    }
    # and both read paths agree (PostgreSQL's one statement and the ORM path)
    if connection.vendor == "postgresql":
        options = {"limit": 10, "include_redemptions": True, "now": timezone.now()}
        orm = wallet_get(customer=customer_get(org=org, customer_id=customer.pk), **options)
        one_statement = wallet_read(org=org, customer_id=customer.pk, **options)
        assert json.dumps(WALLET_RESPONSE.render(one_statement), default=str) == json.dumps(
            WALLET_RESPONSE.render(orm), default=str
        )

    # when: the cart is cancelled, everything is remaining again
    evaluation_id = evaluation.json()["data"]["evaluationId"]
    cancel = api.post(f"/api_gateway/v1/promotions/customer/{customer.pk}/evaluations/{evaluation_id}/cancel")
    assert cancel.status_code == 200, cancel.content
    assert remaining(api, customer) == before


def test_remaining_is_never_below_zero(org, api):
    # given: a counter whose used and reserved together exceed the limit (a limit lowered under it)
    promotion = PromotionFactory(org=org, type="CUSTOMER")
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=5, **MONTHLY
    )
    customer = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    window = window_at(
        window_rule_stored(restriction), tz=org.tz, at=timezone.now(), promotion_start=promotion.start_date
    )
    RedemptionCounter.objects.create(
        org=org, restriction=restriction, scope="", window_start=window.key, used=4, reserved=3, limit=5
    )

    assert remaining(api, customer) == {"Cart": [], "Customer": [], "Promotion": [0], "Earn": []}
