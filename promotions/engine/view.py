"""The cart as one evaluation sees it.

`CartIndex` is built once per evaluation: the lines in the line order (docs/engine.md: ties everywhere
are broken by it, so permuting a cart's lines changes nothing), their quantities and values as sent, and
bitmasks of the lines by sku, category and brand. A set of lines is an `int` whose bit `i` is line `i`:
intersections and unions are one operation, and what a criterion matches is computed once per cart.

`CartView` is the cart as the promotions applied so far left it: each line's current value and the
units a line promotion already discounted, each tender's amount not yet taken by a tender promotion.
Solo evaluations (ranking, exclusives) work on a fresh view of the same index.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from itertools import groupby
from operator import attrgetter

from .money import ZERO
from .types import Cart, Line, Settings


def bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


_SKU_AMOUNT_QTY = attrgetter("sku", "amount", "qty")


def in_line_order(lines: Iterable[Line]) -> list[Line]:
    """`lines` sorted by `Line.order_key`: by (sku, amount, qty), which the full key starts with, and
    by the full key only among the lines that tie on those three, so most lines never build it."""
    ordered: list[Line] = []
    for _, tied in groupby(sorted(lines, key=_SKU_AMOUNT_QTY), key=_SKU_AMOUNT_QTY):
        group = list(tied)
        ordered.extend(group if len(group) == 1 else sorted(group, key=Line.order_key))
    return ordered


class CartIndex:
    __slots__ = (
        "_bits",
        "_matches",
        "all",
        "brand_masks",
        "category_masks",
        "distinct_skus",
        "every_unit",
        "lines",
        "n",
        "on_grid",
        "orig",
        "qty",
        "settings",
        "sku_masks",
        "tender_amounts",
        "tender_ids",
    )

    def __init__(self, cart: Cart, settings: Settings):
        lines = in_line_order(cart.lines)
        for line in lines:
            # the API refuses these (400); the core says which line rather than divide by zero
            if not line.qty > 0:
                raise ValueError(f"line {line.key!r}: the quantity must be above 0, not {line.qty}")
            if line.amount < 0:
                raise ValueError(f"line {line.key!r}: the amount must not be negative, not {line.amount}")
        self.lines: tuple[Line, ...] = tuple(lines)
        self.n = len(lines)
        self.all = (1 << self.n) - 1
        self.qty = [line.qty for line in lines]
        self.orig = [line.amount for line in lines]
        self.every_unit = [(position, qty) for position, qty in enumerate(self.qty)]  # cart-wide actions
        self.settings = settings
        sku_masks: dict[str, int] = {}
        category_masks: dict[str, int] = {}
        brand_masks: dict[str, int] = {}
        for position, line in enumerate(lines):
            bit = 1 << position
            sku_masks[line.sku] = sku_masks.get(line.sku, 0) | bit
            for category in line.categories:
                category_masks[category] = category_masks.get(category, 0) | bit
            for brand in line.brands:
                brand_masks[brand] = brand_masks.get(brand, 0) | bit
        self.sku_masks = sku_masks
        self.category_masks = category_masks
        self.brand_masks = brand_masks
        self.distinct_skus = len(sku_masks)
        self.tender_ids = [tender.identifier for tender in cart.tenders]
        self.tender_amounts = [tender.amount for tender in cart.tenders]
        quantum = Decimal(1).scaleb(-settings.precision)
        self.on_grid = all(
            value == value.quantize(quantum) for value in (*self.orig, *self.tender_amounts)
        )  # every amount a whole number of the precision's units: spreading never drops a unit
        self._bits: dict[int, list[int]] = {}
        self._matches: dict[int, int] = {}

    def positions(self, mask: int) -> list[int]:
        """The positions of a set of lines, in the line order."""
        found = self._bits.get(mask)
        if found is None:
            found = self._bits[mask] = bits(mask)
        return found

    def match(self, matcher) -> int:
        """The lines `matcher` (a criterion or a product condition) selects; computed once per cart."""
        key = id(matcher)
        found = self._matches.get(key)
        if found is None:
            found = self._matches[key] = matcher.lines(self)
        return found


class CartView:
    __slots__ = ("_weights", "cur", "gross", "index", "several", "tender_left", "used")

    def __init__(self, index: CartIndex):
        self.index = index
        self.cur: list[Decimal] = list(index.orig)
        self.used: list[Decimal] = [ZERO] * index.n
        self.tender_left: list[Decimal] = list(index.tender_amounts)
        self.gross = index.settings.percentage_base == "GROSS"
        self.several = index.settings.several_line_promotions_per_unit
        self._weights: tuple[list, Decimal] | None = None

    def every_line_weights(self) -> tuple[list[tuple[int, Decimal, Decimal]], Decimal]:
        """(position, current value, current value) of every line with their sum, for cart-wide actions;
        kept until a discount changes the values (`take_off`)."""
        if self._weights is None:
            cur = self.cur
            self._weights = ([(p, value, value) for p, value in enumerate(cur)], sum(cur, ZERO))
        return self._weights

    def take_off(self, position: int, share: Decimal) -> None:
        self.cur[position] -= share
        self._weights = None

    # Values ------------------------------------------------------------------------------------

    def base(self, position: int) -> Decimal:
        """A line's value for conditions and percentages: current (NET) or as sent (GROSS)."""
        return self.index.orig[position] if self.gross else self.cur[position]

    def base_sum(self, mask: int) -> Decimal:
        values = self.index.orig if self.gross else self.cur
        return sum((values[position] for position in self.index.positions(mask)), ZERO)

    def qty_sum(self, mask: int) -> Decimal:
        qty = self.index.qty
        return sum((qty[position] for position in self.index.positions(mask)), ZERO)

    def current_sum(self, mask: int) -> Decimal:
        cur = self.cur
        return sum((cur[position] for position in self.index.positions(mask)), ZERO)

    def part_value(self, position: int, qty: Decimal, values: list[Decimal] | None = None) -> Decimal:
        """The value of `qty` units of a line: its value divided by its quantity, times `qty`."""
        value = (values if values is not None else self.cur)[position]
        whole = self.index.qty[position]
        return value if qty == whole else value * qty / whole

    def picks_value(self, picks: Iterable[tuple[int, Decimal]], *, base: bool = False) -> Decimal:
        values = self.index.orig if (base and self.gross) else self.cur
        return sum((self.part_value(position, qty, values) for position, qty in picks), ZERO)

    # Units -------------------------------------------------------------------------------------

    def available(self, position: int) -> Decimal:
        """Units a line promotion may still discount: all with "several line promotions per unit"."""
        if self.several:
            return self.index.qty[position]
        return self.index.qty[position] - self.used[position]

    def cheapest_first(self, units: Iterable[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
        """Units in the order a rule picks them: by unit value (current value / quantity), then the
        line order; a line's units before the next line's."""
        cur, qty = self.cur, self.index.qty
        return sorted(
            ((position, amount) for position, amount in units if amount > 0),
            key=lambda item: (cur[item[0]] / qty[item[0]], item[0]),
        )

    def copy(self) -> CartView:
        other = CartView.__new__(CartView)
        other.index = self.index
        other.cur = list(self.cur)
        other.used = list(self.used)
        other.tender_left = list(self.tender_left)
        other.gross = self.gross
        other.several = self.several
        other._weights = self._weights
        return other


def take(units: list[tuple[int, Decimal]], count: Decimal) -> list[tuple[int, Decimal]]:
    """The first `count` units of an ordered list of (position, quantity)."""
    out = []
    left = count
    for position, amount in units:
        if left <= 0:
            break
        part = amount if amount <= left else left
        out.append((position, part))
        left -= part
    return out


def without(units: list[tuple[int, Decimal]], taken: dict[int, Decimal]) -> list[tuple[int, Decimal]]:
    """`units` less the quantities in `taken`."""
    out = []
    for position, amount in units:
        rest = amount - taken.get(position, ZERO)
        if rest > 0:
            out.append((position, rest))
    return out
