"""Money: the one rounding rule and the spreading of a discount over lines (docs/engine.md, "Money and
rounding"). Amounts are `Decimal`; the engine computes under `ENGINE_CONTEXT` so that the exact
intermediate values (a unit's value is its line's value divided by its quantity) keep 50 digits."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal

ENGINE_CONTEXT = decimal.Context(prec=50, rounding=decimal.ROUND_HALF_EVEN, Emax=999999, Emin=-999999)
ZERO = Decimal(0)
HUNDRED = Decimal(100)

ROUNDING_MODES = {
    "UP": decimal.ROUND_UP,
    "DOWN": decimal.ROUND_DOWN,
    "CEILING": decimal.ROUND_CEILING,
    "FLOOR": decimal.ROUND_FLOOR,
    "HALF_UP": decimal.ROUND_HALF_UP,
    "HALF_DOWN": decimal.ROUND_HALF_DOWN,
    "HALF_EVEN": decimal.ROUND_HALF_EVEN,
}


class Rounding:
    """The org's rounding: a mode and a precision (0 to 6 decimal places)."""

    __slots__ = ("mode", "precision", "quantum")

    def __init__(self, mode: str = "HALF_UP", precision: int = 2):
        if mode not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {mode!r}")
        if not 0 <= precision <= 6:
            raise ValueError("the rounding precision is 0 to 6 decimal places")
        self.mode = ROUNDING_MODES[mode]
        self.precision = precision
        self.quantum = Decimal(1).scaleb(-precision)

    def round(self, amount: Decimal) -> Decimal:
        """An application's exact discount, rounded once with the org's mode."""
        return amount.quantize(self.quantum, rounding=self.mode, context=ENGINE_CONTEXT)

    def floor(self, amount: Decimal) -> Decimal:
        """A cap, rounded down to the precision (a cap never grows by rounding)."""
        return amount.quantize(self.quantum, rounding=decimal.ROUND_FLOOR, context=ENGINE_CONTEXT)


def allocate(
    total: Decimal, weights: Sequence[tuple[int, Decimal, Decimal]], rounding: Rounding
) -> tuple[dict[int, Decimal], Decimal]:
    """Spread `total` (already on the precision) over `weights`, (position, weight, cap) in the line
    order: each share `total * weight / sum(weights)` rounded down, the units of precision left over one
    each to the largest remainders (ties: the line order). A share never passes its cap (the line's
    current value): a leftover unit no line can take is dropped, so the shares' sum, returned with them,
    is then below `total` (only with amounts finer than the precision).
    """
    weight_sum = sum((weight for _, weight, _ in weights), ZERO)
    shares: dict[int, Decimal] = {}
    if total <= 0 or weight_sum <= 0:
        return shares, ZERO
    quantum = rounding.quantum
    remainders: list[tuple[Decimal, int]] = []
    given = ZERO
    for order, (position, weight, _) in enumerate(weights):
        if weight <= 0:
            continue
        exact = total * weight / weight_sum
        share = exact.quantize(quantum, rounding=decimal.ROUND_FLOOR)
        shares[position] = share
        given += share
        if exact != share:
            remainders.append((share - exact, order))  # most negative first = largest remainder
    left = int((total - given) / quantum)
    if left:
        remainders.sort()
        for _, order in remainders:
            if not left:
                break
            position, _, cap = weights[order]
            if shares[position] + quantum <= cap:
                shares[position] += quantum
                given += quantum
                left -= 1
    return shares, given
