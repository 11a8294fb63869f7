"""Who may get what (docs/engine.md): the reasons a promotion is skipped, in the documented order."""

from __future__ import annotations

import datetime as dt

from .builders import (
    NOW,
    D,
    cart,
    cart_based,
    cart_condition,
    discounts,
    line,
    product_condition,
    promotion,
    reasons,
    run,
    skus,
)

ANY_CART = cart_condition("SUBTOTAL", "GREATER_THAN", 0)
NOW_MS = int(NOW.timestamp() * 1000)


def ten_off(**fields):
    return promotion(ANY_CART, cart_based("ABSOLUTE", 10), id="ten", **fields)


def reason(body, **context):
    return reasons(run(cart(line("A", "100.00")), body, **context)).get("ten")


def test_inactive_not_started_expired():
    assert reason(ten_off(active=False)) == "INACTIVE"
    assert reason(ten_off(startDate=NOW_MS + 1)) == "NOT_STARTED"
    assert reason(ten_off(startDate=NOW_MS)) is None  # start <= now
    assert reason(ten_off(endDate=NOW_MS)) == "EXPIRED"  # now < end
    assert reason(ten_off(endDate=NOW_MS + 1)) is None
    # inactive comes first
    assert reason(ten_off(active=False, endDate=NOW_MS)) == "INACTIVE"


def test_wallet_promotions_need_an_active_instance():
    for kind in ("CUSTOMER", "EARNING", "REWARD"):
        assert reason(ten_off(type=kind)) == "NOT_IN_WALLET"
        result = run(cart(line("A", "100.00")), ten_off(type=kind), wallet={"ten": "e-7"})
        assert discounts(result) == {"ten": D("10.00")}
        assert result.applied[0].earned_promotion_id == "e-7"


def test_pos_promotions_apply_to_everyone_but_loyalty_only_ones():
    assert reason(ten_off(), customer_known=False) is None
    assert reason(ten_off(isLoyaltyOnly=True), customer_known=False) == "LOYALTY_ONLY"
    assert reason(ten_off(isLoyaltyOnly=True), customer_known=True) is None


def test_code_promotions_need_a_code():
    assert reason(ten_off(type="CODE")) == "CODE_REQUIRED"
    assert reason(ten_off(type="CODE"), codes={"other": "SAVE10"}) == "CODE_REQUIRED"


def test_a_code_makes_its_code_promotion_eligible_and_is_reported_on_the_applied_promotion():
    result = run(cart(line("A", "100.00")), ten_off(type="CODE"), codes={"ten": "SAVE10"})
    assert discounts(result) == {"ten": D("10.00")}
    assert result.applied[0].promo_code == "SAVE10"
    # a code is only for CODE promotions: a POS promotion applies without one and names none
    assert run(cart(line("A", "100.00")), ten_off(), codes={"ten": "SAVE10"}).applied[0].promo_code is None


def test_cart_redemption_limit_below_one_is_reached():
    body = ten_off(promotionRestrictions={"Cart": [{"kpi": "REDEMPTION", "limit": "0.000000"}]})
    assert reason(body) == "LIMIT_REACHED"


def test_condition_not_met_and_no_discount():
    body = promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 500), cart_based("ABSOLUTE", 10), id="ten")
    assert reason(body) == "CONDITION_NOT_MET"
    # the condition holds on a cart worth 0, and 10 off it is nothing
    body = promotion(cart_condition("SUBTOTAL", "EQUALS", 0), cart_based("ABSOLUTE", 10), id="ten")
    assert reasons(run(cart(line("A", "0.00")), body)) == {"ten": "NO_DISCOUNT"}


def test_explain_lists_every_rule_not_only_the_candidates():
    # given: a rule on SKU B, which the index does not offer for a cart of A
    body = promotion(product_condition(skus("B")), cart_based("ABSOLUTE", 10), id="ten")
    # then: without explain it is not considered; with explain it is skipped with its reason
    assert run(cart(line("A", "100.00")), body).skipped == ()
    assert reasons(run(cart(line("A", "100.00")), body, explain=True)) == {"ten": "CONDITION_NOT_MET"}
    # and an expired rule says so first
    body["endDate"] = NOW_MS - 1
    assert reasons(run(cart(line("A", "100.00")), body, explain=True)) == {"ten": "EXPIRED"}


def test_the_moment_is_the_contexts():
    later = NOW + dt.timedelta(days=400)
    assert reason(ten_off(), now=later) == "EXPIRED"


def test_a_line_without_quantity_is_refused_by_name():
    import pytest

    with pytest.raises(ValueError, match="'zero'"):
        run(cart(line("A", "1.00", 0, key="zero")), ten_off())
