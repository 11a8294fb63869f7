"""The oracle (tests/promotions/engine/oracle.py) on the worked examples of docs/engine.md and of
Capillary's documentation, each computed by hand in its docstring: the differential test trusts the
oracle only as far as these hold. Each runs on the engine as well."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from promotions.engine.types import Headroom, StoreScope
from tests.promotions.engine import oracle
from tests.promotions.engine.implementations import IMPLEMENTATIONS
from tests.promotions.engine.strategies import (
    DAY_MS,
    NOW,
    cart,
    cart_based,
    cart_condition,
    cart_limits,
    combo,
    context,
    criterion,
    fixed_price,
    free_product,
    line,
    ms,
    payment_mode,
    per_unit,
    product,
    product_based,
    product_condition,
    promotion,
    tender_based,
    tender_condition,
)


@pytest.fixture(autouse=True, params=sorted(IMPLEMENTATIONS))
def implementation(request):
    """Each example runs on the oracle, and on the engine as a cross-check."""
    global _evaluate
    _evaluate = IMPLEMENTATIONS[request.param]
    return request.param


_evaluate = oracle.evaluate


def evaluate(the_cart, promotions, the_context=None):
    return _evaluate(the_cart, promotions, the_context or context())


def shares(result, pid):
    (found,) = [applied for applied in result.applied if applied.promotion_id == pid]
    return {share.line_key: share.discount for share in found.lines if share.discount}


def applied_ids(result):
    return [(applied.promotion_id, applied.discount) for applied in result.applied]


def reasons(result):
    return {skipped.promotion_id: skipped.reason for skipped in result.skipped}


D = Decimal

# --- Shoes 100 and a towel 20 -------------------------------------------------------------------

SHOES_CART = cart(line("shoes", "SHOES", "100.00"), line("towel", "TOWEL", "20.00"))
TEN_OFF_SHOES = promotion(
    "shoes10", product(criterion("SKU", ["SHOES"])), product_based("PERCENTAGE", 10), priority=0
)
TEN_OFF_CARTS_OVER_99 = promotion(
    "cart10", cart_condition("SUBTOTAL", "GREATER_THAN", 99), cart_based("PERCENTAGE", 10)
)


def test_shoes_and_towel_line_items_first():
    """10% off shoes: 10 (shoes 90); 10% off carts over 99 on the reduced 110: 11, spread 90:20 ->
    9.00 and 2.00."""
    result = evaluate(
        SHOES_CART, [TEN_OFF_CARTS_OVER_99, TEN_OFF_SHOES], context(mechanism="LINE_ITEM_FIRST")
    )
    assert applied_ids(result) == [("shoes10", D(10)), ("cart10", D(11))]
    assert shares(result, "shoes10") == {"shoes": D(10)}
    assert shares(result, "cart10") == {"shoes": D(9), "towel": D(2)}
    assert [a.level for a in result.applied] == ["LINE", "CART"]
    assert result.skipped == ()


def test_shoes_and_towel_cart_first():
    """Cart promotions first: 10% of 120 = 12 (shoes 10, towel 2); line promotions skipped."""
    result = evaluate(SHOES_CART, [TEN_OFF_CARTS_OVER_99, TEN_OFF_SHOES], context(mechanism="CART_FIRST"))
    assert applied_ids(result) == [("cart10", D(12))]
    assert shares(result, "cart10") == {"shoes": D(10), "towel": D(2)}
    assert reasons(result) == {"shoes10": "CART_PROMOTION_APPLIED"}


def test_shoes_and_towel_gross():
    """GROSS: the cart percentage is on the cart as sent, 10% of 120 = 12 after the 10 off shoes."""
    result = evaluate(SHOES_CART, [TEN_OFF_CARTS_OVER_99, TEN_OFF_SHOES], context(percentage_base="GROSS"))
    assert applied_ids(result) == [("shoes10", D(10)), ("cart10", D(12))]
    # 12 over 90:20 -> 9.8181.. and 2.1818..: 9.81 + 2.18 = 11.99, the cent to the larger remainder (9.8181).
    assert shares(result, "cart10") == {"shoes": D("9.82"), "towel": D("2.18")}


def test_cart_condition_sees_the_reduced_cart_under_net():
    """Carts of 115 or more: 120 as sent, 110 after 10% off shoes: not met under NET, met under GROSS."""
    over_115 = promotion(
        "cart115", cart_condition("SUBTOTAL", "GREATER_THAN_OR_EQUAL", 115), cart_based("ABSOLUTE", 5)
    )
    net = evaluate(SHOES_CART, [over_115, TEN_OFF_SHOES])
    assert applied_ids(net) == [("shoes10", D(10))]
    assert reasons(net) == {"cart115": "CONDITION_NOT_MET"}
    gross = evaluate(SHOES_CART, [over_115, TEN_OFF_SHOES], context(percentage_base="GROSS"))
    assert applied_ids(gross) == [("shoes10", D(10)), ("cart115", D(5))]


# --- Buy 2 shirts get a tie ---------------------------------------------------------------------

SHIRTS = criterion("CATEGORY", ["shirts"])
TIES = criterion("CATEGORY", ["ties"])


def shirts_and_ties(shirts: int, *tie_prices: str):
    lines = [line("shirts", "SHIRT", str(40 * shirts), shirts, categories=["shirts"])]
    lines += [line(f"tie{i}", f"TIE{i}", price, categories=["ties"]) for i, price in enumerate(tie_prices)]
    return cart(*lines)


def test_buy_two_shirts_get_a_tie():
    """Two shirts (80) and ties of 25 and 15: the target is one tie, the cheaper: 15 off."""
    rule = promotion(
        "tie",
        product(SHIRTS, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=2),
        free_product(product(TIES, kpi="QUANTITY", operator="EQUALS", value=1)),
    )
    result = evaluate(shirts_and_ties(2, "25.00", "15.00"), [rule])
    assert applied_ids(result) == [("tie", D(15))]
    assert shares(result, "tie") == {"tie1": D(15)}
    (applied,) = result.applied
    assert {s.line_key: s.discount_qty for s in applied.lines if s.discount_qty} == {"tie1": 1}
    assert applied.redemption_count == 1
    # One shirt: the condition does not hold. No tie: the target does not hold.
    assert reasons(evaluate(shirts_and_ties(1, "25.00"), [rule])) == {"tie": "CONDITION_NOT_MET"}
    assert reasons(evaluate(shirts_and_ties(2), [rule])) == {"tie": "CONDITION_NOT_MET"}


@pytest.mark.parametrize(
    ("shirts", "expected", "count", "free"),
    [(1, None, 0, {}), (2, "15", 1, {"tie2": D(15)}), (4, "35", 2, {"tie2": D(15), "tie1": D(20)}),
     (5, "35", 2, {"tie2": D(15), "tie1": D(20)}), (6, "60", 3, {"tie2": D(15), "tie1": D(20), "tie0": D(25)})],
)  # fmt: skip
def test_a_tie_per_two_shirts(shirts, expected, count, free):
    """PER_UNIT divider 2 over the shirts (the condition set), reward a free tie: floor(shirts / 2)
    groups, each one tie, cheapest first (15, then 20, then 25)."""
    rule = promotion(
        "ties",
        product(SHIRTS, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1),
        per_unit(free_product(product(TIES, kpi="QUANTITY", operator="EQUALS", value=1)), divider=2),
    )
    result = evaluate(shirts_and_ties(shirts, "25.00", "20.00", "15.00"), [rule])
    if expected is None:
        assert reasons(result) == {"ties": "NO_DISCOUNT"}
        return
    assert applied_ids(result) == [("ties", D(expected))]
    assert result.applied[0].redemption_count == count
    assert shares(result, "ties") == free


# --- The laptop bundle --------------------------------------------------------------------------

LAPTOPS = criterion("CATEGORY", ["laptops"])
MOUSE = criterion("SKU", ["GM-PRO-001"])
KEYBOARDS = criterion("CATEGORY", ["keyboards"])
MECHANICAL = criterion("ATTRIBUTE", ["mechanical"], attribute_name="switch")


def bundle(include: bool):
    condition = combo(
        product_condition(LAPTOPS, kpi="AMOUNT", operator="GREATER_THAN_OR_EQUAL", value=1000),
        product_condition(MOUSE, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1),
        product_condition(KEYBOARDS, MECHANICAL, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1),
    )
    target = None
    if not include:
        target = combo(
            product_condition(LAPTOPS, kpi="QUANTITY", operator="EQUALS", value=1),
            product_condition(MOUSE, kpi="QUANTITY", operator="EQUALS", value=1),
            product_condition(KEYBOARDS, MECHANICAL, kpi="QUANTITY", operator="EQUALS", value=1),
        )
    return promotion("bundle", condition, fixed_price(1200, target))


LAPTOP = line("laptop", "LAP-1", "1100.00", categories=["laptops"])
MOUSE_LINE = line("mouse", "GM-PRO-001", "60.00")
KEYBOARD = line("keyboard", "KB-9", "150.00", categories=["keyboards"], attributes={"switch": "mechanical"})


@pytest.mark.parametrize("include", [True, False])
def test_laptop_bundle_at_1200(include):
    """1100 + 60 + 150 = 1310 for 1200: 110 off, spread 1100:60:150 = 92.366.., 5.038.., 12.595..;
    floors 92.36 + 5.03 + 12.59 = 109.98, the two cents to the largest remainders: the mouse (.8167) and
    the laptop (.6412)."""
    result = evaluate(cart(LAPTOP, MOUSE_LINE, KEYBOARD), [bundle(include)])
    assert applied_ids(result) == [("bundle", D(110))]
    assert shares(result, "bundle") == {"laptop": D("92.37"), "mouse": D("5.04"), "keyboard": D("12.59")}


def test_laptop_bundle_takes_one_of_each_cheapest_first():
    """Two laptops (1100, 1300) and two mice: the target takes one of each, the cheapest: the same 110."""
    second = line("laptop2", "LAP-2", "1300.00", categories=["laptops"])
    mice = line("mouse", "GM-PRO-001", "120.00", qty=2)
    result = evaluate(cart(second, LAPTOP, mice, KEYBOARD), [bundle(include=False)])
    assert applied_ids(result) == [("bundle", D(110))]
    (applied,) = result.applied
    assert {s.line_key: s.discount_qty for s in applied.lines if s.discount_qty} == {
        "laptop": 1, "mouse": 1, "keyboard": 1,
    }  # fmt: skip
    # A non-mechanical keyboard: the condition fails.
    plain = line("keyboard", "KB-1", "150.00", categories=["keyboards"], attributes={"switch": "membrane"})
    assert reasons(evaluate(cart(LAPTOP, MOUSE_LINE, plain), [bundle(False)])) == {
        "bundle": "CONDITION_NOT_MET"
    }


# --- 25% off the first two snacks ---------------------------------------------------------------

SNACKS = criterion("CATEGORY", ["snacks"])
SNACK_CART = cart(
    line("chips", "CHIPS", "2.00", categories=["snacks"]),
    line("nuts", "NUTS", "3.00", categories=["snacks"]),
    line("cookies", "COOKIES", "1.50", qty=2, categories=["snacks"]),
)
FIRST_TWO_SNACKS = promotion(
    "snacks",
    product(SNACKS),
    product_based("PERCENTAGE", 25, product(SNACKS, kpi="QUANTITY", operator="EQUALS", value=2)),
)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("HALF_UP", "0.38"), ("HALF_EVEN", "0.38"), ("HALF_DOWN", "0.37"), ("DOWN", "0.37"), ("UP", "0.38")],
)
def test_first_two_snacks(mode, expected):
    """The two cheapest units are the cookies (0.75 each): 25% of 1.50 = 0.375, rounded by the mode."""
    result = evaluate(SNACK_CART, [FIRST_TWO_SNACKS], context(rounding_mode=mode))
    assert applied_ids(result) == [("snacks", D(expected))]
    (applied,) = result.applied
    assert [(s.line_key, s.discount, s.discount_qty) for s in applied.lines if s.discount_qty] == [
        ("cookies", D(expected), 2)
    ]


def test_first_two_snacks_across_lines():
    """One cookie (0.75 a unit) and chips (2.00): 25% of 2.75 = 0.6875 -> 0.69, spread 0.75:2.00 =
    0.188 and 0.5018: floors 0.18 + 0.50 = 0.68, the cent to the cookie (remainder .0818 > .0018)."""
    the_cart = cart(
        line("chips", "CHIPS", "2.00", categories=["snacks"]),
        line("nuts", "NUTS", "3.00", categories=["snacks"]),
        line("cookies", "COOKIES", "0.75", qty=1, categories=["snacks"]),
    )
    result = evaluate(the_cart, [FIRST_TWO_SNACKS])
    assert applied_ids(result) == [("snacks", D("0.69"))]
    assert shares(result, "snacks") == {"cookies": D("0.19"), "chips": D("0.50")}


# --- A capped 25% -------------------------------------------------------------------------------


def test_capped_quarter_off():
    """25% of 600 = 150, the Cart-level DISCOUNT limit 100: 100, spread 400:200 -> 66.67, 33.33."""
    rule = promotion(
        "quarter",
        cart_condition("SUBTOTAL", "GREATER_THAN", 0),
        cart_based("PERCENTAGE", 25),
        promotionRestrictions=cart_limits(discount=100),
    )
    result = evaluate(cart(line("a", "A", "400.00"), line("b", "B", "200.00")), [rule])
    assert applied_ids(result) == [("quarter", D(100))]
    assert shares(result, "quarter") == {"a": D("66.67"), "b": D("33.33")}
    small = evaluate(cart(line("a", "A", "40.00")), [rule])
    assert applied_ids(small) == [("quarter", D(10))]


def test_headroom_caps_the_discount_and_empty_headroom_skips():
    rule = promotion("quarter", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("PERCENTAGE", 25))
    the_cart = cart(line("a", "A", "400.00"))
    capped = evaluate(the_cart, [rule], context(headroom={"quarter": Headroom(discount=D("7.505"))}))
    assert applied_ids(capped) == [("quarter", D("7.50"))]
    for headroom in (Headroom(discount=D(0)), Headroom(redemptions=D(0))):
        assert reasons(evaluate(the_cart, [rule], context(headroom={"quarter": headroom}))) == {
            "quarter": "LIMIT_REACHED"
        }


# --- Same SKU on two lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", [None, product(criterion("SKU", ["COKE"]), kpi="QUANTITY", operator="EQUALS", value=2)]
)
def test_coke_combo_of_two_five_and_five(target):
    """10 off a combo of two Cokes on two Coke lines of equal value: 5 and 5 (in proportion to what each
    line gave). With lines of 2.00 each the discount would be capped at their 4.00 (2 and 2)."""
    rule = promotion(
        "coke",
        product(criterion("SKU", ["COKE"]), kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=2),
        product_based("ABSOLUTE", 10, target),
    )
    result = evaluate(cart(line("k1", "COKE", "20.00"), line("k2", "COKE", "20.00")), [rule])
    assert applied_ids(result) == [("coke", D(10))]
    assert shares(result, "coke") == {"k1": D(5), "k2": D(5)}
    cheap = evaluate(cart(line("k1", "COKE", "2.00"), line("k2", "COKE", "2.00")), [rule])
    assert shares(cheap, "coke") == {"k1": D(2), "k2": D(2)}


# --- Buy one get one ----------------------------------------------------------------------------

B1G1 = promotion(
    "b1g1",
    product(criterion("SKU", ["32753189"]), kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=2),
    per_unit(free_product(product(criterion("SKU", ["32753189"]))), divider=1, include=False),
)


@pytest.mark.parametrize(("qty", "free", "count"), [(1, None, 0), (2, "10", 1), (3, "10", 1), (4, "20", 2)])
def test_buy_one_get_one_same_sku(qty, free, count):
    """Capillary's "Buy 1 get 1": divider 1, the free unit's SKU is the counted one, so each group
    consumes its free unit: floor(qty / 2) groups (two shirts give one free, not two)."""
    result = evaluate(cart(line("s", "32753189", str(10 * qty), qty)), [B1G1])
    if free is None:
        assert reasons(result) == {"b1g1": "CONDITION_NOT_MET"}
        return
    assert applied_ids(result) == [("b1g1", D(free))]
    assert result.applied[0].redemption_count == count


def test_buy_one_get_one_frees_the_cheaper_line():
    result = evaluate(cart(line("x", "32753189", "12.00"), line("y", "32753189", "10.00")), [B1G1])
    assert applied_ids(result) == [("b1g1", D(10))]
    assert shares(result, "b1g1") == {"y": D(10)}


def test_buy_two_coffees_get_one_limited_to_one_per_cart():
    """B2G1 (divider 2, one free, same SKU): 6 coffees make floor(6 / 3) = 2 groups; the Cart-level
    REDEMPTION limit 1 leaves one free coffee."""
    coffee = criterion("SKU", ["COFFEE"])
    rule = promotion(
        "b2g1",
        product(coffee, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=3),
        per_unit(free_product(product(coffee)), divider=2, include=False),
        promotionRestrictions=cart_limits(redemptions=1),
    )
    result = evaluate(cart(line("c", "COFFEE", "24.00", 6)), [rule])
    assert applied_ids(result) == [("b2g1", D(4))]
    assert result.applied[0].redemption_count == 1
    unlimited = evaluate(cart(line("c", "COFFEE", "24.00", 6)), [{**rule, "promotionRestrictions": {}}])
    assert applied_ids(unlimited) == [("b2g1", D(8))]


def test_accumulated_coffee_one_free_of_three():
    """Capillary's accumulation example: 3 coffees for 750.00, one free: 250, one unit discounted."""
    coffee = criterion("SKU", ["COFFEE"])
    rule = promotion(
        "coffee", product(coffee, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1), free_product()
    )
    result = evaluate(cart(line("c", "COFFEE", "750.00", 3)), [rule])
    assert applied_ids(result) == [("coffee", D(250))]
    (applied,) = result.applied
    assert [(s.discount, s.discount_qty, s.promotion_qty) for s in applied.lines] == [(D(250), 1, 3)]


