"""What every action shares: its proposal and its target (docs/engine.md, "Actions": every action has a
target, the units it discounts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ..conditions import CartCondition, ComboCondition, ProductCondition
from ..view import CartView, take, without

Units = list[tuple[int, Decimal]]  # (line position, quantity), cheapest first


@dataclass
class Proposal:
    amount: Decimal  # the exact discount of the application, before rounding
    units: Units  # the units it discounts; for cart and tender actions every line
    groups: int = 1  # applications in this cart (PER_UNIT groups)
    cart_wide: bool = False  # spread over every line by current value (CART_BASED, TENDER)
    tenders: list[int] = field(default_factory=list)  # TENDER: the tenders it reduces
    cap: Decimal | None = None  # a further cap before the line caps (TENDER: the amount paid)
    # PER_UNIT: each application (group) on its own units, (exact discount, units); else None: one
    # application, `amount` on `units`
    parts: list[tuple[Decimal, Units]] | None = None


@dataclass(frozen=True, eq=False)
class Target:
    """The units an action discounts: the condition set (`include`) or the lines of its own
    `condition` (productBasedCondition), which must hold too."""

    include: bool
    condition: ProductCondition | ComboCondition | CartCondition | None = None

    @property
    def units_n(self) -> Decimal | None:
        """n of a QUANTITY EQUALS n target, else None."""
        if self.include or self.condition is None:
            return None
        return self.condition.units

    def resolve(self, view: CartView, condition_set: int, *, every_unit: bool = False) -> Units | None:
        """The target's units, cheapest first; None when its condition does not hold. `every_unit`
        (PER_UNIT): a QUANTITY EQUALS n target does not limit the units."""
        index = view.index
        if self.include:
            return view.cheapest_first((p, view.available(p)) for p in index.positions(condition_set))
        condition = self.condition
        if isinstance(condition, ComboCondition):
            masks = []
            for part in condition.parts:
                mask = part.holds_as_target(view)
                if mask is None:
                    return None
                masks.append(mask)
            picked: dict[int, Decimal] = {}
            for part, mask in zip(condition.parts, masks, strict=True):
                units = without(
                    view.cheapest_first((p, view.available(p)) for p in index.positions(mask)), picked
                )
                if part.units is not None and not every_unit:
                    units = take(units, part.units)
                for position, qty in units:
                    picked[position] = picked.get(position, 0) + qty
            return view.cheapest_first(picked.items())
        mask = condition.holds_as_target(view)
        if mask is None:
            return None
        units = view.cheapest_first((p, view.available(p)) for p in index.positions(mask))
        n = condition.units
        if n is not None and not every_unit:
            units = take(units, n)
        return units
