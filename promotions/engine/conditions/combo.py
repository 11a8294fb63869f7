"""COMBO_PRODUCT: every product condition holds; the condition set is the union of their lines."""

from __future__ import annotations

from dataclasses import dataclass

from .product import ProductCondition


@dataclass(frozen=True, eq=False)
class ComboCondition:
    parts: tuple[ProductCondition, ...]

    kind = "COMBO_PRODUCT"
    units = None

    def holds(self, view) -> int | None:
        union = 0
        for part in self.parts:
            mask = part.holds(view)
            if mask is None:
                return None
            union |= mask
        return union

    def holds_as_target(self, view) -> int | None:
        union = 0
        for part in self.parts:
            mask = part.holds_as_target(view)
            if mask is None:
                return None
            union |= mask
        return union

    def requirement(self):
        best = None
        for part in self.parts:
            found = part.requirement()
            if found and (best is None or len(found[1]) < len(best[1])):
                best = found
        return best
