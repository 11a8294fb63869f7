"""RuleSet: rules indexed by the SKU, category or brand their condition (or target) needs, so a cart meets
only the rules that can match it; the others are "always" rules."""

from __future__ import annotations

from promotions.engine import RuleSet, compile_rule

from .builders import (
    cart,
    cart_based,
    cart_condition,
    category,
    combo_condition,
    criteria,
    line,
    payment_mode,
    product,
    product_based,
    product_condition,
    promotion,
    skus,
    tender_condition,
)


def ids(ruleset, the_cart):
    return {rule.promotion_id for rule in ruleset.candidates(the_cart)}


def test_candidates():
    bodies = [
        promotion(product_condition(skus("A", "B")), product_based("PERCENTAGE", 10), id="sku"),
        promotion(product_condition(category("SHOES")), product_based("PERCENTAGE", 10), id="category"),
        promotion(
            product_condition(product(criteria("BRAND", "ACME"))), product_based("PERCENTAGE", 10), id="brand"
        ),
        promotion(combo_condition(category("SHOES"), skus("Z")), product_based("PERCENTAGE", 10), id="combo"),
        promotion(
            cart_condition("SUBTOTAL", "GREATER_THAN", 0),
            product_based("PERCENTAGE", 10, product_condition(skus("T"))),
            id="target",
        ),
        # always: cart, NOT_IN, attributes, a kpi that holds with no matching line, tenders, payment modes
        promotion(cart_condition("SUBTOTAL", "GREATER_THAN", 0), cart_based("ABSOLUTE", 1), id="cart"),
        promotion(
            product_condition(product(criteria("SKU", "A", operator="NOT_IN"))),
            product_based("PERCENTAGE", 10),
            id="not-in",
        ),
        promotion(
            product_condition(product(criteria("ATTRIBUTE", "x", attribute="a"))),
            cart_based("ABSOLUTE", 1),
            id="attr",
        ),
        promotion(
            product_condition(skus("Q", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value=0)),
            cart_based("ABSOLUTE", 1),
            id="zero",
        ),
        promotion(tender_condition("CreditCard"), cart_based("ABSOLUTE", 1), id="tender"),
        promotion(payment_mode("POINTS"), cart_based("ABSOLUTE", 1), id="payment"),
    ]
    ruleset = RuleSet(compile_rule(body) for body in bodies)
    always = {"cart", "not-in", "attr", "zero", "tender", "payment"}
    assert ids(ruleset, cart(line("X", "1"))) == always
    assert ids(ruleset, cart(line("B", "1"))) == always | {"sku"}
    assert ids(ruleset, cart(line("X", "1", categories=["SHOES"]))) == always | {"category", "combo"}
    assert ids(ruleset, cart(line("X", "1", brands=["ACME"]), line("T", "1"))) == always | {"brand", "target"}
    # in the rule set's order
    assert [rule.promotion_id for rule in ruleset.candidates(cart(line("B", "1"), line("T", "1")))] == [
        "sku", "target", "cart", "not-in", "attr", "zero", "tender", "payment"
    ]  # fmt: skip
    assert len(ruleset) == len(bodies)
