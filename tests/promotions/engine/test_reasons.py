"""The engine without reasons (`evaluate(..., reasons=False)`, as the evaluate API calls it) applies
exactly what it applies when it records why each other rule did not apply, and records nothing."""

from __future__ import annotations

from hypothesis import assume, given

from promotions.engine import RuleSet, compile_rule, evaluate
from tests.promotions.engine.implementations import PROPERTY_EXAMPLES, engine_accepts, random_settings
from tests.promotions.engine.strategies import scenarios


@random_settings(PROPERTY_EXAMPLES)
@given(scenario=scenarios())
def test_the_same_promotions_apply_without_reasons(scenario):
    cart, promotions, context = scenario
    promotions = engine_accepts(promotions)
    assume(promotions)
    rules = RuleSet([compile_rule(promotion) for promotion in promotions])
    with_reasons = evaluate(cart, rules, context)
    without = evaluate(cart, rules, context, reasons=False)
    assert without.applied == with_reasons.applied
    assert without.skipped == ()
