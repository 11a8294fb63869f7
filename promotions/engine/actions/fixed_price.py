"""FIXED_PRICE v: the target costs v together (its current value minus v, when positive)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..money import ZERO
from .base import Proposal, Target


@dataclass(frozen=True, eq=False)
class FixedPriceAction:
    value: Decimal
    target: Target

    kind = "FIXED_PRICE"
    level = "LINE"
    type = "FIXED_PRICE"

    def propose(self, view, condition_set: int, rule) -> Proposal | None:
        units = self.target.resolve(view, condition_set)
        if units is None:
            return None
        amount = max(view.picks_value(units) - self.value, ZERO) if units else ZERO
        return Proposal(amount, units)
