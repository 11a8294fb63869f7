"""Properties every evaluation has, whatever the cart and the rules (docs/engine.md), checked on random
carts, rule sets and contexts (tests/promotions/engine/strategies.py) for both implementations: the
engine and the oracle. Rules the engine refuses (`UnsupportedRule`) are left out of the engine's rule
sets. `ENGINE_PROPERTY_EXAMPLES` sets the number of cases per property and implementation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from promotions.engine.types import Cart, Line
from tests.promotions.engine.implementations import (
    IMPLEMENTATIONS,
    PROPERTY_EXAMPLES,
    engine_accepts,
    random_settings,
)
from tests.promotions.engine.strategies import STRANGER, scenarios

pytestmark = pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
SETTINGS = random_settings(PROPERTY_EXAMPLES)


def run(implementation, cart, promotions, context):
    if implementation == "engine":
        promotions = engine_accepts(promotions)
    assume(promotions)
    return IMPLEMENTATIONS[implementation](cart, promotions, context), promotions


def by_promotion(result):
    """What each applied promotion did, per line key; the order they applied in; the skipped ones."""
    return (
        [
            (
                applied.promotion_id,
                applied.discount,
                applied.redemption_count,
                applied.level,
                sorted((s.line_key, s.discount, s.discount_qty, s.promotion_qty) for s in applied.lines),
                sorted((t.identifier, t.discount) for t in applied.tenders),
            )
            for applied in result.applied
        ],
        sorted((skipped.promotion_id, skipped.reason) for skipped in result.skipped),
    )


@SETTINGS
@given(scenario=scenarios())
def test_discounts_are_within_bounds_and_add_up(implementation, scenario):
    """0 <= discount <= amount for every line and for the cart; each applied promotion's line shares add
    up to its discount, and so do its tender shares (tender promotions); a promotion is applied or
    skipped at most once (the engine's index may not list a rule that cannot match the cart at all)."""
    cart, promotions, context = scenario
    result, promotions = run(implementation, cart, promotions, context)
    for line in cart.lines:
        assert 0 <= result.line_discount(line.key) <= line.amount, line
    assert 0 <= result.discount <= sum((line.amount for line in cart.lines), Decimal(0))
    keys = {line.key for line in cart.lines}
    for applied in result.applied:
        assert applied.discount > 0
        assert applied.redemption_count >= 1
        assert all(share.discount >= 0 and share.line_key in keys for share in applied.lines)
        assert sum((share.discount for share in applied.lines), Decimal(0)) == applied.discount
        assert len({share.line_key for share in applied.lines}) == len(applied.lines)
        if applied.level == "TENDER":
            assert sum((tender.discount for tender in applied.tenders), Decimal(0)) == applied.discount
    seen = [applied.promotion_id for applied in result.applied] + [s.promotion_id for s in result.skipped]
    assert len(seen) == len(set(seen))
    assert set(seen) <= {promotion["id"] for promotion in promotions}


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_the_order_of_the_lines_changes_nothing(implementation, scenario, data):
    """The cart's lines in another order (each keeping its key and content) get the same discounts,
    from the same promotions in the same order, and the same promotions are skipped for the same
    reasons."""
    cart, promotions, context = scenario
    shuffled = Cart(lines=tuple(data.draw(st.permutations(cart.lines))), tenders=cart.tenders)
    first, promotions = run(implementation, cart, promotions, context)
    second, _ = run(implementation, shuffled, promotions, context)
    assert by_promotion(first) == by_promotion(second)


@SETTINGS
@given(scenario=scenarios())
def test_an_exclusive_winner_is_alone(implementation, scenario):
    """A non-stackable promotion that applies is the only one applied."""
    cart, promotions, context = scenario
    result, promotions = run(implementation, cart, promotions, context)
    stackable = {promotion["id"]: promotion["isStackable"] for promotion in promotions}
    if any(not stackable[applied.promotion_id] for applied in result.applied):
        assert len(result.applied) == 1


def mentions_only_what_it_names(promotion) -> bool:
    """No criterion NOT_IN anything and no CART condition or target anywhere in the promotion."""

    def walk(node) -> bool:
        if isinstance(node, dict):
            if node.get("operator") == "NOT_IN" or node.get("type") == "CART":
                return False
            return all(walk(value) for value in node.values())
        if isinstance(node, list):
            return all(walk(value) for value in node)
        return True

    return walk(promotion["condition"]) and walk(promotion["action"])


LINE_SCOPED = {
    "condition_kinds": ["PRODUCT", "COMBO_PRODUCT", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"],
    "action_kinds": ["PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE", "PER_UNIT"],
}


@SETTINGS
@given(scenario=scenarios(**LINE_SCOPED), amount=st.decimals(min_value=0, max_value=500, places=2))
def test_a_line_no_rule_mentions_changes_nothing(implementation, scenario, amount):
    """A line whose SKU, categories and brands are in no rule's lists, with no attributes, changes
    nothing, and gets nothing.

    Only for rule sets it cannot change by construction: conditions PRODUCT, COMBO_PRODUCT and the
    payment mode SCOPE/COMBO kinds (whose condition sets are their matching lines), line actions only
    (no CART_BASED or TENDER action, which spread over every line), no CART condition or target (the
    line adds to SUBTOTAL and may add to ITEMCOUNT), no NOT_IN criterion (the line is NOT_IN every
    list); the payment mode selection NOT_IN is left out too by the same walk, though it looks at
    tenders only."""
    cart, promotions, context = scenario
    promotions = [promotion for promotion in promotions if mentions_only_what_it_names(promotion)]
    assume(promotions)
    stranger = Line(
        key="L-stranger",
        sku=STRANGER["sku"],
        amount=amount,
        qty=Decimal(1),
        categories=frozenset({STRANGER["category"]}),
        brands=frozenset({STRANGER["brand"]}),
    )
    bigger = Cart(lines=(*cart.lines, stranger), tenders=cart.tenders)
    before, kept = run(implementation, cart, promotions, context)
    after, _ = run(implementation, bigger, kept, context)
    assert after.line_discount(stranger.key) == 0
    assert by_promotion(before) == by_promotion(after)


@SETTINGS
@given(scenario=scenarios())
def test_discounts_are_rounded_to_the_precision(implementation, scenario):
    """Every discount, line share and tender share is a multiple of the org's precision."""
    cart, promotions, context = scenario
    result, _ = run(implementation, cart, promotions, context)
    step = Decimal(1).scaleb(-context.settings.precision)
    for applied in result.applied:
        amounts = [
            applied.discount,
            *(s.discount for s in applied.lines),
            *(t.discount for t in applied.tenders),
        ]
        for amount in amounts:
            assert amount == amount.quantize(step), (applied, amount)
