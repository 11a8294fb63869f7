"""FREE_PRODUCT: the target's cheapest units cost 0; how many: `quantity` if given, else n of a
QUANTITY EQUALS n target, else 1."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..view import take
from .base import Proposal, Target

ONE = Decimal(1)


@dataclass(frozen=True, eq=False)
class FreeProductAction:
    target: Target
    quantity: Decimal | None = None

    kind = "FREE_PRODUCT"
    level = "LINE"
    type = "FREE_PRODUCT"

    @property
    def count(self) -> Decimal:
        if self.quantity is not None:
            return self.quantity
        n = self.target.units_n
        return n if n is not None else ONE

    def propose(self, view, condition_set: int, rule) -> Proposal | None:
        units = self.target.resolve(view, condition_set)
        if units is None:
            return None
        free = take(units, self.count)
        return Proposal(view.picks_value(free), free)
