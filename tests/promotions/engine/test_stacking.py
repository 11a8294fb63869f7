"""Ranking and stacking (docs/engine.md, "Ranking and stacking"): exclusives alone, priority, type tier,
earliest end, the larger discount, phases, one line promotion per unit, NET and GROSS."""

from __future__ import annotations

from promotions.engine import Headroom

from .builders import (
    END_MS,
    D,
    cart,
    cart_based,
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
    skus,
)

ANY_CART = cart_condition("SUBTOTAL", "GREATER_THAN", 0)


def test_an_exclusive_promotion_blocks_the_stackable_ones():
    # given: an exclusive 5 off and a stackable 10% off, on a cart of 100
    exclusive = promotion(ANY_CART, cart_based("ABSOLUTE", 5), id="exclusive", isStackable=False)
    stackable = promotion(product_condition(skus("A")), product_based("PERCENTAGE", 10), id="stackable")
    # when
    result = run(cart(line("A", "100.00")), exclusive, stackable)
    # then: the exclusive alone, although the stackable would give more
    assert discounts(result) == {"exclusive": D("5.00")}
    assert reasons(result) == {"stackable": "BLOCKED_BY_EXCLUSIVE"}


def test_an_exclusive_that_gives_nothing_blocks_nothing():
    exclusive = promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 500), cart_based("ABSOLUTE", 5),
                          id="exclusive", isStackable=False)  # fmt: skip
    stackable = promotion(ANY_CART, cart_based("ABSOLUTE", 7), id="stackable")
    result = run(cart(line("A", "100.00")), exclusive, stackable)
    assert discounts(result) == {"stackable": D("7.00")}
    assert reasons(result) == {"exclusive": "CONDITION_NOT_MET"}


def test_two_exclusives_the_best_ranked_wins():
    # given: two exclusives of the same priority, tier and end: the larger discount wins
    small = promotion(ANY_CART, cart_based("ABSOLUTE", 5), id="a-small", isStackable=False)
    large = promotion(ANY_CART, cart_based("ABSOLUTE", 8), id="b-large", isStackable=False)
    result = run(cart(line("A", "100.00")), small, large)
    assert discounts(result) == {"b-large": D("8.00")}
    assert reasons(result) == {"a-small": "BLOCKED_BY_EXCLUSIVE"}
    # priority comes first: priority 0 before 1, whatever the discount
    small["priority"], large["priority"] = 0, 1
    assert discounts(run(cart(line("A", "100.00")), small, large)) == {"a-small": D("5.00")}


def test_ranking_type_tier_then_earliest_end_then_id():
    pos = promotion(ANY_CART, cart_based("ABSOLUTE", 9), id="pos", isStackable=False)
    customer = promotion(
        ANY_CART, cart_based("ABSOLUTE", 1), id="customer", type="CUSTOMER", isStackable=False
    )
    wallet = {"customer": "earned-1"}
    # the CUSTOMER (segmented) tier before POS
    result = run(cart(line("A", "100.00")), pos, customer, wallet=wallet)
    assert discounts(result) == {"customer": D("1.00")}
    assert result.applied[0].earned_promotion_id == "earned-1"
    # same tier: the earliest end first
    soon = promotion(ANY_CART, cart_based("ABSOLUTE", 1), id="soon", endDate=END_MS - 1, isStackable=False)
    assert discounts(run(cart(line("A", "100.00")), pos, soon)) == {"soon": D("1.00")}
    # all equal: the promotion id
    twin_a = promotion(ANY_CART, cart_based("ABSOLUTE", 3), id="twin-a", isStackable=False)
    twin_b = promotion(ANY_CART, cart_based("ABSOLUTE", 3), id="twin-b", isStackable=False)
    assert discounts(run(cart(line("A", "100.00")), twin_b, twin_a)) == {"twin-a": D("3.00")}


