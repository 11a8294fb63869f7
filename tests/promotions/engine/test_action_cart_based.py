"""CART_BASED actions: ABSOLUTE (at most the cart's current value) and PERCENTAGE (NET or GROSS), spread over
every line by value."""

from __future__ import annotations

from .builders import (
    D,
    cart,
    cart_based,
    cart_condition,
    discounts,
    line,
    product_based,
    product_condition,
    promotion,
    run,
    shares,
    skus,
)

ANY = cart_condition("SUBTOTAL", "GREATER_THAN", 0)


def test_absolute_is_capped_at_the_carts_value():
    # 50 off a cart of 30: 30 (20 + 10)
    result = run(
        cart(line("A", "20.00", key="a"), line("B", "10.00", key="b")),
        promotion(ANY, cart_based("ABSOLUTE", 50), id="c"),
    )
    assert discounts(result) == {"c": D("30.00")}
    assert shares(result, "c") == {"a": D("20.00"), "b": D("10.00")}


def test_absolute_spread_by_largest_remainder():
    # 10 over three lines of 1.00: 3.333.. each -> 3.33 x 3 = 9.99, the cent to the first in line order (A)
    the_cart = cart(line("C", "1.00", key="c"), line("A", "1.00", key="a"), line("B", "1.00", key="b"))
    result = run(the_cart, promotion(ANY, cart_based("ABSOLUTE", 1), id="c1"))
    assert shares(result, "c1") == {"a": D("0.34"), "b": D("0.33"), "c": D("0.33")}


def test_percentage_net_and_gross():
    # 20 off A first (line promotion), then 10% of the cart: NET 10% of 80 = 8; GROSS 10% of 100 = 10
    the_cart = cart(line("A", "60.00", key="a"), line("B", "40.00", key="b"))
    first = promotion(product_condition(skus("A")), product_based("ABSOLUTE", 20), id="line")
    tenth = promotion(ANY, cart_based("PERCENTAGE", 10), id="cart")
    assert discounts(run(the_cart, first, tenth)) == {"line": D(20), "cart": D("8.00")}
    result = run(the_cart, first, tenth, percentage_base="GROSS")
    assert discounts(result) == {"line": D(20), "cart": D("10.00")}
    # spread over what the lines hold now, 40 : 40
    assert shares(result, "cart") == {"a": D("5.00"), "b": D("5.00")}


def test_a_cart_promotion_discounts_units_a_line_promotion_took():
    # the line promotion took A entirely (free); the cart promotion still spreads over every line with value
    the_cart = cart(line("A", "10.00", key="a"), line("B", "30.00", key="b"))
    first = promotion(product_condition(skus("A")), product_based("PERCENTAGE", 100), id="line")
    second = promotion(ANY, cart_based("ABSOLUTE", 3), id="cart")
    assert shares(run(the_cart, first, second), "cart") == {"b": D("3.00")}
