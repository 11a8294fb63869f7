"""TENDER actions: ABSOLUTE v or PERCENTAGE p of what the condition's tenders pay, at most that; applied last,
spread over every line and over those tenders."""

from __future__ import annotations

import pytest

from promotions.engine import AdjustedTender, UnsupportedRule, adjusted_tenders, compile_rule

from .builders import (
    D,
    cart,
    cart_based,
    cart_condition,
    discounts,
    line,
    promotion,
    run,
    tender_action,
    tender_condition,
)

CARD = tender_condition("CreditCard")


def tenders_of(result, promotion_id):
    for applied in result.applied:
        if applied.promotion_id == promotion_id:
            return {share.identifier: share.discount for share in applied.tenders}
    raise AssertionError(promotion_id)


def test_percentage_of_what_the_card_pays():
    # 5% of 80 paid by card = 4
    the_cart = cart(line("A", "100.00"), tenders={"CreditCard": "80.00", "CASH": "20.00"})
    result = run(the_cart, promotion(CARD, tender_action("PERCENTAGE", 5), id="t"))
    assert discounts(result) == {"t": D("4.00")}
    assert result.applied[0].level == "TENDER"
    assert tenders_of(result, "t") == {"CreditCard": D("4.00")}


def test_absolute_at_most_what_the_card_pays():
    the_cart = cart(line("A", "100.00"), tenders={"CreditCard": "15.00", "CASH": "85.00"})
    assert discounts(run(the_cart, promotion(CARD, tender_action("ABSOLUTE", 20), id="t"))) == {
        "t": D("15.00")
    }


def test_tender_promotions_come_last_even_before_cart_ones_by_rank():
    # the tender promotion ranks first (priority 0) but applies after the cart one (10 off): the cart is 90,
    # the card paid 100: 10% of 100 = 10 (capped by the cart's 90, not reached)
    the_cart = cart(line("A", "100.00"), tenders={"CreditCard": "100.00"})
    tender = promotion(CARD, tender_action("PERCENTAGE", 10), id="t", priority=0)
    cart_promo = promotion(
        cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 10), id="c", priority=5
    )
    result = run(the_cart, tender, cart_promo)
    assert [applied.promotion_id for applied in result.applied] == ["c", "t"]
    assert discounts(result) == {"c": D(10), "t": D(10)}


def test_two_cards_share_by_what_they_pay():
    # 10 off what CreditCard and DebitCard pay (30 and 10): 7.50 and 2.50
    the_cart = cart(line("A", "40.00"), tenders={"CreditCard": "30.00", "DebitCard": "10.00"})
    body = promotion(tender_condition("CreditCard", "DebitCard"), tender_action("ABSOLUTE", 10), id="t")
    assert tenders_of(run(the_cart, body), "t") == {"CreditCard": D("7.50"), "DebitCard": D("2.50")}


def test_a_tender_action_needs_a_tender_condition():
    with pytest.raises(UnsupportedRule) as refused:
        compile_rule(promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), tender_action("ABSOLUTE", 1)))
    assert refused.value.path == "action.type"
    assert "TENDER condition" in refused.value.message


def test_adjusted_tenders_and_the_cash_for_the_rest():
    # Capillary's example: a 2000 cart, 100 off the cart, 500 paid by card: CASH 1400 is added
    the_cart = cart(line("FOOD", "1000.00"), line("FUEL", "1000.00"), tenders={"CreditCard": "500.00"})
    result = run(
        the_cart,
        promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 100), id="c"),
    )
    assert adjusted_tenders(the_cart, result) == (
        AdjustedTender("CreditCard", D(500), D(500)),
        AdjustedTender("CASH", D(1400), D(1400), added=True),
    )
    # a tender promotion reduces its tender: 10% of the card's 500 = 50; 2000 - 50 = 1950 = 450 + 1500 CASH
    result = run(the_cart, promotion(CARD, tender_action("PERCENTAGE", 10), id="t"))
    assert adjusted_tenders(the_cart, result) == (
        AdjustedTender("CreditCard", D(500), D(450)),
        AdjustedTender("CASH", D(1500), D(1500), added=True),
    )
    # tenders covering the cart: nothing added
    covered = cart(line("A", "100.00"), tenders={"CreditCard": "100.00"})
    result = run(covered, promotion(CARD, tender_action("ABSOLUTE", 5), id="t"))
    assert adjusted_tenders(covered, result) == (AdjustedTender("CreditCard", D(100), D(95)),)
