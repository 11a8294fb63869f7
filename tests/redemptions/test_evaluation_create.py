"""POST /api_gateway/v1/promotions/evaluate: the documented shape, who gets what, the rules cache,
the stored evaluation, access, org isolation and bad input."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from promotions.models import PromotionRestriction
from promotions.rules import org_rules_forget
from redemptions.models import Evaluation
from redemptions.schema import EVALUATE_RESPONSE_EXAMPLE
from tests.factories import (
    ConceptFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionCounterFactory,
    StoreFactory,
    TillFactory,
    ZoneFactory,
)
from wallets.models import EarnedPromotion

URL = "/api_gateway/v1/promotions/evaluate"

CART_OVER_1500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}
FUEL = {"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["Sku#Fuel"]}], "kpi": "NONE"}}  # fmt: skip
TEN_PERCENT_OFF_IT = {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 10, "includeItemsFromConditionSet": True}}  # fmt: skip


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    # The cache is per process and keyed by (org id, rules_version): rows written by factories do not
    # bump the version, so each test starts without cached rules.
    org_rules_forget()
    yield
    org_rules_forget()


def cart(customer=None, tenders=None, **extra) -> dict:
    body = {
        "amount": "2000.00",
        "cartItems": [
            {
                "sku": "Sku#Fuel",
                "amount": "1000.00",
                "qty": "1.000000",
                "discount": None,
                "categoryList": ["Fuel", "Premium"],
                "brandList": ["MaxFuel", "FuelCo"],
            },
            {"sku": "Sku#food", "amount": "1000.00", "qty": "1.00"},
        ],
    }
    if customer is not None:
        body["customerId"] = customer.pk
    if tenders is not None:
        body["cartTenders"] = tenders
    body.update(extra)
    return body


def evaluate(client, body, **headers):
    return client.post(URL, body, format="json", **headers)


def applied_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [promotion["promotionId"] for promotion in response.json()["data"]["appliedPromotions"]]


def decoded(identifier: str) -> dict:
    return json.loads(base64.b64decode(identifier))


# --- The documented shape --------------------------------------------------------------------------


def test_golden_response_byte_for_byte(api, org, customer):
    # given a line promotion (10% off fuel) and a cart promotion (100 off carts over 1500)
    line_promotion = PromotionFactory(
        org=org, type="POS", name="fuel-10", message_label="10% off fuel", condition=FUEL, action=TEN_PERCENT_OFF_IT,
        is_stackable=True, priority=0,
    )  # fmt: skip
    cart_promotion = PromotionFactory(
        org=org, type="POS", name="promotion-cart", message_label="test!!", condition=CART_OVER_1500,
        action=CART_100_OFF, is_stackable=True, priority=1,
    )  # fmt: skip

    # when Capillary's example cart is evaluated with a card tender of 500
    response = evaluate(api, cart(customer, tenders=[{"identifier": "CreditCard", "amount": "500.00"}]))

    # then the body, with its generated ids normalised, is exactly this
    assert response.status_code == 200, response.content
    text = response.content.decode()
    text = re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"', '"<uuid>"', text)
    text = re.sub(r'"[0-9a-f]{24}"', '"<id>"', text)
    text = re.sub(r'"identifier":"[A-Za-z0-9+/]{40,}={0,2}"', '"identifier":"<identifier>"', text)
    line_part = (
        '{"promotionId":"<id>","name":"fuel-10","messageLabel":"10% off fuel","promotionMode":"DISCOUNT",'
        '"redemptionCount":1,"discount":"100.000000","discountAppliedOnQuantity":"1.000000",'
        '"promotionAppliedOnQuantity":"1.000000","identifier":"<identifier>"}'
    )
    assert text == (
        '{"data":{"amount":"2000.000000","customerId":' + str(customer.pk) + ","
        '"cartItems":['
        '{"referenceId":"<uuid>","sku":"Sku#Fuel","amount":"1000.000000","qty":"1.000000","discount":"0.000000",'
        '"appliedPromotions":[' + line_part + "]},"
        '{"referenceId":"<uuid>","sku":"Sku#food","amount":"1000.000000","qty":"1.000000","discount":"0.000000",'
        '"appliedPromotions":[]}],'
        '"evaluationId":"<id>",'
        '"appliedPromotions":['
        '{"promotionId":"<id>","name":"fuel-10","messageLabel":"10% off fuel","promotionMode":"DISCOUNT",'
        '"redemptionCount":1,"discount":"100.000000","identifier":"<identifier>"},'
        '{"promotionId":"<id>","name":"promotion-cart","messageLabel":"test!!","promotionMode":"DISCOUNT",'
        '"redemptionCount":1,"discount":"100.000000","identifier":"<identifier>"}],'
        '"appliedPaymentVouchers":[],"promoCodeEvaluationLogs":[],"paymentVoucherEvaluationLogs":[],'
        '"cartTenders":['
        '{"identifier":"CreditCard","amount":"500.000000","referenceId":"<id>","adjustedAmount":"500.000000"},'
        '{"identifier":"CASH","amount":"1300.000000","referenceId":"<id>","adjustedAmount":"1300.000000"}],'
        '"categoryHierarchySentInPayload":false},"errors":[]}'
    )
    # and the identifiers are the documented Base64 JSON, keys in order
    data = response.json()["data"]
    assert data["appliedPromotions"][1]["identifier"] == base64.b64encode(
        json.dumps(
            {"promotionId": cart_promotion.pk, "discount": "100.000000", "amount": "2000.000000", "redemptionCount": 1, "version": "v1"},
            separators=(",", ":"),
        ).encode()
    ).decode()  # fmt: skip
    line = data["cartItems"][0]["appliedPromotions"][0]
    assert decoded(line["identifier"]) == {
        "promotionId": line_promotion.pk, "discount": "100.000000", "amount": "1000.000000", "redemptionCount": 1,
        "discountAppliedQty": "1.000000", "promotionAppliedQty": "1.000000", "sku": "Sku#Fuel", "version": "v1",
    }  # fmt: skip
    assert list(decoded(line["identifier"]))[-1] == "version"


def test_keys_are_the_documented_example_keys(api, org):
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)

    response = evaluate(api, cart(tenders=[{"identifier": "CreditCard", "amount": "500.00"}]))

    assert response.status_code == 200, response.content
    data, example = response.json()["data"], EVALUATE_RESPONSE_EXAMPLE["data"]
    assert list(data) == list(example)
    assert list(data["cartItems"][0]) == list(example["cartItems"][0])
    assert list(data["appliedPromotions"][0]) == list(example["appliedPromotions"][0])
    assert list(data["cartTenders"][1]) == list(example["cartTenders"][1])
    assert data["customerId"] == -1  # no customer sent: not identified
    # the example's figures: 100 off, CASH covers 2000 - 100 - 500
    assert data["appliedPromotions"][0]["discount"] == "100.000000"
    assert data["cartTenders"][1] == {**data["cartTenders"][1], "identifier": "CASH", "amount": "1400.000000"}
    assert re.fullmatch(r"[0-9a-f]{24}", data["evaluationId"])


def test_no_cash_tender_without_tenders_or_when_they_cover_the_cart(api, org):
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)

    without = evaluate(api, cart()).json()["data"]
    covered = evaluate(api, cart(tenders=[{"identifier": "CreditCard", "amount": "1900"}])).json()["data"]

    assert without["cartTenders"] == []
    assert [tender["identifier"] for tender in covered["cartTenders"]] == ["CreditCard"]


def test_promo_codes_and_vouchers_are_answered_in_the_logs(api, org):
    response = evaluate(api, cart(promoCodes=["SUMMER10"], paymentVouchers=["VOUCHER1"]))

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["promoCodeEvaluationLogs"] == [
        {"promoCode": "SUMMER10", "codeType": "DISCOUNT", "message": data["promoCodeEvaluationLogs"][0]["message"], "errorCode": 1001}
    ]  # fmt: skip
    assert "no such promo code" in data["promoCodeEvaluationLogs"][0]["message"]
    assert [log["promoCode"] for log in data["paymentVoucherEvaluationLogs"]] == ["VOUCHER1"]
    assert "not enabled" in data["paymentVoucherEvaluationLogs"][0]["message"]
    assert data["appliedPaymentVouchers"] == []


def test_the_evaluation_is_stored(api, org, customer):
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    body = cart(customer)

    response = evaluate(api, body)

    data = response.json()["data"]
    evaluation = Evaluation.objects.get(pk=data["evaluationId"])
    assert (evaluation.org_id, evaluation.customer_id, evaluation.api_client_id) == (
        org.pk, customer.pk, api.api_client.pk,
    )  # fmt: skip
    assert evaluation.request == json.loads(json.dumps(body))
    assert (evaluation.amount, evaluation.discount) == (Decimal(2000), Decimal(100))
    assert evaluation.applied == [
        {
            "promotionId": promotion.pk,
            "identifier": data["appliedPromotions"][0]["identifier"],
            "discount": "100.000000",
            "redemptionCount": 1,
            "earnedPromotionId": None,
            "level": "CART",
            "lines": evaluation.applied[0]["lines"],
        }
    ]
    # a cart promotion's shares are kept per line (by referenceId), adding up to its discount
    shares = evaluation.applied[0]["lines"]
    assert {share["referenceId"] for share in shares} <= {item["referenceId"] for item in data["cartItems"]}
    assert sum(Decimal(share["discount"]) for share in shares) == Decimal(100)


# --- Who gets what ---------------------------------------------------------------------------------


def test_pos_promotions_apply_to_everyone_loyalty_only_ones_to_known_customers(api, org, customer):
    pos = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, is_stackable=True
    )
    loyalty_only = PromotionFactory(
        org=org,
        type="POS",
        is_loyalty_only=True,
        condition=CART_OVER_1500,
        action=CART_100_OFF,
        is_stackable=True,
    )

    anonymous = applied_ids(evaluate(api, cart()))
    minus_one = applied_ids(evaluate(api, cart(customerId=-1)))
    known = applied_ids(evaluate(api, cart(customer)))

    assert anonymous == minus_one == [pos.pk]
    assert sorted(known) == sorted([pos.pk, loyalty_only.pk])


def test_a_customer_promotion_applies_through_the_wallet_instance(api, org, customer):
    promotion = PromotionFactory(org=org, type="CUSTOMER", condition=FUEL, action=TEN_PERCENT_OFF_IT)
    other = CustomerFactory(org=org)
    later = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, valid_till=timezone.now() + dt.timedelta(days=20)
    )
    sooner = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, valid_till=timezone.now() + dt.timedelta(days=10)
    )
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, status="REDEEMED")

    holder = evaluate(api, cart(customer)).json()["data"]
    without = applied_ids(evaluate(api, cart(other)))
    anonymous = applied_ids(evaluate(api, cart()))

    # the instance that expires first is named, on the line
    assert [p["promotionId"] for p in holder["appliedPromotions"]] == [promotion.pk]
    assert holder["cartItems"][0]["appliedPromotions"][0]["earnedPromotionId"] == sooner.pk != later.pk
    assert without == anonymous == []
    evaluation = Evaluation.objects.get(pk=holder["evaluationId"])
    assert evaluation.applied[0]["earnedPromotionId"] == sooner.pk


def test_an_expired_or_revoked_instance_gives_nothing(api, org, customer):
    promotion = PromotionFactory(org=org, type="CUSTOMER", condition=FUEL, action=TEN_PERCENT_OFF_IT)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, status="REVOKED")
    EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, valid_till=timezone.now() - dt.timedelta(minutes=1)
    )

    assert applied_ids(evaluate(api, cart(customer))) == []


def test_an_earning_promotion_needs_an_earned_instance_not_a_locked_one(api, org, customer):
    promotion = PromotionFactory(org=org, type="EARNING", condition=FUEL, action=TEN_PERCENT_OFF_IT)
    issued = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    assert issued.locked

    locked = applied_ids(evaluate(api, cart(customer)))
    EarnedPromotion.objects.filter(pk=issued.pk).update(
        locked=False, unlocked_from_type="ACTIVITY", unlocked_from_id="earn-1"
    )
    unlocked = evaluate(api, cart(customer)).json()["data"]

    assert locked == []
    assert [p["promotionId"] for p in unlocked["appliedPromotions"]] == [promotion.pk]
    assert unlocked["cartItems"][0]["appliedPromotions"][0]["earnedPromotionId"] == issued.pk


def test_an_earned_earning_instance_applies(api, org, customer):
    promotion = PromotionFactory(org=org, type="EARNING", condition=FUEL, action=TEN_PERCENT_OFF_IT)
    earned = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, kind="EARNED", earned_from_type="ACTIVITY"
    )

    data = evaluate(api, cart(customer)).json()["data"]

    assert data["cartItems"][0]["appliedPromotions"][0]["earnedPromotionId"] == earned.pk


@pytest.mark.parametrize(
    "changes",
    [
        {"active": False},
        {"start_date": timezone.now() + dt.timedelta(days=1)},
        {
            "start_date": timezone.now() - dt.timedelta(days=10),
            "end_date": timezone.now() - dt.timedelta(days=1),
        },
    ],
    ids=["inactive", "not-started", "expired"],
)
def test_inactive_not_started_and_expired_promotions_never_apply(api, org, changes):
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, **changes)

    assert applied_ids(evaluate(api, cart())) == []


def test_a_code_promotion_needs_a_code(api, org):
    promotion = PromotionFactory(org=org, type="CODE", condition=CART_OVER_1500, action=CART_100_OFF)
    PromotionRestrictionFactory(promotion=promotion, level="Code", kpi="REDEMPTION", limit=1)

    assert applied_ids(evaluate(api, cart(promoCodes=["ANY"]))) == []


def test_a_promotion_at_its_promotion_limit_is_not_offered(api, org, customer):
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=2
    )
    counter = RedemptionCounterFactory(org=org, restriction=restriction, scope="", used=1, limit=2)

    below = applied_ids(evaluate(api, cart(customer)))
    counter.used = 2
    counter.save()
    at_limit = applied_ids(evaluate(api, cart(customer)))

    assert below == [promotion.pk]
    assert at_limit == []


def test_a_customer_limit_counts_that_customer_only(api, org, customer):
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="TRANSACTION", limit=1
    )
    RedemptionCounterFactory(org=org, restriction=restriction, scope=str(customer.pk), used=1, limit=1)
    other = CustomerFactory(org=org)

    assert applied_ids(evaluate(api, cart(customer))) == []
    assert applied_ids(evaluate(api, cart(other))) == [promotion.pk]
    assert applied_ids(evaluate(api, cart())) == [promotion.pk]  # not counted for nobody


def test_a_discount_limit_caps_what_is_offered(api, org):
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Promotion", kpi="DISCOUNT", limit=500
    )
    RedemptionCounterFactory(org=org, restriction=restriction, scope="", used=460, limit=500)

    data = evaluate(api, cart()).json()["data"]

    assert data["appliedPromotions"][0]["discount"] == "40.000000"


def test_a_used_up_earn_limit_is_not_offered(api, org, customer):
    promotion = PromotionFactory(org=org, type="REWARD", condition=FUEL, action=TEN_PERCENT_OFF_IT)
    PromotionRestrictionFactory(
        promotion=promotion, level=PromotionRestriction.Level.EARN, kpi="REDEMPTION", limit=3
    )
    instance = EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=promotion,
        kind="EARNED",
        earned_from_type="REWARD",
        redemption_count=2,
    )

    offered = applied_ids(evaluate(api, cart(customer)))
    EarnedPromotion.objects.filter(pk=instance.pk).update(redemption_count=3)
    used_up = applied_ids(evaluate(api, cart(customer)))

    assert offered == [promotion.pk]
    assert used_up == []


def test_store_scope_follows_the_till_header_or_the_clients_default_till(api, org):
    # given a promotion for one store, a till there and a till elsewhere
    store = StoreFactory(org=org)
    here, elsewhere = TillFactory(org=org, store=store), TillFactory(org=org)
    promotion = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF,
        store_criteria={"type": "STORE", "operator": "IN", "values": [store.external_id]},
    )  # fmt: skip

    # when evaluated at each till, by header and by the client's default till
    at_here = applied_ids(evaluate(api, cart(), HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE=here.code))
    at_elsewhere = applied_ids(evaluate(api, cart(), HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE=elsewhere.code))
    no_till = applied_ids(evaluate(api, cart()))
    api.api_client.default_till = here
    api.api_client.save()
    by_default = evaluate(api, cart())
    header_wins = applied_ids(evaluate(api, cart(), HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE=elsewhere.code))

    # then only a till of that store gets it; the evaluation records the till
    assert at_here == [promotion.pk]
    assert at_elsewhere == no_till == header_wins == []
    assert applied_ids(by_default) == [promotion.pk]
    assert Evaluation.objects.get(pk=by_default.json()["data"]["evaluationId"]).till_code == here.code


def test_store_scope_by_zone_and_concept_with_their_ancestors(api, org):
    region = ZoneFactory(org=org)
    city = ZoneFactory(org=org, parent=region)
    brand = ConceptFactory(org=org)
    till = TillFactory(org=org, store=StoreFactory(org=org, zone=city, concept=brand))
    in_region = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, is_stackable=True,
        store_criteria={"type": "ZONE", "operator": "IN", "values": [region.external_id]},
    )  # fmt: skip
    not_brand = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, is_stackable=True,
        store_criteria={"type": "CONCEPT", "operator": "NOT_IN", "values": [brand.external_id]},
    )  # fmt: skip

    at_till = applied_ids(evaluate(api, cart(), HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE=till.code))
    no_till = applied_ids(evaluate(api, cart()))

    assert at_till == [in_region.pk]
    assert no_till == [not_brand.pk]  # with no till, IN never holds and NOT_IN always does


def test_an_unknown_till_code_is_400_4001(api, org):
    response = evaluate(api, cart(), HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE="no.such.till")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 4001
    assert not Evaluation.objects.exists()


def test_a_time_window_in_the_orgs_time_zone(api, org):
    # given an org in India and two daily windows: one open now (local time), one opening in 2 hours
    org.timezone = "Asia/Kolkata"
    org.save()
    local = timezone.now().astimezone(org.tz)
    open_now = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, is_stackable=True,
        time_criteria={"startTime": (local - dt.timedelta(hours=1)).strftime("%H:%M"), "durationInHours": 2, "repeatFrequency": "DAYS"},
    )  # fmt: skip
    PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, is_stackable=True,
        time_criteria={"startTime": (local + dt.timedelta(hours=2)).strftime("%H:%M"), "durationInHours": 1, "repeatFrequency": "DAYS"},
    )  # fmt: skip

    assert applied_ids(evaluate(api, cart())) == [open_now.pk]


# --- The rules cache -------------------------------------------------------------------------------


def test_a_promotion_update_is_seen_by_the_next_evaluation(api, org):
    # given a promotion created through the API and evaluated once (its rules cached)
    created = api.post(
        "/api_gateway/v1/promotions",
        {
            "name": "cart-100", "type": "POS", "startDateISO": (timezone.now() - dt.timedelta(days=1)).isoformat(),
            "endDateISO": (timezone.now() + dt.timedelta(days=10)).isoformat(), "condition": CART_OVER_1500,
            "action": CART_100_OFF,
        },
        format="json",
    )  # fmt: skip
    assert created.status_code == 200, created.content
    promotion_id = created.json()["data"]["id"]
    first = evaluate(api, cart()).json()["data"]["appliedPromotions"]

    # when the action changes through the API
    updated = api.put(
        f"/api_gateway/v1/promotions/{promotion_id}",
        {"action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 150}}},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    second = evaluate(api, cart()).json()["data"]["appliedPromotions"]

    # then the very next evaluation gives the new discount; a deactivation is seen too
    deactivated = api.put(f"/api_gateway/v1/promotions/{promotion_id}/deactivate")
    assert deactivated.status_code == 200, deactivated.content
    third = evaluate(api, cart()).json()["data"]["appliedPromotions"]
    assert [p["discount"] for p in first] == ["100.000000"]
    assert [p["discount"] for p in second] == ["150.000000"]
    assert third == []


def test_rules_are_compiled_once_per_version(api, org, django_assert_max_num_queries):
    from promotions import rules as rules_module

    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    compiled = []
    original = rules_module.org_rules_compile

    def counting(*args, **kwargs):
        compiled.append(args)
        return original(*args, **kwargs)

    rules_module.org_rules_compile = counting
    try:
        for _ in range(3):
            assert evaluate(api, cart()).status_code == 200
    finally:
        rules_module.org_rules_compile = original

    assert len(compiled) == 1


# --- Access, isolation, input ----------------------------------------------------------------------


def test_a_read_only_client_may_evaluate(read_api, org):
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)

    assert len(applied_ids(evaluate(read_api, cart()))) == 1


def test_without_credentials_401(client, org):
    response = client.post(URL, cart(), content_type="application/json")

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == 401


def test_another_orgs_promotions_and_customers_are_not_seen(api, org, other_org):
    PromotionFactory(org=other_org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    stranger = CustomerFactory(org=other_org)

    mine = applied_ids(evaluate(api, cart()))
    response = evaluate(api, cart(stranger))

    assert mine == []
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Customer not found"}]}
    assert not Evaluation.objects.filter(org=other_org).exists()


def test_an_unknown_customer_is_404_and_nothing_is_stored(api, org):
    response = evaluate(api, cart(customerId=987654321))

    assert response.status_code == 404
    assert not Evaluation.objects.exists()


def test_customer_id_as_digits_and_amounts_as_numbers(api, org, customer):
    body = cart(customerId=str(customer.pk), amount=2000)
    body["cartItems"][0] |= {"amount": 1000, "qty": 1, "discount": 0}

    response = evaluate(api, body)

    assert response.status_code == 200, response.content
    assert response.json()["data"]["customerId"] == customer.pk


def item(**changes):
    return {"sku": "A", "amount": "10", "qty": "1"} | changes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "amount"),
        ({"amount": "10"}, "cartItems"),
        ({"amount": "10", "cartItems": []}, "cartItems"),
        ({"amount": "-1", "cartItems": [item()]}, "amount"),
        ({"amount": "1e3", "cartItems": [item()]}, "amount"),
        ({"amount": True, "cartItems": [item()]}, "amount"),
        ({"amount": "10.1234567", "cartItems": [item()]}, "amount"),
        ({"amount": "10", "cartItems": [item(qty="0")]}, "cartItems.0.qty"),
        ({"amount": "10", "cartItems": [item(sku=None)]}, "cartItems.0.sku"),
        ({"amount": "10", "cartItems": [{"amount": "10", "qty": "1"}]}, "cartItems.0.sku"),
        ({"amount": "10", "cartItems": [item(discount="11")]}, "cartItems.0.discount"),
        ({"amount": "10", "cartItems": [item(categoryList="Fuel")]}, "cartItems.0.categoryList"),
        ({"amount": "10", "cartItems": [item(attributes=["color"])]}, "cartItems.0.attributes"),
        ({"amount": "10", "cartItems": [item(attributes={"color": 1})]}, "cartItems.0.attributes"),
        ({"amount": "10", "cartItems": [item(price="10")]}, "cartItems.0.price"),
        ({"amount": "10", "cartItems": [item()], "customerId": "abc"}, "customerId"),
        ({"amount": "10", "cartItems": [item()], "customerId": 1.5}, "customerId"),
        ({"amount": "10", "cartItems": [item()], "customerId": -2}, "customerId"),
        (
            {"amount": "10", "cartItems": [item()], "cartTenders": [{"amount": "1"}]},
            "cartTenders.0.identifier",
        ),
        ({"amount": "10", "cartItems": [item()], "promoCodes": "CODE"}, "promoCodes"),
        ({"amount": "10", "cartItems": [item()], "promoCodes": ["x" * 51]}, "promoCodes.0"),
        (
            {"amount": "10", "cartItems": [item()], "categoryHierarchySentInPayload": "yes"},
            "categoryHierarchySentInPayload",
        ),
        ({"amount": "10", "cartItems": [item()], "cartId": "1"}, "cartId"),
        ({"amount": "10", "cartItems": [item()] * 501}, "cartItems"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, org, body, field):
    response = evaluate(api, body)

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert all(error["code"] == 400 for error in errors)
    assert any(error["message"].startswith(f"{field}:") for error in errors), errors
    assert not Evaluation.objects.exists()


def test_not_json_is_400(api, org):
    response = api.post(URL, "{", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_an_evaluation_costs_a_few_statements(api, org, customer, django_assert_max_num_queries):
    # given rules compiled already and a promotion with a Promotion limit (so counters are read)
    promotion = PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=5)
    assert evaluate(api, cart(customer)).status_code == 200

    # then on PostgreSQL: one call of the function that reads the customer with its wallet and the
    # counters, and one of the function that verifies the client served from the process's cache of verified clients and
    # inserts the evaluation (its own transaction set to commit asynchronously). SQLite: the client
    # with its org, and the insert.
    with django_assert_max_num_queries(7) as captured:
        assert evaluate(api, cart(customer)).status_code == 200
    statements = [query["sql"] for query in captured if "SAVEPOINT" not in query["sql"]]
    if connection.vendor == "postgresql":
        assert len(statements) == 2, [sql[:120] for sql in statements]
        assert statements[0].startswith("SELECT * FROM evaluation_context_v1("), statements[0][:120]
        assert statements[-1].startswith("SELECT evaluation_record_v1("), statements[-1][:120]
    else:  # SQLite has no asynchronous commit to ask for, and verifies the client first
        assert len(statements) == 4, [sql[:120] for sql in statements]
        assert statements[-1].startswith('INSERT INTO "redemptions_evaluation"'), statements[-1][:120]
