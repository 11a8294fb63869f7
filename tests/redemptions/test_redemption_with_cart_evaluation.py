"""POST /redemptions under REDEMPTION_WITH_CART_EVALUATION: a redemption completes one evaluation, and
the cart's reservation becomes the redemption (docs/cart-locks.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from promotions.rules import org_rules_forget
from redemptions.invariants import violations
from redemptions.models import CartLock, Redemption, RedemptionCounter, RedemptionLine
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, EarnedPromotionFactory, OrganizationFactory, PromotionFactory
from tests.redemptions.support import body, codes, redeem
from tests.redemptions.test_cart_locks import (
    CART_100_OFF,
    CART_OVER_1500,
    WITH_EVALUATION,
    cancel,
    cart,
    evaluate,
    pos_promotion,
)
from wallets.models import EarnedPromotion


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def org(db):
    return OrganizationFactory(redemption_strategy=WITH_EVALUATION)


def evaluated(api, customer, **extra) -> dict:
    response = evaluate(api, cart(customer, **extra))
    assert response.status_code == 200, response.content
    return response.json()["data"]


def bound(customer, data, txn="TXN-1", discount="100", **changes) -> dict:
    """The redemption of an evaluation's cart, each applied promotion as a cart-level line."""
    lines = [
        {
            "promotionId": applied["promotionId"],
            "redemptionCount": applied["redemptionCount"],
            "discount": discount,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
        for applied in data["appliedPromotions"]
    ]
    fields = {
        "promotionEvaluationId": data["evaluationId"],
        "appliedPromotionIdentifiers": [applied["identifier"] for applied in data["appliedPromotions"]],
        "amount": 2000,
    }
    fields.update(changes)
    return body(customer, txn=txn, redemptions=lines, **fields)


def counter(promotion):
    return RedemptionCounter.objects.get(restriction__promotion=promotion, scope="")


def test_the_redemption_of_the_evaluated_cart_turns_its_reservation_into_the_redemption(org, api):
    # given an open cart reserving a unit of a Promotion limit
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)
    assert (counter(promotion).used, counter(promotion).reserved) == (0, 1)

    # when the cart is redeemed
    response = redeem(api, bound(customer, data))

    # then the redemption is recorded, bound to its evaluation, and the unit moves from reserved to used
    assert response.status_code == 200, response.content
    redemption = Redemption.objects.get()
    assert redemption.evaluation_id == data["evaluationId"]
    lock = CartLock.objects.get()
    assert (lock.status, lock.redemption_id) == ("REDEEMED", redemption.pk)
    assert (counter(promotion).used, counter(promotion).reserved) == (1, 0)
    assert evaluate(api, cart(customer)).status_code == 200  # the customer may open a new cart


def test_a_replay_returns_the_recorded_answer(org, api):
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    request = bound(customer, evaluated(api, customer))
    first = redeem(api, request)

    again = redeem(api, request)

    assert again.status_code == 200
    assert again.content == first.content
    assert Redemption.objects.count() == 1
    assert counter(promotion).used == 1


def test_a_smaller_discount_is_accepted_a_larger_one_is_804(org, api):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)

    over = redeem(api, bound(customer, data, discount="100.01"))
    under = redeem(api, bound(customer, data, discount="60", txn="TXN-2"))

    assert over.status_code == 400
    assert codes(over) == [804]
    assert under.status_code == 200, under.content


@pytest.mark.parametrize(
    "change",
    [
        {"appliedPromotionIdentifiers": None},
        {"appliedPromotionIdentifiers": []},
        {"appliedPromotionIdentifiers": ["eyJ4IjoxfQ=="]},
    ],
)
def test_identifiers_that_differ_from_the_evaluation_are_802(org, api, change):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)

    response = redeem(api, bound(customer, data, **change))

    assert response.status_code == 400
    assert codes(response) == [802]
    assert not Redemption.objects.exists()
    assert CartLock.objects.get().status == "OPEN"


def test_another_promotion_than_the_evaluated_one_is_802(org, api):
    pos_promotion(org, limit=5)
    other = PromotionFactory(org=org, type="POS")
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)
    request = bound(customer, data)
    request["redemptions"][0]["promotionId"] = other.pk

    response = redeem(api, request)

    assert response.status_code == 400
    assert codes(response) == [802]


