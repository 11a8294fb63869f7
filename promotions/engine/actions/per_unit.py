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
            # the groups' free units are the cheapest of the target, f per group
            return self._applications(view, take(target, groups * reward.count), reward.count, groups, None)
        if reward.type == "FIXED_PRICE":  # QUANTITY only (compile refuses AMOUNT)
            return self._applications(view, take(target, groups * d), d, groups, reward.value, whole=True)
        if self.kpi == "QUANTITY":
            return self._applications(view, take(target, groups * d), d, groups, reward)
        # AMOUNT: groups of value, not of units: one discount on the whole target
        if not target:
            return Proposal(ZERO, [], groups=groups)
        amount = reward.value * groups if reward.type == "ABSOLUTE" else d * groups * reward.value / HUNDRED
        return Proposal(amount, target, groups=groups)

    @staticmethod
    def _applications(view, units, size: Decimal, groups: int, reward, *, whole: bool = False) -> Proposal:
        """One application per group of `size` units (cheapest first): free units (reward None), a fixed
        price (a Decimal; `whole`: only full groups), or the PRODUCT_BASED reward."""
        if (
            not isinstance(reward, Decimal | None)
            and reward.type == "ABSOLUTE"
            and sum((qty for _, qty in units), ZERO) < groups * size
        ):
            # v per group, though the target has fewer units than the groups (a reward on other items
            # than the counted ones): one application of groups x v on what there is
            return Proposal(reward.value * groups if units else ZERO, units, groups=groups)
        parts = []
        rest = units
        for _ in range(groups):
            group = take(rest, size)
            if not group:
                break
            rest = _after(rest, size)
            if reward is None:
                amount = view.picks_value(group)
            elif isinstance(reward, Decimal):
                if whole and sum((qty for _, qty in group), ZERO) < size:
                    break
                amount = max(view.picks_value(group) - reward, ZERO)
            elif reward.type == "ABSOLUTE":
                amount = reward.value
            else:
                amount = view.picks_value(group, base=True) * reward.value / HUNDRED
            parts.append((amount, group))
        return Proposal(sum((amount for amount, _ in parts), ZERO), _merge(units), groups=groups, parts=parts)


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
