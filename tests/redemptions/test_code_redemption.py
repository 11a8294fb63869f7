"""Redeem by code (docs/code-redemption.md): evaluate with `promoCodes` (typed or linked codes make their
CODE promotion eligible, each code that does not apply is logged with why), Code limits per code (read
at evaluation, reserved by cart locks, taken at redemption, given back by a reversal), and the code on
the records."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import PromoCode
from promotions.rules import org_rules_forget
from redemptions.evaluation import EvaluationInput, evaluation_create, evaluation_lines
from redemptions.invariants import violations
from redemptions.models import CartLock, CartLockUnit, RedemptionCounter, RedemptionLine, code_scope
from tests.concurrency import run_concurrently
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body, codes, line, redeem

EVALUATE = "/api_gateway/v1/promotions/evaluate"
REDEMPTIONS = "/api_gateway/v1/promotions/redemptions"
CART_OVER_1500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}
CART_300_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 300}}
WITH_EVALUATION = "REDEMPTION_WITH_CART_EVALUATION"


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


def code_promotion(org, limit=1, kpi="REDEMPTION", **fields):
    promotion = PromotionFactory(
        org=org, type="CODE", condition=CART_OVER_1500, action=CART_100_OFF, **fields
    )
    PromotionRestrictionFactory(promotion=promotion, level="Code", kpi=kpi, limit=limit)
    return promotion


def promo_code(promotion, code, customer=None, active=True):
    return PromoCode.objects.create(
        org=promotion.org,
        promotion=promotion,
        code=code,
        customer=customer,
        linked_on=timezone.now() if customer else None,
        active=active,
    )


def cart(customer=None, amount="2000.00", **extra):
    data = {"amount": amount, "cartItems": [{"sku": "A", "amount": amount, "qty": "1"}]}
    if customer is not None:
        data["customerId"] = customer.pk
    data.update(extra)
    return data


def evaluated(api, data) -> dict:
    response = api.post(EVALUATE, data, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def logs(data) -> list[tuple[str, int]]:
    return [(log["promoCode"], log["errorCode"]) for log in data["promoCodeEvaluationLogs"]]


def applied(data) -> list[tuple[str, str | None]]:
    return [(entry["promotionId"], entry.get("promoCode")) for entry in data["appliedPromotions"]]


def used(code, restriction=None) -> Decimal:
    rows = RedemptionCounter.objects.filter(scope=code_scope(code.pk))
    if restriction is not None:
        rows = rows.filter(restriction=restriction)
    return sum((row.used for row in rows), Decimal(0))


# --- Evaluate: golden cases --------------------------------------------------------------------------


def test_a_typed_code_makes_its_promotion_apply_case_insensitively(api, org, customer):
    promotion = code_promotion(org)
    promo_code(promotion, "SAVE100")

    data = evaluated(api, cart(customer, promoCodes=["save100"]))

    assert applied(data) == [(promotion.pk, "SAVE100")]
    assert data["appliedPromotions"][0]["discount"] == "100.000000"
    assert logs(data) == []


def test_a_code_linked_to_the_customer_applies_without_being_typed(api, org, customer):
    promotion = code_promotion(org)
    promo_code(promotion, "MINE100", customer=customer)

    assert applied(evaluated(api, cart(customer))) == [(promotion.pk, "MINE100")]
    # not for another customer, nor for an anonymous cart
    assert applied(evaluated(api, cart(CustomerFactory(org=org)))) == []
    assert applied(evaluated(api, cart())) == []


def test_the_golden_refusals_of_codes(api, org, customer):
    promotion = code_promotion(org, priority=1)
    promo_code(promotion, "OPEN")
    other = CustomerFactory(org=org)
    promo_code(promotion, "THEIRS", customer=other)
    promo_code(promotion, "OFF", active=False)
    full = promo_code(promotion, "FULL")
    RedemptionCounter.objects.create(
        org=org,
        restriction=promotion.restrictions.get(),
        scope=code_scope(full.pk),
        used=1,
        limit=1,
        updated_at=timezone.now(),
    )
    ended = code_promotion(
        org, start_date=timezone.now() - dt.timedelta(days=9), end_date=timezone.now() - dt.timedelta(days=1)
    )
    promo_code(ended, "OLD")

    data = evaluated(api, cart(customer, promoCodes=["nosuch", "THEIRS", "OFF", "FULL", "OLD", "OPEN"]))

    assert logs(data) == [("nosuch", 1001), ("THEIRS", 1005), ("OFF", 1009), ("FULL", 1004), ("OLD", 1002)]
    assert applied(data) == [(promotion.pk, "OPEN")]
    messages = {log["promoCode"]: log["message"] for log in data["promoCodeEvaluationLogs"]}
    assert "another customer" in messages["THEIRS"] and "used up" in messages["FULL"]


def test_a_code_that_does_not_apply_says_why(api, org, customer):
    promotion = code_promotion(org, priority=1)
    promo_code(promotion, "SMALL")
    # the cart does not meet the condition
    assert logs(evaluated(api, cart(customer, amount="1000.00", promoCodes=["SMALL"]))) == [("SMALL", 1020)]
    # an exclusive promotion of a better rank applies alone
    exclusive = PromotionFactory(
        org=org, type="POS", priority=0, condition=CART_OVER_1500, action=CART_300_OFF
    )
    org_rules_forget()  # a factory does not move the org's rules_version
    data = evaluated(api, cart(customer, promoCodes=["SMALL"]))
    assert applied(data) == [(exclusive.pk, None)]
    assert logs(data) == [("SMALL", 1021)]
    assert "exclusive" in data["promoCodeEvaluationLogs"][0]["message"]


def test_one_code_per_promotion_a_second_code_is_logged_1024(api, org, customer):
    promotion = code_promotion(org)
    promo_code(promotion, "FIRST")
    promo_code(promotion, "SECOND")

    data = evaluated(api, cart(customer, promoCodes=["FIRST", "SECOND"]))

    assert applied(data) == [(promotion.pk, "FIRST")]
    assert logs(data) == [("SECOND", 1024)]


def test_an_anonymous_cart_cannot_use_a_linked_code(api, org, customer):
    promotion = code_promotion(org)
    promo_code(promotion, "MINE", customer=customer)

    data = evaluated(api, cart(promoCodes=["MINE"]))

    assert applied(data) == [] and logs(data) == [("MINE", 1005)]


def test_unknown_codes_are_counted_and_read_with_one_query_whatever_their_number(org, customer):
    promotion = code_promotion(org)
    promo_code(promotion, "REAL")

    def run(sent):
        data = EvaluationInput(
            customer_id=None,
            amount=Decimal(2000),
            lines=evaluation_lines([{"sku": "A", "amount": Decimal(2000), "qty": Decimal(1)}]),
            promo_codes=sent,
        )
        with CaptureQueriesContext(connection) as queries:
            outcome = evaluation_create(org=org, data=data, api_client=None)
        code_queries = [q["sql"] for q in queries.captured_queries if "promocode" in q["sql"]]
        return outcome, code_queries

    one, one_queries = run(["GUESS1"])
    many, many_queries = run(["GUESS1", "guess2", "REAL", "GUESS3", "guess1"])

    assert one.unknown_code_count == 1 and len(one_queries) == 1
    # distinct codes: GUESS1 sent twice (any case) counts once
    assert many.unknown_code_count == 3 and len(many_queries) == 1
    assert [entry.promo_code for entry in many.applied] == ["REAL"]


# --- Redeem ------------------------------------------------------------------------------------------


def test_a_redemption_through_a_code_records_it_and_takes_its_code_limit(api, org, customer):
    promotion = code_promotion(org, limit=1)
    code = promo_code(promotion, "ONCE")

    first = redeem(api, body(customer, "T1", redemptions=[line(promotion, promoCode="once")]))
    second = redeem(api, body(customer, "T2", redemptions=[line(promotion, promoCode="ONCE")]))

    assert first.status_code == 200, first.content
    assert second.status_code == 409 and codes(second) == [1004]
    assert RedemptionLine.objects.get().promo_code_id == code.pk
    assert used(code) == 1
    record = api.get(REDEMPTIONS, {"customerId": customer.pk}).json()["data"]
    assert [entry["promoCode"] for entry in record] == ["ONCE"]
    # the code is no longer offered
    assert logs(evaluated(api, cart(customer, promoCodes=["ONCE"]))) == [("ONCE", 1004)]


@pytest.mark.parametrize(
    ("setup", "sent", "expected"),
    [
        ("none", None, 1001),
        ("unknown", "NOSUCH", 1001),
        ("other promotion", "ELSEWHERE", 1001),
        ("inactive", "OFF", 1009),
        ("other customer", "THEIRS", 1005),
    ],
)
def test_a_redemption_naming_a_bad_code_is_refused_and_writes_nothing(
    api, org, customer, setup, sent, expected
):
    promotion = code_promotion(org)
    promo_code(promotion, "OFF", active=False)
    promo_code(promotion, "THEIRS", customer=CustomerFactory(org=org))
    promo_code(code_promotion(org), "ELSEWHERE")
    entry = line(promotion) if sent is None else line(promotion, promoCode=sent)

    response = redeem(api, body(customer, redemptions=[entry]))

    assert codes(response) == [expected], response.content
    assert response.status_code == 400
    assert not RedemptionLine.objects.exists() and not RedemptionCounter.objects.exists()


def test_a_code_on_another_promotion_type_is_400(api, org, customer):
    pos = PromotionFactory(org=org, type="POS")
    response = redeem(api, body(customer, redemptions=[line(pos, promoCode="ANY")]))
    assert response.status_code == 400 and codes(response) == [400]


def test_a_reversal_gives_the_code_unit_back(api, org, customer):
    promotion = code_promotion(org, limit=1)
    code = promo_code(promotion, "BACK")
    assert (
        redeem(api, body(customer, "T1", redemptions=[line(promotion, promoCode="BACK")])).status_code == 200
    )
    assert used(code) == 1

    reversed_ = api.post(f"{REDEMPTIONS}/reverse", {"transactionIdentifier": "T1"}, format="json")

    assert reversed_.status_code == 200, reversed_.content
    assert used(code) == 0
    assert (
        redeem(api, body(customer, "T2", redemptions=[line(promotion, promoCode="BACK")])).status_code == 200
    )
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []


def test_a_monthly_code_limit_counts_each_month_and_a_reversal_gives_back_to_its_month(api, org, customer):
    promotion = PromotionFactory(
        org=org, type="CODE", start_date=timezone.now() - dt.timedelta(days=120), condition=CART_OVER_1500
    )
    restriction = PromotionRestrictionFactory(
        promotion=promotion,
        level="Code",
        kpi="REDEMPTION",
        limit=1,
        window_type="FIXED",
        fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )
    code = promo_code(promotion, "MONTHLY")
    now = timezone.now()
    last_month = now - dt.timedelta(days=40)

    def sale(txn, when):
        return body(
            customer,
            txn,
            redemptions=[line(promotion, promoCode="MONTHLY")],
            transactionDate=int(when.timestamp() * 1000),
        )

    assert redeem(api, sale("OLD", last_month)).status_code == 200
    assert redeem(api, sale("NOW", now)).status_code == 200
    assert codes(redeem(api, sale("NOW2", now))) == [1004]
    assert used(code, restriction) == 2

    api.post(f"{REDEMPTIONS}/reverse", {"transactionIdentifier": "OLD"}, format="json")

    rows = dict(
        RedemptionCounter.objects.filter(scope=code_scope(code.pk)).values_list("window_start", "used")
    )
    assert sorted(rows.values()) == [0, 1]
    assert codes(redeem(api, sale("NOW3", now))) == [1004]  # this month's unit is still used


# --- Cart locks and the bound redemption ---------------------------------------------------------------


@pytest.fixture
def locking_org(db):
    return OrganizationFactory(redemption_strategy=WITH_EVALUATION)


@pytest.fixture
def api_for(db):
    def make(org):
        client = ApiClientFactory(org=org)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
        return api

    return make


def test_a_cart_reserves_the_code_and_its_redemption_takes_it(api_for, locking_org):
    org = locking_org
    api = api_for(org)
    customer = CustomerFactory(org=org)
    promotion = code_promotion(org, limit=1)
    code = promo_code(promotion, "HELD")

    data = evaluated(api, cart(customer, promoCodes=["held"]))

    assert applied(data) == [(promotion.pk, "HELD")]
    row = RedemptionCounter.objects.get(scope=code_scope(code.pk))
    assert (row.used, row.reserved) == (0, 1)
    assert CartLockUnit.objects.get().scope == code_scope(code.pk)
    pending = api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}/evaluations/pending_carts").json()
    [cart_entry] = pending["data"]["tempRedemptionDetails"]
    assert cart_entry["appliedPromotions"][0]["promoCode"] == "HELD"
    # another customer is not offered the reserved unit
    assert logs(evaluated(api, cart(CustomerFactory(org=org), promoCodes=["HELD"]))) == [("HELD", 1004)]

    bound = body(
        customer,
        "BOUND",
        redemptions=[line(promotion)],  # the code comes from the evaluation
        promotionEvaluationId=data["evaluationId"],
        appliedPromotionIdentifiers=[entry["identifier"] for entry in data["appliedPromotions"]],
        amount=2000,
    )
    response = redeem(api, bound)

    assert response.status_code == 200, response.content
    row.refresh_from_db()
    assert (row.used, row.reserved) == (1, 0)
    assert RedemptionLine.objects.get().promo_code_id == code.pk
    assert CartLock.objects.get().status == "REDEEMED"


def test_a_bound_redemption_naming_another_code_than_the_evaluation_is_802(api_for, locking_org):
    org = locking_org
    api = api_for(org)
    customer = CustomerFactory(org=org)
    promotion = code_promotion(org, limit=5)
    promo_code(promotion, "EVALUATED")
    promo_code(promotion, "OTHER")
    data = evaluated(api, cart(customer, promoCodes=["EVALUATED"]))

    response = redeem(
        api,
        body(
            customer,
            redemptions=[line(promotion, promoCode="OTHER")],
            promotionEvaluationId=data["evaluationId"],
            appliedPromotionIdentifiers=[entry["identifier"] for entry in data["appliedPromotions"]],
            amount=2000,
        ),
    )

    assert codes(response) == [802]


# --- Concurrency ---------------------------------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_100_concurrent_redemptions_of_a_single_use_code_give_exactly_one():
    org = OrganizationFactory()
    promotion = code_promotion(org, limit=1)
    code = promo_code(promotion, "SINGLE")
    customers = CustomerFactory.create_batch(100, org=org)

    def call(api, index):
        response = redeem(
            api, body(customers[index], f"T{index}", redemptions=[line(promotion, promoCode="SINGLE")])
        )
        return response.status_code, tuple(codes(response)) if response.status_code != 200 else ()

    results = run_concurrently(100, call, org=org, threads=40)

    assert Counter(results) == {(200, ()): 1, (409, (1004,)): 99}
    assert RedemptionLine.objects.filter(promo_code=code).count() == 1
    assert used(code) == 1
    assert violations([org.pk]) == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "strategy", ["REDEMPTION_WITHOUT_CART_EVALUATION", "REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED"]
)
def test_a_code_with_limit_n_under_10n_concurrent_attempts_gives_exactly_n(strategy):
    # the plain strategy runs the one-statement function, the capped one the general path
    org = OrganizationFactory(redemption_strategy=strategy)
    promotion = code_promotion(org, limit=4)
    code = promo_code(promotion, "FOUR")
    customers = CustomerFactory.create_batch(40, org=org)
    reported_cart = [{"sku": "A", "amount": "2000", "qty": "1"}]

    def call(api, index):
        data = body(
            customers[index],
            f"T{index}",
            redemptions=[line(promotion, promoCode="FOUR")],
            cartItems=reported_cart,
        )
        response = redeem(api, data)
        return response.status_code, tuple(codes(response)) if response.status_code != 200 else ()

    results = run_concurrently(40, call, org=org, threads=40)

    assert Counter(results) == {(200, ()): 4, (409, (1004,)): 36}
    assert used(code) == 4
    assert violations([org.pk]) == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_customers_racing_evaluate_then_redeem_for_a_single_use_code_exactly_one_gets_it():
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = code_promotion(org, limit=1)
    code = promo_code(promotion, "RACE")
    customers = CustomerFactory.create_batch(20, org=org)

    def call(api, index):
        customer = customers[index]
        response = api.post(EVALUATE, cart(customer, promoCodes=["RACE"]), format="json")
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        if not data["appliedPromotions"]:
            return "not offered"
        redeemed = redeem(
            api,
            body(
                customer,
                f"T{index}",
                redemptions=[line(promotion)],
                promotionEvaluationId=data["evaluationId"],
                appliedPromotionIdentifiers=[entry["identifier"] for entry in data["appliedPromotions"]],
                amount=2000,
            ),
        )
        return "redeemed" if redeemed.status_code == 200 else f"refused {codes(redeemed)}"

    results = run_concurrently(20, call, org=org, threads=20)

    assert Counter(results) == {"redeemed": 1, "not offered": 19}
    row = RedemptionCounter.objects.get(scope=code_scope(code.pk))
    assert (row.used, row.reserved) == (1, 0)
    assert violations([org.pk]) == []
