"""The golden table: one hand-computed cart for every condition type x action type that `compile_rule`
accepts, exact to the cent, and a check that no accepted pair is missing from it.

Every case runs on the same cart, in the line order (sku) JEANS, SHIRT, TIE:
  jeans  JEANS  category DENIM   1 unit   100.00
  shirt  SHIRT  category SHIRTS  2 units   60.00 (30.00 each)
  tie    TIE    category TIES    1 unit    20.00
  tenders: CreditCard 150.00, POINTS 30.00; the cart is worth 180.00.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from promotions.engine import UnsupportedRule, compile_rule

from .builders import (
    D,
    cart,
    cart_based,
    cart_condition,
    category,
    combo_condition,
    fixed_price,
    free_product,
    line,
    payment_mode,
    per_unit,
    product_based,
    product_condition,
    promotion,
    run,
    tender_action,
    tender_condition,
)


def the_cart():
    return cart(
        line("JEANS", "100.00", key="jeans", categories=["DENIM"]),
        line("SHIRT", "60.00", 2, key="shirt", categories=["SHIRTS"]),
        line("TIE", "20.00", key="tie", categories=["TIES"]),
        tenders={"CreditCard": "150.00", "POINTS": "30.00"},
    )


SHIRTS = category("SHIRTS", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1)
TIES = category("TIES", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=1)

# The conditions, with their condition set
CONDITIONS = {
    "CART": cart_condition("SUBTOTAL", "GREATER_THAN_OR_EQUAL", 100),  # every line
    "PRODUCT": product_condition(
        category("SHIRTS", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=2)
    ),
    "COMBO_PRODUCT": combo_condition(SHIRTS, TIES),  # shirt, tie
    "TENDER": tender_condition("CreditCard", nested=product_condition(SHIRTS)),  # shirt
    "PAYMENT_MODE": payment_mode("POINTS"),  # every line
    "PAYMENT_MODE_SCOPE": payment_mode("POINTS", scope=SHIRTS),  # shirt
    "PAYMENT_MODE_COMBO_PRODUCT": payment_mode("POINTS", combo=[SHIRTS, TIES]),  # shirt, tie
}

TIE_TARGET = product_condition(category("TIES"))
JEANS_TARGET = product_condition(category("DENIM"))
ONE_SHIRT = category("SHIRTS", kpi="QUANTITY", operator="EQUALS", value=1)


@dataclass
class Case:
    name: str
    condition: str
    action: dict
    discount: str
    shares: dict[str, str]

    @property
    def pair(self) -> tuple[str, str]:
        return self.condition, self.action["type"]


CASES = [
    # --- CART_BASED: every line, spread by value 100 : 60 : 20 (jeans, shirt, tie) of 180
    Case("cart 10% of 180 = 18 -> 10, 6, 2", "CART", cart_based("PERCENTAGE", 10), "18.00",
         {"jeans": "10.00", "shirt": "6.00", "tie": "2.00"}),
    Case("shirts: 9 off the cart -> 5, 3, 1", "PRODUCT", cart_based("ABSOLUTE", 9), "9.00",
         {"jeans": "5.00", "shirt": "3.00", "tie": "1.00"}),
    Case("combo: 9 off the cart", "COMBO_PRODUCT", cart_based("ABSOLUTE", 9), "9.00",
         {"jeans": "5.00", "shirt": "3.00", "tie": "1.00"}),
    Case("tender: 9 off the cart", "TENDER", cart_based("ABSOLUTE", 9), "9.00",
         {"jeans": "5.00", "shirt": "3.00", "tie": "1.00"}),
    Case("points: 10% of 180", "PAYMENT_MODE", cart_based("PERCENTAGE", 10), "18.00",
         {"jeans": "10.00", "shirt": "6.00", "tie": "2.00"}),
    Case("points + shirts: 10% of 180", "PAYMENT_MODE_SCOPE", cart_based("PERCENTAGE", 10), "18.00",
         {"jeans": "10.00", "shirt": "6.00", "tie": "2.00"}),
    Case("points + combo: 10% of 180", "PAYMENT_MODE_COMBO_PRODUCT", cart_based("PERCENTAGE", 10), "18.00",
         {"jeans": "10.00", "shirt": "6.00", "tie": "2.00"}),
    # --- PRODUCT_BASED
    Case("cart set: 10% of every line = 18", "CART", product_based("PERCENTAGE", 10), "18.00",
         {"jeans": "10.00", "shirt": "6.00", "tie": "2.00"}),
    Case("25% of the shirts 60 = 15", "PRODUCT", product_based("PERCENTAGE", 25), "15.00", {"shirt": "15.00"}),
    Case("10 off shirt + tie (80) -> 60 : 20 = 7.50, 2.50", "COMBO_PRODUCT", product_based("ABSOLUTE", 10), "10.00",
         {"shirt": "7.50", "tie": "2.50"}),
    Case("card + shirts: 10% off the tie (target) = 2", "TENDER", product_based("PERCENTAGE", 10, TIE_TARGET),
         "2.00", {"tie": "2.00"}),
    Case("points: 5 off the jeans (target)", "PAYMENT_MODE", product_based("ABSOLUTE", 5, JEANS_TARGET), "5.00",
         {"jeans": "5.00"}),
    Case("points + shirts: 50% off one shirt (30) = 15", "PAYMENT_MODE_SCOPE",
         product_based("PERCENTAGE", 50, product_condition(ONE_SHIRT)), "15.00", {"shirt": "15.00"}),
    Case("points + combo: shirt + tie (80) for 70 = 10", "PAYMENT_MODE_COMBO_PRODUCT",
         product_based("FIXED_PRICE", 70), "10.00", {"shirt": "7.50", "tie": "2.50"}),
    # --- FREE_PRODUCT: the cheapest units
    Case("cart set: the cheapest unit, the tie 20", "CART", free_product(), "20.00", {"tie": "20.00"}),
    Case("shirts: one shirt 30", "PRODUCT", free_product(), "30.00", {"shirt": "30.00"}),
    Case("combo, quantity 2: tie 20 + a shirt 30", "COMBO_PRODUCT", free_product(quantity=2), "50.00",
         {"shirt": "30.00", "tie": "20.00"}),
    Case("card: the tie (target)", "TENDER", free_product(TIE_TARGET), "20.00", {"tie": "20.00"}),
    Case("points: 2 shirts (QUANTITY EQUALS 2 target) = 60", "PAYMENT_MODE",
         free_product(product_condition(category("SHIRTS", kpi="QUANTITY", operator="EQUALS", value=2))),
         "60.00", {"shirt": "60.00"}),
    Case("points + shirts: one shirt", "PAYMENT_MODE_SCOPE", free_product(), "30.00", {"shirt": "30.00"}),
    Case("points + combo: the jeans (target) 100", "PAYMENT_MODE_COMBO_PRODUCT", free_product(JEANS_TARGET),
         "100.00", {"jeans": "100.00"}),
    # --- FIXED_PRICE
    Case("cart: one shirt + the tie (50) for 40 = 10 -> 30 : 20 = 6, 4", "CART",
         fixed_price(40, combo_condition(ONE_SHIRT, category("TIES", kpi="QUANTITY", operator="EQUALS", value=1))),
         "10.00", {"shirt": "6.00", "tie": "4.00"}),
    Case("shirts (60) for 50", "PRODUCT", fixed_price(50), "10.00", {"shirt": "10.00"}),
    Case("shirt + tie (80) for 70 -> 7.50, 2.50", "COMBO_PRODUCT", fixed_price(70), "10.00",
         {"shirt": "7.50", "tie": "2.50"}),
    Case("card + shirts (60) for 45", "TENDER", fixed_price(45), "15.00", {"shirt": "15.00"}),
    Case("points: the jeans for 80", "PAYMENT_MODE", fixed_price(80, JEANS_TARGET), "20.00", {"jeans": "20.00"}),
    Case("points + shirts (60) for 55", "PAYMENT_MODE_SCOPE", fixed_price(55), "5.00", {"shirt": "5.00"}),
    # 30 * 30/130 = 6.923.., 30 * 100/130 = 23.076..: 6.92 + 23.07 = 29.99, the cent to the larger
    # remainder (jeans .0069 > shirt .0031)
    Case("points + combo: a shirt + the jeans (130) for 100", "PAYMENT_MODE_COMBO_PRODUCT",
         fixed_price(100, combo_condition(ONE_SHIRT, category("DENIM", kpi="QUANTITY", operator="EQUALS", value=1))),
         "30.00", {"jeans": "23.08", "shirt": "6.92"}),
    # --- PER_UNIT
    # 4 units, divider 1: 4 groups (applications) of one unit, 5 each: jeans 5, the shirts 2 x 5, the tie 5
    Case("cart set: 5 per unit, 4 units = 20", "CART", per_unit(product_based("ABSOLUTE", 5)), "20.00",
         {"jeans": "5.00", "shirt": "10.00", "tie": "5.00"}),
    Case("per 2 shirts a free tie: 1 group", "PRODUCT", per_unit(free_product(TIE_TARGET), divider=2), "20.00",
         {"tie": "20.00"}),
    Case("combo: 10% per unit, 3 groups on 3 units (80) = 8", "COMBO_PRODUCT",
         per_unit(product_based("PERCENTAGE", 10)), "8.00", {"shirt": "6.00", "tie": "2.00"}),
    Case("card + shirts: 3 per 25 of shirts (60): 2 groups = 6", "TENDER",
         per_unit(product_based("ABSOLUTE", 3), divider=25, kpi="AMOUNT"), "6.00", {"shirt": "6.00"}),
    Case("points: buy a shirt get a shirt: floor(2 / (1 + 1)) = 1 free shirt", "PAYMENT_MODE",
         per_unit(free_product(product_condition(category("SHIRTS"))), include=False), "30.00", {"shirt": "30.00"}),
    Case("points + shirts: each shirt (30) at 25: 2 x 5", "PAYMENT_MODE_SCOPE", per_unit(fixed_price(25)), "10.00",
         {"shirt": "10.00"}),
    # 3 units / 2 = 1 group: the cheapest 2 units, the tie 20 and a shirt 30: 4 over 20 : 30 = 1.60, 2.40
    Case("points + combo: 4 per 2 units", "PAYMENT_MODE_COMBO_PRODUCT",
         per_unit(product_based("ABSOLUTE", 4), divider=2), "4.00", {"shirt": "2.40", "tie": "1.60"}),
]  # fmt: skip

TENDER_CASES = [
    # 10% of the CreditCard 150 = 15 over 100 : 60 : 20 -> 8.333, 5, 1.666: floors 14.99, the cent to the
    # tie (remainder .0067 > jeans .0033)
    Case(
        "card: 10% of what the card pays",
        "TENDER",
        tender_action("PERCENTAGE", 10),
        "15.00",
        {"jeans": "8.33", "shirt": "5.00", "tie": "1.67"},
    ),
]

TENDER_CONDITION_ALONE = tender_condition("CreditCard")


def body(case: Case) -> dict:
    condition = TENDER_CONDITION_ALONE if case.action["type"] == "TENDER" else CONDITIONS[case.condition]
    return promotion(condition, case.action, id="golden")


@pytest.mark.parametrize(
    "case", CASES + TENDER_CASES, ids=lambda case: f"{case.pair[0]}x{case.pair[1]}: {case.name}"
)
def test_golden_case(case: Case):
    # when
    result = run(the_cart(), body(case))
    # then
    assert [applied.promotion_id for applied in result.applied] == ["golden"], result.skipped
    applied = result.applied[0]
    assert applied.discount == D(case.discount)
    assert {share.line_key: share.discount for share in applied.lines if share.discount} == {
        key: D(value) for key, value in case.shares.items()
    }
    assert sum(share.discount for share in applied.lines) == applied.discount


def test_tender_case_reduces_the_card():
    result = run(the_cart(), body(TENDER_CASES[0]))
    assert [(share.identifier, share.discount) for share in result.applied[0].tenders] == [
        ("CreditCard", D(15))
    ]


# Every pair compile_rule accepts has a golden case ------------------------------------------------------

ACTION_VARIANTS = {
    "CART_BASED": [cart_based("ABSOLUTE", 1)],
    "PRODUCT_BASED": [product_based("ABSOLUTE", 1), product_based("FIXED_PRICE", 1, TIE_TARGET)],
    "FREE_PRODUCT": [free_product(), free_product(TIE_TARGET)],
    "FIXED_PRICE": [fixed_price(1), fixed_price(1, TIE_TARGET)],
    "PER_UNIT": [per_unit(free_product()), per_unit(fixed_price(1, TIE_TARGET))],
    "TENDER": [tender_action("ABSOLUTE", 1)],
}
CONDITION_VARIANTS = {**CONDITIONS, "TENDER": TENDER_CONDITION_ALONE}
ALL_CONDITIONS = {"CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE", "PAYMENT_MODE_SCOPE",
                  "PAYMENT_MODE_COMBO_PRODUCT"}  # fmt: skip


def accepted_pairs() -> set[tuple[str, str]]:
    accepted = set()
    for condition_type, condition in CONDITION_VARIANTS.items():
        for action_type, variants in ACTION_VARIANTS.items():
            for action in variants:
                try:
                    compile_rule(promotion(condition, action))
                except UnsupportedRule:
                    continue
                accepted.add((condition_type, action_type))
    return accepted


def test_every_accepted_pair_has_a_golden_case():
    # given: every condition type and action type the API knows
    assert set(CONDITION_VARIANTS) == ALL_CONDITIONS
    # when
    accepted = accepted_pairs()
    # then: the golden table covers exactly what compile_rule accepts
    covered = {case.pair for case in CASES + TENDER_CASES}
    assert accepted - covered == set(), "pairs compile_rule accepts without a golden case"
    assert covered - accepted == set()
    # the refused pairs: a TENDER action needs a TENDER condition
    refused = {(c, a) for c in ALL_CONDITIONS for a in ACTION_VARIANTS} - accepted
    assert refused == {(c, "TENDER") for c in ALL_CONDITIONS - {"TENDER"}}
