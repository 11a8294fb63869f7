"""PRODUCT_BASED actions: ABSOLUTE off the target as a whole, PERCENTAGE of its value, FIXED_PRICE; the target
is the condition set or the productBasedCondition's lines (which must hold too)."""

from __future__ import annotations

from .builders import (
    D,
    cart,
    category,
    discounts,
    line,
    product_based,
    product_condition,
    promotion,
    reasons,
    run,
    shares,
    skus,
)

SHOES = product_condition(category("SHOES"))
SOCKS = product_condition(category("SOCKS"))


def test_absolute_off_the_target_as_a_whole_not_per_unit():
    # 5 off 3 pairs of socks (12.00): 5, not 15
    result = run(cart(line("SOCK", "12.00", 3, key="socks", categories=["SOCKS"])),
                 promotion(SOCKS, product_based("ABSOLUTE", 5), id="p"))  # fmt: skip
    assert discounts(result) == {"p": D("5.00")}
    assert result.applied[0].lines[0].discount_qty == D(3)


def test_absolute_at_most_the_targets_value():
    result = run(cart(line("SOCK", "4.00", key="socks", categories=["SOCKS"]), line("X", "50.00")),
                 promotion(SOCKS, product_based("ABSOLUTE", 5), id="p"))  # fmt: skip
    assert discounts(result) == {"p": D("4.00")}


def test_buy_shoes_get_socks_at_half_price():
    # include false: the socks are the target, the shoes only the trigger (full price)
    body = promotion(SHOES, product_based("PERCENTAGE", 50, SOCKS), id="p")
    the_cart = cart(line("SHOE", "80.00", key="shoes", categories=["SHOES"]),
                    line("SOCK", "9.00", key="socks", categories=["SOCKS"]))  # fmt: skip
    result = run(the_cart, body)
    # 50% of 9 = 4.50
    assert shares(result, "p") == {"socks": D("4.50")}
    by_key = {share.line_key: share for share in result.applied[0].lines}
    assert by_key["shoes"].promotion_qty == D(1) and by_key["shoes"].discount_qty == D(0)
    # no socks: the promotion does not apply
    assert reasons(run(cart(the_cart.lines[0]), body)) == {"p": "CONDITION_NOT_MET"}


def test_n_units_target_takes_the_cheapest():
    # 30% off one unit of SKU T: lines of 10 (2 units, 5 each) and 4: the unit of 4 -> 1.20
    body = promotion(product_condition(skus("T")),
                     product_based("PERCENTAGE", 30, product_condition(skus("T", kpi="QUANTITY", operator="EQUALS", value=1))),
                     id="p")  # fmt: skip
    result = run(cart(line("T", "10.00", 2, key="two"), line("T", "4.00", key="one")), body)
    assert shares(result, "p") == {"one": D("1.20")}


def test_n_units_target_spanning_lines_takes_a_lines_units_before_the_next():
    # 3 units at 5 each on two identical lines: EQUALS 3 takes both units of the first line in line order
    # (key "a" before "b"), then one of the second: 10% of 15 = 1.50 -> 1.00 and 0.50
    body = promotion(product_condition(skus("T")),
                     product_based("PERCENTAGE", 10, product_condition(skus("T", kpi="QUANTITY", operator="EQUALS", value=3))),
                     id="p")  # fmt: skip
    result = run(cart(line("T", "10.00", 2, key="b"), line("T", "10.00", 2, key="a")), body)
    assert shares(result, "p") == {"a": D("1.00"), "b": D("0.50")}


def test_fixed_price_type():
    # the shoes (80) for 60: 20; for 90: nothing
    the_cart = cart(line("SHOE", "80.00", key="shoes", categories=["SHOES"]))
    assert discounts(run(the_cart, promotion(SHOES, product_based("FIXED_PRICE", 60), id="p"))) == {
        "p": D(20)
    }
    assert reasons(run(the_cart, promotion(SHOES, product_based("FIXED_PRICE", 90), id="p"))) == {
        "p": "NO_DISCOUNT"
    }
