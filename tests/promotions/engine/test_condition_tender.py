"""TENDER conditions: a cart tender's identifier among the tender modes' identifiers (exact), and the
nested CART or PRODUCT condition; without tenders never."""

from __future__ import annotations

from .builders import (
    D,
    cart,
    cart_condition,
    category,
    discounts,
    line,
    product_based,
    product_condition,
    promotion,
    reasons,
    run,
    shares,
    tender_condition,
)

LINES = (line("TV", "500.00", key="tv", categories=["TV"]), line("HDMI", "20.00", key="cable"))


def test_the_tender_identifier_must_be_there():
    body = promotion(tender_condition("CreditCard", "AmexCard"), product_based("PERCENTAGE", 10), id="card")
    # 10% of 520 = 52 (the set is every line without a nested condition)
    assert discounts(run(cart(*LINES, tenders={"AmexCard": "520.00"}), body)) == {"card": D("52.00")}
    # exact comparison, and no tenders: never
    assert reasons(run(cart(*LINES, tenders={"creditcard": "520.00"}), body)) == {"card": "CONDITION_NOT_MET"}
    assert reasons(run(cart(*LINES), body)) == {"card": "CONDITION_NOT_MET"}


def test_the_nested_product_condition_gives_the_set():
    nested = product_condition(category("TV"))
    body = promotion(
        tender_condition("CreditCard", nested=nested), product_based("PERCENTAGE", 10), id="card"
    )
    # 10% of the TV 500 = 50
    assert shares(run(cart(*LINES, tenders={"CreditCard": "520.00"}), body), "card") == {"tv": D("50.00")}


def test_the_nested_cart_condition_must_hold():
    nested = cart_condition("SUBTOTAL", "GREATER_THAN", 1000)
    body = promotion(
        tender_condition("CASH", nested=nested, mode="CASH"), product_based("PERCENTAGE", 10), id="cash"
    )
    assert reasons(run(cart(*LINES, tenders={"CASH": "520.00"}), body)) == {"cash": "CONDITION_NOT_MET"}