# --- PER_UNIT by quantity and by amount ---------------------------------------------------------


def test_every_two_shirts_fifty_off():
    """Every 2 shirts 50 off: 4 shirts make 2 groups, 100."""
    rule = promotion("every2", product(SHIRTS), per_unit(product_based("ABSOLUTE", 50), divider=2))
    result = evaluate(cart(line("s", "SHIRT", "2000.00", 4, categories=["shirts"])), [rule])
    assert applied_ids(result) == [("every2", D(100))]
    assert result.applied[0].redemption_count == 2


def test_every_thousand_of_denim_hundred_off():
    """Every 1000 of denim 100 off: 2500 makes floor(2500 / 1000) = 2 groups, 200."""
    denim = criterion("CATEGORY", ["denim"])
    rule = promotion(
        "denim", product(denim), per_unit(product_based("ABSOLUTE", 100), divider=1000, kpi="AMOUNT")
    )
    result = evaluate(cart(line("d", "JEANS", "2500.00", 3, categories=["denim"])), [rule])
    assert applied_ids(result) == [("denim", D(200))]
    assert result.applied[0].redemption_count == 2


def test_large_pizzas_at_ten_each():
    """Divider 1, FIXED_PRICE 10: three large pizzas of 15 each cost 10 each: 15 off. A pizza under 10
    gives nothing of its own."""
    large = criterion("SIZE", ["L"])
    rule = promotion("pizza", product(large), per_unit(fixed_price(10), divider=1))
    result = evaluate(cart(line("p", "PIZZA", "45.00", 3, attributes={"size": "L"})), [rule])
    assert applied_ids(result) == [("pizza", D(15))]
    assert result.applied[0].redemption_count == 3
    mixed = cart(
        line("p", "PIZZA", "30.00", 2, attributes={"size": "L"}),
        line("q", "MINI", "8.00", attributes={"size": "L"}),
    )
    assert applied_ids(evaluate(mixed, [rule])) == [("pizza", D(10))]


