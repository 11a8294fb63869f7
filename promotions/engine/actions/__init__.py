"""Actions (docs/engine.md, "Actions"), one module per kind. A compiled action answers
`propose(view, condition_set, rule)`: a `Proposal` (the exact discount of its application on the cart as
`view` has it, and the units it discounts), or None when its own target condition does not hold.
Rounding, caps and the spreading over lines are the same for every action: `evaluate.py` does them."""

from __future__ import annotations

from .base import Proposal, Target
from .cart_based import CartBasedAction
from .fixed_price import FixedPriceAction
from .free_product import FreeProductAction
from .per_unit import PerUnitAction
from .product_based import ProductBasedAction
from .tender import TenderAction

__all__ = [
    "CartBasedAction",
    "FixedPriceAction",
    "FreeProductAction",
    "PerUnitAction",
    "ProductBasedAction",
    "Proposal",
    "Target",
    "TenderAction",
]
