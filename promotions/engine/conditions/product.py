"""PRODUCT: the lines matching every criterion, measured by quantity or value (docs/engine.md,
"Matching items")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ._compare import compare, needs_something

# Entities read from a line attribute of a fixed name.
ATTRIBUTE_ENTITIES = {"PRODUCT_ID": "product_id", "STYLE": "style", "COLOR": "color", "SIZE": "size"}
INDEXED_ENTITIES = ("SKU", "CATEGORY", "BRAND")


@dataclass(frozen=True, eq=False)
class Criterion:
    entity: str  # SKU, CATEGORY, BRAND, ATTRIBUTE, PRODUCT_ID, STYLE, COLOR, SIZE
    operator: str  # IN, NOT_IN
    values: frozenset[str]
    attribute: str | None = None  # ATTRIBUTE's attributeName; the fixed name of the others

    def lines(self, index) -> int:
        """The mask of the lines this criterion holds for."""
        if self.entity in INDEXED_ENTITIES:
            masks = (
                index.sku_masks
                if self.entity == "SKU"
                else index.category_masks
                if self.entity == "CATEGORY"
                else index.brand_masks
            )
            found = 0
            if len(self.values) <= len(masks):
                for value in self.values:
                    found |= masks.get(value, 0)
            else:
                for value, mask in masks.items():
                    if value in self.values:
                        found |= mask
        else:
            found = 0
            name = self.attribute
            for position, line in enumerate(index.lines):
                value = line.attributes.get(name)
                if value is not None and value in self.values:
                    found |= 1 << position
        return found if self.operator == "IN" else index.all & ~found


@dataclass(frozen=True, eq=False)
class ProductCondition:
    criteria: tuple[Criterion, ...]
    kpi: str  # NONE, QUANTITY, AMOUNT
    operator: str  # EQUALS, GREATER_THAN, GREATER_THAN_OR_EQUAL; NONE with kpi NONE
    value: Decimal

    kind = "PRODUCT"

    def lines(self, index) -> int:
        mask = index.all
        for criterion in self.criteria:
            mask &= index.match(criterion)
            if not mask:
                break
        return mask

    def measure(self, view, mask: int) -> Decimal:
        return view.qty_sum(mask) if self.kpi == "QUANTITY" else view.base_sum(mask)

    def holds(self, view) -> int | None:
        mask = view.index.match(self)
        if self.kpi == "NONE":
            return mask or None
        return mask if compare(self.operator, self.measure(view, mask), self.value) else None

    @property
    def units(self) -> Decimal | None:
        """n when this condition, as a target, means "n units" (kpi QUANTITY, operator EQUALS n)."""
        return self.value if self.kpi == "QUANTITY" and self.operator == "EQUALS" else None

    def holds_as_target(self, view) -> int | None:
        """As an action's target: "n units" holds when at least one matching unit is there; any other
        kpi/operator must hold as a condition."""
        if self.units is not None:
            mask = view.index.match(self)
            return mask if mask and view.qty_sum(mask) > 0 else None
        return self.holds(view)

    def needs_a_line(self) -> bool:
        return self.kpi == "NONE" or needs_something(self.operator, self.value)

    def requirement(self) -> tuple[str, frozenset[str]] | None:
        if not self.needs_a_line():
            return None
        best = None
        for criterion in self.criteria:
            indexed = criterion.operator == "IN" and criterion.entity in INDEXED_ENTITIES
            if indexed and (best is None or len(criterion.values) < len(best.values)):
                best = criterion
        return (best.entity, best.values) if best else None
