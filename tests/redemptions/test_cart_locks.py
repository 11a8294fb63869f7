"""Cart locks: an evaluation under REDEMPTION_WITH_CART_EVALUATION reserves what it applied for the
customer; pending carts list them; cancel and expiry give the units back (docs/cart-locks.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from promotions.rules import org_rules_forget
from redemptions.cart_locks import cart_locks_release_expired, cart_locks_sweep
from redemptions.models import CartLock, Evaluation, RedemptionCounter
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)

URL = "/api_gateway/v1/promotions/evaluate"
CART_OVER_1500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}
WITH_EVALUATION = "REDEMPTION_WITH_CART_EVALUATION"


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def org(db):
    return OrganizationFactory(redemption_strategy=WITH_EVALUATION)


def cart(customer, **extra) -> dict:
    body = {
        "amount": "2000.00",
        "customerId": customer.pk,
        "cartItems": [{"sku": "A", "amount": "2000.00", "qty": "1"}],
    }
    body.update(extra)
    return body


def pos_promotion(org, limit=None, level="Promotion", **kwargs):
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, **kwargs)
    if limit is not None:
        PromotionRestrictionFactory(promotion=promotion, level=level, kpi="REDEMPTION", limit=limit)
    return promotion


def evaluate(api, body):
    return api.post(URL, body, format="json")


def codes(response) -> list[int]:
    return [error["code"] for error in response.json()["errors"]]


def applied(response) -> list[str]:
    return [entry["promotionId"] for entry in response.json()["data"]["appliedPromotions"]]


def reserved(promotion, scope="") -> Decimal:
    row = RedemptionCounter.objects.filter(restriction__promotion=promotion, scope=scope).first()
    return row.reserved if row else Decimal(0)


def pending(api, customer):
    return api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}/evaluations/pending_carts")


def cancel(api, customer, evaluation_id, method="put", singular=False):
    word = "evaluation" if singular else "evaluations"
    url = f"/api_gateway/v1/promotions/customer/{customer.pk}/{word}/{evaluation_id}/cancel"
    return getattr(api, method)(url)


# --- Evaluate: the lock ---------------------------------------------------------------------------


def test_an_evaluation_opens_a_cart_that_reserves_the_promotion_limit(org, api):
    # given a POS promotion with a Promotion limit of 5
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)

    # when the customer's cart is evaluated
    response = evaluate(api, cart(customer))

    # then the promotion applies and its cart reserves one unit for five minutes
    assert response.status_code == 200, response.content
    assert applied(response) == [promotion.pk]
    lock = CartLock.objects.get()
    assert lock.pk == response.json()["data"]["evaluationId"]
    assert (lock.status, lock.customer_id) == ("OPEN", customer.pk)
    assert lock.expires_at - lock.created_at == dt.timedelta(seconds=300)
    assert reserved(promotion) == 1
    assert RedemptionCounter.objects.get().used == 0


def test_a_second_cart_of_the_customer_is_refused_116_and_nothing_is_written(org, api):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    first = evaluate(api, cart(customer))

    second = evaluate(api, cart(customer))

    assert second.status_code == 409
    assert codes(second) == [116]
    assert first.json()["data"]["evaluationId"] in second.json()["errors"][0]["message"]
    assert Evaluation.objects.count() == 1
    assert CartLock.objects.count() == 1


def test_re_evaluating_the_same_cart_reverses_its_reservation_and_reserves_afresh(org, api):
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    first = evaluate(api, cart(customer)).json()["data"]["evaluationId"]

    again = evaluate(api, cart(customer, cartEvaluationId=first))

    assert again.status_code == 200, again.content
    second = again.json()["data"]["evaluationId"]
    assert second != first
    assert dict(CartLock.objects.values_list("pk", "status")) == {first: "REPLACED", second: "OPEN"}
    assert reserved(promotion) == 1


def test_re_evaluating_a_cart_that_is_not_open_is_120(org, api):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)

    response = evaluate(api, cart(customer, cartEvaluationId="0" * 24))

    assert response.status_code == 404
    assert codes(response) == [120]


def test_other_customers_are_not_blocked_but_are_not_offered_reserved_units(org, api):
    # given a promotion with one unit left, reserved by one customer's open cart
    promotion = pos_promotion(org, limit=1)
    first, second = CustomerFactory.create_batch(2, org=org)
    assert applied(evaluate(api, cart(first))) == [promotion.pk]

    # when another customer evaluates
    response = evaluate(api, cart(second))

    # then that customer is answered, without the reserved unit
    assert response.status_code == 200
    assert applied(response) == []
    assert CartLock.objects.filter(status="OPEN").count() == 1


def test_a_customer_limit_is_reserved_in_the_customer_scope(org, api):
    promotion = pos_promotion(org, limit=2, level="Customer")
    customer = CustomerFactory(org=org)

    evaluate(api, cart(customer))

    assert reserved(promotion, scope=str(customer.pk)) == 1


def test_a_wallet_instance_held_by_one_open_cart_is_not_offered_to_another(org, api):
    # given an org allowing two open carts and a customer holding one single-use instance
    org.cart_lock_max_pending_carts = 2
    org.save()
    promotion = PromotionFactory(org=org, type="CUSTOMER", condition=CART_OVER_1500, action=CART_100_OFF)
    customer = CustomerFactory(org=org)
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)

    first = evaluate(api, cart(customer))
    second = evaluate(api, cart(customer))

    assert first.json()["data"]["appliedPromotions"][0]["promotionId"] == promotion.pk
    assert second.status_code == 200
    assert applied(second) == []
    assert CartLock.objects.filter(status="OPEN").count() == 1  # the second applied nothing: no cart
    assert CartLock.objects.get().units.get().earned_promotion_id == instance.pk


def test_an_evaluation_that_applies_nothing_opens_no_cart(org, api):
    customer = CustomerFactory(org=org)

    response = evaluate(api, cart(customer))

    assert response.status_code == 200
    assert not CartLock.objects.exists()


def test_an_anonymous_cart_locks_nothing(org, api):
    pos_promotion(org, limit=5)

    response = evaluate(api, {"amount": "2000", "cartItems": [{"sku": "A", "amount": "2000", "qty": "1"}]})

    assert response.status_code == 200
    assert not CartLock.objects.exists()


@pytest.mark.parametrize(
    ("strategy", "locking"),
    [
        ("REDEMPTION_WITHOUT_CART_EVALUATION", True),
        ("REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED", True),
        (WITH_EVALUATION, False),
    ],
)
def test_no_lock_without_cart_evaluation_strategy_or_with_locking_off(db, strategy, locking):
    org = OrganizationFactory(redemption_strategy=strategy, cart_locking_enabled=locking)
    client = ApiClientFactory(org=org)
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)

    assert applied(evaluate(api, cart(customer))) == [promotion.pk]
    assert evaluate(api, cart(customer)).status_code == 200
    assert not CartLock.objects.exists()
    assert reserved(promotion) == 0


def test_the_lock_ttl_is_the_org_setting(org, api):
    org.cart_lock_ttl_seconds = 90
    org.save()
    pos_promotion(org)
    customer = CustomerFactory(org=org)

    evaluate(api, cart(customer))

    lock = CartLock.objects.get()
    assert lock.expires_at - lock.created_at == dt.timedelta(seconds=90)


# --- Expiry ---------------------------------------------------------------------------------------


def _expire(lock_id):
    past = timezone.now() - dt.timedelta(seconds=1)
    CartLock.objects.filter(pk=lock_id).update(created_at=past - dt.timedelta(seconds=300), expires_at=past)


def test_an_expired_cart_is_released_on_the_next_evaluation_and_a_new_cart_opens(org, api):
    promotion = pos_promotion(org, limit=1)
    customer, other = CustomerFactory.create_batch(2, org=org)
    first = evaluate(api, cart(customer)).json()["data"]["evaluationId"]
    _expire(first)

    # the other customer now gets the unit the expired cart held
    response = evaluate(api, cart(other))

    assert applied(response) == [promotion.pk]
    assert CartLock.objects.get(pk=first).status == "EXPIRED"
    assert reserved(promotion) == 1


def test_an_expired_cart_is_released_once_by_read_then_sweep(org, api):
    promotion = pos_promotion(org, limit=3)
    customer = CustomerFactory(org=org)
    first = evaluate(api, cart(customer)).json()["data"]["evaluationId"]
    _expire(first)

    assert pending(api, customer).json()["data"]["tempRedemptionDetails"] == []
    assert cart_locks_sweep(now=timezone.now()) == 0
    assert cart_locks_release_expired(now=timezone.now()) == 0

    assert CartLock.objects.get().status == "EXPIRED"
    assert reserved(promotion) == 0


def test_the_sweep_task_releases_expired_carts_of_every_org(org, api):
    from redemptions.tasks import cart_locks_expire_task

    promotion = pos_promotion(org, limit=3)
    customer = CustomerFactory(org=org)
    _expire(evaluate(api, cart(customer)).json()["data"]["evaluationId"])

    assert cart_locks_expire_task() == 1
    assert reserved(promotion) == 0


# --- Pending carts --------------------------------------------------------------------------------


def test_pending_carts_lists_the_open_cart_in_the_documented_shape(org, api):
    promotion = pos_promotion(org, limit=5, name="promotion-cart")
    customer = CustomerFactory(org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]

    response = pending(api, customer)

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    [entry] = body["data"]["tempRedemptionDetails"]
    assert entry["cartEvaluationId"] == evaluation_id
    assert entry["validTillTime"] - entry["startTime"] == 300_000
    assert entry["appliedPromotions"] == [
        {
            "promotionId": promotion.pk,
            "earnedPromotionId": None,
            "promotionName": "promotion-cart",
            "redemptionCount": 1,
            "discount": "100.000000",
        }
    ]


def test_pending_carts_of_a_customer_without_any_is_an_empty_list(org, api):
    customer = CustomerFactory(org=org)

    response = pending(api, customer)

    assert response.status_code == 200
    assert response.json() == {"data": {"tempRedemptionDetails": []}, "errors": []}


def test_pending_carts_of_an_unknown_or_other_orgs_customer_is_404(org, api):
    stranger = CustomerFactory(org=OrganizationFactory())

    response = pending(api, stranger)

    assert response.status_code == 404
    assert codes(response) == [404]


# --- Cancel ---------------------------------------------------------------------------------------


def test_cancel_closes_the_cart_gives_back_its_units_and_answers_the_documented_body(org, api):
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]

    response = cancel(api, customer, evaluation_id)

    assert response.status_code == 200
    assert response.json() == {
        "data": {"status": True, "code": 201, "message": "Successfully closed pending cart."},
        "errors": [],
    }
    assert CartLock.objects.get().status == "CANCELLED"
    assert reserved(promotion) == 0
    assert evaluate(api, cart(customer)).status_code == 200  # a new cart may open


@pytest.mark.parametrize(("method", "singular"), [("post", False), ("put", True), ("post", True)])
def test_cancel_answers_post_and_the_singular_path(org, api, method, singular):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]

    response = cancel(api, customer, evaluation_id, method=method, singular=singular)

    assert response.status_code == 200
    assert CartLock.objects.get().status == "CANCELLED"


def test_cancel_twice_is_200_and_gives_back_once(org, api):
    promotion = pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]
    cancel(api, customer, evaluation_id)

    response = cancel(api, customer, evaluation_id)

    assert response.status_code == 200
    assert reserved(promotion) == 0


def test_cancel_of_an_unknown_evaluation_or_another_customers_is_the_documented_404(org, api):
    pos_promotion(org, limit=5)
    customer, other = CustomerFactory.create_batch(2, org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]

    for response in (
        cancel(api, customer, "0" * 24),
        cancel(api, other, evaluation_id),
        cancel(api, customer, "not-an-id"),
        cancel(api, customer, "%00"),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "errors": [{"code": 404, "message": "Passed evaluation log id is not found"}]
        }
    assert CartLock.objects.get().status == "OPEN"


def test_cancel_needs_write_access(org, api):
    pos_promotion(org, limit=5)
    customer = CustomerFactory(org=org)
    evaluation_id = evaluate(api, cart(customer)).json()["data"]["evaluationId"]
    reader = ApiClientFactory(org=org, access="READ")
    from rest_framework.test import APIClient

    read_only = APIClient()
    read_only.credentials(HTTP_AUTHORIZATION=basic_auth(reader.username, reader.plain_secret))

    response = cancel(read_only, customer, evaluation_id)

    assert response.status_code == 403
    assert CartLock.objects.get().status == "OPEN"
