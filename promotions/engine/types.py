"""The engine's data: plain, frozen dataclasses in and out (docs/engine.md). Nothing here imports Django.

Money and quantities are `Decimal` everywhere. Collections are tuples and frozensets so a value can be
hashed, cached and shared between threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    # A dataclass refuses an unhashable default (a mappingproxy is one): share the one empty mapping.
    return EMPTY


# --- The cart -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One cart line. `amount` is the value of all its units (after the till's own markdown)."""

    key: str
    sku: str
    amount: Decimal
    qty: Decimal
    categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=_empty)

    @classmethod
    def made(
        cls,
        key: str,
        sku: str,
        amount: Decimal,
        qty: Decimal,
        categories: frozenset[str],
        brands: frozenset[str],
        attributes: Mapping[str, str],
    ) -> Line:
        """The line `Line(key, sku, amount, qty, categories, brands, attributes)` makes, made without the
        frozen dataclass's one `object.__setattr__` per field: an evaluation makes one per cart line.
        tests/promotions/engine/test_types.py holds the two to equal lines with the same fields."""
        line = object.__new__(cls)
        object.__setattr__(
            line,
            "__dict__",
            {
                "key": key,
                "sku": sku,
                "amount": amount,
                "qty": qty,
                "categories": categories,
                "brands": brands,
                "attributes": attributes,
            },
        )
        return line

    def order_key(self) -> tuple:
        """The line order of docs/engine.md: ties everywhere are broken by it."""
        return (
            self.sku,
            self.amount,
            self.qty,
            tuple(sorted(self.categories)),
            tuple(sorted(self.brands)),
            tuple(sorted(self.attributes.items())),
            self.key,
        )


@dataclass(frozen=True)
class Tender:
    identifier: str
    amount: Decimal


@dataclass(frozen=True)
class Cart:
    lines: tuple[Line, ...]
    tenders: tuple[Tender, ...] = ()


# --- The context --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreScope:
    """The till's store and every zone and concept above it (ancestors included)."""

    store_id: int
    zone_ids: frozenset[int] = frozenset()
    concept_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Headroom:
    """What a promotion's stateful limits (Customer, Promotion, Earn) still allow; None: unlimited."""

    redemptions: Decimal | None = None
    discount: Decimal | None = None


@dataclass(frozen=True)
class Settings:
    """The org's evaluation settings (docs/engine.md, "Settings")."""

    rounding_mode: str = "HALF_UP"  # UP, DOWN, CEILING, FLOOR, HALF_UP, HALF_DOWN, HALF_EVEN
    precision: int = 2
    mechanism: str = "LINE_ITEM_FIRST"  # or CART_FIRST
    percentage_base: str = "NET"  # or GROSS
    several_line_promotions_per_unit: bool = False


@dataclass(frozen=True)
class Context:
    now: dt.datetime  # aware
    timezone: str = "UTC"  # IANA name of the org's zone
    store: StoreScope | None = None
    customer_known: bool = True
    # promotion id -> id of the customer's ACTIVE wallet instance (earned, for EARNING)
    wallet: Mapping[str, str] = field(default_factory=_empty)
    # promotion id -> headroom of its stateful limits; absent: unlimited
    headroom: Mapping[str, Headroom] = field(default_factory=_empty)
    settings: Settings = field(default_factory=Settings)
    # promotion id -> the promo code that makes a CODE promotion eligible (typed in `promoCodes`, or
    # linked to the customer); a CODE promotion not in it is refused with CODE_REQUIRED
    codes: Mapping[str, str] = field(default_factory=_empty)


# --- Compiled rules -----------------------------------------------------------------------------
# `compile.py` builds these from the stored Capillary JSON. `condition` and `action` are the compiled
# objects of `conditions/` and `actions/`; their exact classes are the core's business.


@dataclass(frozen=True)
class TimeCriteria:
    start_minute: int  # minutes after local midnight
    duration_hours: int
    repeat: str  # WEEKS, DAYS, DOES_NOT_REPEAT
    weekdays: frozenset[int] = frozenset()  # 0 = MONDAY ... 6 = SUNDAY


@dataclass(frozen=True)
class StoreCriteria:
    type: str  # STORE, ZONE, CONCEPT
    operator: str  # IN, NOT_IN
    values: frozenset[int]


@dataclass(frozen=True)
class Rule:
    promotion_id: str
    name: str
    message_label: str
    type: str  # POS, CODE, CUSTOMER, EARNING, REWARD
    mode: str  # DISCOUNT, PAYMENT_VOUCHER
    active: bool
    priority: int
    is_stackable: bool
    start: dt.datetime
    end: dt.datetime
    condition: Any
    action: Any
    loyalty_only: bool = False
    store_criteria: StoreCriteria | None = None
    time_criteria: TimeCriteria | None = None
    cart_redemption_limit: Decimal | None = None  # Cart-level REDEMPTION/TRANSACTION limit
    cart_discount_limit: Decimal | None = None  # Cart-level DISCOUNT limit
    level: str = "CART"  # LINE, CART or TENDER: the phase its action belongs to


# --- The result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineShare:
    """One applied promotion's part on one line."""

    line_key: str
    discount: Decimal
    discount_qty: Decimal  # units of this line that got a discount
    promotion_qty: Decimal  # units of this line the promotion used, as trigger or target


@dataclass(frozen=True)
class TenderShare:
    identifier: str
    discount: Decimal
    tender_index: int | None = None  # the tender's position in `Cart.tenders` (identifiers may repeat)


@dataclass(frozen=True)
class AdjustedTender:
    """A cart tender as the response echoes it: `adjusted_amount` is its amount less the tender promotions'
    discounts on it. `added`: the CASH tender added for what the tenders sent do not cover."""

    identifier: str
    amount: Decimal
    adjusted_amount: Decimal
    added: bool = False


@dataclass(frozen=True)
class Applied:
    promotion_id: str
    name: str
    message_label: str
    mode: str
    level: str  # LINE, CART, TENDER
    discount: Decimal
    redemption_count: int
    earned_promotion_id: str | None
    lines: tuple[LineShare, ...]
    tenders: tuple[TenderShare, ...] = ()
    promo_code: str | None = None  # the code a CODE promotion applied through


@dataclass(frozen=True)
class Skipped:
    promotion_id: str
    reason: str  # INACTIVE, NOT_STARTED, EXPIRED, OUTSIDE_TIME_WINDOW, STORE_NOT_IN_SCOPE, NOT_IN_WALLET,
    #              LOYALTY_ONLY, CODE_REQUIRED, LIMIT_REACHED, CONDITION_NOT_MET, NO_DISCOUNT,
    #              BLOCKED_BY_EXCLUSIVE, CART_PROMOTION_APPLIED (CART_FIRST skips line promotions)
    message: str = ""


@dataclass(frozen=True)
class Result:
    applied: tuple[Applied, ...]  # in the order they were applied
    skipped: tuple[Skipped, ...]

    @property
    def discount(self) -> Decimal:
        return sum((applied.discount for applied in self.applied), Decimal(0))

    def line_discount(self, line_key: str) -> Decimal:
        return sum(
            (
                share.discount
                for applied in self.applied
                for share in applied.lines
                if share.line_key == line_key
            ),
            Decimal(0),
        )
