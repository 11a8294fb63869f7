"""PER_UNIT actions: the reward repeats per group of `divider` counted units (QUANTITY) or value (AMOUNT);
groups take units cheapest first; a free reward on the counted lines consumes its units."""

from __future__ import annotations

import pytest

from promotions.engine import UnsupportedRule, compile_rule

from .builders import (
    D,
    cart,
    category,
    discounts,
    fixed_price,
    free_product,
    line,
    per_unit,
    product_based,
    product_condition,
    promotion,
    run,
    shares,
    skus,
)

COFFEE = product_condition(skus("COFFEE"))


def test_buy_two_get_one_consumes_the_free_units():
    # divider 2, one free per group, same SKU: groups = floor(qty / 3)
    body = promotion(COFFEE, per_unit(free_product(COFFEE), divider=2, include=False), id="b2g1")
    for units, groups in ((2, 0), (3, 1), (5, 1), (6, 2)):
        result = run(cart(line("COFFEE", D(3) * units, units)), body)
        assert result.discount == D(3) * groups, units


def test_a_cart_redemption_limit_caps_the_groups():
    # Capillary's example: limit 1 + buy 2 get 1 + 6 coffees -> 1 free coffee
    body = promotion(
        COFFEE,
        per_unit(free_product(COFFEE), divider=2, include=False),
        id="b2g1",
        promotionRestrictions={"Cart": [{"kpi": "REDEMPTION", "limit": "1.000000"}]},
    )
    result = run(cart(line("COFFEE", "18.00", 6)), body)
    assert discounts(result) == {"b2g1": D("3.00")}
    assert result.applied[0].redemption_count == 1


def test_groups_take_the_cheapest_units():
    # 10% off per 2 units of tea: 5 units, 2 groups = the 4 cheapest units: 2 x 1.00 + 2 x 2.00 = 6 -> 0.60
    teas = product_condition(category("TEA"))
    the_cart = cart(
        line("GREEN", "2.00", 2, key="green", categories=["TEA"]),
        line("BLACK", "6.00", 3, key="black", categories=["TEA"]),
    )
    result = run(the_cart, promotion(teas, per_unit(product_based("PERCENTAGE", 10), divider=2), id="tea"))
    assert shares(result, "tea") == {"green": D("0.20"), "black": D("0.40")}
    assert {share.line_key: share.discount_qty for share in result.applied[0].lines} == {
        "green": D(2),
        "black": D(2),
    }


def test_percentage_per_amount_group():
    # 10% of each 100 of shoes: 250 -> 2 groups -> 10% of 200 = 20
    shoes = product_condition(category("SHOES"))
    body = promotion(shoes, per_unit(product_based("PERCENTAGE", 10), divider=100, kpi="AMOUNT"), id="p")
    assert discounts(run(cart(line("SHOE", "250.00", key="s", categories=["SHOES"])), body)) == {
        "p": D("20.00")
    }


def test_fixed_price_per_group():
    # each large pizza at 10: 12 -> 2, 9 -> nothing, 15 -> 5: 7
    pizzas = product_condition(category("PIZZA"))
    the_cart = cart(
        line("P12", "12.00", key="a", categories=["PIZZA"]),
        line("P9", "9.00", key="b", categories=["PIZZA"]),
        line("P15", "15.00", key="c", categories=["PIZZA"]),
    )
    result = run(the_cart, promotion(pizzas, per_unit(fixed_price(10)), id="p"))
    assert shares(result, "p") == {"a": D("2.00"), "c": D("5.00")}
    assert result.applied[0].redemption_count == 3
    # groups of 2 (cheapest first: 9 + 12 = 21 at 10 -> 11; the 15 is alone, no full group)
    result = run(the_cart, promotion(pizzas, per_unit(fixed_price(10), divider=2), id="p"))
    assert discounts(result) == {"p": D("11.00")}


def test_fixed_price_needs_groups_of_units():
    with pytest.raises(UnsupportedRule) as refused:
        compile_rule(promotion(COFFEE, per_unit(fixed_price(10), divider=100, kpi="AMOUNT")))
    assert refused.value.path == "action.perUnitAction.rewardAction.type"


def test_counted_units_differ_from_the_rewarded_ones():
    # per 3 shirts 5 off the belts: 7 shirts -> 2 groups -> 10 off the one belt (12): the groups have
    # fewer belt units than 2 x 3, so one application of 2 x 5 on the belt there is
    shirts = product_condition(category("SHIRTS"))
    belts = product_condition(category("BELTS"))
    the_cart = cart(
        line("SHIRT", "70.00", 7, categories=["SHIRTS"]),
        line("BELT", "12.00", key="belt", categories=["BELTS"]),
    )
    result = run(
        the_cart, promotion(shirts, per_unit(product_based("ABSOLUTE", 5, belts), divider=3), id="p")
    )
    assert shares(result, "p") == {"belt": D("10.00")}


def test_each_group_is_an_application_on_its_own_units():
    # every 2 shirts 50 off: shirts of 20, 30 (one line each) and 2 x 100: groups cheapest first,
    # {20, 30} -> 50 spread 20 : 30 = 20, 30; {100, 100} -> 50 on the pair line
    shirts = product_condition(category("SHIRTS"))
    the_cart = cart(
        line("S20", "20.00", key="s20", categories=["SHIRTS"]),
        line("S30", "30.00", key="s30", categories=["SHIRTS"]),
        line("S100", "200.00", 2, key="pair", categories=["SHIRTS"]),
    )
    result = run(the_cart, promotion(shirts, per_unit(product_based("ABSOLUTE", 50), divider=2), id="p"))
    assert shares(result, "p") == {"s20": D("20.00"), "s30": D("30.00"), "pair": D("50.00")}


def test_rounding_is_per_application():
    # 10% per unit of three units at 10/3 each (a line of 10.00, 3 units): each group 0.333.. rounds to
    # 0.33 (HALF_UP): 0.99, not 10% of 10 = 1.00
    the_cart = cart(line("T", "10.00", 3, key="t"))
    result = run(
        the_cart, promotion(product_condition(skus("T")), per_unit(product_based("PERCENTAGE", 10)), id="p")
    )
    assert discounts(result) == {"p": D("0.99")}
    assert result.applied[0].redemption_count == 3


def test_a_cart_discount_limit_caps_the_sum_of_the_groups():
    # 5 per unit on 4 units = 20, Cart DISCOUNT limit 12: 12 spread over the units' lines by what each gave
    # (10 : 10 of two lines of 2 units): 6 and 6
    body = promotion(
        product_condition(skus("T", "U")),
        per_unit(product_based("ABSOLUTE", 5)),
        id="p",
        promotionRestrictions={"Cart": [{"kpi": "DISCOUNT", "limit": "12"}]},
    )
    result = run(cart(line("T", "40.00", 2, key="t"), line("U", "40.00", 2, key="u")), body)
    assert shares(result, "p") == {"t": D("6.00"), "u": D("6.00")}
