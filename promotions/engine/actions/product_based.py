"""PRODUCT_BASED: ABSOLUTE v off the target as a whole, PERCENTAGE p of the target's value, or
FIXED_PRICE v (the target costs v together)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..money import HUNDRED, ZERO
from .base import Proposal, Target


@dataclass(frozen=True, eq=False)
class ProductBasedAction:
    type: str  # ABSOLUTE, PERCENTAGE, FIXED_PRICE
    value: Decimal
    target: Target

    kind = "PRODUCT_BASED"
    level = "LINE"

    def propose(self, view, condition_set: int, rule) -> Proposal | None:
        units = self.target.resolve(view, condition_set)
        if units is None:
            return None
        if self.type == "ABSOLUTE":
            amount = self.value if units else ZERO
        elif self.type == "PERCENTAGE":
            amount = view.picks_value(units, base=True) * self.value / HUNDRED
        else:
            amount = max(view.picks_value(units) - self.value, ZERO) if units else ZERO
        return Proposal(amount, units)
