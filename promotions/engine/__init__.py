"""The promotion engine's pure core (docs/engine.md): a cart, compiled rules and a context in, the applied
promotions out. No Django, no database, no clock, no settings inside; import-linter keeps it so."""

from .compile import UnsupportedRule, compile_rule
from .evaluate import adjusted_tenders, evaluate
from .ruleset import RuleSet
from .types import (
    AdjustedTender,
    Applied,
    Cart,
    Context,
    Headroom,
    Line,
    LineShare,
    Result,
    Rule,
    Settings,
    Skipped,
    StoreCriteria,
    StoreScope,
    Tender,
    TenderShare,
    TimeCriteria,
)

__all__ = [
    "AdjustedTender",
    "Applied",
    "Cart",
    "Context",
    "Headroom",
    "Line",
    "LineShare",
    "Result",
    "Rule",
    "RuleSet",
    "Settings",
    "Skipped",
    "StoreCriteria",
    "StoreScope",
    "Tender",
    "TenderShare",
    "TimeCriteria",
    "UnsupportedRule",
    "adjusted_tenders",
    "compile_rule",
    "evaluate",
]
