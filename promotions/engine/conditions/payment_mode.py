"""PAYMENT_MODE, PAYMENT_MODE_SCOPE, PAYMENT_MODE_COMBO_PRODUCT: the payment mode selection (IN: a cart
tender's identifier is in the values; NOT_IN: the cart has tenders and none is), alone (the set is
every line) or with a product or combo condition (its set)."""

from __future__ import annotations

from dataclasses import dataclass

from .combo import ComboCondition
from .product import ProductCondition


@dataclass(frozen=True, eq=False)
class PaymentModeSelection:
    operator: str  # IN, NOT_IN
    values: frozenset[str]

    def holds(self, index) -> bool:
        if not index.tender_ids:
            return False
        found = any(name in self.values for name in index.tender_ids)
        return found if self.operator == "IN" else not found


@dataclass(frozen=True, eq=False)
class PaymentModeCondition:
    kind: str  # PAYMENT_MODE, PAYMENT_MODE_SCOPE, PAYMENT_MODE_COMBO_PRODUCT
    selection: PaymentModeSelection
    condition: ProductCondition | ComboCondition | None = None

    units = None

    def holds(self, view) -> int | None:
        if not self.selection.holds(view.index):
            return None
        if self.condition is None:
            return view.index.all
        return self.condition.holds(view)

    def requirement(self) -> None:
        return None