def test_percentage_per_group_of_units():
    """PER_UNIT divider 2, 50% off per group: 5 units make 2 groups, 50% off the 4 cheapest units."""
    rule = promotion("half", product(SHIRTS), per_unit(product_based("PERCENTAGE", 50), divider=2))
    the_cart = cart(
        line("a", "S1", "30.00", 3, categories=["shirts"]), line("b", "S2", "16.00", 2, categories=["shirts"])
    )
    result = evaluate(the_cart, [rule])
    # Units: b 8, 8; a 10, 10, 10. Four cheapest: 8 + 8 + 10 + 10 = 36, half: 18.
    assert applied_ids(result) == [("half", D(18))]
    assert shares(result, "half") == {"b": D(8), "a": D(10)}


def test_a_group_share_rounding_to_zero_leaves_that_line_its_units():
    """PER_UNIT divider 1, 25% off per unit, on a cart of 0.03 (1 unit) and 0.05 (2.25 units): three
    groups, cheapest units first: two of the second line (0.0222 each), then 0.25 of it and 0.75 of the
    first. The third group's 25% of 0.0281 rounds to 0.01, all of it on the first line (the second's
    share rounds to zero), so the second line discounted 2 units, not 2.25; the first 0.75."""
    rule = promotion(
        "every", cart_condition("SUBTOTAL", "GREATER_THAN_OR_EQUAL", 0),
        per_unit(product_based("PERCENTAGE", 25), divider=1, include=False),
    )  # fmt: skip
    result = evaluate(cart(line("L0", "A", "0.03", 1), line("L1", "A", "0.05", "2.25")), [rule])
    assert applied_ids(result) == [("every", D("0.03"))]
    assert result.applied[0].redemption_count == 3
    assert {share.line_key: (share.discount, share.discount_qty) for share in result.applied[0].lines} == {
        "L0": (D("0.01"), D("0.75")),
        "L1": (D("0.02"), D(2)),
    }


