"""The two implementations of docs/engine.md under one signature, `(cart, promotions, context) -> Result`
(promotions as the API echoes them), and the Hypothesis settings of the engine's random tests.

`ENGINE_PROPERTY_EXAMPLES` (default 100 per property and implementation) and `ENGINE_ORACLE_EXAMPLES`
(default 2,000 for the differential test) set how many random cases run; `ENGINE_DERANDOMIZE=0` draws a
fresh random sample instead of the same cases every run (the default, so CI reproduces a failure).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from tests.promotions.engine import oracle

DERANDOMIZE = os.environ.get("ENGINE_DERANDOMIZE", "1") == "1"
PROPERTY_EXAMPLES = int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "100"))
ORACLE_EXAMPLES = int(os.environ.get("ENGINE_ORACLE_EXAMPLES", "2000"))


def random_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def oracle_evaluate(cart, promotions, context):
    return oracle.evaluate(cart, promotions, context)


def engine_evaluate(cart, promotions, context):
    """The engine as the API will call it: each promotion compiled, one rule set. A promotion the
    engine refuses raises `UnsupportedRule`."""
    from promotions.engine import RuleSet, compile_rule, evaluate

    return evaluate(cart, RuleSet([compile_rule(promotion) for promotion in promotions]), context)


def engine_accepts(promotions):
    """The promotions `compile_rule` accepts (the engine grows during development: the random tests
    run on what it takes and say how many it refused)."""
    from promotions.engine import UnsupportedRule, compile_rule

    kept = []
    for promotion in promotions:
        try:
            compile_rule(promotion)
        except UnsupportedRule:
            continue
        kept.append(promotion)
    return kept


IMPLEMENTATIONS = {"oracle": oracle_evaluate, "engine": engine_evaluate}
