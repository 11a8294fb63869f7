"""compile_rule: what the engine cannot evaluate exactly as docs/engine.md says is refused with the path of
the part and a message for the marketer."""

from __future__ import annotations

import copy

import pytest

from promotions.engine import UnsupportedRule, compile_rule

from .builders import (
    cart_based,
    cart_condition,
    category,
    fixed_price,
    free_product,
    payment_mode,
    per_unit,
    product_based,
    product_condition,
    promotion,
    tender_condition,
)

ANY = cart_condition("SUBTOTAL", "GREATER_THAN", 0)
SHIRTS = product_condition(category("SHIRTS"))


def refused(body) -> UnsupportedRule:
    with pytest.raises(UnsupportedRule) as caught:
        compile_rule(body)
    return caught.value


def with_(body: dict, path: str, value):
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


BASE = promotion(SHIRTS, product_based("PERCENTAGE", 10))


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("condition.type", "GIFT_VOUCHER", "condition.type"),
        ("condition.productCondition", ..., "condition.productCondition"),
        ("condition.productCondition.criteriaList", [], "condition.productCondition.criteriaList"),
        ("condition.productCondition.kpi", "WEIGHT", "condition.productCondition.kpi"),
        ("action.type", "CASHBACK", "action.type"),
        ("action.productBasedAction.value", "0", "action.productBasedAction.value"),
        ("action.productBasedAction.value", "100.5", "action.productBasedAction.value"),
        ("action.productBasedAction.value", "ten", "action.productBasedAction.value"),
        (
            "action.productBasedAction.includeItemsFromConditionSet",
            False,
            "action.productBasedAction.productBasedCondition",
        ),
        ("type", "LOYALTY", "promotion.type"),
        ("startDate", "2026-01-01", "startDate"),
        (
            "promotionRestrictions",
            {"Cart": [{"kpi": "POINTS", "limit": "1"}]},
            "promotionRestrictions.Cart[0].kpi",
        ),
        (
            "timeCriteria",
            {"startTime": "25:00", "durationInHours": 2, "repeatFrequency": "DAYS"},
            "timeCriteria.startTime",
        ),
        (
            "timeCriteria",
            {"startTime": "10:00", "durationInHours": 25, "repeatFrequency": "DAYS"},
            "timeCriteria.durationInHours",
        ),
        (
            "timeCriteria",
            {"startTime": "10:00", "durationInHours": 2, "repeatFrequency": "WEEKS"},
            "timeCriteria.weeklyValues",
        ),
        ("storeCriteria", {"type": "TILL", "operator": "IN", "values": [1]}, "storeCriteria.type"),
        ("storeCriteria", {"type": "STORE", "operator": "IN", "values": ["1"]}, "storeCriteria.values"),
    ],
)
def test_refusals_name_the_part(path, value, where):
    error = refused(with_(BASE, path, value))
    assert error.path == where
    assert error.message


def test_attribute_criteria_need_a_name():
    body = promotion(product_condition({"criteriaList": [{"entity": "ATTRIBUTE", "operator": "IN", "values": ["x"]}],
                                        "kpi": "NONE"}), product_based("PERCENTAGE", 10))  # fmt: skip
    assert refused(body).path == "condition.productCondition.criteriaList[0].attributeName"


@pytest.mark.parametrize(
    ("condition", "action", "where"),
    [
        (ANY, fixed_price(10), "action.fixedPriceAction.includeItemsFromConditionSet"),
        (ANY, product_based("FIXED_PRICE", 10), "action.productBasedAction.includeItemsFromConditionSet"),
        (SHIRTS, fixed_price(10, ANY), "action.fixedPriceAction.productBasedCondition"),
        (payment_mode("POINTS"), fixed_price(10), "action.fixedPriceAction.includeItemsFromConditionSet"),
        (tender_condition("CASH"), fixed_price(10), "action.fixedPriceAction.includeItemsFromConditionSet"),
        (SHIRTS, per_unit(fixed_price(10), kpi="AMOUNT"), "action.perUnitAction.rewardAction.type"),
        (
            SHIRTS,
            per_unit(product_based("FIXED_PRICE", 10), kpi="AMOUNT"),
            "action.perUnitAction.rewardAction.type",
        ),
        (SHIRTS, per_unit(cart_based("ABSOLUTE", 1)), "action.perUnitAction.rewardAction.type"),
        (SHIRTS, per_unit(free_product(), divider="0"), "action.perUnitAction.perUnitDivider"),
        (SHIRTS, free_product(quantity="0"), "action.freeProductAction.quantity"),
        (SHIRTS, {"type": "TENDER", "tenderBasedAction": {"type": "ABSOLUTE", "value": "1"}}, "action.type"),
        (
            {"type": "TENDER", "tenderCondition": {"tenderModes": []}},
            cart_based("ABSOLUTE", 1),
            "condition.tenderCondition.tenderModes",
        ),
        (
            {
                "type": "TENDER",
                "tenderCondition": {
                    "tenderModes": [{"type": "CARD", "identifiers": ["X"]}],
                    "condition": {"type": "COMBO_PRODUCT"},
                },
            },
            cart_based("ABSOLUTE", 1),
            "condition.tenderCondition.condition.type",
        ),
        ({"type": "PAYMENT_MODE"}, cart_based("ABSOLUTE", 1), "condition.paymentModeCondition"),
        (
            {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": {"operator": "IN", "values": ["POINTS"]}},
            cart_based("ABSOLUTE", 1),
            "condition.productCondition",
        ),
    ],
)
def test_what_the_engine_cannot_evaluate(condition, action, where):
    error = refused(promotion(condition, action))
    assert error.path == where, error


def test_a_fixed_price_on_products_is_accepted():
    compile_rule(promotion(SHIRTS, fixed_price(10)))
    compile_rule(promotion(ANY, fixed_price(10, SHIRTS)))


def test_the_rule_carries_what_the_engine_needs():
    body = promotion(SHIRTS, product_based("PERCENTAGE", 10), id="r1", name="Ten", messageLabel="10% off", priority=3,
                     isStackable=True, isLoyaltyOnly=True, type="REWARD", mode="PAYMENT_VOUCHER",
                     promotionRestrictions={"Cart": [{"kpi": "DISCOUNT", "limit": "50.000000"},
                                                     {"kpi": "REDEMPTION", "limit": "2.000000"},
                                                     {"kpi": "TRANSACTION", "limit": "1.000000"}],
                                            "Customer": [{"kpi": "REDEMPTION", "limit": "5"}]},
                     storeCriteria=None, timeCriteria=None)  # fmt: skip
    rule = compile_rule(body)
    assert (rule.promotion_id, rule.name, rule.message_label, rule.priority, rule.type, rule.mode) == (
        "r1", "Ten", "10% off", 3, "REWARD", "PAYMENT_VOUCHER"
    )  # fmt: skip
    assert rule.is_stackable and rule.loyalty_only and rule.level == "LINE"
    assert (rule.cart_discount_limit, rule.cart_redemption_limit) == (50, 1)  # TRANSACTION 1 counts too
    assert rule.store_criteria is None and rule.time_criteria is None
    assert rule.start.tzinfo is not None
