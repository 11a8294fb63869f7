"""PER_UNIT: the reward action repeats per group of `divider` counted units (QUANTITY) or value
(AMOUNT). Counted: the condition set's units (include) or the reward target's. Groups take units cheapest
first; a FREE_PRODUCT reward sharing lines with the counted units consumes its free units from them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from ..money import HUNDRED, ZERO
from ..view import take
from .base import Proposal
from .fixed_price import FixedPriceAction
from .free_product import FreeProductAction
from .product_based import ProductBasedAction


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True, eq=False)
class PerUnitAction:
    kpi: str  # QUANTITY, AMOUNT
    divider: Decimal
    reward: ProductBasedAction | FreeProductAction | FixedPriceAction
    include: bool  # counted units: the condition set's (True) or the reward target's

    kind = "PER_UNIT"
    level = "LINE"

    def propose(self, view, condition_set: int, rule) -> Proposal | None:
        reward = self.reward
        target = reward.target.resolve(view, condition_set, every_unit=True)
        if target is None:
            return None
        if self.include:
            counted_mask = condition_set
            measure = view.qty_sum(condition_set) if self.kpi == "QUANTITY" else view.base_sum(condition_set)
        else:
            counted_mask = 0
            for position, _ in target:
                counted_mask |= 1 << position
            if self.kpi == "QUANTITY":
                measure = sum((qty for _, qty in target), ZERO)
            else:
                measure = view.picks_value(target, base=True)
        divider = self.divider
        if isinstance(reward, FreeProductAction):
            free = reward.count
            shared = any(counted_mask >> position & 1 for position, _ in target)
            if shared and self.kpi == "QUANTITY":
                divider = divider + free
        groups = _floor(measure / divider)
        if rule.cart_redemption_limit is not None:
            groups = min(groups, _floor(rule.cart_redemption_limit))
        if groups <= 0:
            return Proposal(ZERO, [], groups=0)
        d = self.divider
        if isinstance(reward, FreeProductAction):
            units = take(target, groups * reward.count)
            return Proposal(view.picks_value(units), units, groups=groups)
        if reward.type == "FIXED_PRICE":  # QUANTITY only (compile refuses AMOUNT)
            amount = ZERO
            units = []
            rest = target
            for _ in range(groups):
                group = take(rest, d)
                if sum((qty for _, qty in group), ZERO) < d:
                    break
                amount += max(view.picks_value(group) - reward.value, ZERO)
                units.extend(group)
                rest = _after(rest, d)
            return Proposal(amount, _merge(units), groups=groups)
        units = take(target, groups * d) if self.kpi == "QUANTITY" else target
        if reward.type == "ABSOLUTE":
            amount = reward.value * groups if units else ZERO
        elif self.kpi == "QUANTITY":
            amount = view.picks_value(units, base=True) * reward.value / HUNDRED
        else:
            amount = d * groups * reward.value / HUNDRED if units else ZERO
        return Proposal(amount, units, groups=groups)


def _after(units, count: Decimal):
    """The units after the first `count`."""
    out = []
    left = count
    for position, qty in units:
        if left >= qty:
            left -= qty
            continue
        out.append((position, qty - left))
        left = ZERO
    return out


def _merge(units):
    merged: dict[int, Decimal] = {}
    for position, qty in units:
        merged[position] = merged.get(position, ZERO) + qty
    return list(merged.items())