def test_without_an_evaluation_id_or_with_an_unknown_one_is_803(org, api):
    pos_promotion(org, limit=5)
    customer, other = CustomerFactory.create_batch(2, org=org)
    data = evaluated(api, customer)

    missing = redeem(api, bound(customer, data, promotionEvaluationId=None))
    unknown = redeem(api, bound(customer, data, promotionEvaluationId="0" * 24))
    not_theirs = redeem(api, bound(other, data))

    for response in (missing, unknown, not_theirs):
        assert response.status_code == 400
        assert codes(response) == [803]
    assert not Redemption.objects.exists()


def test_an_evaluation_redeemed_by_another_transaction_is_803(org, api):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)
    assert redeem(api, bound(customer, data)).status_code == 200

    response = redeem(api, bound(customer, data, txn="TXN-2"))

    assert response.status_code == 400
    assert codes(response) == [803]
    assert Redemption.objects.count() == 1


def test_a_cancelled_or_expired_cart_is_803(org, api):
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    cancelled = evaluated(api, customer)
    cancel(api, customer, cancelled["evaluationId"])
    expired = evaluated(api, customer)
    past = timezone.now() - dt.timedelta(seconds=1)
    CartLock.objects.filter(pk=expired["evaluationId"]).update(
        created_at=past - dt.timedelta(minutes=5), expires_at=past
    )

    for data, txn in ((cancelled, "T1"), (expired, "T2")):
        response = redeem(api, bound(customer, data, txn=txn))
        assert response.status_code == 400
        assert codes(response) == [803]
    assert (counter(promotion).used, counter(promotion).reserved) == (0, 0)


def test_the_wallet_instance_the_cart_reserved_is_the_one_redeemed(org, api):
    # given two instances; the evaluation used the one that expires first
    promotion = PromotionFactory(org=org, type="CUSTOMER", condition=CART_OVER_1500, action=CART_100_OFF)
    customer = CustomerFactory(org=org)
    soon = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, valid_till=timezone.now() + dt.timedelta(days=2)
    )
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    data = evaluated(api, customer)
    assert data["appliedPromotions"][0]["promotionId"] == promotion.pk

    response = redeem(api, bound(customer, data))

    assert response.status_code == 200, response.content
    assert RedemptionLine.objects.get().earned_promotion_id == soon.pk
    assert EarnedPromotion.objects.get(pk=soon.pk).status == "REDEEMED"


def test_with_locking_off_the_redemption_is_still_bound_and_checked(db):
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION, cart_locking_enabled=False)
    from rest_framework.test import APIClient

    from tests.conftest import basic_auth
    from tests.factories import ApiClientFactory

    client = ApiClientFactory(org=org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    data = evaluated(api, customer)
    assert not CartLock.objects.exists()

    assert redeem(api, bound(customer, data)).status_code == 200
    again = redeem(api, bound(customer, data, txn="TXN-2"))

    assert codes(again) == [803]
    assert counter(promotion).used == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_customers_racing_evaluate_then_redeem_for_the_last_unit_exactly_one_gets_it():
    # given a promotion with one unit left and 20 customers at 20 tills
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = pos_promotion(org, limit=1)
    customers = CustomerFactory.create_batch(20, org=org)

    # when each evaluates and redeems what it was offered, all at once
    def call(api, index):
        customer = customers[index]
        response = evaluate(api, cart(customer))
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        if not data["appliedPromotions"]:
            return "not offered"
        redeemed = redeem(api, bound(customer, data, txn=f"T{index}"))
        return "redeemed" if redeemed.status_code == 200 else f"refused {codes(redeemed)}"

    results = run_concurrently(20, call, org=org, threads=20)

    # then exactly one gets it, and the limit's counter holds exactly that unit
    assert Counter(results) == {"redeemed": 1, "not offered": 19}
    row = counter(promotion)
    assert (row.used, row.reserved) == (1, 0)
    assert Redemption.objects.filter(org=org).count() == 1
    assert violations([org.pk]) == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_a_bound_redemption_record_once():
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    [data] = run_concurrently(1, lambda api, _: evaluate(api, cart(customer)).json()["data"], org=org)
    request = bound(customer, data)

    results = run_concurrently(
        20, lambda api, _: (lambda r: (r.status_code, r.content))(redeem(api, request)), org=org, threads=20
    )

    assert {status for status, _ in results} == {200}
    assert len({content for _, content in results}) == 1
    assert Redemption.objects.filter(org=org).count() == 1
    row = counter(promotion)
    assert (row.used, row.reserved) == (1, 0)
