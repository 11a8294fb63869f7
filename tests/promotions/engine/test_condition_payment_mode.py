"""PAYMENT_MODE, PAYMENT_MODE_SCOPE and PAYMENT_MODE_COMBO_PRODUCT: the payment mode selection (IN: a tender
in the values; NOT_IN: tenders, none in the values), alone or with a product or combo condition."""

from __future__ import annotations

import pytest

from .builders import (
    D,
    cart,
    category,
    line,
    payment_mode,
    product_based,
    promotion,
    run,
    shares,
)

LINES = (
    line("BOOK", "30.00", key="book", categories=["BOOKS"]),
    line("PEN", "5.00", key="pen", categories=["PENS"]),
)
BOOKS = category("BOOKS", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1)
PENS = category("PENS")


@pytest.mark.parametrize(
    ("operator", "tenders", "holds"),
    [
        ("IN", {"POINTS": "10.00", "CASH": "25.00"}, True),
        ("IN", {"CASH": "35.00"}, False),
        ("IN", {}, False),
        ("NOT_IN", {"CASH": "35.00"}, True),
        ("NOT_IN", {"POINTS": "35.00"}, False),
        ("NOT_IN", {}, False),  # NOT_IN needs tenders too
    ],
)
def test_the_selection(operator, tenders, holds):
    # the whole cart: 10% of 35 = 3.50 (3.00 + 0.50)
    body = promotion(payment_mode("POINTS", operator=operator), product_based("PERCENTAGE", 10), id="pm")
    result = run(cart(*LINES, tenders=tenders), body)
    assert (result.discount == D("3.50")) is holds


def test_scope_selects_its_products():
    body = promotion(payment_mode("POINTS", scope=BOOKS), product_based("PERCENTAGE", 10), id="pm")
    assert shares(run(cart(*LINES, tenders={"POINTS": "35.00"}), body), "pm") == {"book": D("3.00")}
    assert run(cart(*LINES, tenders={"CASH": "35.00"}), body).applied == ()


def test_combo_needs_every_part():
    body = promotion(payment_mode("POINTS", combo=[BOOKS, PENS]), product_based("PERCENTAGE", 10), id="pm")
    assert shares(run(cart(*LINES, tenders={"POINTS": "35.00"}), body), "pm") == {
        "book": D("3.00"),
        "pen": D("0.50"),
    }
    assert run(cart(LINES[0], tenders={"POINTS": "35.00"}), body).applied == ()