# --- One line promotion per unit ----------------------------------------------------------------


def test_a_discounted_unit_is_not_in_a_later_target():
    """Two line promotions on shoes: the first (rank 0) takes 10%; the second's target is empty with
    "several per unit" off (NO_DISCOUNT), 20% of the reduced 90 = 18 with it on."""
    twenty = promotion(
        "shoes20", product(criterion("SKU", ["SHOES"])), product_based("PERCENTAGE", 20), priority=1
    )
    off = evaluate(SHOES_CART, [TEN_OFF_SHOES, twenty])
    assert applied_ids(off) == [("shoes10", D(10))]
    assert reasons(off) == {"shoes20": "NO_DISCOUNT"}
    on = evaluate(SHOES_CART, [TEN_OFF_SHOES, twenty], context(several_line_promotions_per_unit=True))
    assert applied_ids(on) == [("shoes10", D(10)), ("shoes20", D(18))]
    gross = evaluate(
        SHOES_CART,
        [TEN_OFF_SHOES, twenty],
        context(several_line_promotions_per_unit=True, percentage_base="GROSS"),
    )
    assert applied_ids(gross) == [("shoes10", D(10)), ("shoes20", D(20))]


# --- Ranking and exclusivity --------------------------------------------------------------------


def test_exclusive_winner_is_alone():
    """Two exclusive and one stackable: the exclusive with the larger discount wins alone (same
    priority, tier and end); the other exclusive and the stackable are blocked."""
    five = promotion(
        "five", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 5), isStackable=False
    )
    eight = promotion(
        "eight", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 8), isStackable=False
    )
    never = promotion(
        "never",
        cart_condition("SUBTOTAL", "GREATER_THAN", 1000),
        cart_based("ABSOLUTE", 50),
        isStackable=False,
    )
    result = evaluate(SHOES_CART, [five, eight, never, TEN_OFF_SHOES])
    assert applied_ids(result) == [("eight", D(8))]
    assert reasons(result) == {
        "five": "BLOCKED_BY_EXCLUSIVE", "never": "CONDITION_NOT_MET", "shoes10": "BLOCKED_BY_EXCLUSIVE",
    }  # fmt: skip
    # Priority first: a priority-0 five beats a priority-1 eight.
    result = evaluate(SHOES_CART, [five, {**eight, "priority": 1}])
    assert applied_ids(result) == [("five", D(5))]
    # Then the type tier: a CUSTOMER promotion (in the wallet) beats a POS one.
    result = evaluate(SHOES_CART, [five, {**eight, "type": "CUSTOMER"}], context(wallet={"eight": "E8"}))
    assert applied_ids(result) == [("eight", D(8))]
    result = evaluate(SHOES_CART, [{**five, "type": "CUSTOMER"}, eight], context(wallet={"five": "E5"}))
    assert applied_ids(result) == [("five", D(5))]
    assert result.applied[0].earned_promotion_id == "E5"
    # Then the earliest end.
    result = evaluate(SHOES_CART, [{**five, "endDate": ms(NOW) + DAY_MS}, eight])
    assert applied_ids(result) == [("five", D(5))]


