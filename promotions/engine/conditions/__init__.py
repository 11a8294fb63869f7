"""Conditions (docs/engine.md, "Conditions"), one module per kind. A compiled condition answers
`holds(view)`: its condition set (a mask of lines, see `view.py`) when it holds, else None; and
`requirement()`: (entity, values) when it can only hold with a line matching an IN criterion on SKU,
CATEGORY or BRAND, which `RuleSet` indexes."""

from __future__ import annotations

from ._compare import compare
from .cart import CartCondition
from .combo import ComboCondition
from .payment_mode import PaymentModeCondition, PaymentModeSelection
from .product import Criterion, ProductCondition
from .tender import TenderCondition

__all__ = [
    "CartCondition",
    "ComboCondition",
    "Criterion",
    "PaymentModeCondition",
    "PaymentModeSelection",
    "ProductCondition",
    "TenderCondition",
    "compare",
]
