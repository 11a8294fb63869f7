"""CART: the cart's value (SUBTOTAL) or its number of distinct SKUs (ITEMCOUNT); the condition set is
every line."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ._compare import compare


@dataclass(frozen=True, eq=False)
class CartCondition:
    kpi: str  # SUBTOTAL, ITEMCOUNT
    operator: str
    value: Decimal

    kind = "CART"
    units = None

    def holds(self, view) -> int | None:
        index = view.index
        measure = Decimal(index.distinct_skus) if self.kpi == "ITEMCOUNT" else view.base_sum(index.all)
        return index.all if compare(self.operator, measure, self.value) else None

    holds_as_target = holds

    def requirement(self) -> None:
        return None
