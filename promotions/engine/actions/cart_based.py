"""CART_BASED: ABSOLUTE v (at most the cart's current value) or PERCENTAGE p of the cart's value
(current with NET, as sent with GROSS), spread over every line."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..money import HUNDRED
from .base import Proposal


@dataclass(frozen=True, eq=False)
class CartBasedAction:
    type: str  # ABSOLUTE, PERCENTAGE
    value: Decimal

    kind = "CART_BASED"
    level = "CART"

    def propose(self, view, condition_set: int, rule) -> Proposal:
        index = view.index
        units = [(position, index.qty[position]) for position in range(index.n)]
        amount = self.value if self.type == "ABSOLUTE" else view.base_sum(index.all) * self.value / HUNDRED
        return Proposal(amount, units, cart_wide=True)
