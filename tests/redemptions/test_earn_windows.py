"""Earn limits whose window resets (docs/code-redemption.md): counted per earned instance in
RedemptionCounter rows (scope `earn:<id>`), in the window of the transaction date, on both redemption
paths; a reversal gives the unit back to its window; the instance is not REDEEMED when a window is
full. An Earn limit without a reset keeps the instance's own counters."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.rules import org_rules_forget
from promotions.windows import window_at, window_rule_stored
from promotions_site.timefmt import to_epoch_ms
from redemptions.invariants import violations
from redemptions.models import CartLockUnit, RedemptionCounter, earn_scope
from tests.concurrency import run_concurrently
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion

REDEMPTIONS = "/api_gateway/v1/promotions/redemptions"
STRATEGIES = ["REDEMPTION_WITHOUT_CART_EVALUATION", "REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED"]
CART_OVER_500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}
REPORTED_CART = [{"sku": "A", "amount": "1000", "qty": "1"}]


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


def client_of(org) -> APIClient:
    client = ApiClientFactory(org=org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    return api


def monthly_reward(org, limit=1, lifetime=None):
    promotion = PromotionFactory(
        org=org,
        type="REWARD",
        start_date=timezone.now() - dt.timedelta(days=120),
        condition=CART_OVER_500,
        action=CART_100_OFF,
    )
    restriction = PromotionRestrictionFactory(
        promotion=promotion,
        level="Earn",
        kpi="REDEMPTION",
        limit=limit,
        window_type="FIXED",
        fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )
    if lifetime is not None:
        PromotionRestrictionFactory(promotion=promotion, level="Earn", kpi="REDEMPTION", limit=lifetime)
    return promotion, restriction


def instance_of(promotion, customer):
    return EarnedPromotionFactory(
        org=promotion.org,
        customer=customer,
        promotion=promotion,
        valid_till=timezone.now() + dt.timedelta(days=60),
    )


def sale(customer, promotion, instance, txn, when):
    return body(
        customer,
        txn,
        redemptions=[line(promotion, instance)],
        transactionDate=int(when.timestamp() * 1000),
        cartItems=REPORTED_CART,
    )


def window_used(instance) -> dict[dt.date, Decimal]:
    return dict(
        RedemptionCounter.objects.filter(scope=earn_scope(instance.pk)).values_list("window_start", "used")
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_monthly_earn_limit_of_one_redeems_an_instance_once_a_month_on_both_paths(db, strategy):
    # the plain strategy runs the one-statement function (PostgreSQL), the capped one the general path
    org = OrganizationFactory(redemption_strategy=strategy)
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, _ = monthly_reward(org)
    instance = instance_of(promotion, customer)
    now = timezone.now()
    last_month = now - dt.timedelta(days=40)

    assert redeem(api, sale(customer, promotion, instance, "OLD", last_month)).status_code == 200
    assert redeem(api, sale(customer, promotion, instance, "NOW", now)).status_code == 200
    refused = redeem(api, sale(customer, promotion, instance, "NOW2", now))

    assert refused.status_code == 409 and codes(refused) == [409]
    assert sorted(window_used(instance).values()) == [1, 1]
    instance.refresh_from_db()
    assert instance.status == EarnedPromotion.Status.ACTIVE  # usable again next month
    assert instance.redemption_count == 2
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_reversal_gives_the_unit_back_to_its_window(db, strategy):
    org = OrganizationFactory(redemption_strategy=strategy)
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, _ = monthly_reward(org)
    instance = instance_of(promotion, customer)
    now = timezone.now()
    last_month = now - dt.timedelta(days=40)
    assert redeem(api, sale(customer, promotion, instance, "OLD", last_month)).status_code == 200
    assert redeem(api, sale(customer, promotion, instance, "NOW", now)).status_code == 200

    reversed_ = api.post(f"{REDEMPTIONS}/reverse", {"transactionIdentifier": "OLD"}, format="json")

    assert reversed_.status_code == 200, reversed_.content
    assert sorted(window_used(instance).values()) == [0, 1]
    assert codes(redeem(api, sale(customer, promotion, instance, "NOW2", now))) == [409]
    api.post(f"{REDEMPTIONS}/reverse", {"transactionIdentifier": "NOW"}, format="json")
    assert redeem(api, sale(customer, promotion, instance, "NOW3", now)).status_code == 200
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_lifetime_earn_limit_beside_the_window_still_makes_the_instance_redeemed(db, strategy):
    org = OrganizationFactory(redemption_strategy=strategy)
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, _ = monthly_reward(org, limit=1, lifetime=2)
    instance = instance_of(promotion, customer)
    now = timezone.now()
    assert (
        redeem(api, sale(customer, promotion, instance, "A", now - dt.timedelta(days=40))).status_code == 200
    )
    instance.refresh_from_db()
    assert instance.status == EarnedPromotion.Status.ACTIVE
    assert redeem(api, sale(customer, promotion, instance, "B", now)).status_code == 200

    instance.refresh_from_db()
    assert instance.status == EarnedPromotion.Status.REDEEMED


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_concurrent_redemptions_of_one_instance_with_a_window_limit_of_n_give_exactly_n(strategy):
    org = OrganizationFactory(redemption_strategy=strategy)
    customer = CustomerFactory(org=org)
    promotion, _ = monthly_reward(org, limit=3)
    instance = instance_of(promotion, customer)
    now = timezone.now() - dt.timedelta(minutes=5)

    def call(api, index):
        response = redeem(api, sale(customer, promotion, instance, f"T{index}", now))
        return response.status_code, tuple(codes(response)) if response.status_code != 200 else ()

    results = run_concurrently(12, call, org=org, threads=12)

    assert Counter(results) == {(200, ()): 3, (409, (409,)): 9}
    assert sum(window_used(instance).values()) == 3
    assert violations([org.pk]) == []


def test_evaluate_does_not_offer_an_instance_at_its_windows_limit_and_offers_it_after_an_old_use(db):
    org = OrganizationFactory()
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, _ = monthly_reward(org)
    instance = instance_of(promotion, customer)
    cart = {"customerId": customer.pk, "amount": "1000", "cartItems": REPORTED_CART}

    def offered() -> list[str]:
        response = api.post("/api_gateway/v1/promotions/evaluate", cart, format="json")
        assert response.status_code == 200, response.content
        return [entry["promotionId"] for entry in response.json()["data"]["appliedPromotions"]]

    now = timezone.now()
    assert (
        redeem(api, sale(customer, promotion, instance, "OLD", now - dt.timedelta(days=40))).status_code
        == 200
    )
    assert offered() == [promotion.pk]  # last month's use leaves this month's unit
    assert redeem(api, sale(customer, promotion, instance, "NOW", now)).status_code == 200
    assert offered() == []


def test_a_cart_reserves_the_instances_window_unit_and_its_redemption_takes_it(db):
    org = OrganizationFactory(redemption_strategy="REDEMPTION_WITH_CART_EVALUATION")
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, restriction = monthly_reward(org)
    instance = instance_of(promotion, customer)
    cart = {"customerId": customer.pk, "amount": "1000", "cartItems": REPORTED_CART}

    response = api.post("/api_gateway/v1/promotions/evaluate", cart, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert [entry["promotionId"] for entry in data["appliedPromotions"]] == [promotion.pk]
    row = RedemptionCounter.objects.get(scope=earn_scope(instance.pk))
    assert (row.restriction_id, row.used, row.reserved) == (restriction.pk, 0, 1)
    # the instance's own units: none (its only Earn REDEMPTION limit resets)
    assert list(CartLockUnit.objects.values_list("scope", "earned_promotion_id")) == [
        (earn_scope(instance.pk), None)
    ]
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []

    bound = body(
        customer,
        "BOUND",
        redemptions=[line(promotion, instance)],
        promotionEvaluationId=data["evaluationId"],
        appliedPromotionIdentifiers=[entry["identifier"] for entry in data["appliedPromotions"]],
        amount=1000,
    )
    response = redeem(api, bound)

    assert response.status_code == 200, response.content
    row.refresh_from_db()
    assert (row.used, row.reserved) == (1, 0)
    instance.refresh_from_db()
    assert instance.status == EarnedPromotion.Status.ACTIVE
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []


def test_the_wallet_shows_the_instances_earn_limit_remaining_in_the_current_window(db):
    org = OrganizationFactory()
    api, customer = client_of(org), CustomerFactory(org=org)
    promotion, _ = monthly_reward(org, limit=2, lifetime=5)
    instance = instance_of(promotion, customer)
    now = timezone.now()
    assert (
        redeem(api, sale(customer, promotion, instance, "OLD", now - dt.timedelta(days=40))).status_code
        == 200
    )
    assert redeem(api, sale(customer, promotion, instance, "NOW", now)).status_code == 200
    start = window_at(
        window_rule_stored(promotion.restrictions.get(window_kind="FIXED")),
        tz=org.tz,
        at=now,
        promotion_start=promotion.start_date,
    )

    response = api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}", {"includeRedemptions": "true"})

    assert response.status_code == 200, response.content
    [item] = response.json()["data"]
    earn = {r["windowType"]: r for r in item["restrictions"]["Earn"]}
    assert earn["FIXED"]["remainingRedemption"] == 1  # 2 this month, 1 used this month
    assert earn["FIXED"]["periodStart"] == to_epoch_ms(start.start)
    assert earn["FIXED"]["periodEnd"] == to_epoch_ms(start.end)
    assert earn["OVERALL"]["remainingRedemption"] == 3  # 5 in all, 2 used
    assert earn["OVERALL"]["periodStart"] is None
