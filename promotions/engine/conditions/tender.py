"""TENDER: a cart tender's identifier is among the tender modes' identifiers, and the nested condition
(CART or PRODUCT; none: every line) holds. Without tenders it never holds."""

from __future__ import annotations

from dataclasses import dataclass

from .cart import CartCondition
from .product import ProductCondition


@dataclass(frozen=True, eq=False)
class TenderCondition:
    identifiers: frozenset[str]
    condition: CartCondition | ProductCondition | None = None

    kind = "TENDER"
    units = None

    def tenders(self, index) -> list[int]:
        """Positions of the cart tenders paid with one of the identifiers."""
        return [position for position, name in enumerate(index.tender_ids) if name in self.identifiers]

    def holds(self, view) -> int | None:
        if not self.tenders(view.index):
            return None
        if self.condition is None:
            return view.index.all
        return self.condition.holds(view)

    def requirement(self) -> None:
        return None