def test_stackables_apply_in_ranking_order():
    """Two stackable line promotions on different lines, and the order they apply: priority, then the
    larger discount alone."""
    towel = promotion("towel5", product(criterion("SKU", ["TOWEL"])), product_based("ABSOLUTE", 5))
    result = evaluate(SHOES_CART, [towel, TEN_OFF_SHOES])
    assert [a.promotion_id for a in result.applied] == ["shoes10", "towel5"]
    result = evaluate(SHOES_CART, [towel, {**TEN_OFF_SHOES, "priority": 1}])
    assert [a.promotion_id for a in result.applied] == ["towel5", "shoes10"]


# --- Who may get what ---------------------------------------------------------------------------


def test_eligibility_reasons():
    base = promotion("p", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 1))
    cases = {
        "INACTIVE": {"active": False},
        "NOT_STARTED": {"startDate": ms(NOW) + 1},
        "EXPIRED": {"endDate": ms(NOW)},
        "STORE_NOT_IN_SCOPE": {"storeCriteria": {"type": "STORE", "operator": "IN", "values": [7]}},
        "NOT_IN_WALLET": {"type": "EARNING"},
        "CODE_REQUIRED": {"type": "CODE"},
    }
    for reason, fields in cases.items():
        assert reasons(evaluate(SHOES_CART, [{**base, **fields}])) == {"p": reason}, reason
    loyalty = {**base, "isLoyaltyOnly": True}
    assert reasons(evaluate(SHOES_CART, [loyalty], context(customer_known=False))) == {"p": "LOYALTY_ONLY"}
    assert applied_ids(evaluate(SHOES_CART, [loyalty])) == [("p", D(1))]
    assert applied_ids(evaluate(SHOES_CART, [{**base, "startDate": ms(NOW)}])) == [("p", D(1))]