def test_stackable_promotions_apply_in_ranking_order_on_the_reduced_cart():
    # given: two stackable cart promotions, 10 off (priority 0) then 10% (priority 1)
    ten_off = promotion(ANY_CART, cart_based("ABSOLUTE", 10), id="ten-off", priority=0)
    ten_percent = promotion(ANY_CART, cart_based("PERCENTAGE", 10), id="ten-percent", priority=1)
    # when: NET: 100 - 10 = 90, 10% of 90 = 9
    result = run(cart(line("A", "100.00")), ten_percent, ten_off)
    assert [a.promotion_id for a in result.applied] == ["ten-off", "ten-percent"]
    assert discounts(result) == {"ten-off": D("10.00"), "ten-percent": D("9.00")}
    # GROSS: 10% of the 100 sent = 10
    result = run(cart(line("A", "100.00")), ten_percent, ten_off, percentage_base="GROSS")
    assert discounts(result) == {"ten-off": D("10.00"), "ten-percent": D("10.00")}
    # reversed priorities: 10% of 100 = 10, then 10 off
    ten_off["priority"], ten_percent["priority"] = 1, 0
    result = run(cart(line("A", "100.00")), ten_percent, ten_off)
    assert [a.promotion_id for a in result.applied] == ["ten-percent", "ten-off"]


def test_net_conditions_see_earlier_discounts_gross_ones_do_not():
    # given: 20% off A, then 10 off carts of 100 or more
    line_promo = promotion(product_condition(skus("A")), product_based("PERCENTAGE", 20), id="line")
    cart_promo = promotion(cart_condition("SUBTOTAL", "GREATER_THAN_OR_EQUAL", 100), cart_based("ABSOLUTE", 10),
                           id="cart")  # fmt: skip
    # NET: 100 - 20 = 80 < 100: the cart promotion's condition is not met
    result = run(cart(line("A", "100.00")), line_promo, cart_promo)
    assert discounts(result) == {"line": D("20.00")}
    assert reasons(result) == {"cart": "CONDITION_NOT_MET"}
    # GROSS: measured on the 100 sent: 10 off applies (on the 80 left)
    result = run(cart(line("A", "100.00")), line_promo, cart_promo, percentage_base="GROSS")
    assert discounts(result) == {"line": D("20.00"), "cart": D("10.00")}


def test_one_line_promotion_per_unit():
    # given: 10% off shirts (priority 0) then 5 off shirts (priority 1), 2 shirts on one line
    first = promotion(product_condition(category("SHIRTS")), product_based("PERCENTAGE", 10), id="first")
    second = promotion(product_condition(category("SHIRTS")), product_based("ABSOLUTE", 5), id="second",
                       priority=1)  # fmt: skip
    shirts = line("SHIRT", "100.00", 2, key="shirts", categories=["SHIRTS"])
    # when: the default, one line promotion per unit: both units are taken by the first
    result = run(cart(shirts), first, second)
    # then: 10% of 100 = 10; the second finds no unit left
    assert discounts(result) == {"first": D("10.00")}
    assert reasons(result) == {"second": "NO_DISCOUNT"}
    # with several line promotions per unit: 10, then 5 off what is left (90)
    result = run(cart(shirts), first, second, several_line_promotions_per_unit=True)
    assert discounts(result) == {"first": D("10.00"), "second": D("5.00")}


def test_units_left_by_a_line_promotion_go_to_the_next():
    # given: 1 free shirt of 3 (cheapest), then 10% off shirts
    two = promotion(product_condition(category("SHIRTS")),
                    product_based("PERCENTAGE", 50, product_condition(category("SHIRTS", kpi="QUANTITY",
                                                                                 operator="EQUALS", value=1))),
                    id="half")  # fmt: skip
    ten = promotion(
        product_condition(category("SHIRTS")), product_based("PERCENTAGE", 10), id="ten", priority=1
    )
    shirts = line("SHIRT", "90.00", 3, key="shirts", categories=["SHIRTS"])
    # when: half: 50% of one unit (30) = 15; the line is then 75 for 3 units, 2 units left valued
    # 75 / 3 = 25 each: 10% of 50 = 5
    result = run(cart(shirts), two, ten)
    assert discounts(result) == {"half": D("15.00"), "ten": D("5.00")}
    assert shares(result, "ten") == {"shirts": D("5.00")}


def test_limits_cap_the_discount_and_headroom_gates_it():
    body = promotion(ANY_CART, cart_based("PERCENTAGE", 50), id="half")
    # the remaining discount of the stateful limits caps: 50 -> 12.50
    result = run(cart(line("A", "100.00")), body, headroom={"half": Headroom(discount=D("12.50"))})
    assert discounts(result) == {"half": D("12.50")}
    # no redemptions left: not offered
    result = run(cart(line("A", "100.00")), body, headroom={"half": Headroom(redemptions=D(0))})
    assert reasons(result) == {"half": "LIMIT_REACHED"}
    result = run(cart(line("A", "100.00")), body, headroom={"half": Headroom(discount=D(0))})
    assert reasons(result) == {"half": "LIMIT_REACHED"}
