"""FIXED_PRICE actions: the target costs v together."""

from __future__ import annotations

import pytest

from promotions.engine import UnsupportedRule, compile_rule

from .builders import (
    D,
    cart,
    cart_condition,
    category,
    combo_condition,
    discounts,
    fixed_price,
    line,
    product_condition,
    promotion,
    reasons,
    run,
    shares,
)

PIZZAS = product_condition(category("PIZZA"))


def test_the_target_costs_the_price_together():
    # two pizzas 14 + 16 = 30 for 25: 5, spread 14 : 16 -> 2.33.., 2.66.. -> 2.33 + 2.66 = 4.99, the cent to
    # the larger remainder (0.0067 of the 16 one)
    the_cart = cart(
        line("P1", "14.00", key="p1", categories=["PIZZA"]),
        line("P2", "16.00", key="p2", categories=["PIZZA"]),
    )
    result = run(the_cart, promotion(PIZZAS, fixed_price(25), id="f"))
    assert discounts(result) == {"f": D("5.00")}
    assert shares(result, "f") == {"p1": D("2.33"), "p2": D("2.67")}


def test_no_discount_when_the_price_is_above_the_value():
    the_cart = cart(line("P1", "14.00", categories=["PIZZA"]))
    assert reasons(run(the_cart, promotion(PIZZAS, fixed_price(20), id="f"))) == {"f": "NO_DISCOUNT"}


def test_a_bundle_picks_one_unit_per_part():
    # the cheapest pizza (12) and the cheapest drink (2) for 10: 4 -> 12 : 2 = 3.428.., 0.571.. -> 3.43, 0.57
    target = combo_condition(
        category("PIZZA", kpi="QUANTITY", operator="EQUALS", value=1),
        category("DRINK", kpi="QUANTITY", operator="EQUALS", value=1),
    )
    the_cart = cart(
        line("P1", "24.00", 2, key="pizzas", categories=["PIZZA"]),
        line("P2", "15.00", key="big", categories=["PIZZA"]),
        line("D1", "4.00", 2, key="drinks", categories=["DRINK"]),
    )
    result = run(
        the_cart, promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), fixed_price(10, target), id="f")
    )
    assert shares(result, "f") == {"pizzas": D("3.43"), "drinks": D("0.57")}


def test_refused_on_the_whole_cart():
    with pytest.raises(UnsupportedRule) as refused:
        compile_rule(promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), fixed_price(10)))
    assert refused.value.path == "action.fixedPriceAction.includeItemsFromConditionSet"
