"""COMBO_PRODUCT conditions: every product condition holds; the set is the union of their lines."""

from __future__ import annotations

from .builders import (
    D,
    cart,
    category,
    combo_condition,
    line,
    product_based,
    promotion,
    reasons,
    run,
    shares,
)

BURGER = category("BURGERS", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1)
FRIES = category("SIDES", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1)
DRINK = category("DRINKS", kpi="AMOUNT", operator="GREATER_THAN_OR_EQUAL", value=2)


def meal(**fields):
    return promotion(
        combo_condition(BURGER, FRIES, DRINK), product_based("PERCENTAGE", 20), id="meal", **fields
    )


def test_every_part_holds_and_the_set_is_their_union():
    # 20% of the burger 8, fries 3 and drink 2.50 (13.50) = 2.70; the dessert is in no part
    the_cart = cart(
        line("BURGER", "8.00", key="burger", categories=["BURGERS"]),
        line("FRIES", "3.00", key="fries", categories=["SIDES"]),
        line("COLA", "2.50", key="cola", categories=["DRINKS"]),
        line("PIE", "4.00", key="pie", categories=["DESSERTS"]),
    )
    result = run(the_cart, meal())
    assert result.discount == D("2.70")
    # 1.60, 0.60, 0.50
    assert shares(result, "meal") == {"burger": D("1.60"), "fries": D("0.60"), "cola": D("0.50")}


def test_one_part_failing_fails_the_combo():
    # the drink is worth 1.50 < 2
    the_cart = cart(
        line("BURGER", "8.00", categories=["BURGERS"]),
        line("FRIES", "3.00", categories=["SIDES"]),
        line("WATER", "1.50", categories=["DRINKS"]),
    )
    assert reasons(run(the_cart, meal())) == {"meal": "CONDITION_NOT_MET"}


def test_one_line_may_satisfy_several_parts():
    # a line in BURGERS and SIDES and DRINKS (a meal box of 10) holds all three: 20% = 2
    box = line("BOX", "10.00", key="box", categories=["BURGERS", "SIDES", "DRINKS"])
    assert shares(run(cart(box), meal()), "meal") == {"box": D("2.00")}