@pytest.mark.parametrize(
    ("criteria", "store", "holds"),
    [
        ({"type": "STORE", "operator": "IN", "values": [7]}, StoreScope(7), True),
        ({"type": "STORE", "operator": "NOT_IN", "values": [7]}, StoreScope(7), False),
        ({"type": "ZONE", "operator": "IN", "values": [3]}, StoreScope(7, zone_ids=frozenset({2, 3})), True),
        ({"type": "CONCEPT", "operator": "IN", "values": [3]}, StoreScope(7, zone_ids=frozenset({3})), False),
        (
            {"type": "CONCEPT", "operator": "NOT_IN", "values": [3]},
            StoreScope(7, zone_ids=frozenset({3})),
            True,
        ),
        ({"type": "STORE", "operator": "IN", "values": [7]}, None, False),
        ({"type": "STORE", "operator": "NOT_IN", "values": [7]}, None, True),
    ],
)
def test_store_criteria(criteria, store, holds):
    rule = promotion(
        "p", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 1), storeCriteria=criteria
    )
    result = evaluate(SHOES_CART, [rule], context(store=store))
    assert bool(result.applied) == holds
    if not holds:
        assert reasons(result) == {"p": "STORE_NOT_IN_SCOPE"}


MONDAY_22 = {
    "startTime": "22:00",
    "durationInHours": 4,
    "repeatFrequency": "WEEKS",
    "weeklyValues": ["MONDAY"],
}


@pytest.mark.parametrize(
    ("local", "zone", "criteria", "holds"),
    [
        ("2026-03-16T22:00", "Europe/Paris", MONDAY_22, True),
        ("2026-03-16T21:59", "Europe/Paris", MONDAY_22, False),
        ("2026-03-17T01:00", "Europe/Paris", MONDAY_22, True),  # Monday's window, on Tuesday
        ("2026-03-17T02:00", "Europe/Paris", MONDAY_22, False),
        ("2026-03-17T22:30", "Europe/Paris", MONDAY_22, False),  # Tuesday: not a qualifying day
        ("2026-03-17T22:30", "Europe/Paris", {**MONDAY_22, "repeatFrequency": "DAYS"}, True),
        # 28 March 2026, 22:00 Paris (CET) + 4 real hours = 03:00 CEST on the 29th (DST starts at 02:00).
        ("2026-03-29T02:59", "Europe/Paris", {**MONDAY_22, "repeatFrequency": "DAYS"}, True),
        ("2026-03-29T03:00", "Europe/Paris", {**MONDAY_22, "repeatFrequency": "DAYS"}, False),
    ],
)
def test_time_criteria(local, zone, criteria, holds):
    from zoneinfo import ZoneInfo

    now = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    if local.startswith("2026-03-29T02"):
        now = dt.datetime(2026, 3, 29, 0, 59, tzinfo=dt.UTC)  # 02:59 is in the gap; 00:59 UTC
    rule = promotion(
        "p", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 1), timeCriteria=criteria
    )
    result = evaluate(SHOES_CART, [rule], context(now=now, timezone=zone))
    assert bool(result.applied) == holds, result


