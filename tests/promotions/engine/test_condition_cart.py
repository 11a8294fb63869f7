"""CART conditions: SUBTOTAL (the cart's value) and ITEMCOUNT (distinct SKUs); the set is every line."""

from __future__ import annotations

import pytest

from .builders import D, cart, cart_based, cart_condition, discounts, line, promotion, reasons, run

CART = cart(line("A", "60.00", 2, key="a"), line("A", "30.00", key="a2"), line("B", "10.00", key="b"))  # 100


@pytest.mark.parametrize(
    ("operator", "value", "holds"),
    [
        ("EQUALS", "100", True),
        ("EQUALS", "99.99", False),
        ("GREATER_THAN", "99.99", True),
        ("GREATER_THAN", "100", False),
        ("GREATER_THAN_OR_EQUAL", "100", True),
        ("GREATER_THAN_OR_EQUAL", "100.01", False),
    ],
)
def test_subtotal_compares_the_carts_value(operator, value, holds):
    body = promotion(cart_condition("SUBTOTAL", operator, value), cart_based("ABSOLUTE", 1), id="p")
    result = run(CART, body)
    assert (discounts(result) == {"p": D(1)}) is holds
    assert holds or reasons(result) == {"p": "CONDITION_NOT_MET"}


@pytest.mark.parametrize(("operator", "value", "holds"), [("EQUALS", 2, True), ("EQUALS", 3, False),
                                                          ("GREATER_THAN", 1, True), ("GREATER_THAN_OR_EQUAL", 3, False)])  # fmt: skip
def test_itemcount_counts_distinct_skus(operator, value, holds):
    # three lines, two SKUs (A twice)
    body = promotion(cart_condition("ITEMCOUNT", operator, value), cart_based("ABSOLUTE", 1), id="p")
    assert (discounts(run(CART, body)) == {"p": D(1)}) is holds


def test_the_condition_set_is_every_line():
    # 10% of 100 spread 60 : 30 : 10 over the lines (line order: A 30, A 60, B)
    body = promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("PERCENTAGE", 10), id="p")
    result = run(CART, body)
    applied = result.applied[0]
    assert {share.line_key: (share.discount, share.promotion_qty) for share in applied.lines} == {
        "a": (D("6.00"), D(2)),
        "a2": (D("3.00"), D(1)),
        "b": (D("1.00"), D(1)),
    }


def test_subtotal_is_measured_after_earlier_discounts_with_net():
    # 15 off line A (priority 0) leaves 85: "SUBTOTAL >= 90" is not met under NET, is under GROSS
    first = promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 15), id="first")
    second = promotion(cart_condition("SUBTOTAL", "GREATER_THAN_OR_EQUAL", 90), cart_based("ABSOLUTE", 5), id="second",
                       priority=1)  # fmt: skip
    assert discounts(run(CART, first, second)) == {"first": D(15)}
    assert discounts(run(CART, first, second, percentage_base="GROSS")) == {"first": D(15), "second": D(5)}
