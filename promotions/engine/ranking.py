"""Ranking (docs/engine.md, "Ranking and stacking"): priority (0 first); type tier (CUSTOMER, REWARD,
CODE, then EARNING and POS together); earliest end; largest discount the promotion gives alone on the
cart as sent; promotion id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import groupby

from .types import Rule

TIERS = {"CUSTOMER": 0, "REWARD": 1, "CODE": 2, "EARNING": 3, "POS": 3}


def static_key(rule: Rule) -> tuple:
    return (rule.priority, TIERS.get(rule.type, 3), rule.end)


def rank(rules: Sequence[Rule], solo: Callable[[Rule], Decimal]) -> list[Rule]:
    """`rules` best first. `solo(rule)` (its discount alone on the cart as sent) is asked only for the
    rules that tie on the earlier keys: it costs an evaluation."""
    ordered = sorted(rules, key=lambda rule: (static_key(rule), rule.promotion_id))
    out: list[Rule] = []
    for _, group in groupby(ordered, key=static_key):
        tied = list(group)
        if len(tied) > 1:
            tied.sort(key=lambda rule: (-solo(rule), rule.promotion_id))
        out.extend(tied)
    return out