def test_time_criteria_does_not_repeat_is_the_start_day_only():
    criteria = {"startTime": "10:00", "durationInHours": 2, "repeatFrequency": "DOES_NOT_REPEAT"}
    rule = promotion(
        "p", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 1), timeCriteria=criteria,
        startDate=ms(dt.datetime(2026, 3, 16, 0, 0, tzinfo=dt.UTC)),
    )  # fmt: skip
    on_day = dt.datetime(2026, 3, 16, 11, 0, tzinfo=dt.UTC)
    next_day = on_day + dt.timedelta(days=1)
    assert evaluate(SHOES_CART, [rule], context(now=on_day)).applied
    assert reasons(evaluate(SHOES_CART, [rule], context(now=next_day))) == {"p": "OUTSIDE_TIME_WINDOW"}


# --- Tenders and payment modes ------------------------------------------------------------------


def test_tender_promotion_reduces_the_matching_tender():
    """10% off what is paid by CreditCard (80 of the 120): 8, spread over the lines 100:20 (6.66 +
    1.33, the cent to the shoes' remainder .6667), and on the CreditCard tender."""
    rule = promotion("card", tender_condition("CreditCard"), tender_based("PERCENTAGE", 10))
    the_cart = cart(*SHOES_CART.lines, tenders=[("CreditCard", "80.00"), ("CASH", "40.00")])
    result = evaluate(the_cart, [rule])
    assert applied_ids(result) == [("card", D(8))]
    (applied,) = result.applied
    assert applied.level == "TENDER"
    assert [(t.identifier, t.discount) for t in applied.tenders] == [("CreditCard", D(8))]
    assert shares(result, "card") == {"shoes": D("6.67"), "towel": D("1.33")}
    assert reasons(evaluate(SHOES_CART, [rule])) == {"card": "CONDITION_NOT_MET"}


def test_payment_mode_selection():
    paid = cart(*SHOES_CART.lines, tenders=[("POINTS", "20.00")])
    for condition, holds in [
        (payment_mode("IN", "POINTS"), True),
        (payment_mode("NOT_IN", "POINTS"), False),
        (payment_mode("NOT_IN", "CASH"), True),
        (payment_mode("IN", "POINTS", scope=product_condition(criterion("SKU", ["TOWEL"]))), True),
        (payment_mode("IN", "POINTS", scope=product_condition(criterion("SKU", ["SOCKS"]))), False),
    ]:
        rule = promotion("p", condition, product_based("PERCENTAGE", 50))
        assert bool(evaluate(paid, [rule]).applied) == holds, condition
    # Without tenders nothing in the family holds, NOT_IN included.
    rule = promotion("p", payment_mode("NOT_IN", "CASH"), cart_based("ABSOLUTE", 1))
    assert reasons(evaluate(SHOES_CART, [rule])) == {"p": "CONDITION_NOT_MET"}
    # PAYMENT_MODE_SCOPE discounts its products only: 50% of the towel.
    rule = promotion(
        "p",
        payment_mode("IN", "POINTS", scope=product_condition(criterion("SKU", ["TOWEL"]))),
        product_based("PERCENTAGE", 50),
    )
    assert shares(evaluate(paid, [rule]), "p") == {"towel": D(10)}


# --- Criteria -----------------------------------------------------------------------------------


def test_criteria_entities_and_not_in():
    the_cart = cart(
        line("a", "A", "10.00", categories=["c1"], brands=["b1"], attributes={"color": "red", "size": "M"}),
        line("b", "B", "20.00"),
    )
    cases = [
        (criterion("SKU", ["A"]), {"a"}),
        (criterion("CATEGORY", ["c1"], "NOT_IN"), {"b"}),  # a line without categories is NOT_IN every list
        (criterion("BRAND", ["b1"]), {"a"}),
        (criterion("COLOR", ["red"]), {"a"}),
        (criterion("SIZE", ["m"]), set()),  # case counts
        (criterion("ATTRIBUTE", ["M"], attribute_name="size"), {"a"}),
        (criterion("STYLE", ["x"], "NOT_IN"), {"a", "b"}),
    ]
    for found, keys in cases:
        rule = promotion("p", product(found), product_based("PERCENTAGE", 10))
        result = evaluate(the_cart, [rule])
        assert (set(shares(result, "p")) if result.applied else set()) == keys, found


def test_itemcount_counts_distinct_skus():
    the_cart = cart(line("a", "A", "10.00"), line("b", "A", "10.00"), line("c", "B", "1.00", 3))
    for value, holds in [(2, True), (3, False)]:
        rule = promotion("p", cart_condition("ITEMCOUNT", "EQUALS", value), cart_based("ABSOLUTE", 1))
        assert bool(evaluate(the_cart, [rule]).applied) == holds


def test_fractional_quantities():
    """1.5 kg of apples at 6.00 (4.00 a kg): one free "unit" is one kg, 4.00; the 0.5 left are 2.00."""
    apples = criterion("SKU", ["APPLE"])
    rule = promotion(
        "apple",
        product(apples, kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value="1.5"),
        free_product(),
    )
    result = evaluate(cart(line("a", "APPLE", "6.00", "1.5")), [rule])
    assert applied_ids(result) == [("apple", D(4))]
    two = promotion("apple", product(apples), free_product(quantity=2))
    assert applied_ids(evaluate(cart(line("a", "APPLE", "6.00", "1.5")), [two])) == [("apple", D(6))]


def test_rounding_helpers():
    from fractions import Fraction

    value = Fraction(1125, 1000)  # 1.125
    expected = {"UP": "1.13", "DOWN": "1.12", "CEILING": "1.13", "FLOOR": "1.12", "HALF_UP": "1.13",
                "HALF_DOWN": "1.12", "HALF_EVEN": "1.12"}  # fmt: skip
    for mode, rounded in expected.items():
        assert oracle.round_to(value, 2, mode) == Fraction(D(rounded)), mode
    assert oracle.allocate(Fraction(1, 100), [("a", Fraction(1)), ("b", Fraction(1))], 2) == [
        Fraction(1, 100),
        0,
    ]


# --- PER_UNIT groups as applications, and exact ties (the differential test's findings) ---------

A_SKU = criterion("SKU", ["A"])
T_SKU = criterion("SKU", ["T"])


def test_each_group_is_capped_at_its_own_units():
    """50 off every 2 units: the cheapest pair (10 + 10) gives its 20, the next (40 + 40) its 50: 70,
    not min(100, 100)."""
    rule = promotion("pairs", product(A_SKU), per_unit(product_based("ABSOLUTE", 50), divider=2))
    result = evaluate(cart(line("x", "A", "20.00", 2), line("y", "A", "80.00", 2)), [rule])
    assert applied_ids(result) == [("pairs", D(70))]
    assert shares(result, "pairs") == {"x": D(20), "y": D(50)}
    assert result.applied[0].redemption_count == 2


def test_each_group_is_rounded_once():
    """15% off each of three units of 0.10: 0.015 a group, 0.02 each rounded HALF_UP: 0.06 (one
    rounding of the whole would give 0.05). A Cart DISCOUNT limit of 0.05 caps the total."""
    rule = promotion("each", product(A_SKU), per_unit(product_based("PERCENTAGE", 15), divider=1))
    the_cart = cart(line("x", "A", "0.30", 3))
    assert applied_ids(evaluate(the_cart, [rule])) == [("each", D("0.06"))]
    capped = {**rule, "promotionRestrictions": cart_limits(discount="0.05")}
    assert applied_ids(evaluate(the_cart, [capped])) == [("each", D("0.05"))]


def test_a_capped_total_is_spread_over_every_group_unit():
    """The pairs of 20 and 80 give 20 + 50, capped at 30: spread 20 : 80 over what the lines gave: 6, 24."""
    rule = promotion(
        "pairs",
        product(A_SKU),
        per_unit(product_based("ABSOLUTE", 50), divider=2),
        promotionRestrictions=cart_limits(discount=30),
    )
    result = evaluate(cart(line("x", "A", "20.00", 2), line("y", "A", "80.00", 2)), [rule])
    assert shares(result, "pairs") == {"x": D(6), "y": D(24)}


def test_a_group_without_units_gives_nothing():
    """2 off a tie per 2 shirts, 6 shirts (3 groups) and one tie of 5: the first group takes the tie,
    the other two find nothing: 2, three redemptions."""
    rule = promotion(
        "ties",
        product(criterion("SKU", ["S"])),
        per_unit(product_based("ABSOLUTE", 2, product(T_SKU)), divider=2),
    )
    result = evaluate(cart(line("s", "S", "60.00", 6), line("t1", "T", "5.00")), [rule])
    assert applied_ids(result) == [("ties", D(2))]
    assert result.applied[0].redemption_count == 3


def test_a_fixed_price_prices_whole_groups_only():
    """Each 2 ties for 1: 3 ties of 5 make one whole group (10 -> 1: 9 off); the third tie is alone."""
    rule = promotion(
        "two", product(criterion("SKU", ["S"])), per_unit(fixed_price(1, product(T_SKU)), divider=2)
    )
    result = evaluate(cart(line("s", "S", "40.00", 4), line("t1", "T", "15.00", 3)), [rule])
    assert applied_ids(result) == [("two", D(9))]
    (applied,) = result.applied
    assert [(s.line_key, s.discount_qty) for s in applied.lines if s.discount] == [("t1", 2)]


def test_exactly_equal_remainders_go_by_the_line_order():
    """1.10 off 0.04 + 0.76 + 2.17 + 4.13 = 7.10: floors 0.00, 0.11, 0.33, 0.63; three cents to the
    largest remainders: 4.13's (.9859), 0.76's (.7746), then 0.04's and 2.17's tie exactly (0.044/7.1 of
    a cent each): the line order (amount 0.04 first) gives the cent to L1."""
    rule = promotion("p", cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", "1.10"))
    the_cart = cart(
        line("L1", "A", "0.04"), line("L2", "A", "0.76"), line("L3", "A", "2.17"), line("L4", "A", "4.13")
    )
    assert shares(evaluate(the_cart, [rule]), "p") == {
        "L1": D("0.01"), "L2": D("0.12"), "L3": D("0.33"), "L4": D("0.64"),
    }  # fmt: skip
